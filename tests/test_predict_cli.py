"""`keras-deconv predict` in-process (CliRunner) with tiny random models on images made in tmp_path."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_deconv import viz
from keras_deconv.cli.main import cli
from keras_deconv.datasets import shapes

SMALL = ["--weights", "none", "--num-classes", "13", "--config", "width=0.0625", "--config", "fc_units=32"]


pytestmark = pytest.mark.usefixtures("offline_cache")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A folder of good, odd and bad images, segmented once by a random small DeconvNet."""
    root = tmp_path_factory.mktemp("predict")
    images = root / "images"
    (images / "sub").mkdir(parents=True)
    photo = shapes.generate_example("val", 1, image_size=96)["image"]
    Image.fromarray(photo).save(images / "photo.jpg", quality=95)
    Image.fromarray(photo[:45, :70]).convert("L").save(images / "sub" / "gray.png")
    rgba = np.dstack([photo[:33, :50], np.full((33, 50), 128, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(images / "sub" / "alpha.PNG")
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a JPEG")
    (images / "empty.png").write_bytes(b"")
    (images / "notes.txt").write_text("ignored: not an image extension")
    out = root / "out"
    mp = pytest.MonkeyPatch()
    mp.setenv("KERAS_DECONV_HOME", str(root / "cache"))
    result = CliRunner().invoke(cli, ["predict", "deconvnet", str(images), "--out", str(out), "--json", *SMALL])
    mp.undo()
    return result, images, out


def test_bad_files_are_reported_and_the_rest_processed(run):
    result, _, out = run
    assert result.exit_code == 1, result.output  # documented: 1 when any image failed
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("corrupt.jpg" in line for line in errors) and any("empty.png" in line and "0 bytes" in line for line in errors)
    assert "3 of 5 image(s) segmented" in result.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["photo.png", "photo_overlay.png", "sub/alpha.png", "sub/alpha_overlay.png",
                       "sub/gray.png", "sub/gray_overlay.png"]  # nothing at all for the bad files


def test_label_pngs_are_voc_palette_pngs_at_the_original_size(run):
    _, images, out = run
    for source, label in (("photo.jpg", "photo.png"), ("sub/gray.png", "sub/gray.png"), ("sub/alpha.PNG", "sub/alpha.png")):
        with Image.open(images / source) as original:
            size = original.size
        with Image.open(out / label) as img:
            assert img.mode == "P" and img.size == size
            pal = np.array(img.getpalette()[: 256 * 3], np.uint8).reshape(256, 3)
            np.testing.assert_array_equal(pal, viz.palette())
            values = np.array(img)
        assert values.max() < 13
        with Image.open(out / label.replace(".png", "_overlay.png")) as overlay:
            assert overlay.mode == "RGB" and overlay.size == size


def test_json_lists_classes_and_fractions_per_image(run):
    result, images, out = run
    document = json.loads(result.stdout)
    assert document["weights"] == "none (random initialisation)" and document["random_weights"] is True
    assert len(document["images"]) == 3 and len(document["failed"]) == 2
    for record in document["images"]:
        labels = viz.read_label_png(record["label_png"])
        assert record["size"] == list(labels.shape)
        assert sum(c["pixels"] for c in record["classes"]) == labels.size
        assert sum(c["fraction"] for c in record["classes"]) == pytest.approx(1.0, abs=1e-4)
        for c in record["classes"]:
            assert c["name"] == shapes.CLASS_NAMES[c["id"]]


def test_transfernet_needs_labels_and_writes_attention_maps(tmp_path):
    image = tmp_path / "scene.png"
    Image.fromarray(shapes.generate_example("val", 2)["image"][:, :50]).save(image)
    base = ["predict", "transfernet", str(image), "--out", str(tmp_path / "out"), "--weights", "none",
            "--num-classes", "13", "--config", "width=0.0625", "--config", "input_shape=(64,64,3)",
            "--pipeline-option", "jit_compile=False"]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 2 and "--labels" in result.output
    result = CliRunner().invoke(cli, [*base, "--labels", "heart,3", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["images"][0]
    assert sorted(record["attention"]) == ["heart", "triangle"]
    for path in record["attention"].values():
        with Image.open(path) as img:
            assert img.mode == "RGB" and img.size == (50, 64)
    with Image.open(record["label_png"]) as img:
        assert img.mode == "P" and set(np.unique(np.array(img))) <= {0, 3, 9}


def test_predict_usage_errors_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["predict", "deconvnet", str(tmp_path / "missing.jpg"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Usage:" in result.output
    result = CliRunner().invoke(cli, ["predict", "deconvnet", str(tmp_path)])
    assert result.exit_code == 2 and "--out" in result.output
