"""Inference pipelines: images of any size in, label maps at the original size out.

Each pipeline wraps a model from :mod:`keras_deconv.models` and reproduces the
official inference procedure (``networks.md`` §2.5, §3.4, §4.5) without the
dense CRF, which is an optional hook (``crf=callable(image, probabilities)``
returning refined probabilities of the same shape):

* :class:`DeconvNetPipeline`: whole-image inference (padding to a multiple of
  32) or instance-wise inference on boxes (user boxes or the built-in
  :func:`grid_proposals`), optional EDeconvNet ensemble with FCN-8s.
* :class:`DecoupledNetPipeline`: classification pass, background pass and one
  decoder pass per detected class, normalised and combined by argmax.
* :class:`TransferNetPipeline`: one attention + decoder pass per class given
  by the user or a classifier, background halved, argmax combination.

DecoupledNet and TransferNet pipelines split the model into an encoder
sub-model (run once per image) and a per-class decoder sub-model (all classes
of an image in one batch), so the shared encoder never runs twice.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_deconv.preprocessing import CAFFE_MEAN_BGR

#: The Caffe mean in RGB order: padding with it gives zeros after preprocessing.
CAFFE_MEAN_RGB = tuple(reversed(CAFFE_MEAN_BGR))


@dataclasses.dataclass
class Segmentation:
    """Result for one image.

    Attributes:
        labels: ``(H, W)`` int32 label map at the image's size (0 = background).
        scores: ``(num_classes,)`` image-level score per class (see each pipeline).
        probabilities: ``(H, W, L)`` float32 per-pixel maps whose argmax gives
            ``labels`` (``L`` = number of labels including background).
        attention: TransferNet only, ``{class id: (H, W) attention map}``.
    """

    labels: np.ndarray
    scores: np.ndarray
    probabilities: np.ndarray
    #: TransferNet only: ``{class id: (H, W) attention map}`` at the image's size.
    attention: dict = None


# ----------------------------------------------------------------------------- helpers
def compiled(model, jit_compile=True):
    """``model`` as a traced inference function (XLA by default).

    Pipelines call their networks through this instead of eager Keras calls:
    one graph per input shape, fused by XLA where ``jit_compile`` is set.
    """
    return tf.function(lambda *inputs: model(list(inputs) if len(inputs) > 1 else inputs[0], training=False),
                       jit_compile=jit_compile, reduce_retracing=True, autograph=False)


class _Pipeline:
    """Shared conveniences: ``predict`` returns just the label maps."""

    def predict(self, images, **kwargs):
        """Label maps (``(H, W)`` int32, one per image) for a batch of RGB images."""
        return [result.labels for result in self(images, **kwargs)]


def _as_images(images):
    """A list of ``(H, W, 3)`` arrays from one image, a 4-D batch or a list."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    images = [np.asarray(image) for image in images]
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"Expected RGB images of shape (H, W, 3). Received image {index} of shape {image.shape}.")
    return images


def _resize(array, size, method="bilinear"):
    """Resize an ``(h, w, C)`` float array to ``size = (H, W)``."""
    if tuple(array.shape[:2]) == tuple(size):
        return np.asarray(array, "float32")
    return tf.image.resize(np.asarray(array, "float32"), size, method=method, antialias=False).numpy()


def _softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _pad_square_and_resize(image, size):
    """Official DecoupledNet/TransferNet input: black padding (bottom/right) to a square, bilinear resize."""
    height, width = image.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, 3), "float32")
    square[:height, :width] = image
    return _resize(square, size)


def _back_to_image(maps, height, width):
    """Inverse of :func:`_pad_square_and_resize` for score maps (bicubic, as MATLAB imresize)."""
    side = max(height, width)
    return _resize(maps, (side, side), method="bicubic")[:height, :width]


def _static_image_size(model):
    size = tuple(model.inputs[0].shape[1:3])
    if None in size:
        raise ValueError(f"This pipeline needs a model with a static input size. Received input shape {model.inputs[0].shape}.")
    return size


