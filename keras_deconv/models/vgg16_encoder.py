"""The VGG-16 convolutional encoder shared by all four networks."""

import keras

from keras_deconv.layers import MaxPoolingWithArgmax2D
from keras_deconv.models._blocks import conv_block, scaled

#: Output channels of conv{block}_{i}, block by block (VGG-16 configuration D).
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))

POOLINGS = ("argmax", "max")


def vgg16_encoder(x, *, width=1.0, batch_norm=None, num_pools=5, pooling="argmax", first_pad=None):
    """Applies VGG-16 conv1_1 ... conv5_3 and the pools to ``x``; returns the Caffe blobs.

    Layer names follow the Caffe prototxts: ``conv1_1``, ``bn1_1`` (only when
    ``batch_norm`` is given, as in DeconvNet), ``relu1_1``, ``pool1`` ...

    Args:
        x: preprocessed image tensor ``(batch, H, W, 3)``.
        width: channel multiplier (1.0 = official).
        batch_norm: ``None`` (no BN, VGG as in DecoupledNet, TransferNet and
            FCN-8s), ``"folded"`` or ``"trainable"`` (BN after every conv, as
            in DeconvNet).
        num_pools: how many of pool1 ... pool5 to apply (TransferNet: 4).
        pooling: ``"argmax"`` (MaxPoolingWithArgmax2D, emits ``poolN_mask``
            switches for the decoder) or ``"max"`` (plain Keras max pooling
            in Caffe's ceil mode, FCN-8s).
        first_pad: ``None`` (every conv keeps the size, Caffe pad 1) or an int:
            zero padding applied before a ``"valid"`` conv1_1 (FCN-8s: 100).

    Returns:
        A dict of Caffe blob name -> tensor: ``conv{b}_{i}`` (after ReLU),
        ``pool{b}`` and, with argmax pooling, ``pool{b}_mask``.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"Expected `pooling` to be one of {POOLINGS}. Received: pooling={pooling!r}")
    blobs = {}
    for block, channels in enumerate(VGG16_BLOCKS, start=1):
        for index, filters in enumerate(channels, start=1):
            tag = f"{block}_{index}"
            padding = "same"
            if tag == "1_1" and first_pad is not None:
                # Caffe conv1_1 `pad: 100`: pad the mean-subtracted image with zeros.
                x = keras.layers.ZeroPadding2D(first_pad, name=f"conv{tag}_pad")(x)
                padding = "valid"
            bn_name = f"bn{tag}" if batch_norm is not None else None
            x = conv_block(x, scaled(filters, width), 3, f"conv{tag}", f"relu{tag}", bn_name, batch_norm, padding)
            blobs[f"conv{tag}"] = x
        if block > num_pools:
            continue
        name = f"pool{block}"
        if pooling == "argmax":
            x, switches = MaxPoolingWithArgmax2D(pool_size=2, strides=2, padding="same", name=name)(x)
            blobs[f"{name}_mask"] = switches
        else:
            # 'same' with k == s is Caffe's ceil mode (partial last window).
            x = keras.layers.MaxPooling2D(pool_size=2, strides=2, padding="same", name=name)(x)
        blobs[name] = x
    return blobs
