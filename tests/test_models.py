"""Fast tests of the model builders on small configurations (width 1/16).

Full-size builds (parameter counts, every weight shape) are in
``test_models_full.py``. Here: forward passes at 64x64 and odd sizes, save /
load, the DecoupledNet bridging against tf.GradientTape, TransferNet's
attention, the network layers against NumPy references, every network
against the independent NumPy Caffe oracle (``caffe_reference.py``), and bad
inputs.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import caffe_reference as ref
from keras_deconv.layers import (
    BilinearUpsamplingInitializer,
    ChannelAffine,
    CropToReference,
    FilterSum,
    LinearSum,
    ReLUWithMask,
    TransposableConv2D,
)
from keras_deconv.models import (
    DeconvNet,
    DecoupledNet,
    FCN8s,
    TransferNet,
    caffe_to_keras_shapes,
    caffe_to_keras_weights,
    keras_to_caffe_weights,
    sync_bridging_weights,
)
from keras_deconv.preprocessing import CAFFE_MEAN_BGR, CaffePreprocessing, preprocess_input

from official_nets import SPEC_DIR  # noqa: E402
SMALL = 1 / 16


def _spec(name):
    path = os.path.join(SPEC_DIR, name + ".json")
    with open(path) as handle:
        return json.load(handle)


def _images(batch, height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3)).astype("uint8")


def _flat(outputs):
    return [np.asarray(t) for t in keras.tree.flatten(outputs)]


# Small builders: (builder, kwargs, inputs(batch, height, width)).
SMALL_CONFIGS = {
    "DeconvNet": (DeconvNet, dict(num_classes=3, width=SMALL, fc_kernel_size=2), lambda b, h, w: _images(b, h, w)),
    "FCN8s": (FCN8s, dict(num_classes=3, width=SMALL), lambda b, h, w: _images(b, h, w)),
    "DecoupledNet": (
        DecoupledNet,
        dict(num_classes=4, width=SMALL, fc_kernel_size=1),
        lambda b, h, w: [_images(b, h, w), np.random.default_rng(1).random((b, 4)).astype("float32")],
    ),
    "TransferNet": (
        TransferNet,
        dict(num_classes=5, width=SMALL, return_attention=True, include_classifier=True),
        lambda b, h, w: [_images(b, h, w), np.eye(5, dtype="float32")[np.arange(b) % 5]],
    ),
}
STATIC_INPUT = {"DecoupledNet", "TransferNet"}


def _build_small(name, height=64, width=64, **overrides):
    builder, kwargs, _ = SMALL_CONFIGS[name]
    kwargs = dict(kwargs, **overrides)
    if name in STATIC_INPUT:
        kwargs.setdefault("input_shape", (height, width, 3))
    return builder(**kwargs)


# ----------------------------------------------------------------- preprocessing and layers
def test_caffe_preprocessing_layer_and_function_agree():
    x = _images(2, 5, 7)
    expected = x[..., ::-1].astype("float32") - np.array(CAFFE_MEAN_BGR, "float32")
    np.testing.assert_allclose(preprocess_input(x), expected, rtol=1e-6)
    np.testing.assert_allclose(CaffePreprocessing()(x), expected, rtol=1e-6)
    # training mode flips with a reverse (faster on a CPU), inference with a reversed slice: the same values
    np.testing.assert_array_equal(CaffePreprocessing()(x, training=True), CaffePreprocessing()(x))
    np.testing.assert_allclose(preprocess_input(tf.constant(x)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="3 channels"):
        preprocess_input(np.zeros((1, 4, 4, 4)))


def test_channel_affine_is_scale_times_x_plus_shift():
    layer = ChannelAffine(name="bn1_1")
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 4)).astype("float32")
    layer(x)
    assert [tuple(w.shape) for w in layer.weights] == [(4,), (4,)]
    assert [w.name for w in layer.weights] == ["scale", "shift"]
    scale, shift = np.arange(1, 5, dtype="float32"), np.full(4, 0.5, "float32")
    layer.set_weights([scale, shift])
    np.testing.assert_allclose(layer(x), x * scale + shift, rtol=1e-6)
    clone = ChannelAffine.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    # The last axis named positively, and a channels_first axis (weights reshaped to broadcast).
    for axis, expected in ((3, x * scale + shift), (1, None)):
        other = ChannelAffine(axis=axis)
        data = x if axis == 3 else np.moveaxis(x, 3, 1)
        other(data)
        other.set_weights([scale, shift])
        if expected is None:
            expected = data * scale[None, :, None, None] + shift[None, :, None, None]
        np.testing.assert_allclose(other(data), expected, rtol=1e-6)


def test_linear_sum_and_filter_sum_match_numpy_einsum():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((2, 3, 4, 5)).astype("float32")
    alpha = rng.random((2, 3, 4, 1)).astype("float32")
    z = rng.standard_normal((2, 5)).astype("float32")
    np.testing.assert_allclose(LinearSum()([features, alpha]), np.einsum("bhwc,bhw->bc", features, alpha[..., 0]), rtol=1e-5)
    np.testing.assert_allclose(FilterSum()([features, z]), np.einsum("bhwc,bc->bhw", features, z)[..., None], rtol=1e-5, atol=1e-6)
    # Caffe semantics on NCHW blobs, as written in linear_sum_layer.cpp / filter_sum_layer.cpp.
    nchw = features.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(LinearSum()([features, alpha]), (nchw * alpha.transpose(0, 3, 1, 2)).sum((2, 3)), rtol=1e-5)
    with pytest.raises(ValueError, match="4-D"):
        LinearSum()([features[0], alpha[0]])


def test_relu_with_mask_and_crop():
    y, mask = ReLUWithMask()(np.array([[-1.0, 0.0, 3.0]], "float32"))
    np.testing.assert_array_equal(y, [[0, 0, 3]])
    np.testing.assert_array_equal(mask, [[0, 0, 1]])
    x = np.arange(2 * 10 * 12 * 3, dtype="float32").reshape(2, 10, 12, 3)
    cropped = CropToReference(offset=(2, 3))([x, np.zeros((2, 4, 5, 7), "float32")])
    np.testing.assert_array_equal(cropped, x[:, 2:6, 3:8, :])
    with pytest.raises(ValueError, match="cannot crop"):
        CropToReference(offset=9)([x, np.zeros((2, 4, 5, 7), "float32")])


def test_bilinear_initializer_upsamples_constants_to_constants():
    layer = keras.layers.Conv2DTranspose(2, 16, strides=8, use_bias=False, kernel_initializer=BilinearUpsamplingInitializer())
    y = np.asarray(layer(np.ones((1, 6, 6, 2), "float32")))
    # Away from the borders every output pixel is a convex combination: exactly 1.
    np.testing.assert_allclose(y[0, 16:-16, 16:-16], 1.0, rtol=1e-6)


def test_transposable_conv_transpose_is_the_input_gradient():
    layer = TransposableConv2D(6, 3, padding="valid")
    x = tf.constant(np.random.default_rng(2).standard_normal((2, 7, 8, 4)).astype("float32"))
    g = tf.constant(np.random.default_rng(3).standard_normal((2, 5, 6, 6)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        objective = tf.reduce_sum(layer(x) * g)
    np.testing.assert_allclose(layer(g, transpose=True), tape.gradient(objective, x), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------- small networks
@pytest.mark.parametrize("name", sorted(SMALL_CONFIGS))
@pytest.mark.parametrize("size", [(64, 64), (50, 70)])
def test_small_forward_pass_keeps_the_input_size(name, size):
    height, width = size
    model = _build_small(name, height, width)
    outputs = model(SMALL_CONFIGS[name][2](2, height, width))
    seg = outputs["seg-score"] if isinstance(outputs, dict) else outputs
    channels = {"DeconvNet": 3, "FCN8s": 3}.get(name, 2)
    assert tuple(seg.shape) == (2, height, width, channels)
    assert all(np.isfinite(t).all() for t in _flat(outputs))
    if name in ("DeconvNet", "FCN8s"):  # dynamic input size: one model, many sizes
        assert tuple(model(_images(1, 33, 47)).shape) == (1, 33, 47, channels)


@pytest.mark.parametrize("name", sorted(SMALL_CONFIGS))
def test_save_and_load_round_trip(name, tmp_path):
    model = _build_small(name, bridging="gradient") if name == "DecoupledNet" else _build_small(name)
    inputs = SMALL_CONFIGS[name][2](2, 64, 64)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]
    for got, want in zip(_flat(restored(inputs)), _flat(model(inputs))):
        np.testing.assert_array_equal(got, want)


def test_uint8_and_float_inputs_agree_and_mixed_precision_runs():
    model = _build_small("DeconvNet")
    x = _images(1, 64, 64)
    np.testing.assert_array_equal(model(x), model(x.astype("float32")))
    keras.config.set_dtype_policy("mixed_float16")
    try:
        half = _build_small("DeconvNet")
        half.set_weights(model.get_weights())
        y = half(x)
    finally:
        keras.config.set_dtype_policy("float32")
    assert y.dtype == tf.float16 and np.isfinite(np.asarray(y)).all()


def test_trainable_batch_norm_adds_moving_statistics_to_the_count():
    folded = _build_small("DeconvNet")
    trainable = _build_small("DeconvNet", batch_norm="trainable")
    bn_channels = sum(layer.weights[0].shape[0] for layer in folded.layers if isinstance(layer, ChannelAffine))
    assert trainable.count_params() == folded.count_params() + 2 * bn_channels
    assert isinstance(trainable.get_layer("debn1_2"), keras.layers.BatchNormalization)


def test_layer_names_follow_caffe():
    deconvnet = _build_small("DeconvNet")
    names = {layer.name for layer in deconvnet.layers}
    assert {"conv1_1", "bn1_1", "relu1_1", "pool5", "fc6", "bnfc6", "fc6-deconv", "fc6-deconv-bn", "unpool5", "deconv5_1", "debn5_1", "derelu5_1", "seg-score-voc"} <= names
    decoupled = _build_small("DecoupledNet")
    assert {"cls-score-voc-bp", "fc7-bp", "fc6-bp", "relu7-mask", "relu6-mask", "avg-unpool", "pool5-bn", "pool5-bp-bn", "pool5-concat"} <= {layer.name for layer in decoupled.layers}
    assert list(decoupled.output) == ["cls-score-avg-sigmoid", "cls-score-sigmoid", "seg-score"]
    assert [t.name for t in decoupled.inputs] == ["data", "cls-score-masked"]


# ----------------------------------------------------------------- DecoupledNet bridging
def _bridging_tensors(model):
    pool5 = model.get_layer("pool5").output[0]
    pool5_bp = model.get_layer("pool5-bp-bn").input
    return keras.Model(model.inputs, [pool5, pool5_bp])


def _class_score_gradient(model, pool5, query):
    """tf.GradientTape: d sum_j query_j * cls-score_j(argmax_j) / d pool5."""
    pool5 = tf.convert_to_tensor(pool5)
    with tf.GradientTape() as tape:
        tape.watch(pool5)
        x = model.get_layer("relu6")(model.get_layer("fc6")(pool5))[0]
        x = model.get_layer("relu7")(model.get_layer("fc7")(x))[0]
        scores = model.get_layer("cls-score-voc")(x)
        batch, height, width, classes = scores.shape
        flat = tf.reshape(scores, (batch, height * width, classes))
        first_max = tf.argmax(flat, axis=1)  # ties: first in raster order, like the switches
        picked = tf.gather(flat, first_max, axis=1, batch_dims=1)
        picked = tf.linalg.diag_part(tf.transpose(picked, (0, 2, 1)))
        objective = tf.reduce_sum(picked * query)
    return tape.gradient(objective, pool5)


@pytest.mark.parametrize("bridging", ["copy", "gradient"])
def test_decouplednet_bridging_equals_the_gradient_tape_gradient(bridging):
    # 128x96 input, fc6 2x2: pool5 4x3, a 3x2 class-score map (6 argmax positions).
    model = DecoupledNet(num_classes=4, input_shape=(128, 96, 3), width=SMALL, fc_kernel_size=2, bridging=bridging)
    images = _images(2, 128, 96, seed=5)
    query = np.array([[0.9, 0.0, 0.3, 0.0], [0.0, 0.7, 0.0, 1.0]], "float32")
    pool5, pool5_bp = _bridging_tensors(model)([images, query])
    expected = _class_score_gradient(model, pool5, query)
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(pool5_bp, expected, rtol=1e-4, atol=1e-5 * scale)


def test_decouplednet_copy_and_gradient_bridging_agree_with_shared_weights():
    copy = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1)
    grad = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1, bridging="gradient")
    for layer in grad.layers:
        if layer.weights:
            layer.set_weights(copy.get_layer(layer.name).get_weights())
    assert copy.count_params() - grad.count_params() == sum(
        copy.get_layer(n).count_params() for n in ("cls-score-voc-bp", "fc7-bp", "fc6-bp")
    )
    inputs = SMALL_CONFIGS["DecoupledNet"][2](2, 64, 64)
    for got, want in zip(_flat(grad(inputs)), _flat(copy(inputs))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * (np.abs(want).max() + 1e-6))
    # After changing the classifier, sync_bridging_weights re-copies it.
    fc7 = copy.get_layer("fc7")
    fc7.set_weights([w * 2 for w in fc7.get_weights()])
    sync_bridging_weights(copy)
    np.testing.assert_array_equal(copy.get_layer("fc7-bp").get_weights()[0], fc7.get_weights()[0])


def test_decouplednet_training_net_makes_the_deploy_query_from_the_label():
    # query_input="cls-label" (Caffe's training nets: cls-score-mask = cls-score-sigmoid * label) must equal
    # the deploy net fed that query by hand, with the same weights, and add no weight.
    deploy = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1)
    training = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1,
                            query_input="cls-label")
    assert [w.shape for w in training.weights] == [w.shape for w in deploy.weights]
    for layer in training.layers:
        if layer.weights:
            layer.set_weights(deploy.get_layer(layer.name).get_weights())
    images, labels = _images(2, 64, 64, seed=3), np.array([[0, 1, 0, 0], [1, 0, 0, 1]], "float32")
    query = np.asarray(deploy([images, np.zeros((2, 4), "float32")])["cls-score-sigmoid"]) * labels
    want, got = deploy([images, query]), training([images, labels])
    assert [t.name for t in training.inputs] == ["data", "cls-label"]
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5 * (np.abs(want[key]).max() + 1e-6))
    with pytest.raises(ValueError, match="query_input"):
        DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1, query_input="label")


def test_decouplednet_zero_query_gives_zero_bridge():
    model = _build_small("DecoupledNet")
    _, pool5_bp = _bridging_tensors(model)([_images(1, 64, 64), np.zeros((1, 4), "float32")])
    assert not np.any(np.asarray(pool5_bp))


# ----------------------------------------------------------------- TransferNet attention
def test_transfernet_attention_sums_to_one_and_feat_embed_uses_caffe_order():
    model = _build_small("TransferNet")
    inputs = SMALL_CONFIGS["TransferNet"][2](3, 64, 64)
    outputs = model(inputs)
    np.testing.assert_allclose(np.asarray(outputs["att"]).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    assert tuple(outputs["cls-score-voc-att"].shape) == (3, 5)
    probe = keras.Model(model.inputs, [model.get_layer("conv5_3_scaled").output, model.get_layer("feat_embed").output])
    features, embedded = (np.asarray(t) for t in probe(inputs))
    kernel, bias = model.get_layer("feat_embed").get_weights()
    caffe_flat = features.transpose(0, 3, 1, 2).reshape(3, -1)  # Caffe's C,H,W flatten
    np.testing.assert_allclose(embedded, caffe_flat @ kernel + bias, rtol=1e-4, atol=1e-5)


def test_transfernet_deploy_outputs_only_the_segmentation():
    model = TransferNet(num_classes=5, input_shape=(64, 64, 3), width=SMALL)
    assert tuple(model.output.shape) == (None, 64, 64, 2)
    with_head = _build_small("TransferNet")
    head = with_head.get_layer("ip1").count_params() + with_head.get_layer("cls-score-voc-att").count_params()
    assert with_head.count_params() == model.count_params() + head


# ----------------------------------------------------------------- Caffe layout and oracle
def test_caffe_layout_round_trips_every_spec_layer():
    for name in ("DeconvNet_inference_deploy", "DecoupledNet_Full_anno_inference_deploy", "TransferNet_deploy", "fcn-8s-pascal-deploy"):
        for layer in ref.shrink_spec(_spec(name), factor=64)["layers"]:
            if not layer["blobs"]:
                continue
            blobs = [np.random.default_rng(0).standard_normal(shape).astype("float32") for shape in layer["blobs"]]
            keras_arrays = caffe_to_keras_weights(layer["type"], blobs)
            assert [a.shape for a in keras_arrays] == caffe_to_keras_shapes(layer), layer["name"]
            for back, blob in zip(keras_to_caffe_weights(layer["type"], keras_arrays), blobs):
                np.testing.assert_array_equal(back.reshape(blob.shape), blob)
    v1 = {"type": "INNER_PRODUCT", "blobs": [[1, 1, 10, 20], [1, 1, 1, 10]]}
    assert caffe_to_keras_shapes(v1) == [(20, 10), (10,)]


def _randomize_affine_layers(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, ChannelAffine):
            channels = layer.weights[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.1, channels)])


def _randomize_kernels(model, seed=1):
    """He-scaled random kernels: activations stay O(1) through the deep stacks,
    so the comparison measures the networks, not float noise around zero."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.trainable_weights or isinstance(layer, ChannelAffine):
            continue
        values = []
        for weight in layer.get_weights():
            if weight.ndim >= 2:
                fan_in = int(np.prod(weight.shape[:-1])) if weight.ndim == 2 else int(np.prod(weight.shape[:2])) * min(weight.shape[2:])
                values.append(rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), weight.shape).astype("float32"))
            else:
                values.append(rng.normal(0, 0.01, weight.shape).astype("float32"))
        layer.set_weights(values)


