"""The switch comparison of `--verify`: an export's own pooling switches, Keras run with them, tie gaps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deconv import export, switch_agreement, zoo
from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from keras_deconv.layers.argmax_pooling import pinned_switches
from keras_deconv.models import DeconvNet


def _pool_unpool_model(shape=(4, 4, 1)):
    inputs = keras.Input(shape)
    pooled, switches = MaxPoolingWithArgmax2D(name="pool")(inputs)
    return keras.Model(inputs, MaxUnpooling2D()([pooled, switches, inputs]))


def test_pinned_switches_move_the_unpooled_value():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)[:, ::-1]  # each window's maximum is at position 1
    model = _pool_unpool_model()
    own = np.asarray(model(x))
    expected = np.zeros_like(x)
    expected[:, 0::2, 1::2] = x[:, 0::2, 1::2]
    np.testing.assert_array_equal(own, expected)
    with pinned_switches({"pool": np.full((1, 2, 2, 1), 2)}):
        moved = np.asarray(model(x))
    expected = np.zeros_like(x)
    expected[:, 1::2, 0::2] = x[:, 0::2, 1::2]  # the same maxima, now at position 2 (bottom left)
    np.testing.assert_array_equal(moved, expected)
    np.testing.assert_array_equal(np.asarray(model(x)), own)  # the block has ended
    with pytest.raises(tf.errors.InvalidArgumentError, match="pinned switches for pool"):
        with pinned_switches({"pool": np.zeros((1, 3, 2, 1))}):
            model(x)


def test_flip_gaps_are_the_keras_values_at_both_switches():
    layer = MaxPoolingWithArgmax2D(name="p")
    # One row of three 2x2 windows over a 2x5 map ("same": the last window is half outside).
    x = np.array([[5.0, 5.0 - 1e-6, 4.0, 1.0, 7.0], [0.0, 0.0, 2.0, 3.0, 6.0]], "float32").reshape(1, 2, 5, 1)
    keras_window = np.asarray(layer(x)[1]).astype(np.int64)
    np.testing.assert_array_equal(keras_window.ravel(), [0, 0, 0])
    gaps = switch_agreement.flip_gaps(layer, x, keras_window, np.array([1, 3, 0]).reshape(1, 1, 3, 1))
    tie = (x[0, 0, 0, 0] - x[0, 0, 1, 0]) / 7  # about 1e-6 / 7, in float32
    np.testing.assert_allclose(gaps, [tie, (4 - 3) / 7], rtol=1e-6)  # the unflipped window is left out
    assert switch_agreement.flip_gaps(layer, x, keras_window, np.array([0, 0, 1]).reshape(1, 1, 3, 1)) == [np.inf]


@pytest.mark.parametrize("pooling", ["auto", "default"])
def test_an_exports_switch_tensors_are_its_pooling_switches(pooling):
    keras.utils.set_random_seed(4)
    model = DeconvNet(num_classes=3, input_shape=(64, 64, 3), width=1 / 16, fc_units=32, fc_kernel_size=2)
    flatbuffer = export.to_tflite(model, pooling=pooling)
    layers = switch_agreement.pooling_layers(model)
    indices = switch_agreement.switch_tensor_indices(flatbuffer, [layer.name for layer in layers])
    assert sorted(indices) == sorted(f"pool{level}" for level in range(1, 6))
    copy = switch_agreement.with_switch_outputs(flatbuffer, [indices[layer.name] for layer in layers])
    image = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    own = export.run_tflite(flatbuffer, [image])
    outputs = export.run_tflite(copy, [image])
    assert len(outputs) == len(own) + 5
    np.testing.assert_array_equal(outputs[0], own[0])  # listing more outputs changes nothing
    pooled_from, keras_windows = switch_agreement.keras_switches(model, image, layers)
    for layer, x, ours, theirs in zip(layers, pooled_from, keras_windows, outputs[len(own):]):
        theirs = np.rint(theirs).astype(np.int64)
        assert theirs.shape == ours.shape
        gaps = switch_agreement.flip_gaps(layer, x, np.asarray(ours, np.int64), theirs)
        assert gaps.size <= ours.size * 1e-3 and np.all(gaps <= 1e-4), layer.name  # equal but for ties


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = zoo.create_model("deconvnet-small")
    path = str(tmp_path_factory.mktemp("export") / "deconvnet-small.tflite")
    export.export_model(model, path, "tflite", input_size=(64, 64), log=lambda message: None)
    return model, path


def test_verify_passes_a_trained_deconvnet_whose_scores_differ_only_by_tie_switches(trained):
    model, path = trained
    # LiteRT's convolutions sum in another order than TensorFlow's: a few near-tie windows pool the other value,
    # and scores move by far more than 1e-4 (python bench/xnnpack_scores.py). How many scenes it takes to meet
    # such a window depends on the weights (the shipped deconvnet-small: none in the default 16, some in 64).
    for count in (16, 64, 256):
        checks = export.verify_export(model, path, "tflite", input_size=(64, 64),
                                      images=export.sample_images((64, 64), count=count))
        assert [check["passed"] for check in checks] == [True, True], [export.describe_check(c) for c in checks]
        compared = [check for check in checks if "switches" in check]
        if compared:
            break
    assert compared, [export.describe_check(c) for c in checks]
    for check in compared:
        switches = check["switches"]
        assert check["score_error"] > 1e-4 and switches["copy_error"] == 0.0
        assert 0 < switches["switch_flips"] < switches["switches"] * 1e-4 and switches["flips_are_ties"]
        assert switches["pinned_score_error"] < 1e-5
        assert "all ties" in export.describe_check(check) and export.describe_check(check).endswith(": OK")


def test_verify_fails_an_export_whose_arithmetic_differs(trained):
    model, path = trained
    other = zoo.create_model("deconvnet-small")
    # Scaling the classifier by 0.1 % scales every score alike: far from rounding, and no label can change,
    # so only the score check can catch it (a change inside the encoder also moves labels at pooling ties).
    for weight in other.get_layer("seg-score-voc").weights:
        weight.assign(weight * 1.001)
    checks = export.verify_export(other, path, "tflite", input_size=(64, 64))
    assert not any(check["passed"] for check in checks)
    for check in checks:
        assert check["label_agreement"] >= 0.999 and check["switches"]["pinned_score_error"] > 1e-4
        assert export.describe_check(check).endswith(": FAILED")


def test_onnx_verify_uses_the_files_own_switches_too(trained, tmp_path):
    if export.onnx_available():
        pytest.skip(export.onnx_available())
    model, _ = trained
    path = export.to_onnx(model, str(tmp_path / "deconvnet-small.onnx"), (64, 64))
    (check,) = export.verify_export(model, path, "onnx", input_size=(64, 64))
    assert check["passed"], export.describe_check(check)
    switches = check["switches"]  # onnxruntime's convolutions sum in another order too
    assert check["score_error"] > 1e-4 and switches["copy_error"] == 0.0 and switches["flips_are_ties"]
    assert 0 < switches["switch_flips"] and switches["pinned_score_error"] < 1e-5
    other = zoo.create_model("deconvnet-small")
    other.get_layer("conv1_1").kernel.assign(other.get_layer("conv1_1").kernel * 1.001)
    (check,) = export.verify_export(other, path, "onnx", input_size=(64, 64))
    assert not check["passed"] and check["switches"]["pinned_score_error"] > 1e-4


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    exported = {}
    for name in ("transfernet-small", "decouplednet-small"):
        path = str(tmp_path_factory.mktemp("export") / name)
        zoo.export_model(name, path, "tflite", log=lambda message: None)
        exported[name] = path
    return exported


@pytest.mark.parametrize("name, labels", [("transfernet-small", [[1, 2]] * 4), ("decouplednet-small", None)])
def test_encoder_decoder_folders_are_compared_part_by_part(folders, name, labels):
    images = export.sample_images((64, 64), count=4)
    model = zoo.create_model(name)
    same = switch_agreement.two_part_comparison(model, folders[name], images, labels)
    # Every pooling's switches are compared, and DecoupledNet's relu6 / relu7 mask bits too.
    discrete = [layer for layer in model.layers if type(layer).__name__ in ("MaxPoolingWithArgmax2D", "ReLUWithMask")]
    assert len(discrete) == (8 if name == "decouplednet-small" else 4)
    assert same["switches"] == len(images) * sum(int(np.prod(layer.output[1].shape[1:])) for layer in discrete)
    assert same["flips_are_ties"] and same["switch_flips"] <= same["switches"] * 1e-4
    assert same["pinned_score_error"] < 1e-5 and same["encoder_error"] < 1e-5, same
    # Other decoder weights: the decoder comparison fails, the encoder's still holds.
    decoder_layer = next(layer for layer in reversed(model.layers) if isinstance(layer, keras.layers.Conv2DTranspose))
    decoder_layer.kernel.assign(decoder_layer.kernel * 1.001)
    other = switch_agreement.two_part_comparison(model, folders[name], images, labels)
    assert other["pinned_score_error"] > 1e-4 and other["encoder_error"] < 1e-5, other
    # Other encoder weights: the encoder's values move (and some switches may flip at non-ties).
    model = zoo.create_model(name)
    model.get_layer("conv1_1").kernel.assign(model.get_layer("conv1_1").kernel * 1.001)
    other = switch_agreement.two_part_comparison(model, folders[name], images, labels)
    assert other["encoder_error"] > 1e-4, other


def test_verify_fails_a_folder_whose_decoder_differs(folders):
    images = export.sample_images((64, 64), count=4)
    model = zoo.create_model("transfernet-small")
    decoder_layer = next(layer for layer in reversed(model.layers) if isinstance(layer, keras.layers.Conv2DTranspose))
    decoder_layer.kernel.assign(decoder_layer.kernel * 1.01)
    checks = export.verify_export(model, folders["transfernet-small"], "tflite", images=images)
    for check in checks:
        assert not check["passed"] and check["score_error"] > 1e-4
        assert check["switches"]["pinned_score_error"] > 1e-4 and check["switches"]["encoder_error"] < 1e-5
        assert "the decoder given the encoder file's outputs" in export.describe_check(check)
