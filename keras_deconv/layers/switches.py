"""Pooling switches: window geometry and conversions between index formats.

A *switch* records where, in the tensor that was pooled, each pooled maximum
came from. Four formats are in use across frameworks; all describe the same
positions and convert exactly into one another through the (y, x) input
coordinates of each maximum:

``"window"``
    Position inside the pooling window, row-major: ``dy * pool_w + dx``.
    The compact form our :class:`MaxPoolingWithArgmax2D` emits (int8 for
    windows of up to 127 positions).
``"flat"``
    TensorFlow's ``tf.nn.max_pool_with_argmax(include_batch_in_index=False)``:
    ``(y * W + x) * C + c``, per image, channels_last.
``"flat_batch"``
    The same with ``include_batch_in_index=True``:
    ``((b * H + y) * W + x) * C + c``.
``"plane"``
    Caffe's pooling mask and PyTorch's ``max_pool2d(return_indices=True)``:
    ``y * W + x`` within each (image, channel) plane. Caffe stores masks as
    float NCHW blobs and PyTorch as int64 NCHW tensors: transpose them to
    NHWC and cast to an integer type before converting.

Example:

>>> import numpy as np, tensorflow as tf
>>> x = tf.constant(np.arange(16, dtype="float32").reshape(1, 4, 4, 1))
>>> _, tf_index = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID")
>>> convert_switches(tf_index, "flat", "window", x.shape, pool_size=2)
... # doctest: +SKIP
"""

import tensorflow as tf

INDEX_FORMATS = ("window", "flat", "flat_batch", "plane")
PADDINGS = ("valid", "same")


def normalize_pair(value, name):
    """``2`` or ``(2, 2)`` -> ``(2, 2)``; validates positive integers."""
    if isinstance(value, int):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected `{name}` to be an int or a pair of ints. Received: {name}={value!r}")
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"Expected `{name}` to be one or two positive ints. Received: {name}={value!r}")
    return pair


def check_index_format(index_format):
    if index_format not in INDEX_FORMATS:
        raise ValueError(f"Expected `index_format` to be one of {INDEX_FORMATS}. Received: index_format={index_format!r}")
    return index_format


def window_switch_dtype(pool_size):
    """Smallest integer type that holds a position inside the window."""
    positions = pool_size[0] * pool_size[1]
    if positions <= 127:
        return "int8"
    if positions <= 32767:
        return "int16"
    return "int32"


