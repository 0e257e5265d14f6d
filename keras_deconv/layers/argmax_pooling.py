"""Max pooling that also returns where each maximum came from (its switch)."""

import contextlib
import threading

import keras
import tensorflow as tf

from keras_deconv.layers import formulation
from keras_deconv.layers import switches as sw

#: Name of the op that yields a pooling layer's switches (both formulations).
#: Exports keep it in the tensor's name (TFLite ``.../pool1_1/switches``, ONNX
#: ``.../pool1_1/switches:0``): how :mod:`keras_deconv.switch_agreement`
#: finds an export's switches.
SWITCH_TENSOR_NAME = "switches"

_pinned = threading.local()


def _check_channels_last(data_format, layer):
    data_format = data_format or keras.config.image_data_format()
    if data_format != "channels_last":
        raise ValueError(
            f"{layer} supports channels_last (NHWC) data only. Received: data_format={data_format!r}. "
            "Transpose NCHW tensors with keras.ops.transpose(x, (0, 2, 3, 1)) first."
        )
    return data_format


def window_slices(x, pool_size, strides, pooled_hw):
    """The k*k strided views of ``x``, one per window position, row-major.

    Slice ``k`` holds, for every output position, the input element at
    window offset ``(k // pool_w, k % pool_w)``. ``x`` must already be padded
    so that every window lies inside it.
    """
    out_h, out_w = pooled_hw
    slices = []
    for dy in range(pool_size[0]):
        for dx in range(pool_size[1]):
            slices.append(
                x[:, dy : dy + (out_h - 1) * strides[0] + 1 : strides[0], dx : dx + (out_w - 1) * strides[1] + 1 : strides[1], :]
            )
    return slices


def _window_max(slices):
    """A chain of ``maximum`` over the window views (the first operand wins ties, for the gradient)."""
    best = slices[0]
    for candidate in slices[1:]:
        best = tf.maximum(best, candidate)
    return best


def first_max(slices, switch_dtype):
    """Maximum of the window views and the position of its *first* occurrence.

    The first maximum in row-major window order wins ties: Caffe's pooling
    loop (strict ``>``) and the CPU rule of ``tf.nn.max_pool_with_argmax``.

    * Values: a chain of ``maximum``. TensorFlow's ``Maximum`` gradient goes to
      its first operand on ties, so the gradient reaches the first maximum
      only, exactly like ``MaxPoolGradWithArgmax``.
    * Switch: ``sum_j prod_{i<=j} [s_i != max]`` counts the positions before
      the first maximum. Float arithmetic (not selects, and not int8 math,
      which TFLite lacks) keeps every op a fast TFLite builtin; it is exact
      (small integers) and cast once at the end.
    """
    best = _window_max(slices)
    before_first = None
    count = None
    for candidate in slices[:-1]:
        differs = 1.0 - tf.cast(tf.equal(candidate, best), tf.float32)
        before_first = differs if before_first is None else before_first * differs
        count = before_first if count is None else count + before_first
    if count is None:  # a 1x1 window
        return best, tf.zeros(tf.shape(best), dtype=switch_dtype, name=SWITCH_TENSOR_NAME)
    return best, tf.cast(count, switch_dtype, name=SWITCH_TENSOR_NAME)


def integer_first_max(slices):
    """:func:`first_max` with comparisons and selects only: int32 window positions, no float op.

    For integer-only int8 exports (:func:`keras_deconv.layers.formulation.integer_formulation`):
    the slices and their maximum share the input's quantization, so ``EQUAL``
    compares the int8 values themselves and the first maximum of the
    quantized values wins.
    """
    best = _window_max(slices)
    position = tf.fill(tf.shape(best), tf.constant(len(slices) - 1, tf.int32))
    for k in range(len(slices) - 2, -1, -1):
        position = tf.where(tf.equal(slices[k], best), tf.constant(k, tf.int32), position)
    return best, tf.identity(position, name=SWITCH_TENSOR_NAME)


def litert_first_max(x, pool_size, pooled_hw):
    """:func:`first_max` for non-overlapping windows, with XNNPACK-delegated ops only.

    See :mod:`keras_deconv.layers.formulation`. The windows tile
    ``x[:, :h*kh, :w*kw]``; a reshape to ``[B*h, kh, w, kw*C]`` turns window
    position ``(dy, dx)`` into a stride-1 slice. ``d_k = min(ceil(max - x_k),
    1)`` is 1 where position ``k`` is below the maximum; the number of
    leading 1s, ``d_0 (1 + d_1 (1 + ...))``, is the first maximum's position.
    Returns the switches as float window positions.
    """
    pool_h, pool_w = pool_size
    out_h, out_w = pooled_hw
    if not (isinstance(out_h, int) and isinstance(out_w, int) and tuple(x.shape[1:3]) == (out_h * pool_h, out_w * pool_w)):
        x = x[:, : out_h * pool_h, : out_w * pool_w, :]
        if x.shape[3] is not None:
            # The converter's shape inference forgets the channels of a slice with dynamic bounds (a conv of
            # unknown depth is then no builtin): a reshape restates them.
            x = tf.reshape(x, tf.stack([-1, out_h * pool_h, out_w * pool_w, x.shape[3]]))
    channels = x.shape[3] if x.shape[3] is not None else tf.shape(x)[3]
    best = tf.nn.max_pool2d(x, pool_size, pool_size, "VALID")
    rows = tf.reshape(x, tf.stack([-1, pool_h, out_w, pool_w * channels]))
    best_rows = tf.reshape(best, tf.stack([-1, 1, out_w, channels]))
    below = []
    for k in range(pool_h * pool_w - 1):
        dy, dx = divmod(k, pool_w)
        candidate = rows[:, dy : dy + 1, :, dx * channels : (dx + 1) * channels]
        below.append(tf.minimum(tf.math.ceil(best_rows - candidate), 1))
    if not below:  # a 1x1 window
        return best, tf.zeros_like(best, name=SWITCH_TENSOR_NAME)
    position = below[-1]
    for flag in reversed(below[:-1]):
        position = flag * (position + 1)
    return best, tf.reshape(position, tf.shape(best), name=SWITCH_TENSOR_NAME)


