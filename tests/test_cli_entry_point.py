"""The installed ``keras-deconv`` console script, run as a user runs it.

In-process ``CliRunner`` tests cannot see what happens at the process edge:
the exit code ``main()`` hands to the shell, TensorFlow's C++ log lines on
descriptor 2, file modes under the user's umask. These tests run the real
entry point in a subprocess.
"""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_deconv.cli.quiet import is_runtime_log

SCRIPT = os.path.join(os.path.dirname(sys.executable), "keras-deconv")


def _run(args, cwd, umask=0o022, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "ABSL", "KERAS_DECONV_VERBOSE"))}
    env.update(extra_env or {})
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, umask=umask, timeout=300)


def _runtime_lines(stderr):
    return [line for line in stderr.splitlines() if is_runtime_log(line.encode())]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def test_the_int8_converters_quantizer_line_counts_as_a_runtime_log():
    # Printed to descriptor 2 by the converter's C++ quantizer on every int8 export.
    assert is_runtime_log(b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: INT8")
    assert not is_runtime_log(b"Error: fully_quantize: the model could not be quantized")


def test_the_console_script_exists():
    assert os.access(SCRIPT, os.X_OK), SCRIPT


def test_predict_exits_1_when_an_input_fails_prints_no_runtime_logs_and_respects_the_umask(images, tmp_path):
    result = _run(["predict", "deconvnet-small", str(images / "good.png"), str(images / "broken.png"),
                   "--out", str(tmp_path / "seg")], cwd=tmp_path, umask=0o027)
    assert result.returncode == 1, result.stderr
    assert "good.png ->" in result.stdout
    assert "broken.png" in result.stderr and "Traceback" not in result.stderr
    assert not _runtime_lines(result.stderr), result.stderr
    written = sorted(os.listdir(tmp_path / "seg"))
    assert written == ["good.png", "good_overlay.png"]
    for name in written:
        assert stat.S_IMODE(os.stat(tmp_path / "seg" / name).st_mode) == 0o640  # 0666 & ~027
    assert stat.S_IMODE(os.stat(tmp_path / "seg").st_mode) == 0o750


def test_predict_exits_0_when_every_input_succeeds(images, tmp_path):
    result = _run(["predict", "deconvnet-small", str(images / "good.png"), "--out", str(tmp_path / "seg")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "seg" / "good.png").st_mode) == 0o644
    assert not _runtime_lines(result.stderr), result.stderr


def test_verbose_lets_the_runtime_logs_through(images, tmp_path):
    # Proves the quiet run above is quiet because of the filter, not by luck.
    result = _run(["--verbose", "predict", "deconvnet-small", str(images / "good.png"), "--out", str(tmp_path / "seg")],
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _runtime_lines(result.stderr), result.stderr


def test_a_failed_weights_import_exits_1_and_leaves_no_lock_or_partial_file(tmp_path):
    bad = tmp_path / "fcn-8s-pascal.caffemodel"
    bad.write_bytes(b"\x00" * 100)
    home = tmp_path / "cache"
    result = _run(["weights", "import", "fcn8s", str(bad)], cwd=tmp_path, extra_env={"KERAS_DECONV_HOME": str(home)})
    assert result.returncode == 1
    assert result.stderr.startswith("Error:") and "Traceback" not in result.stderr
    left = [os.path.join(folder, name) for folder, _, names in os.walk(home) for name in names]
    assert left == [], left


def test_a_usage_error_exits_2(tmp_path):
    result = _run(["predict", "no-such-model", "x.png", "--out", str(tmp_path)], cwd=tmp_path)
    assert result.returncode != 0
    result = _run(["evaluate", "deconvnet-small", "--no-such-option"], cwd=tmp_path)
    assert result.returncode == 2 and "No such option" in result.stderr


def test_exports_respect_the_umask(tmp_path):
    result = _run(["export", "fcn8s-small", "--format", "saved_model", "--out", str(tmp_path / "sm")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not _runtime_lines(result.stderr), result.stderr
    for folder, _, names in os.walk(tmp_path / "sm"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755, folder
        for name in names:
            assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == 0o644, name
