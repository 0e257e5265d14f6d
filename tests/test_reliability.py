"""The reliability catalogue: bad input never crashes, corrupts or hangs.

Each case below is tested here, or (for the large families) in the module
named in the table, which this catalogue points to so that one place lists
every guarantee.

| area | case | where |
|---|---|---|
| Caffe reader | truncated at every byte, bit flips, random bytes, crafted headers (10^12 floats rejected before allocation), property-based fuzzing (hypothesis) | tests/test_caffe_reader.py; a bounded hypothesis run here |
| weights import | wrong network, wrong shapes, non-Caffe file: one error, model untouched | tests/test_caffe_convert.py |
| downloads | temp file renamed only after size/sha256 checks; resume with Range; interrupted download leaves nothing a load would use; offline fails fast | here |
| cache | interrupted conversion leaves no file; two processes importing at once both end valid (lock); sha256 mismatch detected on load with the repair command | here and tests/test_zoo.py |
| archives | no path traversal, no links escaping the target; missing dataset files named | here and tests/test_voc_dataset.py |
| serialization | `.keras` loading stays in safe mode (lambdas refused); the package never unpickles or evals user files | here |
| images | truncated/corrupt, 16-bit, grayscale, RGBA, palette, CMYK, EXIF rotation, zero-sized, decompression bombs; a bad file in a directory run is reported and the rest processed | tests/test_images.py, tests/test_predict_cli.py |
| CLI | bad arguments exit 2 with the usage line; runtime errors exit 1 with one line; --debug shows the traceback | here and tests/test_zoo.py |
| layers | wrong rank, channels_first, mismatched shapes, out-of-range switches: one ValueError naming them | tests/test_layers.py |
| LiteRT exports | truncated or non-TFLite files, missing paths, folders without (or with a broken) manifest, a part file loaded as a whole model, a `.tflite` whose `keras_deconv` metadata is not JSON (or whose class names do not fit: generic names instead): one error naming the path and the export command | tests/test_export.py |
| LiteRT weight caches | a cache built for another file (a re-export of the same architecture, which LiteRT alone would reuse) is never used; a damaged cache is rebuilt; a cache is published under its name only once written | tests/test_export.py |
"""

import ast
import hashlib
import http.server
import io
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_deconv import zoo
from keras_deconv.caffe import CaffeModelError, read_caffemodel, write_caffemodel
from keras_deconv.cli.main import cli
from keras_deconv.zoo import fetch

PACKAGE_DIRS = [Path(__file__).resolve().parents[1] / d for d in ("keras_deconv", "zoo", "cli")]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    # Not `offline_cache`: the loopback-server tests need the real urlopen.
    monkeypatch.setenv("KERAS_DECONV_HOME", str(tmp_path / "cache"))


