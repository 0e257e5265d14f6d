"""Small building blocks shared by the model builders (private).

Every helper names its layers after the Caffe layers they reproduce; callers
pass those names explicitly so each builder reads like its prototxt.
"""

import keras

from keras_deconv.layers.fully_connected_conv import FullyConnectedConv2D, FullyConnectedConv2DTranspose
from keras_deconv.layers.affine import ChannelAffine
from keras_deconv.layers.fused_batch_norm import FusedBatchNormalization
from keras_deconv.preprocessing import CaffePreprocessing

BATCH_NORM_MODES = ("folded", "trainable")

#: Epsilon of ``batch_norm="trainable"``. Caffe's BN uses 1e-9, too small to
#: be safe in float16; folded (inference) weights do not depend on it.
TRAINABLE_BN_EPSILON = 1e-5

#: The layer of ``batch_norm="trainable"``: Keras's BatchNormalization on TensorFlow's fused kernel
#: (same weights and results, a faster training step; bench/train_step.py --keras-bn times the two).
TRAINABLE_BN_LAYER = FusedBatchNormalization


def scaled(channels, width):
    """Channel count of a width-scaled variant: ``round(channels * width)``, at least 1."""
    return max(1, int(round(channels * width)))


def check_width(width):
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"Expected `width` to be a positive number (1.0 = official size). Received: width={width!r}")
    return float(width)


def check_units(value, name, default):
    """``None`` -> ``default``; else a positive int."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive int or None. Received: {name}={value!r}")
    return value


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive int. Received: {name}={value!r}")
    return value


def check_batch_norm(batch_norm):
    if batch_norm not in BATCH_NORM_MODES:
        raise ValueError(f"Expected `batch_norm` to be one of {BATCH_NORM_MODES}. Received: batch_norm={batch_norm!r}")
    return batch_norm


def check_input_shape(input_shape, static=False):
    """``(H, W, 3)``; ``static=True`` requires known H and W."""
    try:
        shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"Expected `input_shape` to be (height, width, 3). Received: input_shape={input_shape!r}")
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"Expected `input_shape` to be (height, width, 3) for RGB images. Received: input_shape={input_shape!r}")
    if static and (shape[0] is None or shape[1] is None):
        raise ValueError(
            "This network has layers whose size depends on the input size (as in Caffe): "
            f"`input_shape` needs a known height and width. Received: input_shape={input_shape!r}"
        )
    if any(d is not None and d < 1 for d in shape[:2]):
        raise ValueError(f"Expected positive image sizes. Received: input_shape={input_shape!r}")
    return shape


def image_input(input_shape, include_preprocessing, name="data"):
    """The ``data`` input and, by default, the Caffe preprocessing applied to it."""
    inputs = keras.Input(shape=input_shape, name=name)
    x = CaffePreprocessing(name=f"{name}_preprocessing")(inputs) if include_preprocessing else inputs
    return inputs, x


def batch_norm_layer(batch_norm, name):
    """Caffe ``BN`` (inference mode) as a Keras layer named like the Caffe layer."""
    if batch_norm == "folded":
        return ChannelAffine(name=name)
    return TRAINABLE_BN_LAYER(epsilon=TRAINABLE_BN_EPSILON, name=name)


def conv_block(x, filters, kernel_size, name, relu_name, bn_name=None, batch_norm=None, padding="same"):
    """Convolution (+ BN) + ReLU: Caffe ``conv`` (+ in-place ``bn``) + in-place ``relu``."""
    # "valid" convolutions are the fc layers (fc6): a matmul where they are fully connected.
    conv = FullyConnectedConv2D if padding == "valid" else keras.layers.Conv2D
    x = conv(filters, kernel_size, padding=padding, name=name)(x)
    if bn_name is not None:
        x = batch_norm_layer(batch_norm, bn_name)(x)
    return keras.layers.ReLU(name=relu_name)(x)


def deconv_block(x, filters, kernel_size, name, relu_name, bn_name=None, batch_norm=None, padding="same"):
    """Deconvolution (+ BN) + ReLU. ``padding="same"`` = Caffe ``pad: 1`` for 3x3, stride 1."""
    deconv = FullyConnectedConv2DTranspose if padding == "valid" else keras.layers.Conv2DTranspose
    x = deconv(filters, kernel_size, padding=padding, name=name)(x)
    if bn_name is not None:
        x = batch_norm_layer(batch_norm, bn_name)(x)
    return keras.layers.ReLU(name=relu_name)(x)


def load_weights_argument(model, weights):
    """``weights=None`` (random init) or a path to a Keras weights file."""
    if weights is None:
        return model
    if not isinstance(weights, str):
        raise ValueError(f"Expected `weights` to be None or a path to a .weights.h5 file. Received: weights={weights!r}")
    model.load_weights(weights)
    return model