def _caffe_weights(model, spec):
    weights = {}
    for layer in spec["layers"]:
        if layer["blobs"]:
            weights[layer["name"]] = keras_to_caffe_weights(layer["type"], model.get_layer(layer["name"]).get_weights())
    return weights


def _nchw(x):
    return x.transpose(0, 3, 1, 2)


# Official input sizes with width 1/16 (= shrink_spec(factor=16)); FCN-8s runs on 64x64.
ORACLE_CASES = {
    "DeconvNet": ("DeconvNet_inference_deploy", lambda: DeconvNet(width=SMALL, include_preprocessing=False), (224, 224)),
    "FCN8s": ("fcn-8s-pascal-deploy", lambda: FCN8s(width=SMALL, include_preprocessing=False), (64, 64)),
    "DecoupledNet": (
        "DecoupledNet_Full_anno_inference_deploy",
        lambda: DecoupledNet(width=SMALL, include_preprocessing=False),
        (320, 320),
    ),
    "TransferNet": ("TransferNet_deploy", lambda: TransferNet(width=SMALL, include_preprocessing=False), (320, 320)),
}


@pytest.mark.parametrize("name", sorted(ORACLE_CASES))
def test_small_network_matches_the_numpy_caffe_oracle(name):
    spec_name, build, (height, width) = ORACLE_CASES[name]
    spec = ref.shrink_spec(_spec(spec_name), factor=16)
    model = build()
    _randomize_kernels(model)
    _randomize_affine_layers(model)
    if name == "DecoupledNet":
        sync_bridging_weights(model)  # the copies must equal the randomised forward weights
    rng = np.random.default_rng(7)
    data = rng.normal(0, 60, (1, height, width, 3)).astype("float32")
    caffe_inputs = {"data": _nchw(data)}
    keras_inputs = data
    if name == "DecoupledNet":
        query = np.zeros((1, 20), "float32")
        query[0, [3, 11]] = [0.8, 0.4]
        caffe_inputs["cls-score-masked"] = query.reshape(1, 20, 1, 1)
        keras_inputs = [data, query]
    elif name == "TransferNet":
        label = np.eye(80, dtype="float32")[[6]]
        caffe_inputs["cls-label"] = label.reshape(1, 80, 1, 1)
        keras_inputs = [data, label]
    blobs = ref.run_net(spec["layers"], _caffe_weights(model, spec), caffe_inputs)
    outputs = model(keras_inputs)
    if not isinstance(outputs, dict):
        outputs = {"upscore" if name == "FCN8s" else "seg-score": outputs}
    for key, value in outputs.items():
        got = np.asarray(value)
        want = blobs[key]
        want = _nchw_to_keras(want, got.shape)
        scale = float(np.abs(want).max()) + 1e-12
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=2e-4 * scale, err_msg=f"{name}: {key}")


