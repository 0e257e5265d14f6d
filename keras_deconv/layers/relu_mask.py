"""ReLU that also returns its derivative mask (the DecoupledNet Caffe fork's two-top ReLU)."""

import keras


@keras.saving.register_keras_serializable(package="keras_deconv")
class ReLUWithMask(keras.layers.Layer):
    """Returns ``(relu(x), mask)`` with ``mask = 1 where x > 0 else 0``.

    The mask is ReLU's derivative with Caffe's convention ``ReLU'(0) = 0``;
    DecoupledNet multiplies back-propagated maps by it (``relu6-mask``,
    ``relu7-mask``) to emulate back-propagation through the ReLU. Both
    outputs have the layer's compute dtype.

    Example:

    >>> import numpy as np
    >>> y, mask = ReLUWithMask()(np.array([[-1.0, 0.0, 2.0]], "float32"))
    >>> [float(v) for v in y[0]], [float(v) for v in mask[0]]
    ([0.0, 0.0, 2.0], [0.0, 0.0, 1.0])
    """

    def call(self, inputs):
        positive = inputs > 0
        zero = keras.ops.zeros_like(inputs)
        return keras.ops.where(positive, inputs, zero), keras.ops.cast(positive, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), tuple(input_shape)