# ---------------------------------------------------------------- downloads (a local server only)
class _Server:
    """A loopback HTTP server serving one payload, optionally cut short or ignoring Range."""

    def __init__(self, payload, honour_range=True, cut_after=None):
        self.payload, self.honour_range, self.cut_after = payload, honour_range, cut_after
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                owner.requests.append(self.headers.get("Range"))
                start = 0
                if owner.honour_range and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                body = owner.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if owner.cut_after is not None:
                    self.wfile.write(body[: owner.cut_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/file.caffemodel"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def test_download_checks_then_renames(tmp_path):
    destination = tmp_path / "w.caffemodel"
    with _Server(PAYLOAD) as url:
        path, sha256, size = fetch.download(url, destination, "deconvnet", len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert Path(path).read_bytes() == PAYLOAD and size == len(PAYLOAD)
    assert not (tmp_path / "w.caffemodel.part").exists()


def test_download_with_wrong_hash_leaves_nothing(tmp_path):
    destination = tmp_path / "w.caffemodel"
    with _Server(PAYLOAD) as url, pytest.raises(zoo.WeightsError, match="sha256"):
        fetch.download(url, destination, "deconvnet", None, "0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_range(tmp_path):
    destination = tmp_path / "w.caffemodel"
    with _Server(PAYLOAD, cut_after=300_000) as url, pytest.raises(zoo.WeightsError):
        fetch.download(url, destination, "deconvnet", len(PAYLOAD), None, progress=False)
    assert not destination.exists()  # only the .part file, which no load looks at
    partial = tmp_path / "w.caffemodel.part"
    assert 0 < partial.stat().st_size < len(PAYLOAD)
    kept = partial.stat().st_size
    server = _Server(PAYLOAD)
    with server as url:
        fetch.download(url, destination, "deconvnet", len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert server.requests == [f"bytes={kept}-"]  # resumed, not restarted
    assert destination.read_bytes() == PAYLOAD and not partial.exists()


def test_server_ignoring_range_restarts_cleanly(tmp_path):
    destination = tmp_path / "w.caffemodel"
    (tmp_path / "w.caffemodel.part").write_bytes(PAYLOAD[:1000])
    with _Server(PAYLOAD, honour_range=False) as url:
        fetch.download(url, destination, "deconvnet", len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert destination.read_bytes() == PAYLOAD


def test_offline_fetch_fails_fast_with_the_import_hint(monkeypatch):
    import urllib.error

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    started = time.monotonic()
    with pytest.raises(zoo.WeightsError, match="keras-deconv weights import deconvnet PATH"):
        zoo.fetch_weights("deconvnet")
    assert time.monotonic() - started < 5
    assert not list(zoo.cache_dir().glob("weights/**/*.weights.h5"))


# ---------------------------------------------------------------- weights import leaves nothing behind
def test_failed_import_leaves_no_weights(tmp_path):
    bogus = tmp_path / "other.caffemodel"
    write_caffemodel(str(bogus), [("conv1_1", "Convolution", [np.zeros((4, 3, 3, 3), "float32"), np.zeros((4,), "float32")])], dialect="v1")
    with pytest.raises(Exception):
        zoo.import_weights("fcn8s", bogus)
    assert not list(zoo.cache_dir().glob("weights/**/*.weights.h5"))
    assert not list(zoo.cache_dir().glob("weights/**/.tmp-*"))


# ---------------------------------------------------------------- Caffe reader (bounded fuzz here too)
@pytest.fixture(scope="module")
def valid_caffemodel(tmp_path_factory):
    path = tmp_path_factory.mktemp("caffe") / "small.caffemodel"
    rng = np.random.default_rng(0)
    write_caffemodel(str(path), [("conv1_1", "Convolution", [rng.standard_normal((4, 3, 3, 3)).astype("float32"), np.zeros(4, "float32")]),
                                  ("bn1_1", "BN", [np.ones((1, 4, 1, 1), "float32"), np.zeros((1, 4, 1, 1), "float32")])], dialect="v1")
    return path.read_bytes()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_caffe_reader_only_raises_its_error(valid_caffemodel, tmp_path, data):
    raw = bytearray(valid_caffemodel)
    action = data.draw(st.sampled_from(["truncate", "flip", "random", "splice"]))
    if action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif action == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            position = data.draw(st.integers(0, len(raw) - 1))
            raw[position] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "random":
        raw = bytearray(data.draw(st.binary(min_size=0, max_size=512)))
    else:
        position = data.draw(st.integers(0, len(raw)))
        raw[position:position] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "fuzz.caffemodel"
    path.write_bytes(bytes(raw))
    started = time.monotonic()
    try:
        read_caffemodel(str(path), sha256=False)
    except CaffeModelError:
        pass
    assert time.monotonic() - started < 2.0  # never hangs


def test_blob_claiming_a_trillion_floats_is_rejected_before_allocation(tmp_path):
    import tracemalloc

    def varint(value):
        out = bytearray()
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    # BlobProto: num=1, channels=1, height=10**6, width=10**6, data=5 (declared length 4*10**12)
    blob = b"\x08\x01\x10\x01\x18" + varint(10**6) + b"\x20" + varint(10**6) + b"\x2a" + varint(4 * 10**12)
    layer = b"\x22\x04conv" + b"\x32" + varint(len(blob)) + blob
    path = tmp_path / "huge.caffemodel"
    path.write_bytes(b"\x12" + varint(len(layer)) + layer)
    tracemalloc.start()
    with pytest.raises(CaffeModelError):
        read_caffemodel(str(path), sha256=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 2**20


# ---------------------------------------------------------------- archives
def test_archive_path_traversal_and_links_are_refused(tmp_path):
    from keras_deconv.datasets.voc import safe_extract

    for member in ("../escape.txt", "/abs/escape.txt"):
        archive = tmp_path / "bad.tar"
        with tarfile.open(archive, "w") as tar:
            info = tarfile.TarInfo(member)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
        with pytest.raises(Exception, match="(?i)outside|unsafe|escap|absolute"):
            safe_extract(archive, tmp_path / "out")
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("VOCdevkit/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(Exception, match="(?i)link|outside|unsafe|escap"):
        safe_extract(archive, tmp_path / "out2")
    assert not (tmp_path.parent / "escape.txt").exists()


# ---------------------------------------------------------------- serialization
def test_keras_files_load_in_safe_mode_only(tmp_path):
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match="(?i)lambda|safe_mode"):
        keras.saving.load_model(path)


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            yield ast.unparse(function), node


def test_package_never_unpickles_or_evals():
    forbidden = {"pickle.load", "pickle.loads", "eval", "exec", "marshal.loads", "yaml.load", "torch.load"}
    offenders = []
    for directory in PACKAGE_DIRS:
        for path in directory.rglob("*.py"):
            tree = ast.parse(path.read_text())
            for name, node in _calls(tree):
                if name in forbidden:
                    offenders.append(f"{path}:{node.lineno} {name}")
                if name.endswith("np.load") or name.endswith("numpy.load"):
                    if not any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False for k in node.keywords):
                        offenders.append(f"{path}:{node.lineno} np.load without allow_pickle=False")
                if name.endswith("load_model") and any(k.arg == "safe_mode" and isinstance(k.value, ast.Constant) and k.value.value is False for k in node.keywords):
                    offenders.append(f"{path}:{node.lineno} load_model(safe_mode=False)")
    assert offenders == []


# ---------------------------------------------------------------- CLI exit codes
@pytest.mark.parametrize(
    "args",
    [["--no-such-option"], ["no-such-command"], ["info"], ["info", "nope"], ["list", "--bogus"], ["weights"],
     ["weights", "fetch"], ["weights", "fetch", "deconvnet", "--tag", "nope"], ["weights", "import", "deconvnet"],
     ["weights", "import", "deconvnet", "/does/not/exist.caffemodel"]],
)
def test_bad_arguments_exit_2_with_usage(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (args, result.output)
    assert "Usage:" in result.output or "Error" in result.output


def test_runtime_errors_exit_1_with_one_line(capfd, monkeypatch):
    from keras_deconv.cli.main import main

    import urllib.error

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    with pytest.raises(SystemExit) as exit_:
        main(["weights", "fetch", "transfernet"])
    assert exit_.value.code == 1
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines[0].startswith("Error: ") and len(lines) == 2 and "--debug" in lines[1]
    with pytest.raises(Exception):
        main(["--debug", "weights", "fetch", "transfernet"])
