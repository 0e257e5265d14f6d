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


def _kernel_unpool(values, argmax, like, pool_size, padding):
    """Unpooling with TensorFlow's ``MaxPoolGradWithArgmax`` kernel (the kernel formulation).

    ``argmax`` are ``tf.nn.max_pool_with_argmax``'s int64 indices with the
    batch; ``like`` has the output's shape. The kernel scatters the values
    there; the adjoint, the gradient of the values, gathers at the same
    indices. ``padding`` is the pooling's (the kernel checks the shapes).
    """
    window = [1, pool_size[0], pool_size[1], 1]

    @tf.custom_gradient
    def unpool(values):
        out = tf.raw_ops.MaxPoolGradWithArgmax(input=like, grad=values, argmax=argmax, ksize=window, strides=window,
                                               padding=padding, include_batch_in_index=True)

        def grad(upstream):
            return tf.reshape(tf.gather(tf.reshape(upstream, [-1]), argmax), tf.shape(values))

        return out, grad

    return unpool(values)


def _scatter_targets(switches, index_format, output_shape, pool_size, strides):
    """Where each switch puts its value in the flattened output, and whether that is inside it.

    Flat indices are taken at face value: a ``"flat"`` index is the position
    in its image (channel included, exactly as ``tf.scatter_nd`` would use it),
    a ``"flat_batch"`` one the position in the whole batch. A ``"plane"``
    index ``y * W + x`` keeps its element's image and channel, and a window
    position becomes coordinates inside its window first. Returns
    ``(targets, inside)``: integer positions in ``[B*H*W*C]`` and a boolean
    mask, both shaped like ``switches``.
    """
    dtype = tf.int64 if switches.dtype == tf.int64 else tf.int32
    index = tf.cast(switches, dtype)
    batch, height, width, channels = tf.unstack(tf.cast(output_shape, dtype))
    shape = tf.shape(index, out_type=dtype)
    b = tf.reshape(tf.range(shape[0], dtype=dtype), [-1, 1, 1, 1])
    c = tf.reshape(tf.range(shape[3], dtype=dtype), [1, 1, 1, -1])
    if index_format == "window":
        y, x = sw.switch_coordinates(index, "window", output_shape, pool_size, strides)
        inside = (index >= 0) & (index < pool_size[0] * pool_size[1]) & (y < height) & (x < width)
        return ((b * height + y) * width + x) * channels + c, inside
    if index_format == "flat_batch":
        limit = batch * height * width * channels
        targets = index
    elif index_format == "flat":
        limit = height * width * channels
        targets = b * limit + index
    else:  # plane
        limit = height * width
        targets = (b * limit + index) * channels + c
    return targets, (index >= 0) & (index < limit)


def _scatter(values, targets, output_shape):
    """Scatter into the flattened output; values sent to the same position add up."""
    size = tf.reduce_prod(tf.cast(output_shape, targets.dtype))
    out = tf.scatter_nd(tf.reshape(targets, [-1, 1]), tf.reshape(values, [-1]), tf.reshape(size, [1]))
    return tf.reshape(out, output_shape)


#: What a valid switch is, per index format (for the error messages).
_RANGE_RULES = {
    "window": "window positions must be in [0, pool_h * pool_w) and point inside the output",
    "flat": "'flat' indices (per image, include_batch_in_index=False) must be in [0, H*W*C)",
    "flat_batch": "'flat_batch' indices (include_batch_in_index=True) must be in [0, B*H*W*C)",
    "plane": "'plane' indices y * W + x must be in [0, H*W)",
}