def pooled_length(length, pool, stride, padding):
    """Output length along one axis; works on ints and on scalar tensors.

    ``"valid"`` drops incomplete windows; ``"same"`` is Caffe's ceil mode with
    no padding before the image: ``ceil((L - k) / s) + 1`` windows starting at
    multiples of the stride, the last one clipped at the border. With
    ``pool == stride`` this equals TensorFlow's ``SAME`` (``ceil(L / s)``).
    """
    if padding == "valid":
        out = (length - pool) // stride + 1
    else:
        out = -((pool - length) // stride) + 1  # ceil division, exact for negatives
    if isinstance(out, int):
        return max(out, 0)
    return tf.maximum(out, 0)


def is_non_overlapping(pool_size, strides, pooled_hw=(None, None)):
    """True when no input position can belong to two windows.

    That holds when strides equal the pool size, and along an axis whose
    (static) pooled length is 1, e.g. DecoupledNet's 4x4/1 pool on a 4x4 map.
    """
    for pool, stride, length in zip(pool_size, strides, pooled_hw):
        if stride != pool and length != 1:
            return False
    return True


def _grid(shape, dtype):
    """Broadcastable b, oy, ox, c index grids for a [B, h, w, C] tensor."""
    b = tf.reshape(tf.range(shape[0], dtype=dtype), [-1, 1, 1, 1])
    oy = tf.reshape(tf.range(shape[1], dtype=dtype), [1, -1, 1, 1])
    ox = tf.reshape(tf.range(shape[2], dtype=dtype), [1, 1, -1, 1])
    c = tf.reshape(tf.range(shape[3], dtype=dtype), [1, 1, 1, -1])
    return b, oy, ox, c


def _dims(input_shape, dtype):
    """H, W, C of the pooled-from tensor as scalars of ``dtype``."""
    if isinstance(input_shape, tf.Tensor):
        dims = tf.cast(input_shape, dtype)
        return dims[1], dims[2], dims[3]
    return tuple(tf.constant(int(d), dtype) for d in tuple(input_shape)[1:4])


def switch_coordinates(switches, index_format, input_shape, pool_size, strides):
    """(y, x) input coordinates of every switch, as int tensors like ``switches``."""
    check_index_format(index_format)
    dtype = tf.int64 if switches.dtype == tf.int64 else tf.int32
    switches = tf.cast(switches, dtype)
    pool_h, pool_w = pool_size
    height, width, channels = _dims(input_shape, dtype)
    b, oy, ox, c = _grid(tf.shape(switches, out_type=dtype), dtype)
    if index_format == "window":
        return oy * strides[0] + switches // pool_w, ox * strides[1] + switches % pool_w
    if index_format == "flat_batch":
        switches = switches - b * (height * width * channels)
        index_format = "flat"
    if index_format == "flat":
        switches = switches // channels
    return switches // width, switches % width


def switches_from_coordinates(y, x, index_format, input_shape, pool_size, strides, dtype=None):
    """Inverse of :func:`switch_coordinates`."""
    check_index_format(index_format)
    work = y.dtype
    height, width, channels = _dims(input_shape, work)
    b, oy, ox, c = _grid(tf.shape(y, out_type=work), work)
    if index_format == "window":
        result = (y - oy * strides[0]) * pool_size[1] + (x - ox * strides[1])
        dtype = dtype or window_switch_dtype(pool_size)
    elif index_format == "plane":
        result = y * width + x
    elif index_format == "flat":
        result = (y * width + x) * channels + c
    else:
        result = ((b * height + y) * width + x) * channels + c
    return tf.cast(result, dtype or work)


def convert_switches(switches, source, target, input_shape, pool_size=2, strides=None, dtype=None):
    """Convert pooling switches between index formats.

    Args:
        switches: integer tensor ``[B, h, w, C]`` (channels_last) of switches.
        source: format of ``switches``: ``"window"``, ``"flat"``,
            ``"flat_batch"`` or ``"plane"`` (see the module docstring).
        target: the format wanted.
        input_shape: shape ``[B, H, W, C]`` of the tensor that was pooled (a
            tuple of ints or an int tensor, e.g. ``tf.shape(x)``).
        pool_size: int or pair; the window size of the pooling.
        strides: int or pair; defaults to ``pool_size``.
        dtype: result dtype; defaults to int8/16/32 for ``"window"`` and to
            the working integer type (int32, or int64 for int64 input) else.

    Returns:
        The switches in the ``target`` format.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> x = tf.constant(np.random.rand(1, 4, 6, 3).astype("float32"))
    >>> _, flat = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID")
    >>> window = convert_switches(flat, "flat", "window", x.shape, pool_size=2)
    >>> back = convert_switches(window, "window", "flat", x.shape, pool_size=2)
    >>> bool(tf.reduce_all(back == tf.cast(flat, back.dtype)))
    True
    """
    pool_size = normalize_pair(pool_size, "pool_size")
    strides = pool_size if strides is None else normalize_pair(strides, "strides")
    switches = tf.convert_to_tensor(switches)
    if not switches.dtype.is_integer:
        raise ValueError(f"Switches must be an integer tensor (cast Caffe's float masks first). Received dtype {switches.dtype.name}.")
    y, x = switch_coordinates(switches, source, input_shape, pool_size, strides)
    return switches_from_coordinates(y, x, target, input_shape, pool_size, strides, dtype=dtype)


def window_to_flat(switches, input_shape, pool_size=2, strides=None, include_batch_in_index=False):
    """Window switches -> ``tf.nn.max_pool_with_argmax`` flat indices."""
    target = "flat_batch" if include_batch_in_index else "flat"
    return convert_switches(switches, "window", target, input_shape, pool_size, strides)


def flat_to_window(indices, input_shape, pool_size=2, strides=None, include_batch_in_index=False):
    """``tf.nn.max_pool_with_argmax`` flat indices -> window switches."""
    source = "flat_batch" if include_batch_in_index else "flat"
    return convert_switches(indices, source, "window", input_shape, pool_size, strides)


def window_to_plane(switches, input_shape, pool_size=2, strides=None):
    """Window switches -> Caffe/PyTorch per-plane indices ``y * W + x`` (NHWC)."""
    return convert_switches(switches, "window", "plane", input_shape, pool_size, strides)


def plane_to_window(indices, input_shape, pool_size=2, strides=None):
    """Caffe/PyTorch per-plane indices (transposed to NHWC) -> window switches."""
    return convert_switches(indices, "plane", "window", input_shape, pool_size, strides)


def flat_to_plane(indices, input_shape, include_batch_in_index=False):
    """TF flat indices -> Caffe/PyTorch per-plane indices."""
    source = "flat_batch" if include_batch_in_index else "flat"
    return convert_switches(indices, source, "plane", input_shape, 1, 1)


def plane_to_flat(indices, input_shape, include_batch_in_index=False):
    """Caffe/PyTorch per-plane indices -> TF flat indices."""
    target = "flat_batch" if include_batch_in_index else "flat"
    return convert_switches(indices, "plane", target, input_shape, 1, 1)
