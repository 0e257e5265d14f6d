"""DecoupledNet (Hong, Noh, Han; NIPS 2015)."""

import keras
import numpy as np

from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from keras_deconv.layers.relu_mask import ReLUWithMask
from keras_deconv.layers.transposable_conv import TransposableConv2D
from keras_deconv.models import _blocks
from keras_deconv.models._decoder import deconv_decoder
from keras_deconv.models.vgg16_encoder import vgg16_encoder

BRIDGING_MODES = ("copy", "gradient")
#: The second input: the query itself (deploy nets) or the class label it is made from (training nets).
QUERY_INPUTS = ("cls-score-masked", "cls-label")

#: Layers that hold the bridging copies in ``bridging="copy"`` mode, and the
#: forward layer each one copies.
BRIDGING_COPIES = {"cls-score-voc-bp": "cls-score-voc", "fc7-bp": "fc7", "fc6-bp": "fc6"}


def DecoupledNet(
    num_classes=20,
    input_shape=(320, 320, 3),
    *,
    width=1.0,
    fc_units=None,
    seg_fc_units=None,
    fc_kernel_size=7,
    batch_norm="folded",
    bridging="copy",
    query_input="cls-score-masked",
    include_preprocessing=True,
    weights=None,
    name="DecoupledNet",
):
    """DecoupledNet: a classification net, bridging layers and a figure-ground decoder.

    Reference:
        S. Hong, H. Noh, B. Han. "Decoupled Deep Neural Network for
        Semi-supervised Semantic Segmentation", NIPS 2015 (arXiv:1506.04924).
        Deploy net: ``DecoupledNet_{Full,25,10,5}_anno_inference_deploy.prototxt``.

    Three parts, as in the deploy prototxt:

    * **Classification network** (VGG-16 without BN, fc6 7x7, fc7 1x1,
      ``cls-score-voc``): the class-score map (4x4 at 320x320) is average
      pooled (``cls-score-avg-pooled``) and max pooled with switches
      (``cls-score-pooled``, the ``score-pool-mask``), each followed by a
      sigmoid: outputs ``cls-score-avg-sigmoid`` and ``cls-score-sigmoid``.
      Both pools cover the whole class-score map (Caffe's 4x4/1 pools at the
      official size).
    * **Bridging layers**: the query ``cls-score-masked`` (one value per
      class) is unpooled to the argmax position of each class map
      (``avg-unpool``) and back-propagated to pool5 through cls-score-voc,
      relu7, fc7, relu6 and fc6 (``relu7-mask``, ``relu6-mask`` are the ReLU
      derivatives). The result ``pool5-bp`` equals ``query_j *
      d(cls-score_j at its argmax) / d pool5`` summed over classes.
    * **Segmentation network** with BN: ``pool5-bn`` and ``pool5-bp-bn``
      concatenated (``pool5-concat``), fc6-seg/fc7-seg, fc6-deconv, and the
      DeconvNet decoder whose unpoolings use the classification encoder's
      switches; ``seg-score-voc`` gives the 2-channel figure/ground ``seg-score``.

    Keras layer names are the Caffe layer names; Caffe reuses the names
    ``avg-pool`` and ``cls-score-sigmoid`` for two parameter-free layers each,
    which are named after their top blobs here. Every weight has its Caffe
    blob's shape after the layout change of
    :func:`keras_deconv.models.caffe_to_keras_shapes`.

    Preprocessing: the image input ``data`` takes RGB images, uint8 or float
    in 0-255; the model applies the Caffe preprocessing itself.

    Input size: static (default 320x320, the official size), because the
    class-score pools cover the whole class-score map, whose size
    ``ceil(H/32) - fc_kernel_size + 1`` must be known. The official
    inference pads images to a square and resizes them to 320.

    Args:
        num_classes: number of classes (VOC: 20, no background).
        input_shape: ``(height, width, 3)`` with known height and width.
        width: channel multiplier of every conv/deconv layer (1.0 = official).
        fc_units: channels of fc6/fc7; default ``round(4096 * width)``.
        seg_fc_units: channels of fc6-seg/fc7-seg; default ``round(2048 * width)``.
        fc_kernel_size: kernel of fc6, fc6-bp, fc6-seg and fc6-deconv (7).
            Small inputs need a smaller one, e.g. 1 at 64x64.
        batch_norm: ``"folded"`` (default; ``ChannelAffine``, 2 parameters
            per channel, the official count) or ``"trainable"``
            (``BatchNormalization``; its moving statistics add 2 parameters
            per channel, +18,816 at full size).
        bridging: ``"copy"`` (default, official): separate layers
            ``cls-score-voc-bp`` (1x1 conv), ``fc7-bp`` and ``fc6-bp``
            (deconvolutions) hold copies of the forward weights (with zero
            biases), 427,078,678 parameters at full size; they are frozen and
            filled at build time (re-copy after changing the classifier with
            :func:`sync_bridging_weights`). ``"gradient"``: the forward layers
            (:class:`~keras_deconv.layers.TransposableConv2D`) apply their own
            transposed kernels, no copies, 307,450,390 parameters.
        query_input: the second input. ``"cls-score-masked"`` (default, the
            deploy nets): the query, one value per class. ``"cls-label"``
            (the training nets): a 0/1 class label from which the net makes
            the query itself, ``cls-score-sigmoid * cls-label`` (Caffe's
            ELTWISE PROD layer ``cls-score-mask``), so the classifier runs
            once per step. Same weights in both; swap them with
            ``model.load_weights`` or by layer name.
        include_preprocessing: put ``CaffePreprocessing`` first (default).
        weights: ``None`` or the path of a Keras weights file.
        name: model name.

    Returns:
        A ``keras.Model`` with inputs ``[data (batch, H, W, 3),
        cls-score-masked (batch, num_classes)]`` (a list, or a dict keyed by
        those names; ``cls-label`` in its place with ``query_input="cls-label"``)
        and a dict of outputs ``cls-score-avg-sigmoid (batch,
        num_classes)``, ``cls-score-sigmoid (batch, num_classes)``,
        ``seg-score (batch, H, W, 2)`` (raw background/foreground scores).

    Example:

    >>> import numpy as np
    >>> model = DecoupledNet(input_shape=(64, 64, 3), width=1 / 16, fc_kernel_size=1)
    >>> out = model([np.zeros((1, 64, 64, 3), "uint8"), np.zeros((1, 20), "float32")])
    >>> tuple(out["seg-score"].shape), tuple(out["cls-score-avg-sigmoid"].shape)
    ((1, 64, 64, 2), (1, 20))
    """
    num_classes = _blocks.check_positive_int(num_classes, "num_classes")
    input_shape = _blocks.check_input_shape(input_shape, static=True)
    width = _blocks.check_width(width)
    fc_units = _blocks.check_units(fc_units, "fc_units", _blocks.scaled(4096, width))
    seg_fc_units = _blocks.check_units(seg_fc_units, "seg_fc_units", _blocks.scaled(2048, width))
    fc_kernel_size = _blocks.check_positive_int(fc_kernel_size, "fc_kernel_size")
    batch_norm = _blocks.check_batch_norm(batch_norm)
    if bridging not in BRIDGING_MODES:
        raise ValueError(f"Expected `bridging` to be one of {BRIDGING_MODES}. Received: bridging={bridging!r}")
    if query_input not in QUERY_INPUTS:
        raise ValueError(f"Expected `query_input` to be one of {QUERY_INPUTS}. Received: query_input={query_input!r}")
    conv5_channels = _blocks.scaled(512, width)
    score_size = _class_score_size(input_shape, fc_kernel_size)

    inputs, x = _blocks.image_input(input_shape, include_preprocessing)
    second_input = keras.Input(shape=(num_classes,), name=query_input)

    # (a) Classification network: VGG-16 (no BN) whose pools emit switches.
    blobs = vgg16_encoder(x, width=width)
    pool5 = blobs["pool5"]
    conv = TransposableConv2D if bridging == "gradient" else keras.layers.Conv2D
    fc6 = conv(fc_units, fc_kernel_size, padding="valid", name="fc6")
    fc7 = conv(fc_units, 1, padding="valid", name="fc7")
    cls_score_voc = conv(num_classes, 1, padding="valid", name="cls-score-voc")
    x, relu6_mask = ReLUWithMask(name="relu6")(fc6(pool5))
    x, relu7_mask = ReLUWithMask(name="relu7")(fc7(x))
    cls_score = cls_score_voc(x)

    # Image-level scores: average and max over the whole class-score map.
    avg_pooled = keras.layers.GlobalAveragePooling2D(name="cls-score-avg-pooled")(cls_score)
    cls_score_avg_sigmoid = keras.layers.Activation("sigmoid", name="cls-score-avg-sigmoid")(avg_pooled)
    max_pooled, score_pool_mask = MaxPoolingWithArgmax2D(
        pool_size=score_size, strides=1, padding="valid", name="cls-score-pooled"
    )(cls_score)
    max_pooled = keras.layers.Reshape((num_classes,), name="cls-score-pooled_flatten")(max_pooled)
    cls_score_sigmoid = keras.layers.Activation("sigmoid", name="cls-score-sigmoid")(max_pooled)

    # (b) Bridging: the query value of each class goes to its argmax position,
    # then back through the classifier to pool5 (ReLU masks = ReLU derivatives).
    if query_input == "cls-label":  # the training nets' cls-score-mask
        query = keras.layers.Multiply(name="cls-score-mask")([cls_score_sigmoid, second_input])
    else:
        query = second_input
    query_map = keras.layers.Reshape((1, 1, num_classes), name="avg-unpool_reshape")(query)
    cls_score_unpooled = MaxUnpooling2D(pool_size=score_size, strides=1, name="avg-unpool")(
        [query_map, score_pool_mask, cls_score]
    )
    if bridging == "copy":
        bp = keras.layers.Conv2D(fc_units, 1, name="cls-score-voc-bp")(cls_score_unpooled)
        bp = keras.layers.Multiply(name="relu7-mask")([bp, relu7_mask])
        bp = keras.layers.Conv2DTranspose(fc_units, 1, name="fc7-bp")(bp)
        bp = keras.layers.Multiply(name="relu6-mask")([bp, relu6_mask])
        pool5_bp = keras.layers.Conv2DTranspose(conv5_channels, fc_kernel_size, name="fc6-bp")(bp)
    else:
        bp = cls_score_voc(cls_score_unpooled, transpose=True)
        bp = keras.layers.Multiply(name="relu7-mask")([bp, relu7_mask])
        bp = fc7(bp, transpose=True)
        bp = keras.layers.Multiply(name="relu6-mask")([bp, relu6_mask])
        pool5_bp = fc6(bp, transpose=True)

    # (c) Segmentation network: BN on both pool5 maps, fc-seg layers, decoder.
    pool5_bn = _blocks.batch_norm_layer(batch_norm, "pool5-bn")(pool5)
    pool5_bp_bn = _blocks.batch_norm_layer(batch_norm, "pool5-bp-bn")(pool5_bp)
    x = keras.layers.Concatenate(name="pool5-concat")([pool5_bn, pool5_bp_bn])
    x = _blocks.conv_block(x, seg_fc_units, fc_kernel_size, "fc6-seg", "relu6-seg", "bnfc6-seg", batch_norm, "valid")
    x = _blocks.conv_block(x, seg_fc_units, 1, "fc7-seg", "relu7-seg", "bnfc7-seg", batch_norm, "valid")
    x = _blocks.deconv_block(x, conv5_channels, fc_kernel_size, "fc6-deconv", "fc6-deconv-relu", "fc6-deconv-bn", batch_norm, "valid")
    x = deconv_decoder(x, blobs, levels=(5, 4, 3, 2, 1), width=width, batch_norm=batch_norm)
    seg_score = keras.layers.Conv2D(2, 1, name="seg-score-voc")(x)

    outputs = {
        "cls-score-avg-sigmoid": cls_score_avg_sigmoid,
        "cls-score-sigmoid": cls_score_sigmoid,
        "seg-score": seg_score,
    }
    model = keras.Model([inputs, second_input], outputs, name=name)
    if bridging == "copy":
        for layer_name in BRIDGING_COPIES:
            model.get_layer(layer_name).trainable = False  # Caffe blobs_lr: 0
        sync_bridging_weights(model)
    return _blocks.load_weights_argument(model, weights)


