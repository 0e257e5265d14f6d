"""TransferNet (Hong, Oh, Lee, Han; CVPR 2016)."""

import keras

from keras_deconv.layers.attention import FilterSum, LinearSum
from keras_deconv.models import _blocks
from keras_deconv.models._decoder import deconv_decoder
from keras_deconv.models.vgg16_encoder import vgg16_encoder

#: TransferNet's fixed activation scale ("scale activations approximately between 0 and 1").
CONV5_3_SCALE = 0.004


def TransferNet(
    num_classes=80,
    input_shape=(320, 320, 3),
    *,
    width=1.0,
    embed_units=None,
    return_attention=False,
    include_classifier=False,
    include_preprocessing=True,
    weights=None,
    name="TransferNet",
):
    """TransferNet: class-conditional attention on a frozen VGG-16 encoder, plus a decoder.

    Reference:
        S. Hong, J. Oh, H. Lee, B. Han. "Learning Transferrable Knowledge for
        Semantic Segmentation with Deep Convolutional Neural Network", CVPR
        2016 (arXiv:1512.07928). Deploy net:
        ``training/2_train_segmentation/deploy.prototxt`` of maga33/TransferNet.

    As in the deploy prototxt: VGG-16 conv1_1 ... conv5_3 (no BN, pool1-pool4
    with switches, no pool5); ``conv5_3_scaled = 0.004 * conv5_3``;
    ``feat_embed`` (on the flattened scaled map) and ``cls_embed`` (on the
    one-hot query) multiplied (``multiplicative``); ``combined_embed`` + ReLU;
    ``att-w`` and a softmax over the H5*W5 positions (``att-normalized``,
    reshaped to the attention map ``att``); the attended feature
    ``soft-att = LinearSum(A, att)`` and the class-specific saliency
    ``filter_sum_map = FilterSum(A, soft-att)``; then deconv5_1 and the
    unpool4 ... unpool1 decoder (no BN) using the encoder's switches, and the
    2-channel ``seg-score`` (background, foreground).

    Names: the Caffe layer names; Caffe names two parameter-free layers
    ``soft-att`` (the Scale and the LinearSum): here the Scale is named after
    its top blob ``conv5_3_scaled`` and the LinearSum keeps ``soft-att``.
    ``feat_embed``: Caffe flattens its input in (C, H, W) order, so the
    model flattens through a ``Permute`` to channels-first
    (``feat_embed_chw``) and the Dense kernel is just the transposed Caffe
    blob ``W.T`` (shape (C*H*W, units)), stored unpermuted like every other
    InnerProduct. Full size: 233,648,658 parameters (deploy);
    ``include_classifier`` adds ``ip1`` and ``cls-score-voc-att`` (+303,696).

    Preprocessing: the image input ``data`` takes RGB images, uint8 or float
    in 0-255; the model applies the Caffe preprocessing itself.

    Input size: static (default 320x320, official), because ``feat_embed``
    and ``att-w`` depend on the conv5 size (20x20 = 400 attention positions
    at 320x320; pool1-pool4 run in Caffe's ceil mode for odd sizes).

    Args:
        num_classes: size of the one-hot query ``cls-label`` (80: VOC ids
            1-20 then 60 COCO classes) and of the optional classifier.
        input_shape: ``(height, width, 3)`` with known height and width.
        width: channel multiplier of every conv/deconv layer (1.0 = official).
        embed_units: units of feat_embed, cls_embed and combined_embed;
            default ``round(1024 * width)``.
        return_attention: also output the attention map ``att``
            ``(batch, H5, W5, 1)`` (sums to 1 per image), e.g. for pictures.
        include_classifier: add the training-only classification head
            (``ip1`` + ``relu-ip1``, ``cls-score-voc-att`` logits) present in
            the released caffemodel but not in the deploy net.
        include_preprocessing: put ``CaffePreprocessing`` first (default).
        weights: ``None`` or the path of a Keras weights file.
        name: model name.

    Returns:
        A ``keras.Model`` with inputs ``[data (batch, H, W, 3), cls-label
        (batch, num_classes)]`` (list, or dict keyed by those names). Output:
        ``seg-score (batch, H, W, 2)`` raw scores; with ``return_attention``
        or ``include_classifier`` a dict with ``seg-score`` and ``att`` and/or
        ``cls-score-voc-att (batch, num_classes)``.

    Example:

    >>> import numpy as np
    >>> model = TransferNet(num_classes=5, input_shape=(64, 64, 3), width=1 / 16, return_attention=True)
    >>> out = model([np.zeros((1, 64, 64, 3), "uint8"), np.eye(5, dtype="float32")[:1]])
    >>> tuple(out["seg-score"].shape), tuple(out["att"].shape)
    ((1, 64, 64, 2), (1, 4, 4, 1))
    """
    num_classes = _blocks.check_positive_int(num_classes, "num_classes")
    input_shape = _blocks.check_input_shape(input_shape, static=True)
    width = _blocks.check_width(width)
    embed_units = _blocks.check_units(embed_units, "embed_units", _blocks.scaled(1024, width))

    inputs, x = _blocks.image_input(input_shape, include_preprocessing)
    cls_label = keras.Input(shape=(num_classes,), name="cls-label")

    # Encoder: VGG-16 conv1_1 ... conv5_3, pool1-pool4 with switches, no pool5.
    blobs = vgg16_encoder(x, width=width, num_pools=4)
    features = keras.layers.Rescaling(CONV5_3_SCALE, name="conv5_3_scaled")(blobs["conv5_3"])
    att_height, att_width = features.shape[1], features.shape[2]

    # Attention: multiplicative feature/label embedding -> softmax over positions.
    flat = keras.layers.Permute((3, 1, 2), name="feat_embed_chw")(features)  # Caffe's C,H,W order
    flat = keras.layers.Flatten(name="feat_embed_flatten")(flat)
    feat_embed = keras.layers.Dense(embed_units, name="feat_embed")(flat)
    cls_embed = keras.layers.Dense(embed_units, name="cls_embed")(cls_label)
    x = keras.layers.Multiply(name="multiplicative")([cls_embed, feat_embed])
    x = keras.layers.Dense(embed_units, name="combined_embed")(x)
    x = keras.layers.ReLU(name="relu_combined")(x)
    x = keras.layers.Dense(att_height * att_width, name="att-w")(x)
    x = keras.layers.Softmax(name="att-normalized")(x)
    att = keras.layers.Reshape((att_height, att_width, 1), name="att-reshape")(x)  # position h * W5 + w

    # Attended feature and the class-specific saliency map fed to the decoder.
    soft_att = LinearSum(name="soft-att")([features, att])
    filter_sum_map = FilterSum(name="filter_sum")([features, soft_att])

    # Decoder (no BN): one deconv at the conv5 level, then unpool4 ... unpool1.
    x = _blocks.deconv_block(filter_sum_map, _blocks.scaled(512, width), 3, "deconv5_1", "derelu5_1")
    x = deconv_decoder(x, blobs, levels=(4, 3, 2, 1), width=width)
    seg_score = keras.layers.Conv2D(2, 1, name="seg-score")(x)

    outputs = {"seg-score": seg_score}
    if return_attention:
        outputs["att"] = att
    if include_classifier:
        x = keras.layers.Dense(_blocks.scaled(512, width), name="ip1")(soft_att)
        x = keras.layers.ReLU(name="relu-ip1")(x)
        outputs["cls-score-voc-att"] = keras.layers.Dense(num_classes, name="cls-score-voc-att")(x)
    if len(outputs) == 1:
        outputs = seg_score
    model = keras.Model([inputs, cls_label], outputs, name=name)
    return _blocks.load_weights_argument(model, weights)