#: ``tta=`` views: (quarter turns, mirror) pairs. "flip" is the mirror, "dihedral" every rotation by a
#: multiple of 90 degrees with and without it (the 8 symmetries of the square).
TTA_VIEWS = {
    "none": ((0, False),),
    "flip": ((0, False), (0, True)),
    "dihedral": tuple((turns, mirror) for turns in range(4) for mirror in (False, True)),
}


def average_over_views(image, score_fn, tta="none"):
    """The mean of ``score_fn`` over transformed views of ``image``, each mapped back to the image.

    ``score_fn(view) -> (h, w, C)`` per-pixel maps of an ``(h, w, 3)`` view;
    the views are :data:`TTA_VIEWS` ``[tta]``. The DeconvNet and FCN-8s
    pipelines average raw scores (so the EDeconvNet product stays defined),
    TransferNet its passes' ``[p_bg, p_fg]``. Only right when the classes do
    not change under the views: "flip" for most data, "dihedral" for data such
    as ``shapes`` whose training already rotates by 90 degrees.

    Example:

    >>> image = np.arange(12, dtype="float32").reshape(2, 2, 3)
    >>> scores = average_over_views(image, lambda view: view[..., :1] * 0 + view[:1, :1, :1], "flip")
    >>> scores[..., 0].tolist()  # the top-left pixel of the image and of its mirror, averaged
    [[1.5, 1.5], [1.5, 1.5]]
    """
    _check_tta(tta)
    total = None
    for turns, mirror in TTA_VIEWS[tta]:
        scores = _unview(np.asarray(score_fn(_view(image, turns, mirror))), turns, mirror)
        total = scores.astype("float32") if total is None else total + scores
    return total / len(TTA_VIEWS[tta])


def _average_runs(image, segment, tta):
    """``segment(view) -> Segmentation`` on each view: probabilities mapped back and averaged, scores averaged,
    labels the argmax (DecoupledNet's ``tta``, Keras and LiteRT)."""
    runs = [(segment(_view(image, turns, mirror)), turns, mirror) for turns, mirror in TTA_VIEWS[tta]]
    maps = [_unview(run.probabilities, turns, mirror) for run, turns, mirror in runs]
    probabilities = np.mean(maps, axis=0).astype("float32") if len(maps) > 1 else maps[0]
    scores = np.mean([run.scores for run, _, _ in runs], axis=0).astype("float32")
    return Segmentation(probabilities.argmax(-1).astype("int32"), scores, probabilities)


def _check_tta(tta):
    if tta not in TTA_VIEWS:
        raise ValueError(f"Expected `tta` to be one of {', '.join(TTA_VIEWS)}. Received: tta={tta!r}")


def _view(image, turns, mirror):
    """``turns`` counter-clockwise quarter turns of ``image``, then the mirror (left-right)."""
    view = np.rot90(image, turns, axes=(0, 1))
    return np.ascontiguousarray(view[:, ::-1] if mirror else view)


def _unview(array, turns, mirror):
    """Maps a per-pixel array of a view back onto the image (the inverse of :func:`_view`)."""
    return np.rot90(array[:, ::-1] if mirror else array, -turns, axes=(0, 1))


def grid_proposals(height, width, scales=(1.0, 0.7, 0.5), overlap=0.5):
    """Square boxes on a regular grid at a few scales: a download-free proposal generator.

    Stands in for the EdgeBox proposals of the official DeconvNet code (which
    are not released). Boxes are ``(x1, y1, x2, y2)``, end-exclusive, side
    ``scale * max(H, W)``, stepped by ``side * (1 - overlap)`` and centred on
    the image; they may extend outside it (the outside is black, as in the
    official zero-padded frame). Largest boxes first.

    Example:

    >>> grid_proposals(100, 60)[0].tolist()
    [-20, 0, 80, 100]
    """
    boxes = []
    for scale in scales:
        side = max(1, int(round(scale * max(height, width))))
        step = max(1, int(round(side * (1 - overlap))))
        ys = _grid_starts(height, side, step)
        xs = _grid_starts(width, side, step)
        boxes.extend((x, y, x + side, y + side) for y in ys for x in xs)
    return np.asarray(boxes, dtype="int64").reshape(-1, 4)