def sync_bridging_weights(model):
    """Copies the classifier weights into the bridging layers (``bridging="copy"``).

    Re-creates Caffe's net surgery (``gen_fp_bp_model.py``): ``fc6-bp`` and
    ``fc7-bp`` get the fc6/fc7 kernels unchanged (a deconvolution with a
    convolution's kernel is its transpose), ``cls-score-voc-bp`` the
    transposed cls-score-voc kernel, and all three zero biases. Models built
    with the default ``bridging="copy"`` are synced at build time; call this
    again after training or replacing the classification network.

    Args:
        model: a DecoupledNet built with ``bridging="copy"``.

    Returns:
        The model.
    """
    for copy_name, source_name in BRIDGING_COPIES.items():
        kernel = model.get_layer(source_name).get_weights()[0]
        if copy_name == "cls-score-voc-bp":
            kernel = np.transpose(kernel, (0, 1, 3, 2))
        copy = model.get_layer(copy_name)
        copy.set_weights([kernel, np.zeros(copy.get_weights()[1].shape, kernel.dtype)])
    return model


def _class_score_size(input_shape, fc_kernel_size):
    """Static (h, w) of the class-score map: pool5 size minus the fc6 kernel plus 1."""
    size = []
    for length in input_shape[:2]:
        for _ in range(5):
            length = -(-length // 2)  # ceil-mode 2x2 pooling
        size.append(length - fc_kernel_size + 1)
    if min(size) < 1:
        raise ValueError(
            f"The input is too small for fc_kernel_size={fc_kernel_size}: pool5 would be smaller than the fc6 kernel. "
            f"Received: input_shape={input_shape}. Use a larger input (320x320 is official) or a smaller fc_kernel_size."
        )
    return tuple(size)