def _nchw_to_keras(blob, keras_shape):
    if blob.ndim == 4 and len(keras_shape) == 4:
        return blob.transpose(0, 2, 3, 1)
    return blob.reshape(keras_shape)


# ----------------------------------------------------------------- layer shapes vs the spec
def _keras_layer_names(spec_layers):
    """Caffe layer -> Keras layer name: the Caffe name, or the top blob for duplicated names."""
    counts = {}
    for layer in spec_layers:
        counts[layer["name"]] = counts.get(layer["name"], 0) + 1
    return [layer["top"][0] if counts[layer["name"]] > 1 else layer["name"] for layer in spec_layers]


@pytest.mark.parametrize("name", ["DeconvNet", "DecoupledNet", "TransferNet", "FCN8s"])
def test_layer_output_sizes_match_the_spec_at_the_official_input_size(name):
    spec_name = ORACLE_CASES[name][0]
    spec = _spec(spec_name)
    height, width = spec["inputs"]["data"][2:]
    builder = {"DeconvNet": DeconvNet, "DecoupledNet": DecoupledNet, "TransferNet": TransferNet, "FCN8s": FCN8s}[name]
    model = builder(width=SMALL, input_shape=(height, width, 3))
    checked = 0
    for layer, keras_name in zip(spec["layers"], _keras_layer_names(spec["layers"])):
        if layer["type"] in ("Crop",):  # the spec's Crop shapes are not computed
            continue
        try:
            keras_layer = model.get_layer(keras_name)
        except ValueError:
            continue
        output = keras_layer.output
        output = output[0] if isinstance(output, (list, tuple)) else output
        caffe = layer["output_shapes"][0]
        expected_spatial = tuple(caffe[2:]) if len(caffe) == 4 else ()
        got_spatial = tuple(output.shape[1:3]) if len(output.shape) == 4 else ()
        if expected_spatial and got_spatial:
            assert got_spatial == expected_spatial, keras_name
            checked += 1
    assert checked > 30


