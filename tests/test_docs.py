"""The manual: README front page, the mkdocs site, and every code example in them.

Examples run so they cannot rot:

* a ```` ```python ```` block runs, in page order, in one namespace per page
  (a working directory of its own), unless the line before its fence is
  ``<!-- no-run: REASON -->`` (it needs the authors' weights, VOC on disk, ...);
* a ```` ```bash ```` block runs only when the line before its fence is
  ``<!-- run -->``: each line with ``keras-deconv`` and ``python`` from this
  environment, stopping at the first failure.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
PAGES = ["README.md"] + sorted("docs/" + name for name in os.listdir(DOCS) if name.endswith(".md"))
FENCE = re.compile(r"^```(\w*)\s*$")


def code_blocks(text):
    """``(language, code, marker, line)`` for each fenced block; marker = the HTML comment just above."""
    lines = text.split("\n")
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match or not match.group(1):
            index += 1
            continue
        start, body = index, []
        index += 1
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        above = next((lines[i].strip() for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = above if above.startswith("<!--") else ""
        blocks.append((match.group(1), "\n".join(body), marker, start + 1))
        index += 1
    return blocks


def test_code_blocks_parser():
    text = "x\n<!-- no-run: needs VOC -->\n```python\na = 1\n```\n\n```bash\nls\n```\n"
    assert code_blocks(text) == [("python", "a = 1", "<!-- no-run: needs VOC -->", 3), ("bash", "ls", "", 7)]


def _read(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as handle:
        return handle.read()


def test_readme_is_a_short_front_page():
    readme = _read("README.md")
    assert len(readme.splitlines()) <= 300
    for link in ("docs/getting-started.md", "docs/deployment.md", "docs/training.md"):
        assert link in readme


def test_every_docs_page_is_in_the_site_navigation():
    config = _read("mkdocs.yml")
    for page in PAGES[1:]:
        assert os.path.basename(page) in config, f"{page} is missing from mkdocs.yml nav"


def test_the_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs site needs the [docs] extra: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                            timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "index.html").exists()


def _bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def _runnable(block):
    language, _, marker, _ = block
    if marker.startswith("<!-- no-run:"):
        return False
    return language == "python" or (language == "bash" and marker == "<!-- run -->")


RUNNABLE_PAGES = [page for page in PAGES if any(map(_runnable, code_blocks(_read(page))))]


def test_the_pages_with_examples_include_the_front_page_and_the_guides():
    assert {"README.md", "docs/getting-started.md", "docs/deployment.md", "docs/zoo.md"} <= set(RUNNABLE_PAGES)


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_the_examples_of_each_page_run(page, tmp_path, monkeypatch, offline_cache):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for language, code, _, line in filter(_runnable, code_blocks(_read(page))):
        if language == "python":
            exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102 - our own docs
            continue
        env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
        result = subprocess.run(["bash", "-e", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, f"{page}:{line}\n{code}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
