"""MaxPoolingWithArgmax2D / MaxUnpooling2D against independent references.

References: TensorFlow's own ``tf.nn.max_pool_with_argmax`` + ``tf.scatter_nd``
(the SegNet-style pair) and ``MaxPoolGradWithArgmax``, and a direct NumPy loop
implementation of Caffe's pooling-with-mask / unpooling (below).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deconv import export
from keras_deconv.layers import formulation
from keras_deconv.layers import (
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    convert_switches,
    flat_to_plane,
    flat_to_window,
    plane_to_flat,
    plane_to_window,
    window_to_flat,
    window_to_plane,
)
from keras_deconv.layers.argmax_pooling import pinned_switches

RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------- references
def caffe_pool_numpy(x, k, s, ceil_mode=True):
    """Caffe's MAX pooling with mask, NHWC, loops: strict '>' from -FLT_MAX."""
    batch, height, width, channels = x.shape
    out_len = lambda n: (-((k - n) // s) + 1) if ceil_mode else ((n - k) // s + 1)  # noqa: E731
    oh, ow = max(out_len(height), 0), max(out_len(width), 0)
    pooled = np.zeros((batch, oh, ow, channels), x.dtype)
    mask = np.zeros((batch, oh, ow, channels), np.int64)  # per-plane y*W+x
    for b in range(batch):
        for c in range(channels):
            for i in range(oh):
                for j in range(ow):
                    best, where = -np.finfo(np.float32).max, -1
                    for y in range(i * s, min(i * s + k, height)):
                        for xx in range(j * s, min(j * s + k, width)):
                            if x[b, y, xx, c] > best or where < 0 and x[b, y, xx, c] >= best:
                                best, where = x[b, y, xx, c], y * width + xx
                    pooled[b, i, j, c], mask[b, i, j, c] = best, where
    return pooled, mask


def caffe_unpool_numpy(values, mask, height, width):
    """Caffe's unpooling forward on CPU: zero-fill, then assign in order."""
    batch, _, _, channels = values.shape
    out = np.zeros((batch, height * width, channels), values.dtype)
    for b in range(batch):
        for c in range(channels):
            for index, value in zip(mask[b, ..., c].ravel(), values[b, ..., c].ravel()):
                out[b, index, c] = value
    return out.reshape(batch, height, width, channels)


def segnet_pair(x, padding="SAME"):
    """The usual Keras SegNet port: max_pool_with_argmax + scatter_nd."""
    pooled, index = tf.nn.max_pool_with_argmax(x, 2, 2, padding, include_batch_in_index=True)
    unpooled = tf.scatter_nd(tf.reshape(index, [-1, 1]), tf.reshape(pooled, [-1]), [tf.size(x, out_type=tf.int64)])
    return pooled, index, tf.reshape(unpooled, tf.shape(x))


def make_data(kind, shape, dtype="float32"):
    if kind == "random":
        data = RNG.standard_normal(shape)
    elif kind == "ties":
        data = RNG.integers(0, 3, shape)
    elif kind == "equal":
        data = np.full(shape, 2.0)
    elif kind == "inf":
        data = RNG.choice([-np.inf, np.inf, -1.0, 0.0, 1.0], size=shape)
    elif kind == "signed_zero":
        data = RNG.choice([-0.0, 0.0], size=shape)
    else:
        raise AssertionError(kind)
    return data.astype(dtype)


SHAPES = [(3, 8, 6, 5), (1, 7, 9, 4), (2, 1, 1, 3), (0, 4, 4, 2), (1, 5, 5, 1)]
KINDS = ["random", "ties", "equal", "inf", "signed_zero"]


# ---------------------------------------------------------------- forward parity
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kind", KINDS)
def test_pool_unpool_equal_tensorflow_reference(shape, kind):
    x = tf.constant(make_data(kind, shape))
    pooled, switches = MaxPoolingWithArgmax2D()(x)
    assert switches.dtype == tf.int8
    if shape[0] == 0:  # tf.nn.max_pool_with_argmax rejects empty tensors; we don't
        assert tuple(pooled.shape) == tuple(switches.shape) == (0, 2, 2, 2)
        assert tuple(MaxUnpooling2D()([pooled, switches, x]).shape) == shape
        return
    ref_pooled, ref_index, ref_unpooled = segnet_pair(x)
    np.testing.assert_array_equal(pooled, ref_pooled)
    np.testing.assert_array_equal(window_to_flat(switches, x.shape, include_batch_in_index=True), ref_index)
    unpooled = MaxUnpooling2D()([pooled, switches, x])
    assert unpooled.shape == x.shape
    # == (not bitwise): scatter_nd turns a selected -0.0 into +0.0, selects keep it.
    np.testing.assert_array_equal(unpooled, ref_unpooled)


@pytest.mark.parametrize("kind", ["random", "ties"])
def test_valid_padding_equals_tensorflow(kind):
    x = tf.constant(make_data(kind, (2, 7, 9, 3)))
    pooled, switches = MaxPoolingWithArgmax2D(padding="valid")(x)
    ref_pooled, ref_index, ref_unpooled = segnet_pair(x, "VALID")
    np.testing.assert_array_equal(pooled, ref_pooled)
    np.testing.assert_array_equal(window_to_flat(switches, x.shape, include_batch_in_index=True), ref_index)
    np.testing.assert_array_equal(MaxUnpooling2D()([pooled, switches, x]), ref_unpooled)


@pytest.mark.parametrize(
    "pool, stride, ceil_mode, shape",
    [(3, 2, True, (2, 7, 8, 3)), (3, 2, False, (1, 9, 9, 2)), (3, 1, True, (1, 6, 5, 2)), (2, 1, False, (2, 5, 6, 2)), (4, 1, False, (2, 4, 4, 5))],
)
@pytest.mark.parametrize("kind", ["random", "ties"])
def test_general_path_equals_caffe_numpy(pool, stride, ceil_mode, shape, kind):
    data = make_data(kind, shape)
    padding = "same" if ceil_mode else "valid"
    pooled, switches = MaxPoolingWithArgmax2D(pool, stride, padding=padding)(data)
    ref_pooled, ref_mask = caffe_pool_numpy(data, pool, stride, ceil_mode)
    np.testing.assert_array_equal(pooled, ref_pooled)
    np.testing.assert_array_equal(window_to_plane(switches, data.shape, pool, stride), ref_mask)
    # The layer can emit Caffe's format directly.
    _, plane = MaxPoolingWithArgmax2D(pool, stride, padding=padding, index_format="plane")(data)
    np.testing.assert_array_equal(plane, ref_mask)
    unpooled = MaxUnpooling2D(pool, stride)([pooled, switches, data])
    # Unpooling the pooled values: collisions carry equal values, so Caffe's
    # assignment and our documented sum differ only by the multiplicity.
    ref = caffe_unpool_numpy(np.asarray(pooled), ref_mask, shape[1], shape[2])
    counts = np.zeros_like(ref)
    for b in range(shape[0]):
        for c in range(shape[3]):
            np.add.at(counts[b, ..., c].reshape(-1), ref_mask[b, ..., c].ravel(), 1)
    np.testing.assert_array_equal(unpooled, ref * np.maximum(counts, 1))


def test_overlapping_unpool_sums_collisions_like_max_pool_grad():
    x = tf.constant(make_data("ties", (2, 9, 9, 3)))
    pooled, switches = MaxPoolingWithArgmax2D(3, 2, padding="valid")(x)
    values = tf.constant(RNG.standard_normal(pooled.shape).astype("float32"))
    _, ref_index = tf.nn.max_pool_with_argmax(x, 3, 2, "VALID")
    ref = tf.raw_ops.MaxPoolGradWithArgmax(input=x, grad=values, argmax=ref_index, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="VALID")
    np.testing.assert_allclose(MaxUnpooling2D(3, 2)([values, switches, x]), ref, rtol=1e-6)


def test_decouplednet_global_4x4_pool_switches_are_caffe_mask():
    scores = make_data("ties", (3, 4, 4, 20))
    pooled, switches = MaxPoolingWithArgmax2D(4, 1, padding="valid")(scores)
    assert switches.dtype == tf.int8 and tuple(switches.shape) == (3, 1, 1, 20)
    ref_pooled, ref_mask = caffe_pool_numpy(scores, 4, 1, ceil_mode=True)
    np.testing.assert_array_equal(pooled, ref_pooled)
    np.testing.assert_array_equal(switches, ref_mask)  # h*4+w == window position here
    query = RNG.standard_normal((3, 1, 1, 20)).astype("float32")
    np.testing.assert_array_equal(MaxUnpooling2D(4, 1)([query, switches, scores]), caffe_unpool_numpy(query, ref_mask, 4, 4))


# ---------------------------------------------------------------- index interop
def test_index_conversions_round_trip_and_match_tensorflow():
    x = tf.constant(make_data("ties", (2, 6, 10, 3)))
    pooled, switches = MaxPoolingWithArgmax2D()(x)
    _, flat = tf.nn.max_pool_with_argmax(x, 2, 2, "SAME")
    _, flat_batch = tf.nn.max_pool_with_argmax(x, 2, 2, "SAME", include_batch_in_index=True)
    np.testing.assert_array_equal(window_to_flat(switches, x.shape), flat)
    np.testing.assert_array_equal(flat_to_window(flat, x.shape), switches)
    np.testing.assert_array_equal(flat_to_window(flat_batch, x.shape, include_batch_in_index=True), switches)
    plane = window_to_plane(switches, x.shape)
    np.testing.assert_array_equal(plane, np.asarray(flat) // 3)  # TF flat = plane*C + c
    np.testing.assert_array_equal(plane_to_window(plane, x.shape), switches)
    np.testing.assert_array_equal(plane_to_flat(plane, x.shape), flat)
    np.testing.assert_array_equal(flat_to_plane(flat, x.shape), plane)
    np.testing.assert_array_equal(convert_switches(flat_batch, "flat_batch", "flat", tf.shape(x)), flat)


@pytest.mark.parametrize("index_format", ["flat", "flat_batch", "plane"])
def test_unpool_accepts_foreign_indices(index_format):
    x = tf.constant(make_data("random", (2, 6, 8, 4)))
    pooled, flat_batch, expected = segnet_pair(x)
    index = convert_switches(flat_batch, "flat_batch", index_format, x.shape)
    np.testing.assert_array_equal(MaxUnpooling2D(index_format=index_format)([pooled, index, x]), expected)
    # The pooling layer emits every format too.
    _, own = MaxPoolingWithArgmax2D(index_format=index_format)(x)
    np.testing.assert_array_equal(own, index)


def test_caffe_float_nchw_mask_migrates():
    x = make_data("ties", (1, 6, 6, 3))
    _, mask = caffe_pool_numpy(x, 2, 2)
    caffe_blob = mask.transpose(0, 3, 1, 2).astype("float32")  # how Caffe stores it
    window = plane_to_window(tf.cast(tf.transpose(caffe_blob, (0, 2, 3, 1)), tf.int32), x.shape)
    _, switches = MaxPoolingWithArgmax2D()(x)
    np.testing.assert_array_equal(window, switches)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("kind", ["random", "ties", "equal"])
def test_gradients_equal_max_pool_grad_with_argmax(kind):
    x = tf.constant(make_data(kind, (2, 6, 7, 3)))
    weights = tf.constant(RNG.standard_normal(x.shape).astype("float32"))
    pooled_weights = tf.constant(RNG.standard_normal((2, 3, 4, 3)).astype("float32"))
    pool, unpool = MaxPoolingWithArgmax2D(), MaxUnpooling2D()

    def ours(t):
        pooled, switches = pool(t)
        return tf.reduce_sum(unpool([pooled, switches, t]) * weights) + tf.reduce_sum(pooled * pooled_weights)

    def reference(t):
        pooled, _, unpooled = segnet_pair(t)
        return tf.reduce_sum(unpooled * weights) + tf.reduce_sum(pooled * pooled_weights)

    for function in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = function(x)
        if function is ours:
            ours_grad = tape.gradient(loss, x)
        else:
            ref_grad = tape.gradient(loss, x)
    np.testing.assert_array_equal(ours_grad, ref_grad)


def test_unpool_gradient_wrt_values_is_gather():
    x = tf.constant(make_data("ties", (1, 4, 6, 2)))
    pooled, switches = MaxPoolingWithArgmax2D()(x)
    weights = tf.constant(RNG.standard_normal(x.shape).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(pooled)
        loss = tf.reduce_sum(MaxUnpooling2D()([pooled, switches, x]) * weights)
    grad = tape.gradient(loss, pooled)
    flat = window_to_flat(switches, x.shape, include_batch_in_index=True)
    np.testing.assert_array_equal(grad, tf.gather(tf.reshape(weights, [-1]), flat))


# ---------------------------------------------------------------- Keras behaviour
def pool_unpool_model(channels=4, dtype_policy=None):
    inputs = keras.Input((None, None, channels))
    pooled, switches = MaxPoolingWithArgmax2D(name="pool", dtype=dtype_policy)(inputs)
    restored = MaxUnpooling2D(name="unpool", dtype=dtype_policy)([pooled, switches, inputs])
    return keras.Model(inputs, {"restored": restored, "pooled": pooled, "switches": switches})


def test_symbolic_shapes_and_dtypes():
    model = pool_unpool_model()
    assert model.output["switches"].dtype == "int8"
    assert tuple(model.output["pooled"].shape) == (None, None, None, 4)
    static = MaxPoolingWithArgmax2D()(keras.Input((7, 10, 3), batch_size=2))
    assert tuple(static[0].shape) == (2, 4, 5, 3)
    assert tuple(MaxPoolingWithArgmax2D(3, 2, padding="valid")(keras.Input((9, 9, 3)))[0].shape) == (None, 4, 4, 3)
    assert tuple(MaxPoolingWithArgmax2D(3, 2, index_format="flat")(keras.Input((9, 9, 3)))[1].shape) == (None, 4, 4, 3)
    values, switches = keras.Input((4, 5, 3)), keras.Input((4, 5, 3), dtype="int8")
    assert tuple(MaxUnpooling2D()([values, switches]).shape) == (None, 8, 10, 3)
    assert tuple(MaxUnpooling2D()([values, switches, keras.Input((7, 9, 3))]).shape) == (None, 7, 9, 3)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float16", "bfloat16"])
def test_mixed_precision(policy):
    model = pool_unpool_model(dtype_policy=policy)
    x = make_data("random", (2, 6, 6, 4))
    out = model(x)
    compute = keras.dtype_policies.get(policy).compute_dtype
    assert out["pooled"].dtype == compute and out["restored"].dtype == compute
    assert out["switches"].dtype == tf.int8
    low = tf.cast(x, compute)
    ref_pooled, _, ref_unpooled = segnet_pair(tf.cast(low, "float32"))
    np.testing.assert_array_equal(tf.cast(out["pooled"], "float32"), ref_pooled)
    np.testing.assert_array_equal(tf.cast(out["restored"], "float32"), ref_unpooled)


def test_xla_forward_and_gradient_match_graph():
    model = pool_unpool_model()
    x = tf.constant(make_data("ties", (2, 10, 6, 4)))

    def step(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = model(t)
            loss = tf.reduce_sum(out["restored"] * t)
        return out["restored"], tape.gradient(loss, t)

    graph = tf.function(step)(x)
    xla = tf.function(step, jit_compile=True)(x)
    for a, b in zip(graph, xla):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(graph[0], segnet_pair(x)[2])


def test_trains_with_fit_under_xla():
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    pooled, switches = MaxPoolingWithArgmax2D()(features)
    outputs = keras.layers.Conv2D(2, 1)(MaxUnpooling2D()([pooled, switches, features]))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse", jit_compile=True)
    x, y = make_data("random", (4, 8, 8, 3)), make_data("random", (4, 8, 8, 2))
    history = model.fit(x, y, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_get_config_round_trip():
    for layer in (
        MaxPoolingWithArgmax2D(3, (2, 1), padding="valid", index_format="plane", name="p"),
        MaxUnpooling2D(3, (2, 1), index_format="flat_batch", name="u"),
    ):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        serialized = keras.saving.serialize_keras_object(layer)
        assert serialized["registered_name"].startswith("keras_deconv>")


def test_keras_file_round_trip(tmp_path):
    model = pool_unpool_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True: no lambdas, no pickle
    x = make_data("ties", (2, 5, 7, 4))
    for key in ("restored", "pooled", "switches"):
        np.testing.assert_array_equal(model(x)[key], loaded(x)[key])


def test_saved_model_export_with_dynamic_shapes(tmp_path):
    model = pool_unpool_model()
    path = str(tmp_path / "saved")
    model.export(path, format="tf_saved_model", verbose=False)
    serving = tf.saved_model.load(path).signatures["serving_default"]
    for shape in ((1, 6, 6, 4), (3, 9, 5, 4)):
        x = make_data("ties", shape)
        outputs = serving(tf.constant(x))
        np.testing.assert_array_equal(outputs["restored"], model(x)["restored"])


# ---------------------------------------------------------------- TFLite
@pytest.fixture(scope="module")
def tflite_models():
    model = pool_unpool_model()
    calibration = [[make_data("random", (1, 8, 8, 4)) * 10] for _ in range(16)]
    return model, {
        "none": export.to_tflite(model),
        "none-default-pooling": export.to_tflite(model, pooling="default"),
        "float16": export.to_tflite(model, quantize="float16"),
        "int8": export.to_tflite(model, quantize="int8", representative_data=calibration),
    }


def _by_shape(outputs, reference):
    matches = [o for o in outputs if o.shape == reference.shape and o.dtype == reference.dtype]
    assert matches, "output missing"
    return matches


def _ops_are_builtin(flatbuffer):
    ops = export.tflite_ops(flatbuffer)
    assert not [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")], ops
    return ops


@pytest.mark.parametrize("quantize", ["none", "float16", "none-default-pooling"])
@pytest.mark.parametrize("xnnpack", [True, False])
def test_tflite_float_is_exact(tflite_models, quantize, xnnpack):
    model, flatbuffers = tflite_models
    _ops_are_builtin(flatbuffers[quantize])
    cases = [((2, 6, 10, 4), "random"), ((1, 7, 5, 4), "ties"), ((1, 6, 6, 4), "equal"), ((2, 5, 4, 4), "signed_zero")]
    if quantize == "none-default-pooling":  # the LiteRT formulation is exact for finite inputs only
        cases.append(((1, 4, 4, 4), "inf"))
    for shape, kind in cases:
        x = make_data(kind, shape)
        outputs = export.run_tflite(flatbuffers[quantize], [x], xnnpack=xnnpack)
        expected = {k: np.asarray(v) for k, v in model(x).items()}
        for key in ("restored", "pooled"):
            assert any(np.array_equal(o, expected[key]) for o in _by_shape(outputs, expected[key])), key
        switch_outputs = [o for o in outputs if o.dtype == np.int8]
        assert any(np.array_equal(o, expected["switches"]) for o in switch_outputs)


# Ops XNNPACK delegates (as used here); EQUAL, SELECT_V2 and CAST are not among them.
XNNPACK_OPS = {"MAX_POOL_2D", "SUB", "CEIL", "MINIMUM", "MUL", "ADD", "SQUARED_DIFFERENCE", "STRIDED_SLICE",
               "SLICE", "CONCATENATION", "RESHAPE", "PADV2", "PAD", "MAXIMUM"}


@pytest.mark.parametrize("pool_size, strides, padding, shape", [
    (2, None, "same", (2, 7, 9, 5)), (2, None, "valid", (2, 7, 9, 5)), (3, None, "same", (1, 8, 10, 3)),
    ((2, 3), None, "same", (1, 9, 10, 4)), (4, 1, "valid", (2, 4, 4, 6)),  # DecoupledNet's 4x4/1 on 4x4
])
def test_litert_formulation_is_delegated_and_exact(pool_size, strides, padding, shape):
    inputs = keras.Input(shape[1:], batch_size=shape[0])
    pooled, switches = MaxPoolingWithArgmax2D(pool_size, strides, padding)(inputs)
    model = keras.Model(inputs, MaxUnpooling2D(pool_size, strides)([pooled, switches, inputs]))
    flatbuffer = export.to_tflite(model)
    assert set(export.tflite_ops(flatbuffer)) <= XNNPACK_OPS, export.tflite_ops(flatbuffer)
    interpreter = export.litert_interpreter(flatbuffer, xnnpack=True)
    interpreter.allocate_tensors()
    nodes = [detail["op_name"] for detail in interpreter._get_ops_details()]
    assert nodes.count("DELEGATE") == 1  # one XNNPACK partition (the default ops give several)
    for kind in ("random", "ties", "equal", "signed_zero"):
        x = make_data(kind, shape)
        expected = np.asarray(model(x))
        with formulation.litert_formulation():
            pooled_l, switches_l = MaxPoolingWithArgmax2D(pool_size, strides, padding)(x)
            np.testing.assert_array_equal(MaxUnpooling2D(pool_size, strides)([pooled_l, switches_l, x]), expected)
        pooled_d, switches_d = MaxPoolingWithArgmax2D(pool_size, strides, padding)(x)
        np.testing.assert_array_equal(switches_l, switches_d)
        np.testing.assert_array_equal(pooled_l, pooled_d)
        for xnnpack in (True, False):
            np.testing.assert_array_equal(export.run_tflite(flatbuffer, [x], xnnpack=xnnpack)[0], expected)


def test_litert_formulation_is_scoped_and_records_its_use():
    assert not formulation.litert_active()
    with formulation.litert_formulation():
        assert formulation.litert_active()
        with formulation.litert_formulation(False):
            assert not formulation.litert_active()
        assert formulation.litert_active()
    assert not formulation.litert_active()
    x = make_data("random", (1, 4, 4, 2))
    with formulation.litert_formulation() as record:
        assert not record.used
        MaxPoolingWithArgmax2D()(x)
        assert record.used
    with formulation.litert_formulation() as record:
        MaxPoolingWithArgmax2D(3, 2)(x)  # overlapping windows: the default ops
    assert not record.used
    with pytest.raises(ValueError, match="pooling"):
        export.to_tflite(pool_unpool_model(), pooling="fast")


# ---------------------------------------------------------------- kernel formulation (training)
KERNEL_CASES = [  # (pool_size, strides, padding, shape, kernel applies)
    (2, None, "same", (2, 7, 9, 5), True), (2, None, "valid", (2, 7, 9, 5), True), (2, None, "same", (3, 8, 6, 4), True),
    ((1, 2), None, "same", (1, 5, 6, 3), True), (3, None, "valid", (1, 10, 8, 2), True),
    (3, None, "same", (1, 8, 10, 3), False),  # TensorFlow's SAME would pad before the image
    (3, 2, "same", (2, 7, 9, 5), False),  # overlapping windows
]


@pytest.mark.parametrize("pool_size, strides, padding, shape, applies", KERNEL_CASES)
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_kernel_formulation_equals_default_ops_with_gradients(pool_size, strides, padding, shape, applies, graph):
    """TensorFlow's argmax pooling kernels give the default formulation's values, unpooling and gradients bit for bit."""
    def step(x, kernels):
        with formulation.kernel_formulation(kernels) as record:
            pool = MaxPoolingWithArgmax2D(pool_size, strides, padding)
            unpool = MaxUnpooling2D(pool_size, strides)
            with tf.GradientTape() as tape:
                tape.watch(x)
                pooled, switches = pool(x)
                values = pooled * 2.0 + 1.0
                tape.watch(values)
                restored = unpool([values, switches, x])
                loss = tf.reduce_sum(restored * weights) + tf.reduce_sum(pooled * pooled)
            grad_x, grad_values = tape.gradient(loss, [x, values])
        assert record.used == (kernels and applies)
        if kernels and applies:
            assert switches.dtype == tf.int64
            switches = flat_to_window(switches, x.shape, pool_size, strides, include_batch_in_index=True)
        return pooled, tf.cast(switches, tf.int32), restored, grad_x, grad_values

    weights = tf.constant(RNG.standard_normal(shape).astype("float32"))
    run = tf.function(step, reduce_retracing=False) if graph else step
    for kind in ("random", "ties", "equal", "signed_zero", "inf"):
        x = tf.constant(make_data(kind, shape))
        for default, kernel in zip(run(x, False), run(x, True)):
            np.testing.assert_array_equal(kernel, default)  # (a -0.0 / 0.0 tie may pool to either zero)


def test_kernel_formulation_is_scoped_and_yields_to_exports_and_pinned_switches():
    x = make_data("ties", (1, 4, 4, 2))
    assert not formulation.kernel_active()
    with formulation.kernel_formulation():
        assert formulation.kernel_active()
        with formulation.litert_formulation():
            assert not formulation.kernel_active()  # an export inside a training step traces the export ops
            assert MaxPoolingWithArgmax2D()(x)[1].dtype == tf.float32
        with formulation.kernel_formulation(False):
            assert not formulation.kernel_active()
        pinned = np.zeros((1, 2, 2, 2), "int8")
        with pinned_switches({"pinned_pool": pinned}):
            _, switches = MaxPoolingWithArgmax2D(name="pinned_pool")(x)
        assert switches.dtype == tf.int8 and not np.any(switches)  # window positions, as pinned
        _, switches = MaxPoolingWithArgmax2D(index_format="plane")(x)  # asked-for formats are kept
        assert switches.dtype == tf.int32
    assert not formulation.kernel_active()


def test_kernel_formulation_unpools_without_a_reference_and_with_dynamic_sizes():
    x = tf.constant(make_data("random", (2, 6, 8, 3)))
    expected = MaxUnpooling2D()(list(MaxPoolingWithArgmax2D()(x)))
    dynamic = tf.function(lambda t: MaxUnpooling2D()([*MaxPoolingWithArgmax2D()(t), t]),
                          input_signature=[tf.TensorSpec([None, None, None, 3])])
    with formulation.kernel_formulation() as record:
        np.testing.assert_array_equal(MaxUnpooling2D()(list(MaxPoolingWithArgmax2D()(x))), expected)
        np.testing.assert_array_equal(dynamic(x), expected)  # sizes unknown when traced: the index scatter
    assert record.used


def test_deconvnet_training_step_is_the_same_with_the_kernels():
    """One Adam step of a small trainable-BN DeconvNet: the same loss and weights with either formulation."""
    from keras_deconv.models import DeconvNet

    images = make_data("random", (4, 64, 64, 3)) * 60 + 120
    labels = RNG.integers(0, 3, (4, 64, 64)).astype("int32")
    results = []
    for kernels in (False, True):
        keras.utils.set_random_seed(3)
        model = DeconvNet(3, (64, 64, 3), width=1 / 16, fc_units=16, fc_kernel_size=2, batch_norm="trainable")
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        with formulation.kernel_formulation(kernels) as record:
            loss = model.train_on_batch(images, labels)
        assert record.used == kernels
        results.append((loss, [np.asarray(w) for w in model.trainable_weights]))
    assert results[0][0] == results[1][0]
    for default, kernel in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(kernel, default, rtol=1e-6, atol=1e-7)


def conv_pool_unpool_model():
    """A DeconvNet stage: conv, argmax pooling, conv, unpooling, conv (what int8 exports quantize)."""
    inputs = keras.Input((16, 16, 3), batch_size=1)
    features = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    pooled, switches = MaxPoolingWithArgmax2D()(features)
    middle = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(pooled)
    restored = MaxUnpooling2D()([middle, switches, features])
    return keras.Model(inputs, keras.layers.Conv2D(3, 1)(restored))


@pytest.mark.parametrize("pooling", ["auto", "default"])
def test_int8_argmax_pooling_is_one_xnnpack_partition(pooling):
    model = conv_pool_unpool_model()
    calibration = [[RNG.uniform(0, 1, (1, 16, 16, 3)).astype("float32")] for _ in range(8)]
    flatbuffer = export.to_tflite(model, quantize="int8", representative_data=calibration, pooling=pooling)
    ops = set(export.tflite_ops(flatbuffer))
    assert {"CONV_2D", "MAX_POOL_2D" if pooling == "auto" else "MAXIMUM"} <= ops
    interpreter = export.litert_interpreter(flatbuffer, xnnpack=True)
    interpreter.allocate_tensors()
    nodes = [detail["op_name"] for detail in interpreter._get_ops_details()]
    if pooling == "auto":  # the LiteRT formulation: float switch arithmetic, all delegated
        assert ops <= XNNPACK_OPS | {"CONV_2D", "QUANTIZE", "DEQUANTIZE"}, ops
        assert nodes.count("DELEGATE") == 1, nodes  # one XNNPACK partition
    else:  # comparisons and selects: TFLite's own kernels between several partitions
        assert {"EQUAL", "SELECT_V2"} & set(nodes) and nodes.count("DELEGATE") > 1, nodes
    x = RNG.uniform(0, 1, (1, 16, 16, 3)).astype("float32")
    expected = np.asarray(model(x))
    got = export.run_tflite(flatbuffer, [x])[0]
    close = np.abs(got - expected) <= 0.05 * np.abs(expected).max()
    assert close.mean() >= 0.95  # quantization may move a value to a tied neighbour


@pytest.mark.parametrize("xnnpack", [True, False])
def test_int8_switches_are_the_first_maximum_of_the_quantized_values(xnnpack):
    """Ties that quantization creates go to the first position, as Caffe's rule on the int8 values."""
    rng = np.random.default_rng(7)
    model = pool_unpool_model(channels=2)
    calibration = [[rng.uniform(0, 4, (1, 8, 8, 2)).astype("float32")] for _ in range(8)]
    flatbuffer = export.to_tflite(model, quantize="int8", representative_data=calibration)
    interpreter = export.litert_interpreter(flatbuffer, xnnpack=xnnpack)
    interpreter.allocate_tensors()
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    source = interpreter.get_input_details()[0]["index"]
    quantize = next(op for op in interpreter._get_ops_details() if op["op_name"] == "QUANTIZE" and source in op["inputs"])
    scale, zero_point = tensors[quantize["outputs"][0]]["quantization"]
    # Integers plus noise far below one quantization step: many windows tie once quantized.
    x = (rng.integers(0, 3, (2, 8, 8, 2)) + rng.uniform(0, 0.2 * scale, (2, 8, 8, 2))).astype("float32")
    quantized = (np.clip(np.round(x / scale) + zero_point, -128, 127) - zero_point) * scale
    _, plane = caffe_pool_numpy(quantized, 2, 2)
    rows, cols = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    expected = ((plane // 8 - 2 * rows[None, :, :, None]) * 2 + plane % 8 - 2 * cols[None, :, :, None]).astype("int8")
    keras_switches = np.asarray(model(x)["switches"])
    assert (keras_switches != expected).mean() > 0.1  # the noise decides Keras's switches, not the int8 ones
    outputs = export.run_tflite(flatbuffer, [x], xnnpack=xnnpack, interpreter=interpreter)
    np.testing.assert_array_equal(next(o for o in outputs if o.dtype == np.int8), expected)


@pytest.mark.parametrize("xnnpack", [True, False])
def test_tflite_int8_keeps_the_switch_pattern(tflite_models, xnnpack):
    model, flatbuffers = tflite_models
    ops = _ops_are_builtin(flatbuffers["int8"])
    assert "QUANTIZE" in ops  # really quantized
    # Values separated by more than one quantization step: no ties are created.
    x = (RNG.permutation(2 * 8 * 8 * 4).reshape(2, 8, 8, 4) % 40 * 0.5 + 0.5).astype("float32")
    restored = np.asarray(model(x)["restored"])
    outputs = export.run_tflite(flatbuffers["int8"], [x], xnnpack=xnnpack)
    candidates = _by_shape(outputs, restored)
    assert any(np.array_equal(o != 0, restored != 0) for o in candidates)
    assert any(np.abs(o - restored).max() <= 0.25 for o in candidates)


def test_segnet_style_pair_is_refused_with_ops_named():
    inputs = keras.Input((8, 8, 2))

    class SegNetPool(keras.layers.Layer):
        def call(self, x):
            return tf.nn.max_pool_with_argmax(x, 2, 2, "SAME")[0]

    model = keras.Model(inputs, SegNetPool()(inputs))
    with pytest.raises(export.ExportError, match="tf.MaxPoolWithArgmax"):
        export.to_tflite(model)


# ---------------------------------------------------------------- bad input
def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="padding"):
        MaxPoolingWithArgmax2D(padding="full")
    with pytest.raises(ValueError, match="pool_size"):
        MaxPoolingWithArgmax2D(pool_size=0)
    with pytest.raises(ValueError, match="index_format"):
        MaxUnpooling2D(index_format="caffe")
    with pytest.raises(ValueError, match="channels_last"):
        MaxPoolingWithArgmax2D(data_format="channels_first")
    with pytest.raises(ValueError, match="channels_last"):
        MaxUnpooling2D(data_format="channels_first")


def test_bad_inputs_raise_value_errors_naming_shapes():
    with pytest.raises(ValueError, match="ndim=4"):
        MaxPoolingWithArgmax2D()(np.zeros((4, 4, 3), "float32"))
    pooled, switches = MaxPoolingWithArgmax2D()(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(1, 2, 2, 3\).*\(1, 2, 1, 3\)"):
        MaxUnpooling2D()([pooled, switches[:, :, :1]])
    with pytest.raises(ValueError, match="4-D"):
        MaxUnpooling2D()([pooled[0], switches[0]])
    with pytest.raises(ValueError, match="integers"):
        MaxUnpooling2D()([pooled, tf.cast(switches, "float32")])
    with pytest.raises(ValueError, match=r"out of range \(min 9, max 9\)"):
        MaxUnpooling2D()([pooled, tf.fill(tf.shape(switches), tf.constant(9, tf.int8))])
    with pytest.raises(ValueError, match="out of range"):
        MaxUnpooling2D(index_format="flat")([pooled, tf.fill(tf.shape(switches), 4 * 4 * 3)])
    with pytest.raises(ValueError, match="does not pool to"):
        MaxUnpooling2D()([pooled, switches, np.zeros((1, 9, 4, 3), "float32")])
    with pytest.raises(ValueError, match="does not match"):
        MaxUnpooling2D()([keras.Input((2, 2, 3)), keras.Input((2, 3, 3), dtype="int8")])


def test_import_keras_deconv_is_light():
    import subprocess
    import sys

    code = (
        "import sys, keras_deconv; heavy = [m for m in ('tensorflow', 'keras', 'keras_cv', 'tensorflow_datasets', "
        "'ai_edge_litert', 'torch') if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=dict(os.environ))
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("xnnpack", [True, False])
def test_integer_only_int8_has_no_float_tensor_and_first_maximum_switches(xnnpack):
    """uint8 in, int8 out, no float op; switches are Caffe's rule on the quantized values (ties included)."""
    rng = np.random.default_rng(8)
    model = pool_unpool_model(channels=2)
    calibration = [[rng.uniform(0, 4, (1, 8, 8, 2)).astype("float32")] for _ in range(8)]
    flatbuffer = export.to_tflite(model, quantize="int8", representative_data=calibration, integer_only=True)
    assert export.float_ops(flatbuffer) == []
    assert {"EQUAL", "SELECT_V2"} <= set(export.tflite_ops(flatbuffer))
    interpreter = export.litert_interpreter(flatbuffer, xnnpack=xnnpack)
    detail = interpreter.get_input_details()[0]
    assert detail["dtype"] == np.uint8
    scale, zero_point = detail["quantization"]
    x = (rng.integers(0, 3, (2, 8, 8, 2)) + rng.uniform(0, 0.2 * scale, (2, 8, 8, 2))).astype("float32")
    quantized = (np.clip(np.round(x / scale) + zero_point, 0, 255) - zero_point) * scale
    _, plane = caffe_pool_numpy(quantized, 2, 2)
    rows, cols = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    expected = ((plane // 8 - 2 * rows[None, :, :, None]) * 2 + plane % 8 - 2 * cols[None, :, :, None]).astype("int8")
    assert (np.asarray(model(x)["switches"]) != expected).mean() > 0.1  # quantization decides, not the noise
    outputs = export.run_tflite(flatbuffer, [x], xnnpack=xnnpack, interpreter=interpreter)
    np.testing.assert_array_equal(next(o for o in outputs if o.dtype == np.int8), expected)
    position = next(i for i, o in enumerate(outputs) if o.shape == x.shape)
    restored = outputs[position]  # dequantized by run_tflite
    out_scale = interpreter.get_output_details()[position]["quantization"][0]
    first = np.zeros_like(quantized)  # each window's maximum at its first position, zeros elsewhere
    for b, i, j, c in np.ndindex(2, 4, 4, 2):
        k = expected[b, i, j, c]
        first[b, 2 * i + k // 2, 2 * j + k % 2, c] = quantized[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c].max()
    np.testing.assert_allclose(restored, first, atol=0.5 * out_scale + 1e-6)  # one output rounding


# ---------------------------------------------------------------- fused batch normalization
def _bn_pair(momentum=0.9):
    from keras_deconv.layers import FusedBatchNormalization

    fused = FusedBatchNormalization(epsilon=1e-5, momentum=momentum)
    reference = keras.layers.BatchNormalization(epsilon=1e-5, momentum=momentum)
    rng = np.random.default_rng(7)
    for layer in (fused, reference):
        layer.build((None, 5, 6, 3))
    weights = [rng.normal(1, 0.2, 3), rng.normal(0, 0.5, 3), rng.normal(0, 1, 3), rng.uniform(0.5, 2, 3)]
    for layer in (fused, reference):
        layer.set_weights([w.astype("float32") for w in weights])
    return fused, reference


@pytest.mark.parametrize("jit", [False, True])
def test_fused_batch_norm_equals_keras_batch_norm_in_training_and_inference(jit):
    fused, reference = _bn_pair()
    rng = np.random.default_rng(3)

    def step(layer, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, 4.0))
        return (y,) + tuple(tape.gradient(loss, [x, layer.gamma, layer.beta]))

    steps = {layer: tf.function(lambda x, layer=layer: step(layer, x), jit_compile=jit) for layer in (fused, reference)}
    for _ in range(3):
        x = tf.constant(rng.normal(2.0, 3.0, (4, 5, 6, 3)).astype("float32"))
        for got, want in zip(steps[fused](x), steps[reference](x)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for got, want in zip(fused.get_weights(), reference.get_weights()):  # moving mean and variance included
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    x = rng.normal(size=(2, 5, 6, 3)).astype("float32")
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), rtol=1e-5, atol=1e-6)


def test_fused_batch_norm_falls_back_where_the_kernel_does_not_apply_and_serializes():
    from keras_deconv.layers import FusedBatchNormalization

    fused, reference = _bn_pair()
    fused.trainable = reference.trainable = False  # frozen: inference statistics even with training=True
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype("float32")
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), rtol=1e-5, atol=1e-6)
    flat = FusedBatchNormalization(epsilon=1e-5)  # 2-D input: the parent's path
    y = np.asarray(flat(x.reshape(-1, 3), training=True))
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    clone = FusedBatchNormalization.from_config(fused.get_config())
    assert type(clone) is FusedBatchNormalization and clone.epsilon == fused.epsilon
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(fused))
    assert type(restored) is FusedBatchNormalization