@contextlib.contextmanager
def pinned_switches(switches_by_layer):
    """Within this block, the named pooling layers return the given switches instead of their own.

    Their pooled values are computed as usual; unpooling then places them
    where the given switches say. ``--verify`` uses this to run Keras with an
    export's own switches, which separates the export's arithmetic from its
    tie decisions (see :mod:`keras_deconv.switch_agreement`). A layer reads
    them when it is called in this thread: on every eager call, but only once
    for a ``tf.function``, which keeps them as constants if it was traced
    inside the block. The switches must have the shape the layer's own would
    have, in its ``index_format``.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.layers import MaxPoolingWithArgmax2D
    >>> x = np.array([[1, 3], [3, 2]], "float32").reshape(1, 2, 2, 1)
    >>> pool = MaxPoolingWithArgmax2D(name="pool")
    >>> with pinned_switches({"pool": np.full((1, 1, 1, 1), 2)}):
    ...     pooled, switches = pool(x)
    >>> float(pooled[0, 0, 0, 0]), int(switches[0, 0, 0, 0])  # the second 3
    (3.0, 2)
    """
    previous = getattr(_pinned, "switches", {})
    _pinned.switches = {**previous, **switches_by_layer}
    try:
        yield
    finally:
        _pinned.switches = previous


def kernel_applies(pool_size, strides, padding, index_format):
    """Whether :func:`keras_deconv.layers.formulation.kernel_formulation` pools these windows with TensorFlow's kernel.

    Non-overlapping windows with window switches; with ``"same"`` padding
    only up to 2x2, where TensorFlow's SAME pads at the bottom/right only
    (Caffe's ceil mode).
    """
    return (
        formulation.kernel_active()
        and index_format == "window"
        and tuple(pool_size) == tuple(strides)
        and (padding == "valid" or max(pool_size) <= 2)
    )


def max_pool_with_switches(x, pool_size=(2, 2), strides=None, padding="valid", index_format="window", allow_kernel=True):
    """Functional form of :class:`MaxPoolingWithArgmax2D` (NHWC tensors).

    Inside :func:`keras_deconv.layers.formulation.kernel_formulation` (and
    with ``allow_kernel``) non-overlapping window switches come from
    ``tf.nn.max_pool_with_argmax`` as int64 ``"flat_batch"`` indices, which
    :class:`MaxUnpooling2D` takes in that formulation.
    """
    pool_size = sw.normalize_pair(pool_size, "pool_size")
    strides = pool_size if strides is None else sw.normalize_pair(strides, "strides")
    if allow_kernel and kernel_applies(pool_size, strides, padding, index_format):
        formulation.mark_used()
        pooled, argmax = tf.nn.max_pool_with_argmax(x, pool_size, strides, padding.upper(), include_batch_in_index=True)
        return pooled, tf.identity(argmax, name=SWITCH_TENSOR_NAME)
    shape = tf.shape(x)
    out_h = sw.pooled_length(shape[1], pool_size[0], strides[0], padding)
    out_w = sw.pooled_length(shape[2], pool_size[1], strides[1], padding)
    static_hw = tuple(
        None if length is None else sw.pooled_length(length, pool, stride, padding)
        for length, pool, stride in zip(x.shape[1:3], pool_size, strides)
    )
    litert = formulation.litert_active() and index_format == "window" and sw.is_non_overlapping(pool_size, strides, static_hw)
    if padding == "same":
        # Caffe's ceil mode: the last window may run past the bottom/right edge.
        # Padding with -inf never wins: each window's first element is real.
        pad_h = tf.maximum((out_h - 1) * strides[0] + pool_size[0] - shape[1], 0)
        pad_w = tf.maximum((out_w - 1) * strides[1] + pool_size[1] - shape[2], 0)
        static = x.shape
        x = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], constant_values=float("-inf"))
        # Padding by tensors keeps batch and channels, but TensorFlow's shape function forgets them; the
        # TFLite converter needs the channels (a conv of unknown depth is not a builtin) in dynamic-size exports.
        x.set_shape([static[0], None, None, static[3]])
    if formulation.integer_active() and index_format == "window":
        formulation.mark_used()
        return integer_first_max(window_slices(x, pool_size, strides, (out_h, out_w)))
    if litert:
        formulation.mark_used()
        return litert_first_max(x, pool_size, tuple(s if s is not None else d for s, d in zip(static_hw, (out_h, out_w))))
    slices = window_slices(x, pool_size, strides, (out_h, out_w))
    pooled, window = first_max(slices, sw.window_switch_dtype(pool_size))
    if index_format == "window":
        return pooled, window
    return pooled, sw.convert_switches(window, "window", index_format, shape, pool_size, strides, dtype="int32")


