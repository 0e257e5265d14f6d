"""Max unpooling: put pooled values back where their switches point."""

import keras
import tensorflow as tf

from keras_deconv.layers import formulation
from keras_deconv.layers import switches as sw
from keras_deconv.layers.argmax_pooling import _check_channels_last


def _interleave(values, window, pool_size):
    """Non-overlapping windows: one select per window position, then interleave.

    Output ``[B, h*kh, w*kw, C]`` from ``[B, h, w, C]`` without any scatter:
    stack + reshape puts slice ``k`` at window offset ``(k // kw, k % kw)``.
    Selects (not multiplications by a one-hot) keep +-inf and -0.0 exact.
    """
    pool_h, pool_w = pool_size
    zero = tf.zeros([], values.dtype)
    # TFLite has no EQUAL kernel for plain int8; its float32 EQUAL is the fastest,
    # int32 the one integer-only exports use.
    position_dtype = tf.int32 if formulation.integer_active() else tf.float32
    window = tf.cast(window, position_dtype)
    parts = [tf.where(tf.equal(window, tf.constant(k, position_dtype)), values, zero) for k in range(pool_h * pool_w)]
    rows = [tf.stack(parts[dy * pool_w : (dy + 1) * pool_w], axis=3) for dy in range(pool_h)]  # [B,h,w,kw,C]
    grid = tf.stack(rows, axis=2)  # [B, h, kh, w, kw, C]
    shape = tf.shape(values)
    return tf.reshape(grid, [shape[0], shape[1] * pool_h, shape[2] * pool_w, shape[3]])


def _litert_interleave(values, window, pool_size):
    """:func:`_interleave` with XNNPACK-delegated ops only (finite values).

    See :mod:`keras_deconv.layers.formulation`: slice ``k`` is ``values *
    relu(1 - (window - k)^2)``, i.e. the value where the switch is ``k`` and
    0 elsewhere; concatenations along channels, then rows, lay out
    ``[B, h, kh, w, kw, C]``.
    """
    pool_h, pool_w = pool_size
    position = tf.cast(window, values.dtype)
    parts = [values * tf.nn.relu(1 - tf.math.squared_difference(position, tf.cast(k, values.dtype)))
             for k in range(pool_h * pool_w)]
    shape = tf.shape(values)
    channels = values.shape[3] if values.shape[3] is not None else shape[3]
    width = values.shape[2] if values.shape[2] is not None else shape[2]
    rows = [tf.reshape(tf.concat(parts[dy * pool_w : (dy + 1) * pool_w], axis=-1), tf.stack([-1, 1, width, pool_w * channels]))
            for dy in range(pool_h)]
    grid = rows[0] if pool_h == 1 else tf.concat(rows, axis=1)  # [B*h, kh, w, kw*C]
    return tf.reshape(grid, tf.stack([shape[0], shape[1] * pool_h, shape[2] * pool_w, channels]))


def _scatter(values, flat_batch_index, output_shape):
    """General path: scatter into the flattened output; colliding indices add up."""
    size = tf.reduce_prod(tf.cast(output_shape, flat_batch_index.dtype))
    out = tf.scatter_nd(
        tf.reshape(flat_batch_index, [-1, 1]),
        tf.reshape(values, [-1]),
        tf.reshape(size, [1]),
    )
    return tf.reshape(out, output_shape)


def _validate_eagerly(values, switches, index_format, output_shape, pool_size, strides):
    """Shape and range checks that need concrete values (eager calls only)."""
    if values.shape != switches.shape:
        raise ValueError(
            f"MaxUnpooling2D: values and switches must have the same shape. "
            f"Received values {tuple(values.shape)} and switches {tuple(switches.shape)}."
        )
    if tf.size(switches) == 0:
        return
    low, high = int(tf.reduce_min(switches)), int(tf.reduce_max(switches))
    if index_format == "window":
        limit = pool_size[0] * pool_size[1]
        what = f"window positions must be in [0, {limit})"
        if low >= 0 and high < limit:
            y, x = sw.switch_coordinates(switches, "window", output_shape, pool_size, strides)
            if int(tf.reduce_max(y)) < int(output_shape[1]) and int(tf.reduce_max(x)) < int(output_shape[2]):
                return
            what = f"they point outside the {int(output_shape[1])}x{int(output_shape[2])} output"
    else:
        batch, height, width, channels = (int(d) for d in output_shape)
        limit = {"flat": height * width * channels, "flat_batch": batch * height * width * channels, "plane": height * width}[index_format]
        what = f"{index_format!r} indices for an output of shape {(batch, height, width, channels)} must be in [0, {limit})"
        if low >= 0 and high < limit:
            return
    raise ValueError(f"MaxUnpooling2D: switches out of range (min {low}, max {high}); {what}.")


