"""The repository stands alone: no code, test, bench or config reads a path outside it.

Users clone the repository and nothing else, so a file that reaches for
``../shared`` (the developers' reference notes) or an absolute path on a
developer's machine works for us and fails for them.
"""

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {".git", ".venv", "build", "dist", "site", "__pycache__", ".pytest_cache", ".hypothesis", "runs"}
TEXT_SUFFIXES = (".py", ".cfg", ".toml", ".json", ".yml", ".yaml", ".sh", ".md", ".txt")
# A relative path that climbs out and names the reference folder, or an absolute
# path into a developer's workspace.
OUTSIDE = re.compile(r"\.\./shared\b|\bshared/spec\b|(?<![\w.])/work/\w")


def _files(suffixes, ci_script=False):
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in names:
            if name.endswith(suffixes) or (ci_script and name == "run" and os.path.basename(folder) == ".ci"):
                yield os.path.join(folder, name)


def _relative(path):
    return os.path.relpath(path, ROOT)


def _climbs_out(tree, depth):
    """``os.path.join(<something with __file__>, "..", ...)`` calls that climb above the repository."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.path.join", "join")):
            continue
        if not node.args or "__file__" not in ast.unparse(node.args[0]):
            continue
        ups = sum(isinstance(a, ast.Constant) and a.value == ".." for a in node.args[1:])
        # dirname(__file__) is the file's folder, `depth` folders below the root.
        if ups > depth:
            yield node.lineno, ast.unparse(node)


def test_no_source_or_config_names_a_path_outside_the_repository():
    offenders = []
    for path in _files(TEXT_SUFFIXES, ci_script=True):
        if _relative(path) == _relative(__file__):
            continue  # this file names the patterns it looks for
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if OUTSIDE.search(line):
                    offenders.append(f"{_relative(path)}:{number}: {line.strip()}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_no_python_file_joins_its_way_above_the_repository():
    offenders = []
    for path in _files((".py",)):
        depth = _relative(path).count(os.sep)
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        offenders += [f"{_relative(path)}:{line}: {code}" for line, code in _climbs_out(tree, depth)]
    assert not offenders, "joins that leave the repository:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source, depth, expected",
    [
        ('os.path.join(os.path.dirname(__file__), "..", "..", "shared")', 1, 1),
        ('os.path.join(os.path.dirname(__file__), "..", "data")', 1, 0),
        ('os.path.join(os.path.dirname(__file__), "..", "..")', 2, 0),
    ],
)
def test_the_climb_check_itself(source, depth, expected):
    assert len(list(_climbs_out(ast.parse(source), depth))) == expected


def test_the_official_networks_ship_inside_the_package():
    from keras_deconv.caffe import spec

    assert os.path.commonpath([spec.NETS_DIR, ROOT]) == ROOT
    for name in spec.OFFICIAL_NETS:
        assert os.path.isfile(os.path.join(spec.NETS_DIR, name + ".json"))
