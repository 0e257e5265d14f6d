"""DeconvNet (Noh, Hong, Han; ICCV 2015)."""

import keras

from keras_deconv.models import _blocks
from keras_deconv.models._decoder import deconv_decoder
from keras_deconv.models.vgg16_encoder import vgg16_encoder


def DeconvNet(
    num_classes=21,
    input_shape=(None, None, 3),
    *,
    width=1.0,
    fc_units=None,
    fc_kernel_size=7,
    batch_norm="folded",
    include_preprocessing=True,
    weights=None,
    name="DeconvNet",
):
    """DeconvNet: VGG-16 encoder, mirrored unpooling/deconvolution decoder, BN everywhere.

    Reference:
        H. Noh, S. Hong, B. Han. "Learning Deconvolution Network for Semantic
        Segmentation", ICCV 2015 (arXiv:1505.04366). Deploy net:
        ``DeconvNet_inference_deploy.prototxt``.

    The graph is the official deploy prototxt layer for layer: conv1_1 ...
    conv5_3 and the fc6 (7x7) / fc7 (1x1) convolutions, fc6-deconv (7x7) and
    13 deconvolutions, a BN layer (bn1_1 ... bnfc7, fc6-deconv-bn,
    debn5_1 ... debn1_2) and a ReLU after each, unpool5 ... unpool1 using the
    switches of pool5 ... pool1, and the 1x1 classifier ``seg-score-voc``.
    Keras layer names are the Caffe layer names; weights have the Caffe blob
    shapes after the layout change of
    :func:`keras_deconv.models.caffe_to_keras_shapes`. The full-size model
    holds 251,805,653 parameters (folded BN), the official count.

    Preprocessing: the model takes **RGB images, uint8 or float in 0-255**
    and applies the Caffe preprocessing itself (a ``CaffePreprocessing``
    layer: BGR, minus the mean ``[104.007, 116.669, 122.679]``). The output
    ``seg-score`` holds raw class scores (no softmax), as in the deploy net.

    Input size: any height and width (each unpooling restores the size of the
    tensor its switches came from, replacing Caffe's fixed ``unpool_size``),
    as long as pool5 is at least ``fc_kernel_size`` pixels: 224x224 is the
    official size; with the default 7x7 fc6, inputs of 193 pixels and up
    work. Odd sizes are pooled in Caffe's ceil mode.

    Args:
        num_classes: channels of ``seg-score`` (VOC: 21 with background).
        input_shape: ``(height, width, 3)``; ``None`` sizes allowed.
        width: channel multiplier for every conv/deconv layer (1.0 = official;
            e.g. ``1/16`` for the small test/synthetic-data models).
        fc_units: channels of fc6/fc7; default ``round(4096 * width)``.
        fc_kernel_size: kernel size of fc6 and fc6-deconv (official 7). Small
            inputs need a smaller one, e.g. 2 for 64x64 images.
        batch_norm: ``"folded"`` (default, for inference and Caffe weights): a
            :class:`~keras_deconv.layers.ChannelAffine` ``scale * x + shift``
            per BN layer, 2 parameters per channel = the official count.
            ``"trainable"``: ``keras.layers.BatchNormalization``, for training;
            its non-trainable moving mean and variance add 2 more parameters
            per channel to ``count_params()`` (+33,408 at full size).
        include_preprocessing: put the ``CaffePreprocessing`` layer first
            (default). ``False`` expects already preprocessed BGR input.
        weights: ``None`` (random initialization) or the path of a Keras
            weights file to load.
        name: model name.

    Returns:
        A ``keras.Model`` mapping images ``(batch, H, W, 3)`` (input ``data``)
        to ``seg-score`` ``(batch, H, W, num_classes)``.

    Example:

    >>> import numpy as np
    >>> model = DeconvNet(num_classes=3, input_shape=(64, 64, 3), width=1 / 16, fc_kernel_size=2)
    >>> scores = model(np.zeros((1, 64, 64, 3), "uint8"))
    >>> tuple(scores.shape)
    (1, 64, 64, 3)
    """
    num_classes = _blocks.check_positive_int(num_classes, "num_classes")
    input_shape = _blocks.check_input_shape(input_shape)
    width = _blocks.check_width(width)
    fc_units = _blocks.check_units(fc_units, "fc_units", _blocks.scaled(4096, width))
    fc_kernel_size = _blocks.check_positive_int(fc_kernel_size, "fc_kernel_size")
    batch_norm = _blocks.check_batch_norm(batch_norm)
    conv5_channels = _blocks.scaled(512, width)

    inputs, x = _blocks.image_input(input_shape, include_preprocessing)

    # Encoder: VGG-16 with BN after every convolution; pools emit switches.
    blobs = vgg16_encoder(x, width=width, batch_norm=batch_norm)

    # Fully connected layers as convolutions (7x7 on pool5: 1x1 at 224x224).
    x = _blocks.conv_block(blobs["pool5"], fc_units, fc_kernel_size, "fc6", "relu6", "bnfc6", batch_norm, "valid")
    x = _blocks.conv_block(x, fc_units, 1, "fc7", "relu7", "bnfc7", batch_norm, "valid")

    # Decoder: fc6-deconv back to pool5's size, then unpool/deconv per level.
    x = _blocks.deconv_block(x, conv5_channels, fc_kernel_size, "fc6-deconv", "fc6-deconv-relu", "fc6-deconv-bn", batch_norm, "valid")
    x = deconv_decoder(x, blobs, levels=(5, 4, 3, 2, 1), width=width, batch_norm=batch_norm)

    # Classifier (Caffe layer seg-score-voc, top blob seg-score): raw scores.
    outputs = keras.layers.Conv2D(num_classes, 1, name="seg-score-voc")(x)

    model = keras.Model(inputs, outputs, name=name)
    return _blocks.load_weights_argument(model, weights)