def _grid_starts(extent, side, step):
    if side >= extent:
        return [-((side - extent) // 2)]
    count = -(-(extent - side) // step) + 1
    span = (count - 1) * step + side
    offset = -((span - extent) // 2)
    return [offset + i * step for i in range(count)]


# ----------------------------------------------------------------------------- DeconvNet
class DeconvNetPipeline(_Pipeline):
    """DeconvNet inference on images of any size (§2.5 of the spec, without CRF by default).

    Modes:

    * ``"whole"``: each image is padded (bottom/right, with the mean colour,
      i.e. zeros after preprocessing) to a multiple of 32 and at least
      ``min_size``, run once, and the scores cropped back.
    * ``"instance"``: the official instance-wise inference. Boxes (user boxes
      per image, or ``proposals(image)``, default :func:`grid_proposals`) with
      a shorter side below ``min_box_size`` are skipped (all are kept if that
      leaves none), at most ``max_proposals`` are used; each box is cropped from
      the black-padded image, resized to ``crop_size`` (bilinear), run
      through DeconvNet, its scores resized back to the box and
      max-aggregated into a canvas initialised to 0.

    EDeconvNet: with ``fcn`` (an FCN-8s model) the DeconvNet scores ``P`` are
    combined with the FCN-8s scores ``S``: ``ensemble="product"`` (the
    released code's default) ``P * max(0, S)``, or ``"average"`` (the paper)
    the mean of the two softmax probability maps. Probabilities are the
    softmax of the combined scores (or the average); ``scores`` is the
    per-class maximum probability over the image.

    Args:
        model: a DeconvNet model (dynamic or static input size).
        fcn: optional FCN-8s model for the ensemble.
        mode: ``"whole"`` or ``"instance"``.
        ensemble: ``"product"`` or ``"average"``.
        proposals: callable ``image -> (N, 4) boxes`` for instance mode.
        crop_size: side of the resized instance crops (official 224; a model
            with a static input size uses its own).
        max_proposals: at most this many boxes per image (official 50).
        min_box_size: shorter-side threshold of the boxes (official 112).
        min_size: smallest padded side in whole mode (the model's fc6 needs
            pool5 >= 7 pixels at full size: 224).
        fcn_pad_to: FCN-8s input padding (official: mean-padded to 500x500;
            ``None`` runs FCN-8s on the image as is).
        batch_size: crops per model call.
        crf: optional ``callable(image, probabilities) -> probabilities``.
        jit_compile: run the networks under XLA; default: yes for fixed-size
            inputs (instance crops, static models), no for whole images.
        tta: test-time augmentation, ``"none"`` (default, the paper),
            ``"flip"`` (2 views) or ``"dihedral"`` (8 views): scores averaged
            over mirrored / rotated copies of each image
            (:func:`average_over_views`); the FCN-8s of an ensemble too.
            Not with user ``boxes``.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.models import DeconvNet
    >>> model = DeconvNet(num_classes=3, width=1 / 16, fc_kernel_size=2)
    >>> pipeline = DeconvNetPipeline(model, min_size=64)
    >>> result = pipeline([np.zeros((50, 70, 3), "uint8")])[0]
    >>> result.labels.shape, result.scores.shape
    ((50, 70), (3,))
    """

    def __init__(self, model, *, fcn=None, mode="whole", ensemble="product", proposals=None, crop_size=224,
                 max_proposals=50, min_box_size=112, min_size=224, fcn_pad_to=500, batch_size=8, crf=None,
                 jit_compile=None, tta="none"):
        if mode not in ("whole", "instance"):
            raise ValueError(f"Expected `mode` to be 'whole' or 'instance'. Received: mode={mode!r}")
        _check_tta(tta)
        self.tta = tta
        if ensemble not in ("product", "average"):
            raise ValueError(f"Expected `ensemble` to be 'product' or 'average'. Received: ensemble={ensemble!r}")
        self.model, self.fcn, self.mode, self.ensemble = model, fcn, mode, ensemble
        self.proposals = proposals or (lambda image: grid_proposals(*image.shape[:2]))
        static = tuple(model.inputs[0].shape[1:3])
        self.crop_size = static if None not in static else (crop_size, crop_size)
        self.max_proposals, self.min_box_size, self.min_size = max_proposals, min_box_size, min_size
        self.fcn_pad_to, self.batch_size, self.crf = fcn_pad_to, batch_size, crf
        if jit_compile is None:
            # XLA compiles once per input shape: worth it for fixed-size crops,
            # not for whole images whose padded size changes from image to image.
            jit_compile = mode == "instance" or None not in static
        self._model_fn = compiled(model, jit_compile)
        self._fcn_fn = compiled(fcn, jit_compile) if fcn is not None else None

    def __call__(self, images, boxes=None):
        images = _as_images(images)
        if boxes is not None and len(boxes) != len(images):
            raise ValueError(f"Expected one box array per image. Received {len(boxes)} box arrays for {len(images)} images.")
        if boxes is not None and self.tta != "none":
            raise ValueError(f"tta={self.tta!r} transforms the image, not user boxes: pass boxes with tta='none', "
                             "or leave boxes out to use the generated proposals of each view.")
        results = []
        for index, image in enumerate(images):
            if self.mode == "whole":
                scores = average_over_views(image, self._whole, self.tta)
            elif boxes is None:
                scores = average_over_views(image, lambda view: self._instances(view, None), self.tta)
            else:
                scores = self._instances(image, boxes[index])
            results.append(self._finish(image, scores))
        return results

    def _predict(self, batch):
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            outputs.append(np.asarray(self._model_fn(tf.constant(batch[start : start + self.batch_size], "float32"))))
        return np.concatenate(outputs)

    def _whole(self, image):
        height, width = image.shape[:2]
        padded_h = max(-(-height // 32) * 32, self.min_size)
        padded_w = max(-(-width // 32) * 32, self.min_size)
        canvas = np.empty((padded_h, padded_w, 3), "float32")
        canvas[:] = CAFFE_MEAN_RGB
        canvas[:height, :width] = image
        return self._predict(canvas[None])[0, :height, :width]

    def _instances(self, image, boxes):
        height, width = image.shape[:2]
        boxes = np.asarray(self.proposals(image) if boxes is None else boxes, dtype="int64").reshape(-1, 4)
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        keep = boxes[sides >= self.min_box_size]
        boxes = (keep if len(keep) else boxes[sides > 0])[: self.max_proposals]
        if not len(boxes):
            raise ValueError("No usable box: every box has a zero-size side.")
        crops = np.stack([_resize(_crop_padded(image, box), self.crop_size) for box in boxes])
        box_scores = self._predict(crops)
        canvas = np.zeros((height, width, box_scores.shape[-1]), "float32")
        for box, score in zip(boxes, box_scores):
            x1, y1, x2, y2 = (int(v) for v in box)
            score = _resize(score, (y2 - y1, x2 - x1))
            top, left = max(y1, 0), max(x1, 0)
            bottom, right = min(y2, height), min(x2, width)
            if bottom <= top or right <= left:
                continue
            region = score[top - y1 : bottom - y1, left - x1 : right - x1]
            canvas[top:bottom, left:right] = np.maximum(canvas[top:bottom, left:right], region)
        return canvas

    def _fcn_scores(self, image):
        return average_over_views(image, self._fcn_view_scores, self.tta)

    def _fcn_view_scores(self, image):
        height, width = image.shape[:2]
        if self.fcn_pad_to:
            side_h, side_w = max(self.fcn_pad_to, height), max(self.fcn_pad_to, width)
            canvas = np.empty((side_h, side_w, 3), "float32")
            canvas[:] = CAFFE_MEAN_RGB
            canvas[:height, :width] = image
        else:
            canvas = image.astype("float32")
        return np.asarray(self._fcn_fn(tf.constant(canvas[None], "float32")))[0, :height, :width]

    def _finish(self, image, scores):
        if self.fcn is None:
            probabilities = _softmax(scores)
        elif self.ensemble == "product":
            probabilities = _softmax(scores * np.maximum(self._fcn_scores(image), 0))
        else:
            probabilities = (_softmax(scores) + _softmax(self._fcn_scores(image))) / 2
        if self.crf is not None:
            probabilities = np.asarray(self.crf(image, probabilities), "float32")
        labels = probabilities.argmax(-1).astype("int32")
        return Segmentation(labels, probabilities.reshape(-1, probabilities.shape[-1]).max(0), probabilities.astype("float32"))


def _crop_padded(image, box):
    """The box's pixels, black outside the image (the official zero-padded frame)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    height, width = image.shape[:2]
    crop = np.zeros((y2 - y1, x2 - x1, 3), "float32")
    top, left, bottom, right = max(y1, 0), max(x1, 0), min(y2, height), min(x2, width)
    if bottom > top and right > left:
        crop[top - y1 : bottom - y1, left - x1 : right - x1] = image[top:bottom, left:right]
    return crop


# ----------------------------------------------------------------------------- encoder/decoder split
def decoder_inputs(model, kind):
    """The encoder tensors the decoder of a DecoupledNet or TransferNet reads, in its input order.

    ``kind``: ``"decouplednet"`` (fc7 and the ReLU masks, the score-pool
    switches, pool5, pool1-pool5) or ``"transfernet"`` (scaled conv5_3,
    pool1-pool4). Per pooling: its switches (``pool{N}_mask``) and its input
    (``pool{N}_input``, only the unpooling's size reference).
    """
    layer = model.get_layer
    if kind == "decouplednet":
        cut = {
            "fc7": layer("relu7").output[0],
            "relu7-mask": layer("relu7").output[1],
            "relu6-mask": layer("relu6").output[1],
            "score-pool-mask": layer("cls-score-pooled").output[1],
            "pool5": layer("pool5").output[0],
        }
        levels = range(1, 6)
    elif kind == "transfernet":
        cut, levels = {"conv5_3_scaled": layer("conv5_3_scaled").output}, range(1, 5)
    else:
        raise ValueError(f"Expected kind 'decouplednet' or 'transfernet'. Received {kind!r}.")
    for level in levels:
        cut[f"pool{level}_mask"] = layer(f"pool{level}").output[1]
        cut[f"pool{level}_input"] = layer(f"pool{level}").input
    return cut


# ----------------------------------------------------------------------------- DecoupledNet
def split_decouplednet(model):
    """(encoder, decoder) sub-models of a DecoupledNet sharing its layers and weights.

    ``encoder(images)`` returns a dict of the tensors the decoder needs
    (fc7 and the ReLU masks, the score-pool switches, pool5, every pooling's
    switches and input) plus ``cls-score-avg-sigmoid``; ``decoder([query,
    *those tensors in order])`` returns ``seg-score``. The decoder recomputes
    only the 1x1 ``cls-score-voc`` (the argmax-unpooling size reference).
    """
    cut = decoder_inputs(model, "decouplednet")
    encoder = keras.Model(model.inputs[0], {**cut, "cls-score-avg-sigmoid": model.output["cls-score-avg-sigmoid"]})
    decoder = keras.Model([model.inputs[1], *cut.values()], model.output["seg-score"])
    return encoder, decoder, list(cut)


def decouplednet_queries(scores, threshold, ids=None):
    """§3.4 passes: background query ``s * [s > t]``, then ``e_j * s_j`` per detected class ``j``.

    ``ids``: known 1-based class ids instead of ``s > t`` (oracle labels).
    """
    if ids is None:
        selected = scores > threshold
    else:
        ids = np.unique(np.asarray(list(ids), dtype="int64"))
        if ids.size and (ids.min() < 1 or ids.max() > len(scores)):
            raise ValueError(f"Class ids must be in 1..{len(scores)}. Received: {ids.tolist()}")
        selected = np.zeros(len(scores), bool)
        selected[ids - 1] = True
    detected = np.flatnonzero(selected)
    queries = np.zeros((1 + len(detected), len(scores)), "float32")
    queries[0] = scores * selected
    queries[1 + np.arange(len(detected)), detected] = scores[detected]
    return detected, queries


def combine_decouplednet(seg_probabilities, scores, detected, height, width):
    """§3.4 steps 5-6: background + class maps, fill empty pixels, normalise, back to the image, argmax.

    ``seg_probabilities``: softmax of the passes' ``seg-score`` (background pass first).
    """
    size = tuple(seg_probabilities.shape[1:3])
    maps = np.zeros(size + (len(scores) + 1,), "float32")
    maps[..., 0] = seg_probabilities[0, ..., 0]
    maps[..., detected + 1] = np.moveaxis(seg_probabilities[1:, ..., 1], 0, -1)
    empty = maps.sum(-1) <= 0
    maps[empty, 0] += 1
    for j in detected:
        maps[empty, j + 1] += 1
    maps /= maps.sum(-1, keepdims=True)
    probabilities = _back_to_image(maps, height, width)
    return Segmentation(probabilities.argmax(-1).astype("int32"), scores.astype("float32"), probabilities)


class DecoupledNetPipeline(_Pipeline):
    """DecoupledNet's multi-pass inference (§3.4 of the spec; no CRF, as in the official code).

    1. Pad each image to a square (black, bottom/right), resize to the model's
       input size; run the encoder once: ``s = cls-score-avg-sigmoid``;
       detected classes ``s_j > threshold``.
    2. Background pass with query ``s * [s > threshold]``: background map =
       softmax channel 0. One pass per detected class ``j`` with query
       ``e_j * s_j``: class map = softmax channel 1. All passes of an image
       run as one decoder batch on the shared encoder tensors.
    3. Stack the maps (non-detected classes 0); where the sum is <= 0 add 1 to
       background and detected classes; normalise per pixel; resize back
       (bicubic) to the padded square and crop; argmax.

    ``scores`` is ``s`` (the image-level class sigmoid scores); labels are
    ``0`` (background) and ``j + 1`` for class index ``j``.

    ``pipeline(images, labels=[[ids], ...])`` replaces step 1's detection by
    known class ids (1-based, as TransferNetPipeline): the passes and their
    query values ``s_j`` are the same, only the set of classes is given. Use
    it to measure the segmentation network apart from the classifier.

    ``tta="flip"|"dihedral"``: the whole procedure on each view of the image
    (its own detection included); the views' maps are mapped back and
    averaged before the argmax, and so are the scores.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.models import DecoupledNet
    >>> model = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=1 / 16, fc_kernel_size=1)
    >>> result = DecoupledNetPipeline(model, threshold=0.0)([np.zeros((40, 90, 3), "uint8")])[0]
    >>> result.labels.shape, result.probabilities.shape
    ((40, 90), (40, 90, 5))
    """

    def __init__(self, model, *, threshold=0.5, jit_compile=True, tta="none"):
        _check_tta(tta)
        self.model, self.threshold, self.tta = model, threshold, tta
        self.size = _static_image_size(model)
        self.encoder, self.decoder, self._cut = split_decouplednet(model)
        self._encode, self._decode = compiled(self.encoder, jit_compile), compiled(self.decoder, jit_compile)

    def __call__(self, images, labels=None):
        images = _as_images(images)
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"Expected one label list per image. Received {len(labels)} for {len(images)} images.")
        return [self._one(image, None if labels is None else labels[i]) for i, image in enumerate(images)]

    def _one(self, image, ids=None):
        return _average_runs(image, lambda view: self._single(view, ids), self.tta)

    def _single(self, image, ids=None):
        height, width = image.shape[:2]
        encoded = self._encode(tf.constant(_pad_square_and_resize(image, self.size)[None]))
        scores = np.asarray(encoded["cls-score-avg-sigmoid"])[0]
        detected, queries = decouplednet_queries(scores, self.threshold, ids)
        repeated = [tf.repeat(encoded[name], len(queries), axis=0) for name in self._cut]
        seg = _softmax(np.asarray(self._decode(tf.constant(queries), *repeated)))
        return combine_decouplednet(seg, scores, detected, height, width)


# ----------------------------------------------------------------------------- TransferNet
def split_transfernet(model):
    """(encoder, decoder, names) sub-models of a TransferNet sharing its layers and weights.

    ``encoder(images)``: conv5_3 (scaled), pool1-pool4 switches and inputs;
    ``decoder([cls_label, *tensors])``: attention + decoder -> ``seg-score``.
    """
    layer = model.get_layer
    cut = decoder_inputs(model, "transfernet")
    encoder = keras.Model(model.inputs[0], cut)
    # The decoder also returns the attention map (for pictures of what it attends to).
    outputs = {"seg-score": layer("seg-score").output, "att": layer("att-reshape").output}
    decoder = keras.Model([model.inputs[1], *cut.values()], outputs)
    return encoder, decoder, list(cut)


def transfernet_class_ids(num_classes, threshold, ids=None, scores=None):
    """``(ids, scores)``: user ids (1-based, validated) or classifier scores (>= threshold, else the best)."""
    if ids is not None:
        ids = np.unique(np.asarray(list(ids), dtype="int64"))
        if ids.size and (ids.min() < 1 or ids.max() > num_classes):
            raise ValueError(f"Class ids must be in 1..{num_classes}. Received: {ids.tolist()}")
        scores = np.zeros(num_classes, "float32")
        scores[ids - 1] = 1.0
        return ids, scores
    scores = np.asarray(scores, "float32").reshape(-1)
    ids = np.flatnonzero(scores >= threshold) + 1
    return (ids if ids.size else np.array([int(scores.argmax()) + 1])), scores


def transfernet_pass_probabilities(seg_scores, background_weight):
    """§4.5: ``p = exp(seg)``, background channel weighted (official 1/2), normalised."""
    p = np.exp(seg_scores - seg_scores.max(-1, keepdims=True))
    p[..., 0] *= background_weight
    return p / p.sum(-1, keepdims=True)


def combine_transfernet(class_maps, scores, attention=None):
    """Argmax over the per-class foreground maps; background where every map is 0."""
    best = class_maps.max(-1)
    labels = np.where(best > 0, class_maps.argmax(-1) + 1, 0).astype("int32")
    probabilities = np.concatenate([(1 - best)[..., None], class_maps], axis=-1)
    return Segmentation(labels, scores, probabilities, attention)


class TransferNetPipeline(_Pipeline):
    """TransferNet's per-class inference (§4.5 of the spec; CRF optional).

    1. Pad each image to a square (black), resize to the model's input size,
       run the encoder once.
    2. Class ids (1-based: id ``j`` = query index ``j - 1``) come from
       ``labels`` or from ``classifier(image) -> scores`` (ids with score
       >= ``threshold``, else the best one), as the official
       ``classificationNet`` step.
    3. One attention + decoder pass per class (one batch): ``p = exp(seg)``,
       background channel multiplied by ``background_weight`` (official
       1/2), normalised; resized back (bicubic) and cropped.
    4. Per class, the foreground decision is ``crf(image, [p_bg, p_fg])``'s
       argmax if a CRF is given, else ``p_fg > p_bg``; the class score map is
       ``p_fg`` where foreground, 0 elsewhere; label = argmax over classes,
       background where all class maps are 0.

    ``scores`` holds the classifier scores (or 1 for user-given ids);
    ``probabilities[..., 0]`` is ``1 - max`` of the class maps.
    ``tta="flip"|"dihedral"``: step 3 on each view of the image; the
    ``[p_bg, p_fg]`` and attention maps are mapped back and averaged before
    step 4 (:func:`average_over_views`); the classifier sees the image once.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.models import TransferNet
    >>> model = TransferNet(num_classes=5, input_shape=(64, 64, 3), width=1 / 16)
    >>> result = TransferNetPipeline(model)([np.zeros((30, 20, 3), "uint8")], labels=[[2, 4]])[0]
    >>> result.labels.shape
    (30, 20)
    """

    def __init__(self, model, *, classifier=None, threshold=0.6, background_weight=0.5, crf=None, jit_compile=True,
                 tta="none"):
        _check_tta(tta)
        self.model, self.classifier, self.threshold, self.tta = model, classifier, threshold, tta
        self.background_weight, self.crf = background_weight, crf
        self.size = _static_image_size(model)
        self.num_classes = model.inputs[1].shape[-1]
        self.encoder, self.decoder, self._cut = split_transfernet(model)
        self._encode, self._decode = compiled(self.encoder, jit_compile), compiled(self.decoder, jit_compile)

    def __call__(self, images, labels=None):
        images = _as_images(images)
        if labels is None and self.classifier is None:
            raise ValueError("TransferNetPipeline needs class ids: pass `labels=` per image or build it with `classifier=`.")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"Expected one label list per image. Received {len(labels)} for {len(images)} images.")
        return [self._one(image, None if labels is None else labels[i]) for i, image in enumerate(images)]

    def _class_ids(self, image, ids):
        if ids is not None:
            return transfernet_class_ids(self.num_classes, self.threshold, ids=ids)
        return transfernet_class_ids(self.num_classes, self.threshold, scores=self.classifier(image))

    def _one(self, image, ids):
        height, width = image.shape[:2]
        ids, scores = self._class_ids(image, ids)
        class_maps = np.zeros((height, width, self.num_classes), "float32")
        attention = {}
        if ids.size:
            maps = average_over_views(image, lambda view: self._pass_maps(view, ids), self.tta)
            for k, class_id in enumerate(ids):
                binary = maps[..., 2 * k : 2 * k + 2]
                if self.crf is not None:
                    binary = np.asarray(self.crf(image, binary), "float32")
                foreground = binary.argmax(-1) == 1
                class_maps[..., class_id - 1] = np.where(foreground, binary[..., 1], 0.0)
                attention[int(class_id)] = maps[..., 2 * len(ids) + k]
        return combine_transfernet(class_maps, scores, attention)

    def _pass_maps(self, image, ids):
        """``(H, W, 3K)``: ``[p_bg, p_fg]`` of each class's pass, then each attention map, at the image's size."""
        height, width = image.shape[:2]
        encoded = self._encode(tf.constant(_pad_square_and_resize(image, self.size)[None]))
        queries = np.eye(self.num_classes, dtype="float32")[ids - 1]
        repeated = [tf.repeat(encoded[name], len(ids), axis=0) for name in self._cut]
        decoded = self._decode(tf.constant(queries), *repeated)
        p = transfernet_pass_probabilities(np.asarray(decoded["seg-score"]), self.background_weight)
        att = np.asarray(decoded["att"])
        return np.concatenate([_back_to_image(p[k], height, width) for k in range(len(ids))]
                              + [_back_to_image(att[k], height, width) for k in range(len(ids))], axis=-1)


# ----------------------------------------------------------------------------- FCN-8s / EDeconvNet
class FCN8sPipeline(DeconvNetPipeline):
    """FCN-8s alone, as the released code runs it: mean-padded to ``pad_to`` (500) and cropped back.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.models import FCN8s
    >>> model = FCN8s(num_classes=3, width=1 / 16, fc_units=16)
    >>> FCN8sPipeline(model, pad_to=64).predict([np.zeros((30, 40, 3), "uint8")])[0].shape
    (30, 40)
    """

    def __init__(self, model, *, pad_to=500, crf=None, jit_compile=True, tta="none"):
        super().__init__(model, fcn=model, mode="whole", fcn_pad_to=pad_to, crf=crf, jit_compile=jit_compile, tta=tta)

    def __call__(self, images):
        return [self._finish_fcn(image) for image in _as_images(images)]

    def _finish_fcn(self, image):
        probabilities = _softmax(self._fcn_scores(image))
        if self.crf is not None:
            probabilities = np.asarray(self.crf(image, probabilities), "float32")
        labels = probabilities.argmax(-1).astype("int32")
        return Segmentation(labels, probabilities.reshape(-1, probabilities.shape[-1]).max(0), probabilities)


class EDeconvNetPipeline(DeconvNetPipeline):
    """EDeconvNet: instance-wise DeconvNet combined with FCN-8s (the released inference path).

    ``ensemble="product"`` (the released code, default) or ``"average"`` (the
    paper). See :class:`DeconvNetPipeline` for the other options.
    """

    def __init__(self, deconvnet, fcn, *, mode="instance", ensemble="product", **options):
        super().__init__(deconvnet, fcn=fcn, mode=mode, ensemble=ensemble, **options)
