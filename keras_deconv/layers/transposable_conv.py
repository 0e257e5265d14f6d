"""Convolution that can also apply its own transpose (its input gradient)."""

import keras


@keras.saving.register_keras_serializable(package="keras_deconv")
class TransposableConv2D(keras.layers.Conv2D):
    """``Conv2D`` whose call can apply the transposed linear map, sharing the kernel.

    ``layer(x)`` is the ordinary convolution. ``layer(g, transpose=True)`` is
    the vector-Jacobian product of the convolution's linear part:
    ``conv_transpose(g, kernel)`` without bias, i.e. the gradient of
    ``sum(layer(x) * g)`` with respect to ``x``. DecoupledNet's
    ``bridging="gradient"`` mode back-propagates class scores this way with
    the forward layers' own weights (instead of the stored copies
    ``cls-score-voc-bp``, ``fc7-bp``, ``fc6-bp``). In a functional model the
    same layer is simply called twice, so the weights exist once and the
    ``transpose`` flag is saved with the graph.

    Supports stride 1 and dilation 1, ``"valid"`` or ``"same"`` padding,
    ``groups=1`` (all that DecoupledNet needs). Call the layer forward once
    before calling it transposed, so that it is built from the forward input.

    Example:

    >>> import numpy as np
    >>> layer = TransposableConv2D(4, 3)
    >>> y = layer(np.ones((1, 5, 5, 2), "float32"))
    >>> tuple(layer(y, transpose=True).shape)
    (1, 5, 5, 2)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.strides != (1, 1) or self.dilation_rate != (1, 1) or self.groups != 1:
            raise ValueError(
                "TransposableConv2D supports strides=1, dilation_rate=1 and groups=1 only. "
                f"Received: strides={self.strides}, dilation_rate={self.dilation_rate}, groups={self.groups}"
            )
        if self.data_format != "channels_last":
            raise ValueError(f"TransposableConv2D supports channels_last only. Received: data_format={self.data_format!r}")

    def build(self, input_shape):
        super().build(input_shape)
        # Transposed calls take `filters` channels, so only the rank is checked
        # up front; the kernel contraction checks the channel count.
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs, transpose=False):
        if not transpose:
            return super().call(inputs)
        kernel = keras.ops.cast(self.kernel, inputs.dtype)
        return keras.ops.conv_transpose(inputs, kernel, strides=1, padding=self.padding, data_format="channels_last")

    def compute_output_spec(self, inputs, transpose=False):
        if not transpose:
            return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)
        batch, height, width, _ = inputs.shape
        if self.padding == "valid":
            grow = lambda length, k: None if length is None else length + k - 1  # noqa: E731
            height, width = grow(height, self.kernel_size[0]), grow(width, self.kernel_size[1])
        in_channels = self.kernel.shape[2] if self.built else None
        return keras.KerasTensor((batch, height, width, in_channels), dtype=self.compute_dtype)