@keras.saving.register_keras_serializable(package="keras_deconv")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """2D max pooling returning ``(pooled, switches)``, with Caffe's exact semantics.

    Each output is the maximum of its window; the switch records which input
    position it came from. Ties go to the first maximum in row-major window
    order (Caffe's pooling-with-mask, and the CPU rule of
    ``tf.nn.max_pool_with_argmax``), so switches match the original Caffe
    models bit for bit.

    The layer is built from strided slices, maximum, comparisons and float
    arithmetic only: it runs in graph mode, under XLA (``jit_compile=True``)
    and converts to TFLite with builtin ops only (``tf.nn.max_pool_with_argmax``
    does neither). Training steps without XLA use that kernel all the same,
    for speed, with identical results
    (:func:`keras_deconv.layers.formulation.kernel_formulation`).

    Output size per spatial axis (``L`` input, ``k`` pool, ``s`` stride):
    ``"valid"``: ``floor((L - k) / s) + 1``; ``"same"``: Caffe's ceil mode,
    ``ceil((L - k) / s) + 1``, windows clipped at the bottom/right border
    (equal to TensorFlow's ``SAME`` whenever ``k == s``).

    Args:
        pool_size: int or pair of ints, the window size. Default 2.
        strides: int or pair; defaults to ``pool_size``. Non-overlapping
            windows (the DeconvNet case) need no scatter when unpooling.
        padding: ``"valid"`` or ``"same"`` (see above). Default ``"same"``,
            so odd sizes work and :class:`MaxUnpooling2D` restores them.
        index_format: format of the returned switches: ``"window"`` (default:
            position inside the window, int8), ``"flat"`` / ``"flat_batch"``
            (``tf.nn.max_pool_with_argmax`` indices, int32) or ``"plane"``
            (Caffe/PyTorch per-plane ``y * W + x``, int32). See
            :mod:`keras_deconv.layers.switches`.
        data_format: only ``"channels_last"`` is supported.

    Input shape:
        ``(batch, height, width, channels)``; any dim may be ``None``.

    Output:
        ``(pooled, switches)``, both ``(batch, pooled_height, pooled_width,
        channels)``; ``pooled`` has the layer's compute dtype (float16 and
        bfloat16 policies work), ``switches`` an integer dtype.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1, 3], [3, 2]], "float32").reshape(1, 2, 2, 1)
    >>> pooled, switches = MaxPoolingWithArgmax2D()(x)
    >>> float(pooled[0, 0, 0, 0]), int(switches[0, 0, 0, 0])  # first 3 wins
    (3.0, 1)
    """

    def __init__(self, pool_size=2, strides=None, padding="same", index_format="window", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = sw.normalize_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else sw.normalize_pair(strides, "strides")
        if padding not in sw.PADDINGS:
            raise ValueError(f"Expected `padding` to be one of {sw.PADDINGS}. Received: padding={padding!r}")
        self.padding = padding
        self.index_format = sw.check_index_format(index_format)
        self.data_format = _check_channels_last(data_format, type(self).__name__)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def switch_dtype(self):
        return sw.window_switch_dtype(self.pool_size) if self.index_format == "window" else "int32"

    def call(self, inputs):
        given = getattr(_pinned, "switches", {}).get(self.name)
        # Pinned switches are window positions: then the kernel formulation's flat ones must not be made.
        pooled, switches = max_pool_with_switches(inputs, self.pool_size, self.strides, self.padding, self.index_format,
                                                  allow_kernel=given is None)
        if given is not None:
            given = tf.convert_to_tensor(given)
            tf.debugging.assert_equal(tf.shape(given), tf.shape(switches), message=(
                f"pinned switches for {self.name} have the wrong shape; they must be shaped like the layer's own"))
            switches = tf.cast(given, switches.dtype)
        return pooled, switches

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        out = [
            None if length is None else sw.pooled_length(length, pool, stride, self.padding)
            for length, pool, stride in zip((height, width), self.pool_size, self.strides)
        ]
        shape = (batch, out[0], out[1], channels)
        return shape, shape

    def compute_output_spec(self, inputs):
        # Keras would type every output with the compute dtype; switches are ints.
        shape, _ = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(shape, dtype=self.compute_dtype),
            keras.KerasTensor(shape, dtype=self.switch_dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "strides": self.strides,
                "padding": self.padding,
                "index_format": self.index_format,
                "data_format": self.data_format,
            }
        )
        return config
