"""MaxUnpooling2D puts every value exactly at its index, as ``tf.scatter_nd`` does.

The reference throughout is ``tf.scatter_nd`` on the flat indices (values
sent to one index add up), checked on indices from ``tf.nn.max_pool_with_argmax``
(any pool size, strides, padding, batch size, with and without the batch in
the index) and on arbitrary random indices, plus the cases of
tensorflow-addons' MaxUnpooling2D test file, re-created below.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D

RNG = np.random.default_rng(2207)


def scatter_reference(values, index, output_shape, index_format):
    """``tf.scatter_nd`` of the values at their indices into a zero ``output_shape`` tensor."""
    batch, height, width, channels = output_shape
    values = tf.reshape(tf.cast(values, tf.float32), [-1])
    index = np.asarray(index).astype(np.int64)
    b = np.broadcast_to(np.arange(index.shape[0]).reshape(-1, 1, 1, 1), index.shape)
    if index_format == "flat_batch":
        out = tf.scatter_nd(index.reshape(-1, 1), values, [batch * height * width * channels])
    elif index_format == "flat":
        out = tf.scatter_nd(np.stack([b.ravel(), index.ravel()], 1), values, [batch, height * width * channels])
    else:  # plane: the element's own image and channel
        c = np.broadcast_to(np.arange(index.shape[3]).reshape(1, 1, 1, -1), index.shape)
        out = tf.scatter_nd(np.stack([b.ravel(), index.ravel(), c.ravel()], 1), values, [batch, height * width, channels])
    return np.reshape(out, output_shape)


def flat_layer(pool, strides, include_batch, **kwargs):
    return MaxUnpooling2D(pool, strides, index_format="flat", include_batch_in_index=include_batch, **kwargs)


# ---------------------------------------------------------------- indices of tf.nn.max_pool_with_argmax
POOLINGS = [(2, 2), (2, 1), (3, 2), (3, 1), (3, (2, 1)), (2, (1, 2)), (3, 3)]


@pytest.mark.parametrize("pool, strides", POOLINGS, ids=str)
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("include_batch", [False, True])
def test_unpooling_of_tensorflow_argmax_equals_scatter_nd(pool, strides, padding, include_batch):
    batch = int(RNG.integers(1, 4))
    shape = (batch, int(RNG.integers(pool, 10)), int(RNG.integers(pool, 10)), int(RNG.integers(1, 4)))
    x = tf.constant(RNG.integers(0, 4, shape).astype("float32"))  # ties: the argmax rule does not matter here
    pooled, index = tf.nn.max_pool_with_argmax(x, pool, strides, padding, include_batch_in_index=include_batch)
    # Unpool other values than the maxima, so that summed collisions show.
    values = tf.constant(RNG.integers(-8, 9, pooled.shape).astype("float32"))
    fmt = "flat_batch" if include_batch else "flat"
    expected = scatter_reference(values, index, shape, fmt)
    got = flat_layer(pool, strides, include_batch)([values, index, x])
    np.testing.assert_array_equal(got, expected)
    # The same in a compiled graph and under XLA.
    for jit in (False, True):
        fn = tf.function(lambda v, i, r: flat_layer(pool, strides, include_batch)([v, i, r]), jit_compile=jit)
        np.testing.assert_array_equal(fn(values, index, x), expected)


@pytest.mark.parametrize("pool, strides", [(2, 2), (3, 2), (3, (2, 1)), (2, 1)], ids=str)
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_output_size_from_the_padding_rule_without_the_pooled_tensor(pool, strides, padding):
    # Sizes the tensorflow-addons rule restores: (n - 1) * s + k for VALID, n * s for SAME.
    stride_h, stride_w = (strides, strides) if isinstance(strides, int) else strides
    n_h, n_w = int(RNG.integers(2, 5)), int(RNG.integers(2, 5))
    if padding == "VALID":
        size = ((n_h - 1) * stride_h + pool, (n_w - 1) * stride_w + pool)
    else:
        size = (n_h * stride_h, n_w * stride_w)
    shape = (2, *size, 3)
    x = tf.constant(RNG.standard_normal(shape).astype("float32"))
    pooled, index = tf.nn.max_pool_with_argmax(x, pool, strides, padding)
    assert tuple(pooled.shape[1:3]) == (n_h, n_w)
    layer = flat_layer(pool, strides, False, padding=padding)
    got = layer([pooled, index])
    assert tuple(got.shape) == shape
    np.testing.assert_array_equal(got, scatter_reference(pooled, index, shape, "flat"))
    assert layer.compute_output_shape([(None, n_h, n_w, 3)] * 2) == (None, *size, 3)


# ---------------------------------------------------------------- arbitrary indices
@pytest.mark.parametrize("index_format", ["flat", "flat_batch", "plane"])
@pytest.mark.parametrize("pool, strides", [(2, 2), (3, 2), (3, (2, 1))], ids=str)
def test_arbitrary_indices_land_exactly_where_they_point(index_format, pool, strides):
    # Indices drawn anywhere in the output, not in their windows; a small
    # output makes repeats certain (integer values: sums are exact in any order).
    batch = int(RNG.integers(1, 4))
    values = tf.constant(RNG.integers(-9, 10, (batch, 3, 4, 2)).astype("float32"))
    output_size = (5, 7)
    output_shape = (batch, *output_size, 2)
    limit = {"flat": 5 * 7 * 2, "flat_batch": batch * 5 * 7 * 2, "plane": 5 * 7}[index_format]
    index = RNG.integers(0, limit, values.shape)
    assert len(np.unique(index)) < index.size  # repeated indices present
    expected = scatter_reference(values, index, output_shape, index_format)
    layer = MaxUnpooling2D(pool, strides, index_format=index_format, output_size=output_size)
    for dtype in ("int32", "int64"):
        np.testing.assert_array_equal(layer([values, tf.constant(index, dtype)]), expected)
    np.testing.assert_array_equal(tf.function(layer)([values, tf.constant(index)]), expected)


def test_repeated_indices_are_summed():
    values = tf.constant([1.0, 2.0, 4.0, 8.0], shape=(1, 2, 2, 1))
    index = tf.constant([5, 5, 5, 0], shape=(1, 2, 2, 1))
    out = MaxUnpooling2D(index_format="flat")([values, index])
    expected = np.zeros(16, "float32")
    expected[5], expected[0] = 7.0, 8.0
    np.testing.assert_array_equal(np.reshape(out, [-1]), expected)


def test_non_overlapping_flat_indices_outside_their_window_are_not_moved():
    # pool == strides used to take the window path, which moved such indices into their window.
    values = tf.constant([[[[1.0], [2.0]]]])  # (1, 1, 2, 1)
    index = tf.constant([[[[3], [0]]]])  # 1 belongs to x in {0, 1}, 2 to x in {2, 3}: both elsewhere
    out = MaxUnpooling2D(index_format="flat")([values, index])
    np.testing.assert_array_equal(np.reshape(out, [-1]), [2, 0, 0, 1, 0, 0, 0, 0])


# ---------------------------------------------------------------- tensorflow-addons' test cases
# Inputs of tensorflow/addons tensorflow_addons/layers/tests/max_unpooling_2d_test.py
# (its layer: pool_size=(2, 2), strides=(2, 2), padding="SAME" by default).
BATCH_INDICES = [2, 23, 8, 9, 12, 15, 40, 43, 44, 47, 72, 75, 80, 79, 62, 65,
                 0, 1, 30, 7, 14, 35, 42, 21, 68, 69, 50, 51, 56, 5, 86, 63]
TFA_GIVEN = {  # name: values, their shape, indices, unpool arguments, output shape
    "simple": ([13, 4], (1, 1, 2, 1), [1, 6], {}, (1, 2, 4, 1)),
    "strides2x1": (range(1, 9), (1, 2, 2, 2), [0, 3, 4, 7, 8, 11, 12, 15], {"strides": (2, 1)}, (1, 4, 2, 2)),
    "strides2x2": (range(1, 9), (1, 2, 4, 1), [0, 5, 10, 13, 19, 20, 27, 31], {}, (1, 4, 8, 1)),
    "batch": (range(1, 33), (2, 2, 4, 2), BATCH_INDICES, {"strides": (2, 3)}, (2, 4, 12, 2)),
    "batch_and_padding_valid": (range(1, 33), (2, 2, 4, 2), BATCH_INDICES, {"strides": (2, 3), "padding": "VALID"}, (2, 4, 11, 2)),
}


def tfa_layer(pool_size=(2, 2), strides=(2, 2), padding="SAME"):
    return MaxUnpooling2D(pool_size, strides, index_format="flat", padding=padding)


@pytest.mark.parametrize("name", TFA_GIVEN)
def test_tensorflow_addons_cases_with_given_indices(name):
    values, values_shape, indices, kwargs, output_shape = TFA_GIVEN[name]
    values = np.reshape(np.array(list(values), "float32"), values_shape)
    indices = np.reshape(np.array(indices, "int64"), values_shape)
    # NumPy: each value at its index in its image (no repeats in these cases).
    expected = np.zeros((output_shape[0], int(np.prod(output_shape[1:]))), "float32")
    for b in range(values_shape[0]):
        expected[b, indices[b].ravel()] = values[b].ravel()
    expected = expected.reshape(output_shape)
    np.testing.assert_array_equal(expected, scatter_reference(values, indices, output_shape, "flat"))
    for call in (lambda a: tfa_layer(**kwargs)(a), tf.function(lambda a: tfa_layer(**kwargs)(a))):
        np.testing.assert_array_equal(call([values, indices]), expected)


TFA_POOLED = {  # name: input, its shape, max_pool_with_argmax ksize/strides/padding, unpool arguments
    "with_pooling_simple": (range(1, 9), (1, 2, 4, 1), (2, 2, "SAME"), {}),
    "with_pooling": ([1, 2, 4, 3, 8, 6, 7, 5, 9, 10, 12, 11, 13, 16, 15, 14], (1, 4, 4, 1), (2, 2, "SAME"), {}),
    "strides_different_from_filter": ([1, 2, 4, 3, 8, 6, 7, 5, 9, 10, 12, 11, 13, 16, 15, 14], (1, 4, 4, 1), (2, 4, "SAME"),
                                      {"strides": (4, 4)}),
    "padding_valid": ([1, 2, 4, 3, 8, 6, 7, 5, 9, 10, 12, 11, 13, 16, 15, 14], (1, 4, 4, 1), (2, 2, "VALID"), {"padding": "VALID"}),
    "padding_valid_complex": ([1, 2, 4, 3, 8, 6, 7, 5, 9, 10, 12, 11, 13, 16, 15, 14, 20, 18, 17, 19], (1, 4, 5, 1),
                              ((2, 3), 2, "VALID"), {"pool_size": (2, 3), "padding": "VALID"}),
}


@pytest.mark.parametrize("name", TFA_POOLED)
def test_tensorflow_addons_cases_with_pooling(name):
    data, shape, (ksize, strides, padding), kwargs = TFA_POOLED[name]
    x = np.reshape(np.array(list(data), "float32"), shape)
    pooled, indices = tf.nn.max_pool_with_argmax(x, ksize, strides, padding)
    expected = scatter_reference(pooled, indices, shape, "flat")
    # Unpooling the maxima: they come back where they were, zeros elsewhere.
    np.testing.assert_array_equal(expected[expected != 0], x[expected != 0])
    np.testing.assert_array_equal(tfa_layer(**kwargs)([pooled, indices]), expected)


def test_tensorflow_addons_symbolic_shape():
    values, indices = keras.Input((None, None, 1)), keras.Input((None, None, 1), dtype="int64")
    assert tuple(tfa_layer()([values, indices]).shape) == (None, None, None, 1)
    values, indices = keras.Input((3, 5, 2)), keras.Input((3, 5, 2), dtype="int64")
    assert tuple(tfa_layer(strides=(2, 3))([values, indices]).shape) == (None, 6, 15, 2)
    assert tuple(tfa_layer(strides=(2, 3), padding="VALID")([values, indices]).shape) == (None, 6, 14, 2)


# ---------------------------------------------------------------- out-of-range indices
BAD_CASES = [  # index_format, the bad switch, what it would have hit before
    ("flat", 2 * 4 * 3, "the next image"),
    ("flat", -1, "the previous image"),
    ("flat_batch", 2 * 2 * 4 * 3, "nothing (past the end)"),
    ("plane", 2 * 4, "the next image"),
]


@pytest.mark.parametrize("index_format, bad, _", BAD_CASES, ids=[f"{c[0]}{c[1]}" for c in BAD_CASES])
def test_index_outside_the_output_raises_naming_layer_index_and_shape(index_format, bad, _):
    values = tf.constant(RNG.standard_normal((2, 1, 2, 3)).astype("float32"))
    index = np.zeros((2, 1, 2, 3), "int64")
    index[0, 0, 1, 2] = bad
    layer = MaxUnpooling2D(index_format=index_format, name="unpool_under_test")
    with pytest.raises(ValueError, match=rf"'unpool_under_test'.*switch {bad} at position \(0, 0, 1, 2\).*\(2, 2, 4, 3\)"):
        layer([values, tf.constant(index)])
    graph = tf.function(lambda v, i: layer([v, i]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"(?s)layer unpool_under_test:.*\[{bad}\].*\[2 2 4 3\]"):
        graph(values, tf.constant(index))


def test_window_switch_outside_the_output_raises_on_the_scatter_path():
    x = tf.constant(RNG.standard_normal((1, 6, 6, 2)).astype("float32"))
    pooled, switches = MaxPoolingWithArgmax2D(3, 2, padding="same")(x)  # the last windows overhang the 6x6 input
    bad = switches.numpy()
    bad[0, 2, 2, 0] = 8  # last position of a window that runs past the bottom-right corner
    layer = MaxUnpooling2D(3, 2, name="overlap")
    with pytest.raises(ValueError, match=r"'overlap'.*switch 8 at position \(0, 2, 2, 0\).*\(1, 6, 6, 2\)"):
        layer([pooled, tf.constant(bad), x])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)layer overlap:.*\[8\].*\[1 6 6 2\]"):
        tf.function(lambda p, s, r: layer([p, s, r]))(pooled, tf.constant(bad), x)


def test_under_xla_an_index_outside_is_dropped_not_written_elsewhere():
    # XLA compiles the check away; the value must vanish, not land in the next image.
    values = tf.constant(np.arange(1, 9, dtype="float32").reshape(2, 1, 4, 1))
    index = np.array([0, 1, 2, 3, 4, 5, 6, 7]).reshape(2, 1, 4, 1)
    index[0, 0, 3, 0] = 16  # per-image output has 16 entries; 16 is the next image's first
    layer = MaxUnpooling2D(index_format="flat")  # output (2, 2, 8, 1)
    out = tf.function(lambda v, i: layer([v, i]), jit_compile=True)(values, tf.constant(index))
    expected = np.zeros((2, 16), "float32")
    expected[0, [0, 1, 2]] = [1, 2, 3]
    expected[1, [4, 5, 6, 7]] = [5, 6, 7, 8]
    np.testing.assert_array_equal(np.reshape(out, (2, 16)), expected)


# ---------------------------------------------------------------- paths, options, config
def _graph_ops(layer, *inputs):
    graph = tf.function(lambda *args: layer(list(args))).get_concrete_function(*inputs).graph
    return {op.type for op in graph.get_operations()}


def test_window_switches_keep_the_scatter_free_fast_path():
    x = tf.constant(RNG.standard_normal((2, 6, 8, 3)).astype("float32"))
    pooled, switches = MaxPoolingWithArgmax2D()(x)
    fast = _graph_ops(MaxUnpooling2D(), pooled, switches, x)
    assert "ScatterNd" not in fast and "Assert" not in fast
    _, flat = tf.nn.max_pool_with_argmax(x, 2, 2, "SAME")
    assert "ScatterNd" in _graph_ops(MaxUnpooling2D(index_format="flat"), pooled, flat, x)
    pooled3, switches3 = MaxPoolingWithArgmax2D(3, 2)(x)
    assert "ScatterNd" in _graph_ops(MaxUnpooling2D(3, 2), pooled3, switches3, x)


def test_flat_index_unpooling_exports_to_builtin_tflite_exactly():
    from keras_deconv import export

    values_in = keras.Input((3, 4, 2), batch_size=2)
    index_in = keras.Input((3, 4, 2), batch_size=2, dtype="int32")
    model = keras.Model([values_in, index_in], MaxUnpooling2D(3, 2, index_format="flat", output_size=(7, 9))([values_in, index_in]))
    flatbuffer = export.to_tflite(model)
    ops = set(export.tflite_ops(flatbuffer))
    assert "SCATTER_ND" in ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    values = RNG.integers(-5, 6, (2, 3, 4, 2)).astype("float32")
    index = RNG.integers(0, 7 * 9 * 2, (2, 3, 4, 2)).astype("int32")
    expected = scatter_reference(values, index, (2, 7, 9, 2), "flat")
    np.testing.assert_array_equal(export.run_tflite(flatbuffer, [values, index])[0], expected)
    # The converter drops the range check: a per-image index past the end goes past the
    # whole output (refused) rather than into the next image.
    index[0, 0, 0, 0] = 7 * 9 * 2
    with pytest.raises(RuntimeError, match="out of bounds"):
        export.run_tflite(flatbuffer, [values, index])


def test_window_fast_path_with_an_explicit_output_size():
    x = tf.constant(RNG.standard_normal((2, 5, 7, 3)).astype("float32"))
    pooled, switches = MaxPoolingWithArgmax2D()(x)
    expected = MaxUnpooling2D()([pooled, switches, x])
    np.testing.assert_array_equal(MaxUnpooling2D(output_size=(5, 7))([pooled, switches]), expected)
    assert tuple(MaxUnpooling2D(output_size=(5, 7))([keras.Input((3, 4, 3)), keras.Input((3, 4, 3), dtype="int8")]).shape) == (None, 5, 7, 3)
    with pytest.raises(ValueError, match="does not pool to"):
        MaxUnpooling2D(output_size=(9, 7))([pooled, switches])
    with pytest.raises(ValueError, match="does not match"):
        MaxUnpooling2D(output_size=(6, 8))([pooled, switches, x])


def test_include_batch_in_index_option():
    assert MaxUnpooling2D(index_format="flat", include_batch_in_index=True).index_format == "flat_batch"
    assert MaxUnpooling2D(index_format="flat_batch").include_batch_in_index
    assert not MaxUnpooling2D(index_format="flat").include_batch_in_index
    with pytest.raises(ValueError, match="flat indices only"):
        MaxUnpooling2D(include_batch_in_index=True)  # window switches have no batch
    with pytest.raises(ValueError, match="include_batch_in_index=False"):
        MaxUnpooling2D(index_format="flat_batch", include_batch_in_index=False)
    with pytest.raises(ValueError, match="padding"):
        MaxUnpooling2D(padding="full")
    with pytest.raises(ValueError, match="output_size"):
        MaxUnpooling2D(output_size=(0, 4))


def test_config_round_trip_and_old_configs():
    layer = MaxUnpooling2D(3, (2, 1), index_format="flat", include_batch_in_index=True, padding="SAME", output_size=(9, 5), name="u")
    config = layer.get_config()
    assert config["index_format"] == "flat_batch" and config["include_batch_in_index"] is True
    assert config["padding"] == "same" and tuple(config["output_size"]) == (9, 5)
    clone = MaxUnpooling2D.from_config(config)
    assert clone.get_config() == config
    # A config saved before these options existed keeps its behaviour.
    old = {key: config[key] for key in ("name", "trainable", "dtype", "pool_size", "strides", "data_format")}
    old_layer = MaxUnpooling2D.from_config({**old, "index_format": "flat_batch"})
    assert (old_layer.index_format, old_layer.padding, old_layer.output_size) == ("flat_batch", "valid", None)
