"""DecoupledNet / TransferNet as ONE .tflite file with `classify` and `segment` signatures (issue 22, item 3)."""

import json
import os

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from click.testing import CliRunner
from PIL import Image

from keras_deconv import export, lite, zoo
from keras_deconv.cli.main import cli
from keras_deconv.zoo import exporting
from keras_deconv.datasets import shapes

NAMES = ("decouplednet-small", "transfernet-small")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """``{name: (file, folder)}``: each small zoo model exported both ways."""
    root = tmp_path_factory.mktemp("exports")
    found = {}
    for name in NAMES:
        single, folder = str(root / f"{name}.tflite"), str(root / name)
        assert zoo.export_model(name, single, "tflite")["path"] == single
        zoo.export_model(name, folder, "tflite")
        assert os.path.isfile(single) and sorted(os.listdir(folder)) == ["decoder.tflite", "encoder.tflite", "manifest.json"]
        found[name] = single, folder
    return found


def _manifest(folder):
    with open(os.path.join(folder, "manifest.json")) as stream:
        return json.load(stream)


@pytest.mark.parametrize("name", NAMES)
def test_one_file_has_the_two_signatures_with_the_parts_tensor_names(exports, name):
    single, folder = exports[name]
    manifest = _manifest(folder)
    signatures = Interpreter(model_path=single).get_signature_list()
    assert set(signatures) == {"classify", "segment"}
    for key, part in (("classify", "encoder"), ("segment", "decoder")):
        assert sorted(signatures[key]["inputs"]) == sorted(manifest[part]["inputs"])
        assert sorted(signatures[key]["outputs"]) == sorted(manifest[part]["outputs"])
    # The tensors the two parts exchange: every `segment` input but the query is a `classify` output.
    assert set(signatures["segment"]["inputs"]) - {"query"} <= set(signatures["classify"]["outputs"])
    assert signatures["classify"]["inputs"] == ["images"] and "seg_score" in signatures["segment"]["outputs"]
    # Builtin ops only, and the same ops as the folder's two files.
    ops = export.tflite_ops(open(single, "rb").read())
    assert not [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")], ops
    part_ops = set()
    for file in ("encoder.tflite", "decoder.tflite"):
        part_ops |= set(export.tflite_ops(open(os.path.join(folder, file), "rb").read()))
    assert set(ops) == part_ops
    assert {"TRANSPOSE_CONV", "MAX_POOL_2D"} <= set(ops)  # the decoder's ops are counted too


@pytest.mark.parametrize("name", NAMES)
def test_the_metadata_holds_what_the_manifest_held(exports, name):
    single, folder = exports[name]
    manifest = _manifest(folder)
    metadata = export.tflite_metadata(single)
    for part, signature in (("encoder", "classify"), ("decoder", "segment")):
        expected = {key: value for key, value in manifest[part].items() if key not in ("file", "output_order")}
        assert metadata[part] == {**expected, "signature": signature}
    rest = {key: value for key, value in manifest.items() if key not in ("encoder", "decoder")}
    assert {key: metadata[key] for key in rest} == rest
    assert metadata["class_names"] == list(shapes.CLASS_NAMES) and metadata["pipeline"]  # the card's settings


@pytest.mark.parametrize("name", NAMES)
def test_lite_load_runs_the_file_like_the_folder(exports, name):
    single, folder = exports[name]
    images = [shapes.generate_example("val", index, image_size=64, config="hard")["image"] for index in range(4)]
    images.append(images[0][:40, :57])  # non-square, smaller and larger: padded and resized as the pipeline does
    images.append(np.asarray(Image.fromarray(images[1]).resize((96, 128), Image.BILINEAR)))
    labels = [[1, 2]] * len(images) if name == "transfernet-small" else None
    for xnnpack in (True, False):
        one, two = lite.load(single, xnnpack=xnnpack), lite.load(folder, xnnpack=xnnpack)
        assert type(one) is type(two) and one.manifest["pipeline"] == two.manifest["pipeline"]
        ours = one(images, labels=labels) if labels else one(images)
        theirs = two(images, labels=labels) if labels else two(images)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
    assert any(result.labels.any() for result in ours)  # not all background: the test can fail
    with pytest.raises(ValueError, match="weight_cache works on the folder export"):
        lite.load(single, weight_cache=os.path.dirname(single))


def test_decouplednet_file_runs_test_time_augmentation_like_keras(exports):
    """tta=dihedral through LiteRT: each view's own detection and segmentation, averaged as the Keras pipeline does."""
    single, _ = exports["decouplednet-small"]
    images = [shapes.generate_example("val", index, image_size=64)["image"] for index in range(4)]
    keras_results = zoo.load("decouplednet-small", tta="dihedral")(images)
    lite_results = lite.load(single, tta="dihedral")(images)
    plain_results = lite.load(single)(images)
    changed = 0
    for ours, theirs, plain in zip(lite_results, keras_results, plain_results):
        assert ours.labels.shape == theirs.labels.shape == (64, 64)
        assert np.mean(ours.labels != theirs.labels) <= 0.001  # export_agreement's float32 bound
        np.testing.assert_allclose(ours.probabilities, theirs.probabilities, atol=1e-3)
        changed += int(np.any(ours.labels != plain.labels))
    assert changed  # the views were run: some label map differs from the single view's


def test_verify_passes_and_fails_when_the_decoder_differs(exports):
    single, _ = exports["transfernet-small"]
    images = export.sample_images((64, 64), count=4)
    model = zoo.create_model("transfernet-small")
    checks = export.verify_export(model, single, "tflite", images=images, **exporting.export_settings(model, "transfernet-small"))
    assert len(checks) == 2 and all(check["passed"] for check in checks), checks
    decoder_layer = next(layer for layer in reversed(model.layers) if isinstance(layer, keras.layers.Conv2DTranspose))
    decoder_layer.kernel.assign(decoder_layer.kernel * 1.01)
    checks = export.verify_export(model, single, "tflite", images=images)
    for check in checks:
        assert not check["passed"] and check["score_error"] > 1e-4
        # The per-part comparison ran on the signatures: the encoder's values hold, the decoder's do not.
        assert check["switches"]["pinned_score_error"] > 1e-4 and check["switches"]["encoder_error"] < 1e-5
        assert "the decoder given the encoder file's outputs" in export.describe_check(check)


def test_cli_exports_verifies_predicts_and_evaluates_one_file(exports, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "decouplednet-small", "--format", "tflite", "--out", "m.tflite", "--verify"])
    assert result.exit_code == 0, result.output
    assert os.path.isfile("m.tflite") and result.output.count(": OK") == 4, result.output
    image = tmp_path / "shape.png"
    Image.fromarray(shapes.generate_example("val", 0, image_size=64, config="hard")["image"]).save(image)
    single, folder = exports["transfernet-small"]
    maps = {}
    for name in (single, folder):
        out = tmp_path / f"seg-{os.path.basename(name)}"
        result = runner.invoke(cli, ["predict", name, str(image), "--out", str(out), "--labels", "circle,square"])
        assert result.exit_code == 0, result.output
        assert {"shape.png", "shape_overlay.png"} <= set(os.listdir(out))
        maps[name] = np.asarray(Image.open(out / "shape.png"))
    np.testing.assert_array_equal(maps[single], maps[folder])
    reports = {}
    for name in ("m.tflite", exports["decouplednet-small"][1]):
        report = tmp_path / f"{os.path.basename(name)}.json"
        result = runner.invoke(cli, ["evaluate", name, "--data", "shapes-hard", "--split", "val", "--limit", "4", "-q",
                                     "--json", str(report)])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(report.read_text())["metrics"]
    assert reports["m.tflite"]["confusion_matrix"] == reports[exports["decouplednet-small"][1]]["confusion_matrix"]
