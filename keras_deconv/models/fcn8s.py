"""FCN-8s (Long, Shelhamer, Darrell; CVPR 2015), the PASCAL model DeconvNet ensembles with."""

import keras

from keras_deconv.layers.bilinear import BilinearUpsamplingInitializer
from keras_deconv.layers.crop import CropToReference
from keras_deconv.models import _blocks
from keras_deconv.models.vgg16_encoder import vgg16_encoder

#: Crop offsets of Caffe's old coordinate-map CROP layers for this topology.
SCORE_POOL4_OFFSET = 5
SCORE_POOL3_OFFSET = 9
UPSCORE_OFFSET = 31


def FCN8s(
    num_classes=21,
    input_shape=(None, None, 3),
    *,
    width=1.0,
    fc_units=None,
    dropout=0.5,
    batch_norm=None,
    include_preprocessing=True,
    weights=None,
    name="FCN8s",
):
    """FCN-8s exactly as ``fcn-8s-pascal-deploy.prototxt`` (the EDeconvNet partner).

    Reference:
        J. Long, E. Shelhamer, T. Darrell. "Fully Convolutional Networks for
        Semantic Segmentation", CVPR 2015; weights ``fcn-8s-pascal.caffemodel``
        as used by DeconvNet's ensemble (DeconvNet ``model/FCN``).

    VGG-16 with ``pad: 100`` on conv1_1 (a ``conv1_1_pad`` zero padding and a
    valid conv1_1), max pools in Caffe's ceil mode, fc6 (7x7) and fc7 (1x1)
    convolutions with dropout (drop6/drop7, inactive at inference),
    ``score-fr``; then ``score2`` (4x4/2 deconvolution, with bias) + the
    1x1 ``score-pool4`` cropped at offset 5 (``score-pool4c``) summed into
    ``score-fused``; ``score4`` (4x4/2, no bias) + ``score-pool3`` cropped at
    offset 9 (``score-pool3c``) summed into ``score-final``; ``upsample``
    (16x16/8, no bias, frozen as in Caffe's ``blobs_lr: 0``) and the final
    crop at offset 31 against the input (``upscore``). The three
    deconvolutions start as bilinear upsampling kernels. Layers with weights
    carry the Caffe names; the duplicated Caffe names ``crop``/``fuse`` are
    replaced by their top blob names. Full size: 134,489,780 parameters.

    Preprocessing: RGB input, uint8 or float 0-255; the model applies the
    Caffe preprocessing (BGR, mean subtraction) itself. The output holds raw
    scores (no softmax). Any input size works and gives an output of the
    same size.

    Args:
        num_classes: score channels (21 for PASCAL VOC).
        input_shape: ``(height, width, 3)``; ``None`` sizes allowed.
        width: channel multiplier of the VGG-16 convolutions.
        fc_units: channels of fc6/fc7; default ``round(4096 * width)``.
        dropout: rate of drop6/drop7 (training only).
        batch_norm: ``None`` (the official net: no BN) or ``"trainable"``: a
            ``BatchNormalization`` after every convolution of VGG-16 and
            fc6/fc7 (``bn1_1`` ... ``bn5_3``, ``bnfc6``, ``bnfc7``), a training
            aid for random starts (``--hparam batch_norm=1``);
            :func:`keras_deconv.training.fold_batch_norm_into_convolutions`
            folds it into the convolutions, giving weights of the official net.
        include_preprocessing: put ``CaffePreprocessing`` first (default).
        weights: ``None`` or the path of a Keras weights file.
        name: model name.

    Returns:
        A ``keras.Model``: images ``(batch, H, W, 3)`` -> ``upscore``
        ``(batch, H, W, num_classes)``.

    Example:

    >>> import numpy as np
    >>> model = FCN8s(num_classes=4, width=1 / 16)
    >>> tuple(model(np.zeros((1, 50, 70, 3), "uint8")).shape)
    (1, 50, 70, 4)
    """
    num_classes = _blocks.check_positive_int(num_classes, "num_classes")
    input_shape = _blocks.check_input_shape(input_shape)
    width = _blocks.check_width(width)
    fc_units = _blocks.check_units(fc_units, "fc_units", _blocks.scaled(4096, width))
    if batch_norm not in (None, "trainable"):
        raise ValueError(f"Expected `batch_norm` to be None or 'trainable'. Received: batch_norm={batch_norm!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"Expected `dropout` in [0, 1). Received: dropout={dropout!r}")

    inputs, x = _blocks.image_input(input_shape, include_preprocessing)

    # Encoder: VGG-16, conv1_1 with pad 100, plain max pooling (no switches needed).
    blobs = vgg16_encoder(x, width=width, batch_norm=batch_norm, pooling="max", first_pad=100)

    # fc6/fc7 as convolutions, with the deploy net's dropout layers.
    bn6, bn7 = ("bnfc6", "bnfc7") if batch_norm else (None, None)
    x = _blocks.conv_block(blobs["pool5"], fc_units, 7, "fc6", "relu6", bn6, batch_norm, padding="valid")
    x = keras.layers.Dropout(dropout, name="drop6")(x)
    x = _blocks.conv_block(x, fc_units, 1, "fc7", "relu7", bn7, batch_norm, padding="valid")
    x = keras.layers.Dropout(dropout, name="drop7")(x)
    score = keras.layers.Conv2D(num_classes, 1, name="score-fr")(x)

    # Stride 16: upsample x2 and fuse with the pool4 scores.
    bilinear = BilinearUpsamplingInitializer()
    score2 = keras.layers.Conv2DTranspose(num_classes, 4, strides=2, kernel_initializer=bilinear, name="score2")(score)
    score_pool4 = keras.layers.Conv2D(num_classes, 1, name="score-pool4")(blobs["pool4"])
    score_pool4c = CropToReference(SCORE_POOL4_OFFSET, name="score-pool4c")([score_pool4, score2])
    score_fused = keras.layers.Add(name="score-fused")([score2, score_pool4c])

    # Stride 8: upsample x2 and fuse with the pool3 scores.
    score4 = keras.layers.Conv2DTranspose(
        num_classes, 4, strides=2, use_bias=False, kernel_initializer=bilinear, name="score4"
    )(score_fused)
    score_pool3 = keras.layers.Conv2D(num_classes, 1, name="score-pool3")(blobs["pool3"])
    score_pool3c = CropToReference(SCORE_POOL3_OFFSET, name="score-pool3c")([score_pool3, score4])
    score_final = keras.layers.Add(name="score-final")([score4, score_pool3c])

    # Back to the input size: fixed bilinear x8 upsampling, then crop to the image.
    upsample = keras.layers.Conv2DTranspose(
        num_classes, 16, strides=8, use_bias=False, kernel_initializer=bilinear, name="upsample"
    )
    upsample.trainable = False  # Caffe blobs_lr: 0
    bigscore = upsample(score_final)
    outputs = CropToReference(UPSCORE_OFFSET, name="upscore")([bigscore, inputs])

    model = keras.Model(inputs, outputs, name=name)
    return _blocks.load_weights_argument(model, weights)