@keras.saving.register_keras_serializable(package="keras_deconv")
class MaxUnpooling2D(keras.layers.Layer):
    """Inverse of :class:`MaxPoolingWithArgmax2D`: values back at their switches.

    Takes ``[values, switches]`` or ``[values, switches, pooled_input]`` and
    returns a tensor the size of the pooled-from tensor with each value at the
    position its switch records and zeros elsewhere (Caffe's ``UNPOOLING``
    with ``unpool: MAX``).

    Output size: taken from the optional third input, the tensor that was
    pooled (only its shape is used), so odd sizes are restored exactly;
    without it, ``h * pool`` for non-overlapping windows and
    ``(h - 1) * stride + pool`` otherwise.

    Two code paths:

    * non-overlapping windows (``strides == pool_size``, or a pooled axis of
      static length 1): switches in any format are turned into window
      positions and the output is assembled with selects and a reshape, no
      scatter. Fast, XLA-fusable, builtin-only TFLite.
    * overlapping windows: an index scatter (``tf.scatter_nd``). **Collision
      rule:** when two pooled outputs point at the same input position (only
      possible with overlapping windows) their values are *summed*, which
      makes this layer the exact adjoint of the pooling (it equals
      TensorFlow's ``MaxPoolGradWithArgmax``). Caffe's CPU unpooling assigns
      instead (the last write wins); the two agree whenever colliding values
      are equal, e.g. when unpooling the pooled values themselves.

    Args:
        pool_size: int or pair, as used by the pooling. Default 2.
        strides: int or pair; defaults to ``pool_size``.
        index_format: format of the switches: ``"window"`` (default, as
            emitted by :class:`MaxPoolingWithArgmax2D`), ``"flat"`` or
            ``"flat_batch"`` (``tf.nn.max_pool_with_argmax`` indices without /
            with the batch offset), or ``"plane"`` (Caffe/PyTorch per-plane
            ``y * W + x``, transposed to NHWC). Switches pointing outside
            their window (or the output) raise in eager calls; in compiled
            graphs such values are dropped.
        data_format: only ``"channels_last"`` is supported.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
    >>> x = np.random.rand(2, 5, 7, 3).astype("float32")
    >>> pooled, switches = MaxPoolingWithArgmax2D()(x)
    >>> restored = MaxUnpooling2D()([pooled, switches, x])
    >>> tuple(restored.shape)
    (2, 5, 7, 3)
    """

    def __init__(self, pool_size=2, strides=None, index_format="window", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = sw.normalize_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else sw.normalize_pair(strides, "strides")
        self.index_format = sw.check_index_format(index_format)
        self.data_format = _check_channels_last(data_format, type(self).__name__)

    def _split_inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                "MaxUnpooling2D expects [values, switches] or [values, switches, pooled_input]. "
                f"Received: {type(inputs).__name__} of length {len(inputs) if isinstance(inputs, (list, tuple)) else 1}."
            )
        values, switches = inputs[0], inputs[1]
        reference = inputs[2] if len(inputs) == 3 else None
        for name, tensor in (("values", values), ("switches", switches), ("pooled_input", reference)):
            if tensor is not None and len(tensor.shape) != 4:
                raise ValueError(f"MaxUnpooling2D: {name} must be 4-D (batch, height, width, channels). Received shape {tuple(tensor.shape)}.")
        if not _dtype_is_integer(switches.dtype) and not formulation.litert_active():
            raise ValueError(f"MaxUnpooling2D: switches must be integers. Received dtype {switches.dtype}.")
        _check_static_match(values.shape, switches.shape, "values", "switches")
        if reference is not None:
            _check_static_match(values.shape[:1] + values.shape[3:], reference.shape[:1] + reference.shape[3:], "values (batch, channels)", "pooled_input (batch, channels)")
            self._check_pooled_from(values.shape, reference.shape)
        return values, switches, reference

    def _check_pooled_from(self, values_shape, reference_shape):
        # The third input must be a tensor that pools to the values' size.
        for axis in (0, 1):
            pooled, full = values_shape[1 + axis], reference_shape[1 + axis]
            if pooled is None or full is None:
                continue
            pool, stride = self.pool_size[axis], self.strides[axis]
            allowed = {sw.pooled_length(full, pool, stride, padding) for padding in sw.PADDINGS}
            if pooled not in allowed:
                raise ValueError(
                    f"MaxUnpooling2D: pooled_input of shape {tuple(reference_shape)} does not pool to values of shape "
                    f"{tuple(values_shape)} with pool_size={self.pool_size}, strides={self.strides}. "
                    "Pass the tensor that was given to the matching MaxPoolingWithArgmax2D."
                )

    def _fits_exactly(self, values_shape, reference_shape):
        # Statically known that the interleaved windows are the reference size.
        return all(
            values_shape[1 + axis] is not None
            and values_shape[1 + axis] * self.pool_size[axis] == reference_shape[1 + axis]
            for axis in (0, 1)
        )

    def _covers(self, values_shape, reference_shape):
        # Statically known that the interleaved windows reach the reference size.
        for axis in (0, 1):
            pooled, full = values_shape[1 + axis], reference_shape[1 + axis]
            if pooled is None or full is None or pooled * self.pool_size[axis] < full:
                return False
        return True

    def _default_size(self, pooled_length, axis):
        pool, stride = self.pool_size[axis], self.strides[axis]
        if stride == pool:
            return None if pooled_length is None else pooled_length * pool
        return None if pooled_length is None else (pooled_length - 1) * stride + pool

    def call(self, inputs):
        values, switches, reference = self._split_inputs(inputs)
        pooled_shape = tf.shape(values)
        if reference is not None:
            ref_shape = tf.shape(reference)
            output_shape = tf.stack([pooled_shape[0], ref_shape[1], ref_shape[2], pooled_shape[3]])
        else:
            sizes = [
                pooled_shape[1 + axis] * self.pool_size[axis]
                if self.strides[axis] == self.pool_size[axis]
                else (pooled_shape[1 + axis] - 1) * self.strides[axis] + self.pool_size[axis]
                for axis in (0, 1)
            ]
            output_shape = tf.stack([pooled_shape[0], sizes[0], sizes[1], pooled_shape[3]])
        if tf.executing_eagerly():
            _validate_eagerly(values, switches, self.index_format, output_shape, self.pool_size, self.strides)

        if sw.is_non_overlapping(self.pool_size, self.strides, tuple(values.shape[1:3])):
            window = switches
            if self.index_format != "window":
                window = sw.convert_switches(switches, self.index_format, "window", output_shape, self.pool_size, self.strides)
            litert = formulation.litert_active() and self.index_format == "window" and not formulation.integer_active()
            if litert or formulation.integer_active():
                formulation.mark_used()
            out = (_litert_interleave if litert else _interleave)(values, window, self.pool_size)
            if reference is None or self._fits_exactly(values.shape, reference.shape):
                return out
            # Odd sizes: "same" windows overhang the input (crop); "valid" ones
            # leave uncovered rows/columns at the bottom/right (zero-pad).
            out = out[:, : output_shape[1], : output_shape[2], :]
            if not self._covers(values.shape, reference.shape):
                missing_h = tf.maximum(output_shape[1] - tf.shape(out)[1], 0)
                missing_w = tf.maximum(output_shape[2] - tf.shape(out)[2], 0)
                out = tf.pad(out, [[0, 0], [0, missing_h], [0, missing_w], [0, 0]])
            return out
        index = sw.convert_switches(switches, self.index_format, "flat_batch", output_shape, self.pool_size, self.strides)
        return _scatter(values, index, output_shape)

    def compute_output_shape(self, input_shape):
        values_shape = input_shape[0]
        if len(input_shape) == 3:
            reference_shape = input_shape[2]
            return (values_shape[0], reference_shape[1], reference_shape[2], values_shape[3])
        return (
            values_shape[0],
            self._default_size(values_shape[1], 0),
            self._default_size(values_shape[2], 1),
            values_shape[3],
        )

    def compute_output_spec(self, inputs):
        values, _, _ = self._split_inputs(inputs)
        shape = self.compute_output_shape([tuple(t.shape) for t in inputs])
        return keras.KerasTensor(shape, dtype=values.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "strides": self.strides,
                "index_format": self.index_format,
                "data_format": self.data_format,
            }
        )
        return config


def _dtype_is_integer(dtype):
    name = getattr(dtype, "name", dtype)
    return str(name).startswith(("int", "uint"))


def _check_static_match(shape_a, shape_b, name_a, name_b):
    for dim_a, dim_b in zip(tuple(shape_a), tuple(shape_b)):
        if dim_a is not None and dim_b is not None and dim_a != dim_b:
            raise ValueError(f"MaxUnpooling2D: {name_a} shape {tuple(shape_a)} does not match {name_b} shape {tuple(shape_b)}.")