def _range_error(layer, switches, inside, output_shape):
    """The eager ValueError for switches outside the output: names the layer, the first bad switch and the output shape."""
    bad = tf.where(tf.logical_not(inside))
    if int(tf.shape(bad)[0]) == 0:
        return None
    first = tuple(int(i) for i in bad[0])
    low, high = int(tf.reduce_min(switches)), int(tf.reduce_max(switches))
    batch, height, width, channels = (int(d) for d in output_shape)
    limit = {"window": layer.pool_size[0] * layer.pool_size[1], "flat": height * width * channels,
             "flat_batch": batch * height * width * channels, "plane": height * width}[layer.index_format]
    return ValueError(
        f"MaxUnpooling2D {layer.name!r}: switches out of range (min {low}, max {high}). The {layer.index_format!r} "
        f"switch {int(switches[first])} at position {first} lies outside the output of shape "
        f"{tuple(int(d) for d in output_shape)}: {_RANGE_RULES[layer.index_format]} (here [0, {limit})). Check index_format / "
        "include_batch_in_index and the output size (pooled_input, output_size or padding)."
    )


def _graph_range_check(layer, switches, inside, output_shape):
    """Compiled-graph counterpart of :func:`_range_error`: an ``InvalidArgumentError`` when the graph runs.

    XLA compiles ``Assert`` to nothing and the TFLite converter drops it; there
    the out-of-range switches are sent past the end of the output (see
    :meth:`MaxUnpooling2D.call`), which XLA's scatter drops and TFLite's
    ``SCATTER_ND`` refuses ("index out of bounds").
    """
    ok = tf.reshape(inside, [-1])
    # A trailing 0 keeps argmin defined for empty inputs; it is found only when all are inside.
    first = tf.argmin(tf.concat([tf.cast(ok, tf.int32), [0]], 0), output_type=tf.int32)
    value = tf.gather(tf.concat([tf.reshape(tf.cast(switches, tf.int64), [-1]), [0]], 0), first)
    return tf.debugging.Assert(
        tf.reduce_all(ok),
        # No quotes: the printed message would show them escaped.
        [f"MaxUnpooling2D layer {layer.name}: switches out of range. The {layer.index_format} switch", value,
         "at flat position", first, "of the switches lies outside the output of shape", output_shape,
         f": {_RANGE_RULES[layer.index_format]}.".replace("'", "")],
        summarize=8,
    )