# ----------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_value_errors():
    model = _build_small("DeconvNet")
    with pytest.raises(ValueError, match="incompatible|Invalid input shape"):
        model(np.zeros((64, 64, 3), "float32"))  # missing batch axis
    with pytest.raises(ValueError, match="incompatible"):
        model(np.zeros((1, 64, 64, 4), "float32"))  # RGBA
    with pytest.raises(ValueError, match="empty batch"):
        model(np.zeros((0, 64, 64, 3), "float32"))
    transfer = TransferNet(num_classes=5, input_shape=(64, 64, 3), width=SMALL)
    with pytest.raises(ValueError):
        transfer([np.zeros((1, 32, 32, 3)), np.eye(5)[:1]])  # TransferNet needs its built size


@pytest.mark.parametrize(
    "builder, kwargs, match",
    [
        (DeconvNet, dict(batch_norm="frozen"), "batch_norm"),
        (DeconvNet, dict(width=0), "width"),
        (DeconvNet, dict(input_shape=(64, 64, 1)), "input_shape"),
        (FCN8s, dict(fc_units=0), "fc_units"),
        (DecoupledNet, dict(bridging="tape"), "bridging"),
        (DecoupledNet, dict(input_shape=(None, None, 3)), "known height"),
        (DecoupledNet, dict(input_shape=(64, 64, 3)), "too small"),
        (TransferNet, dict(input_shape=(None, 320, 3)), "known height"),
        (TransferNet, dict(num_classes=0), "num_classes"),
    ],
)
def test_bad_builder_arguments(builder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        builder(**kwargs)
