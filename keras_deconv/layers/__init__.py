"""Keras layers of the DeconvNet family.

Argmax pooling and unpooling (exact Caffe semantics, XLA- and builtin-TFLite
friendly), the switch-format conversions, and the network-specific layers.

>>> import numpy as np
>>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
>>> x = np.random.rand(1, 4, 4, 8).astype("float32")
>>> pooled, switches = MaxPoolingWithArgmax2D()(x)
>>> tuple(MaxUnpooling2D()([pooled, switches, x]).shape)
(1, 4, 4, 8)
"""

from keras_deconv.layers.argmax_pooling import MaxPoolingWithArgmax2D, max_pool_with_switches
from keras_deconv.layers.switches import (
    INDEX_FORMATS,
    convert_switches,
    flat_to_plane,
    flat_to_window,
    plane_to_flat,
    plane_to_window,
    window_to_flat,
    window_to_plane,
)
from keras_deconv.layers.unpooling import MaxUnpooling2D

# Network layers
from keras_deconv.layers.affine import ChannelAffine
from keras_deconv.layers.attention import FilterSum, LinearSum
from keras_deconv.layers.bilinear import BilinearUpsamplingInitializer, bilinear_kernel
from keras_deconv.layers.crop import CropToReference
from keras_deconv.layers.fused_batch_norm import FusedBatchNormalization
from keras_deconv.layers.relu_mask import ReLUWithMask
from keras_deconv.layers.transposable_conv import TransposableConv2D
from keras_deconv.layers.fully_connected_conv import FullyConnectedConv2D, FullyConnectedConv2DTranspose