@keras.saving.register_keras_serializable(package="keras_deconv")
class MaxUnpooling2D(keras.layers.Layer):
    """Inverse of :class:`MaxPoolingWithArgmax2D`: values back at their switches.

    Takes ``[values, switches]`` or ``[values, switches, pooled_input]`` and
    returns a tensor the size of the pooled-from tensor with each value at the
    position its switch records and zeros elsewhere (Caffe's ``UNPOOLING``
    with ``unpool: MAX``).

    **Guarantee.** Every value lands exactly where its switch points, for any
    pool size, strides (overlapping or not), output size and batch size: with
    flat indices the result is ``tf.scatter_nd`` of the values at those
    indices, bit for bit. A switch that points outside the output raises (a
    ``ValueError`` in eager calls, ``tf.errors.InvalidArgumentError`` when a
    compiled graph runs) with the layer's name, the first bad switch and the
    output shape; it is never written somewhere else. XLA compiles the check
    away and drops such values; in TFLite, ``SCATTER_ND`` refuses to run.

    **Output size** (height, width), first that applies:

    1. the third input, the tensor that was pooled (only its shape is used),
       so odd sizes are restored exactly;
    2. ``output_size``;
    3. from the pooled size ``n`` by the ``padding`` rule of
       ``tf.nn.max_pool_with_argmax`` / tensorflow-addons: ``"valid"``
       (default) ``(n - 1) * stride + pool``, ``"same"`` ``n * stride``.

    **Collision rule:** when two switches point at the same output position
    (only possible with overlapping windows, or with arbitrary flat indices)
    their values are *summed*, as ``tf.scatter_nd`` does; for real pooling
    switches this makes the layer the exact adjoint of the pooling (it equals
    TensorFlow's ``MaxPoolGradWithArgmax``). Caffe's CPU unpooling assigns
    instead (the last write wins); the two agree whenever colliding values
    are equal, e.g. when unpooling the pooled values themselves.

    Two code paths, chosen automatically:

    * window switches (``index_format="window"``) and non-overlapping
      windows (``strides == pool_size``, or a pooled axis of static length
      1): the output is assembled with selects and a reshape, no scatter.
      Fast, XLA-fusable, builtin-only TFLite. Window positions cannot leave
      their window, so this is exact.
    * everything else (flat or plane indices, overlapping windows): an index
      scatter (``tf.scatter_nd``), with the range check above.

    Inside :func:`keras_deconv.layers.formulation.kernel_formulation` (training
    steps without XLA), the int64 flat switches that the pooling layer makes
    there are unpooled by TensorFlow's ``MaxPoolGradWithArgmax`` kernel.

    Args:
        pool_size: int or pair, as used by the pooling. Default 2.
        strides: int or pair; defaults to ``pool_size``.
        index_format: format of the switches: ``"window"`` (default, as
            emitted by :class:`MaxPoolingWithArgmax2D`), ``"flat"`` or
            ``"flat_batch"`` (``tf.nn.max_pool_with_argmax`` indices without /
            with the batch offset), or ``"plane"`` (Caffe/PyTorch per-plane
            ``y * W + x``, transposed to NHWC).
        include_batch_in_index: ``True`` for flat indices that include the
            batch, as ``tf.nn.max_pool_with_argmax(include_batch_in_index=True)``
            emits them: the same as ``index_format="flat_batch"``. ``None``
            (default) follows ``index_format``; ``False`` with ``"flat_batch"``
            is a contradiction and raises.
        padding: ``"valid"`` (default) or ``"same"``: the output-size rule
            when there is neither a third input nor ``output_size`` (see
            above). Upper case is accepted.
        output_size: optional ``(height, width)`` of the output, for when the
            pooled-from tensor is not at hand. With window switches it must
            pool to the values' size.
        data_format: only ``"channels_last"`` is supported.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
    >>> x = np.random.rand(2, 5, 7, 3).astype("float32")
    >>> pooled, switches = MaxPoolingWithArgmax2D()(x)
    >>> restored = MaxUnpooling2D()([pooled, switches, x])
    >>> tuple(restored.shape)
    (2, 5, 7, 3)

    Indices of ``tf.nn.max_pool_with_argmax`` with a 3x3 pool and stride 2:

    >>> import tensorflow as tf
    >>> x = tf.random.normal((2, 7, 9, 3))
    >>> pooled, index = tf.nn.max_pool_with_argmax(x, 3, 2, "VALID", include_batch_in_index=True)
    >>> up = MaxUnpooling2D(3, 2, index_format="flat", include_batch_in_index=True)([pooled, index])
    >>> tuple(up.shape)
    (2, 7, 9, 3)
    """

    def __init__(self, pool_size=2, strides=None, index_format="window", data_format=None, include_batch_in_index=None,
                 padding="valid", output_size=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = sw.normalize_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else sw.normalize_pair(strides, "strides")
        self.index_format = _resolve_index_format(sw.check_index_format(index_format), include_batch_in_index)
        self.data_format = _check_channels_last(data_format, type(self).__name__)
        if not isinstance(padding, str) or padding.lower() not in sw.PADDINGS:
            raise ValueError(f"MaxUnpooling2D: expected `padding` to be one of {sw.PADDINGS}. Received: padding={padding!r}")
        self.padding = padding.lower()
        self.output_size = None if output_size is None else sw.normalize_pair(output_size, "output_size")

    @property
    def include_batch_in_index(self):
        """True when the switches are flat indices that include the batch (``index_format="flat_batch"``)."""
        return self.index_format == "flat_batch"

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
            self._check_pooled_from(values.shape, reference.shape, "pooled_input")
            if self.output_size is not None:
                _check_static_match(reference.shape[1:3], self.output_size, "pooled_input (height, width)", "output_size")
        elif self.output_size is not None and self.index_format == "window":
            self._check_pooled_from(values.shape, (None, *self.output_size, None), "output_size")
        return values, switches, reference

    def _check_pooled_from(self, values_shape, reference_shape, what):
        # The output size must be one that pools to the values' size.
        for axis in (0, 1):
            pooled, full = values_shape[1 + axis], reference_shape[1 + axis]
            if pooled is None or full is None:
                continue
            pool, stride = self.pool_size[axis], self.strides[axis]
            allowed = {sw.pooled_length(full, pool, stride, padding) for padding in sw.PADDINGS}
            if self.index_format != "window":
                allowed.add(-(-full // stride))  # TensorFlow's SAME, whose windows may start before the image
            if pooled not in allowed:
                shown = f"{what} of shape {tuple(reference_shape)}" if what == "pooled_input" else f"output_size={self.output_size}"
                raise ValueError(
                    f"MaxUnpooling2D: {shown} does not pool to values of shape "
                    f"{tuple(values_shape)} with pool_size={self.pool_size}, strides={self.strides}. "
                    "Pass the tensor that was given to the matching MaxPoolingWithArgmax2D."
                )

    def _size_from_rule(self, pooled_length, axis):
        """Output length from the pooled length by the ``padding`` rule (ints or scalar tensors)."""
        if pooled_length is None:
            return None
        if self.padding == "same":
            return pooled_length * self.strides[axis]
        return (pooled_length - 1) * self.strides[axis] + self.pool_size[axis]

    def _static_output_hw(self, values_shape, reference_shape):
        if reference_shape is not None:
            return tuple(reference_shape[1:3])
        if self.output_size is not None:
            return self.output_size
        return tuple(self._size_from_rule(values_shape[1 + axis], axis) for axis in (0, 1))

    def _fits_exactly(self, values_shape, output_hw):
        # Statically known that the interleaved windows are the output size.
        return all(
            values_shape[1 + axis] is not None
            and output_hw[axis] is not None
            and values_shape[1 + axis] * self.pool_size[axis] == output_hw[axis]
            for axis in (0, 1)
        )

    def _covers(self, values_shape, output_hw):
        # Statically known that the interleaved windows reach the output size.
        for axis in (0, 1):
            pooled, full = values_shape[1 + axis], output_hw[axis]
            if pooled is None or full is None or pooled * self.pool_size[axis] < full:
                return False
        return True

    def call(self, inputs):
        values, switches, reference = self._split_inputs(inputs)
        pooled_shape = tf.shape(values)
        if reference is not None:
            output_hw = tf.shape(reference)[1:3]
        elif self.output_size is not None:
            output_hw = tf.constant(self.output_size, tf.int32)
        else:
            output_hw = tf.stack([self._size_from_rule(pooled_shape[1 + axis], axis) for axis in (0, 1)])
        output_shape = tf.stack([pooled_shape[0], output_hw[0], output_hw[1], pooled_shape[3]])
        static_hw = self._static_output_hw(values.shape, None if reference is None else reference.shape)
        eager = tf.executing_eagerly()
        kernel = switches.dtype == tf.int64 and self.index_format == "window" and formulation.kernel_active()
        if eager and not kernel:
            self._validate_eagerly(values, switches, output_shape)

        if kernel:
            # The kernel formulation's switches: flat indices with the batch (see MaxPoolingWithArgmax2D).
            formulation.mark_used()
            padding = self._kernel_padding(values.shape, static_hw)
            if padding is not None:
                like = tf.stop_gradient(reference) if reference is not None else tf.zeros(output_shape, values.dtype)
                return _kernel_unpool(values, switches, like, self.pool_size, padding)
            targets, inside = _scatter_targets(switches, "flat_batch", output_shape, self.pool_size, self.strides)
            return _scatter(values, targets, output_shape)

        if self.index_format == "window" and sw.is_non_overlapping(self.pool_size, self.strides, tuple(values.shape[1:3])):
            litert = formulation.litert_active() and not formulation.integer_active()
            if litert or formulation.integer_active():
                formulation.mark_used()
            out = (_litert_interleave if litert else _interleave)(values, switches, self.pool_size)
            by_rule = reference is None and self.output_size is None and (self.padding == "valid" or self.strides == self.pool_size)
            if by_rule or self._fits_exactly(values.shape, static_hw):
                return out  # the windows tile the output exactly
            # Odd sizes: "same" windows overhang the input (crop); "valid" ones
            # leave uncovered rows/columns at the bottom/right (zero-pad).
            out = out[:, : output_shape[1], : output_shape[2], :]
            if not self._covers(values.shape, static_hw):
                missing_h = tf.maximum(output_shape[1] - tf.shape(out)[1], 0)
                missing_w = tf.maximum(output_shape[2] - tf.shape(out)[2], 0)
                out = tf.pad(out, [[0, 0], [0, missing_h], [0, missing_w], [0, 0]])
            return out

        targets, inside = _scatter_targets(switches, self.index_format, output_shape, self.pool_size, self.strides)
        checks = [] if eager else [_graph_range_check(self, switches, inside, output_shape)]
        with tf.control_dependencies(checks):
            # Where the check is compiled away (XLA, TFLite), a switch outside the
            # output goes past the end of the buffer (XLA drops it, TFLite refuses
            # it) instead of into a neighbouring row or image.
            outside = tf.reduce_prod(tf.cast(output_shape, targets.dtype))
            targets = tf.where(inside, targets, outside)
        return _scatter(values, targets, output_shape)

    def _kernel_padding(self, values_shape, output_hw):
        """The pooling's padding (``"SAME"``/``"VALID"``) from static sizes; None when a size is unknown."""
        modes = set()
        for axis in (0, 1):
            pooled, full = values_shape[1 + axis], output_hw[axis]
            if pooled is None or full is None:
                return None
            if full % self.pool_size[axis]:
                modes.add("SAME" if pooled * self.pool_size[axis] > full else "VALID")
        return modes.pop() if len(modes) == 1 else ("VALID" if not modes else None)

    def _validate_eagerly(self, values, switches, output_shape):
        """Shape and range checks that need concrete values (eager calls only)."""
        if values.shape != switches.shape:
            raise ValueError(
                f"MaxUnpooling2D: values and switches must have the same shape. "
                f"Received values {tuple(values.shape)} and switches {tuple(switches.shape)}."
            )
        if tf.size(switches) == 0:
            return
        _, inside = _scatter_targets(switches, self.index_format, output_shape, self.pool_size, self.strides)
        error = _range_error(self, switches, inside, output_shape)
        if error is not None:
            raise error

    def compute_output_shape(self, input_shape):
        values_shape = input_shape[0]
        reference_shape = input_shape[2] if len(input_shape) == 3 else None
        height, width = self._static_output_hw(values_shape, reference_shape)
        return (values_shape[0], height, width, values_shape[3])

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
                "include_batch_in_index": self.include_batch_in_index,
                "padding": self.padding,
                "output_size": self.output_size,
                "data_format": self.data_format,
            }
        )
        return config


def _resolve_index_format(index_format, include_batch_in_index):
    """``include_batch_in_index=True`` turns ``"flat"`` into ``"flat_batch"``; contradictions raise."""
    if include_batch_in_index is None:
        return index_format
    if include_batch_in_index not in (True, False):
        raise ValueError(f"MaxUnpooling2D: `include_batch_in_index` must be True, False or None. Received: {include_batch_in_index!r}")
    if include_batch_in_index:
        if index_format not in ("flat", "flat_batch"):
            raise ValueError(
                f"MaxUnpooling2D: include_batch_in_index=True applies to flat indices only. Received: index_format={index_format!r}. "
                "Use index_format='flat' with it (tf.nn.max_pool_with_argmax's indices)."
            )
        return "flat_batch"
    if index_format == "flat_batch":
        raise ValueError(
            "MaxUnpooling2D: index_format='flat_batch' means indices that include the batch, but include_batch_in_index=False. "
            "Drop one of the two."
        )
    return index_format


def _dtype_is_integer(dtype):
    name = getattr(dtype, "name", dtype)
    return str(name).startswith(("int", "uint"))


def _check_static_match(shape_a, shape_b, name_a, name_b):
    for dim_a, dim_b in zip(tuple(shape_a), tuple(shape_b)):
        if dim_a is not None and dim_b is not None and dim_a != dim_b:
            raise ValueError(f"MaxUnpooling2D: {name_a} shape {tuple(shape_a)} does not match {name_b} shape {tuple(shape_b)}.")
