"""TFLite at any image size (issue 21, item 8), and how `--verify` words the switch rule."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from keras_deconv import export, lite, zoo
from keras_deconv.cli.main import cli
from keras_deconv.datasets import shapes
from keras_deconv.zoo import exporting


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """deconvnet-small exported at 64 px: ``{"any": --any-size file, "static": the default file}``."""
    root = tmp_path_factory.mktemp("any")
    found = {}
    for key, any_size in (("any", True), ("static", False)):
        found[key] = str(root / f"{key}.tflite")
        zoo.export_model("deconvnet-small", found[key], "tflite", any_size=any_size)
    return found


def _scene(height, width, index=0):
    image = shapes.generate_example("val", index, image_size=64, config="hard")["image"]
    return tf.cast(tf.image.resize(image[None], (height, width)), tf.uint8).numpy()[0]


def test_an_any_size_export_segments_images_of_other_sizes_like_keras(files):
    metadata = export.tflite_metadata(files["any"])
    assert metadata["any_size"] is True and metadata["input_size"] == [64, 64]
    assert metadata["padding"] == {"min_size": 64, "multiple": 32}  # the Keras pipeline's rule
    model = zoo.create_model("deconvnet-small")
    min_size = zoo.info("deconvnet-small")["pipeline"]["config"]["min_size"]  # the card's pipeline: 64
    keras_pipeline = export.keras_pipeline(model, min_size=min_size)
    images = [_scene(128, 96, 1), _scene(50, 70, 2), _scene(64, 64, 3)]
    segmenter = lite.load(files["any"])
    assert segmenter.padded_size(128, 96) == (128, 96) and segmenter.padded_size(50, 70) == (64, 96)
    references = keras_pipeline(images)
    # The scenes hold shapes (not all background): the comparison can fail.
    assert all(len(np.unique(reference.labels)) > 1 for reference in references[:2])
    for xnnpack in (True, False):
        results = lite.load(files["any"], xnnpack=xnnpack)(images)
        for image, result, reference in zip(images, results, references):
            assert result.labels.shape == image.shape[:2]
            assert np.mean(result.labels == reference.labels) >= 0.995
    # The static file runs what fits its 64 x 64 input exactly, and a larger image resized to fit.
    static = lite.load(files["static"])
    assert static([_scene(50, 60)])[0].labels.shape == (50, 60) and static.downscaled == 0
    large = _scene(128, 96, 1)
    result = static([large])[0]
    assert result.labels.shape == (128, 96) and static.downscaled == 1
    # An approximation of Keras at full size: the Keras pipeline on the downscaled image, scaled back.
    # (rounded to uint8 as the segmenter does: half to even; rounding halves up changes 0.7 % of the input pixels,
    # and the labels of the shipped deconvnet-small on 1.2 % of the output)
    resized = tf.image.resize(large[None].astype("float32"), (64, 48), "bilinear", antialias=True)[0].numpy()
    small = np.clip(np.round(resized), 0, 255).astype("uint8")
    reference = keras_pipeline([small])[0].probabilities
    expected = tf.image.resize(reference[None], (128, 96)).numpy()[0].argmax(-1)
    assert np.mean(result.labels == expected) >= 0.995
    assert len(np.unique(result.labels)) > 1


def test_any_size_is_refused_where_it_does_not_apply(tmp_path):
    with pytest.raises(ValueError, match="takes images of any size already"):
        zoo.export_model("decouplednet-small", str(tmp_path / "d.tflite"), "tflite", any_size=True)
    model = keras.Model(*(lambda x: (x, keras.layers.Conv2D(2, 1)(x)))(keras.Input((8, 8, 3))))
    with pytest.raises(ValueError, match="integer-only export has a static input size"):
        export.tflite._dense_tflite(model, None, "int8", [np.zeros((8, 8, 3), "uint8")], (8, 8), integer_only=True,
                                    any_size=True)


def test_cli_predicts_a_larger_image_with_an_any_size_file(files, tmp_path):
    image = tmp_path / "big.png"
    Image.fromarray(_scene(128, 96)).save(image)
    result = CliRunner().invoke(cli, ["predict", files["any"], str(image), "--out", str(tmp_path / "seg")])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "seg" / "big.png")).shape == (128, 96)


def test_verify_checks_a_larger_non_square_image_and_fails_other_weights(files):
    assert [image.shape for image in export.sample_images((64, 64), count=4)][-2:] == [(96, 118, 3), (48, 64, 3)]
    model = zoo.create_model("deconvnet-small")
    settings = exporting.export_settings(model, "deconvnet-small")
    checks = export.verify_export(model, files["any"], "tflite", input_size=(64, 64),
                                  images=export.sample_images((64, 64), count=4), **settings)
    assert [check["runtime"] for check in checks] == ["litert (xnnpack)", "litert (no xnnpack)",
                                                     "litert (xnnpack), at 96x128", "litert (no xnnpack), at 96x128"]
    assert all(check["passed"] for check in checks), [export.describe_check(check) for check in checks]
    # Other decoder weights: a real failure, and the text says so.
    layer = next(layer for layer in reversed(model.layers) if isinstance(layer, keras.layers.Conv2DTranspose))
    layer.kernel.assign(layer.kernel * 1.01)
    checks = export.verify_export(model, files["any"], "tflite", input_size=(64, 64),
                                  images=export.sample_images((64, 64), count=4), **settings)
    for check in checks:
        text = export.describe_check(check)
        assert not check["passed"] and text.endswith(": FAILED"), text
        assert "over the bound 1e-04" in text and "OVER the bound: FAILED" in text, text


def _check(score_error, pinned_error, flips=11, ties=True, passed=True):
    return {"runtime": "litert (xnnpack)", "label_agreement": 1.0, "strict_label_agreement": 0.99999,
            "label_bound": 0.999, "score_error": score_error, "score_bound": 1e-4, "passed": passed,
            "switches": {"switches": 499_712, "switch_flips": flips, "flips_are_ties": ties,
                         "max_flip_gap": 1.7e-7 if ties else 3e-2, "pinned_score_error": pinned_error, "copy_error": 0.0}}


def test_describe_check_never_calls_an_error_over_the_bound_ok():
    text = export.describe_check(_check(6.4e-2, 5.09e-7))
    assert "(bound 1e-04)" not in text and "error 6.40e-02 over the bound 1e-04" in text
    assert "where 11 of 499,712 pooling switches differ from Keras's, all ties (largest gap 1.7e-07" in text
    assert "tie bound 1e-05" in text and "share of pixels with Keras's label" in text
    assert text.endswith("Keras run with the export's own switches: score error 5.09e-07, within the bound: OK")
    # A real failure: the switches that differ are not ties, and Keras with them is still far off.
    text = export.describe_check(_check(6.4e-2, 3e-3, ties=False, passed=False))
    assert "NOT all ties" in text and text.endswith("score error 3.00e-03, OVER the bound: FAILED")
    # Within the bound without the switch rule: the plain form.
    plain = {key: value for key, value in _check(5e-7, 0.0).items() if key != "switches"}
    assert export.describe_check(plain).endswith("score error 5.00e-07 (bound 1e-04, max|export - Keras| / "
                                                 "max|Keras| on the scores): OK")
