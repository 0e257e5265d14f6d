"""Convolutions used as fully connected layers (VGG's fc6, DeconvNet's fc6-deconv).

DeconvNet's fc6 is a 7x7 convolution of the 7x7 pool5 map (output 1x1) and
fc6-deconv a 7x7 transposed convolution of the 1x1 fc7 map. Both are exactly
one matrix product with the kernel reshaped, and TensorFlow's, XLA's and
LiteRT's CPU convolution kernels are several times slower than that matmul on
these shapes (fc6-deconv: ~200 ms vs ~15 ms at full size on 2 cores). These
layers keep the Keras layer types' weights, names and configs, and switch to
the matmul when the (static) input size makes the layer fully connected;
otherwise they are the ordinary convolution (e.g. FCN-8s' fc6 on large maps).
"""

import keras
import tensorflow as tf
from keras.layers import Conv2D, Conv2DTranspose


def _plain(layer):
    return layer.padding == "valid" and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)


def _finish(layer, outputs):
    if layer.use_bias:
        # outputs - (-bias) is outputs + bias exactly (IEEE defines a - b as a + (-b)), but XLA
        # on CPU fuses a plain add into a matrix-vector dot and then runs its own GEMV instead
        # of the library one: fc6 at batch 1 took 27 ms instead of 17 (python bench/fc_layers.py).
        outputs = keras.ops.subtract(outputs, keras.ops.negative(layer.bias))
    return layer.activation(outputs) if layer.activation is not None else outputs


@keras.saving.register_keras_serializable(package="keras_deconv")
class FullyConnectedConv2D(Conv2D):
    """``Conv2D`` that runs as a matmul when its kernel covers the whole input.

    >>> import numpy as np
    >>> layer = FullyConnectedConv2D(4, 3, name="fc6")
    >>> tuple(layer(np.ones((2, 3, 3, 5), "float32")).shape)   # matmul path
    (2, 1, 1, 4)
    >>> tuple(layer(np.ones((2, 6, 6, 5), "float32")).shape)   # convolution path
    (2, 4, 4, 4)
    """

    def call(self, inputs):
        kernel_h, kernel_w = self.kernel_size
        if not (_plain(self) and tuple(inputs.shape[1:3]) == (kernel_h, kernel_w)):
            return super().call(inputs)
        in_channels = inputs.shape[-1]
        flat = keras.ops.reshape(inputs, (-1, kernel_h * kernel_w * in_channels))
        outputs = keras.ops.matmul(flat, keras.ops.reshape(self.kernel, (kernel_h * kernel_w * in_channels, self.filters)))
        return _finish(self, keras.ops.reshape(outputs, (-1, 1, 1, self.filters)))


@keras.saving.register_keras_serializable(package="keras_deconv")
class FullyConnectedConv2DTranspose(Conv2DTranspose):
    """``Conv2DTranspose`` that runs as a matmul on a 1x1 input.

    ``y[b, i, j, o] = sum_c x[b, c] * K[i, j, o, c]`` with the Keras kernel
    ``K`` of shape ``(kh, kw, out, in)``.

    >>> import numpy as np
    >>> layer = FullyConnectedConv2DTranspose(4, 3, name="fc6-deconv")
    >>> tuple(layer(np.ones((2, 1, 1, 5), "float32")).shape)
    (2, 3, 3, 4)
    """

    def call(self, inputs):
        if not (_plain(self) and tuple(inputs.shape[1:3]) == (1, 1)):
            return super().call(inputs)
        kernel_h, kernel_w = self.kernel_size
        in_channels = inputs.shape[-1]
        # (kh, kw, out, in) -> (kh*kw*out, in) is a free reshape; the matmul contracts the
        # kernel's minor axis (transpose_b) instead of materialising a transposed copy, which
        # cost ~120 ms (graph) and ~170 ms (XLA) per call at full size: the kernel is 411 MB
        # (python bench/fc_layers.py).
        matrix = keras.ops.reshape(self.kernel, (kernel_h * kernel_w * self.filters, in_channels))
        outputs = tf.linalg.matmul(keras.ops.reshape(inputs, (-1, in_channels)), matrix, transpose_b=True)
        return _finish(self, keras.ops.reshape(outputs, (-1, kernel_h, kernel_w, self.filters)))
