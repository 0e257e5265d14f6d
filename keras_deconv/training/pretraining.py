"""Encoder pretraining on source-domain masks: our stand-in for ImageNet VGG-16.

DecoupledNet and TransferNet start from an ImageNet-trained VGG-16 whose
encoder they keep (TransferNet freezes it). Without those weights the
encoder has to learn on ``shapes`` itself, and from image-level labels alone
it does not in our CPU budget: the multi-label loss stays at the label prior
(``bench/encoder_check.py`` prints it).

So the recipes first train the encoder on the **source-domain** images of
the train split (classes 1-7; the target classes 8-12 never appear in
them) as an FCN-8s, the architecture that learns fastest on ``shapes`` here
(``fcn8s-small``), and copy its ``conv1_1`` ... ``conv5_3`` into the network
being trained (same layer names and shapes). This is the supervision
TransferNet has anyway (source masks); for DecoupledNet it is a deviation:
the source classes' masks are seen during pretraining, so its annotation
budgets are strict only for the target classes (the README reports both).
:func:`folded_conv_weights` folds batch normalisation into the kernels, for
donors trained with BN (a DeconvNet-style BN donor was tried first and, in
the same budget, did not leave the all-background plateau).

Example:

>>> net = source_segmentation_net((64, 64, 3), width=1 / 16)
>>> net.output.shape
(None, 64, 64, 8)
>>> len(copy_encoder(net, source_segmentation_net((64, 64, 3), width=1 / 16)))
13
"""

import keras
import numpy as np

from keras_deconv import models
from keras_deconv.datasets import shapes
from keras_deconv.models import _blocks
from keras_deconv.models.vgg16_encoder import VGG16_BLOCKS, vgg16_encoder
from keras_deconv.training.bn_folding import folded_parameters

#: Background + the source classes (ids 1-7 stay as they are).
NUM_SOURCE_LABELS = 1 + len(shapes.SOURCE_CLASSES)


def source_segmentation_net(input_shape, width=1 / 16):
    """FCN-8s scoring background + the 7 source classes; fc6/fc7 with ``round(1024 * width)`` units."""
    return models.FCN8s(NUM_SOURCE_LABELS, input_shape, width=width, fc_units=_blocks.scaled(1024, width),
                        name="source_segmentation")


def folded_conv_weights(model):
    """``{conv name: [kernel, bias]}`` of every ``Conv2D``; where a BN follows it, with the BN folded in.

    ``BN(conv(x)) = conv'(x)`` with ``kernel' = kernel * scale`` and ``bias' =
    bias * scale + shift``, ``(scale, shift)`` the BN folded with its moving
    statistics (:func:`~keras_deconv.training.bn_folding.folded_parameters`).
    """
    out = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D) or isinstance(layer, keras.layers.Conv2DTranspose):
            continue
        users = [node.operation for node in layer._outbound_nodes]
        bns = [u for u in users if isinstance(u, keras.layers.BatchNormalization)]
        kernel, bias = (np.asarray(w, "float64") for w in layer.get_weights())
        if bns:
            scale, shift = (np.asarray(v, "float64") for v in folded_parameters(bns[0]))
            kernel, bias = kernel * scale, bias * scale + shift
        out[layer.name] = [kernel.astype("float32"), bias.astype("float32")]
    return out


def copy_encoder(pretrained, target):
    """Copies ``conv1_1`` ... ``conv5_3`` of ``pretrained`` (BN folded, if any) into ``target``; returns the names."""
    weights = folded_conv_weights(pretrained)
    copied = []
    for layer in target.layers:
        if layer.name[:4] == "conv" and layer.name[4:5].isdigit() and layer.name in weights:
            layer.set_weights(weights[layer.name])
            copied.append(layer.name)
    if len(copied) != 13:
        raise ValueError(f"Expected 13 VGG-16 conv layers in {target.name!r}; copied {copied}.")
    return copied


def encoder_unet(num_classes, input_shape, width, name="encoder_unet"):
    """DeconvNet's encoder (``conv1_1`` ... ``conv5_3``, each with trainable BN) under a light U-Net decoder.

    The donor of DeconvNet's ``--hparam pretrain_steps=N``: skip connections
    make it learn shapes in minutes on a CPU (``bench/shapes_baseline.py``'s
    U-Net), where DeconvNet itself, from scratch, stays on the background
    plateau; its encoder layers, batch normalisation included, are then
    copied by name (:func:`copy_encoder_layers`). Four pools (pool5 is not
    applied), bilinear upsampling, one 3x3 conv + BN + ReLU per level.

    >>> net = encoder_unet(13, (64, 64, 3), width=1 / 16)
    >>> net.output.shape
    (None, 64, 64, 13)
    """
    inputs, x = _blocks.image_input(input_shape, True)
    blobs = vgg16_encoder(x, width=width, batch_norm="trainable", num_pools=4, pooling="max")
    x = blobs["conv5_3"]
    for block in (4, 3, 2, 1):
        skip = blobs[f"conv{block}_{len(VGG16_BLOCKS[block - 1])}"]
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up{block}")(x)
        x = keras.layers.Concatenate(name=f"merge{block}")([x, skip])
        x = _blocks.conv_block(x, _blocks.scaled(VGG16_BLOCKS[block - 1][-1], width), 3, f"dec{block}",
                               f"dec{block}_relu", f"dec{block}_bn", "trainable")
    scores = keras.layers.Conv2D(num_classes, 1, name="score")(x)
    return keras.Model(inputs, scores, name=name)


def copy_encoder_layers(pretrained, target):
    """Copies ``conv1_1`` ... ``conv5_3`` and their ``bn`` layers of ``pretrained`` into ``target`` by name.

    Returns the copied layer names (26: 13 convolutions, 13 BN).
    """
    names = [f"{kind}{block}_{index}" for block, channels in enumerate(VGG16_BLOCKS, start=1)
             for index in range(1, len(channels) + 1) for kind in ("conv", "bn")]
    for name in names:
        target.get_layer(name).set_weights(pretrained.get_layer(name).get_weights())
    return names

