"""SavedModel export with the whole pipeline in-graph (pre-processing, network, post-processing).

See :func:`serving_functions` for the signatures and :func:`to_saved_model`
for the writer.
"""

from keras_deconv.export._files import _quiet_stdout, _write_directory_atomically
from keras_deconv.export.kinds import _default_settings, model_kind, split_model


def _resize_like_pipeline(tf, images, size, method):
    """``tf.image.resize`` unless the size already matches (as the NumPy pipelines do)."""
    same = tf.logical_and(tf.equal(tf.shape(images)[1], size[0]), tf.equal(tf.shape(images)[2], size[1]))
    return tf.cond(same, lambda: images, lambda: tf.image.resize(images, size, method=method, antialias=False))


def _pad_square_resize(tf, images, size):
    """Black padding (bottom/right) to a square, bilinear resize: DecoupledNet/TransferNet input."""
    images = tf.cast(images, tf.float32)
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    side = tf.maximum(height, width)
    square = tf.pad(images, [[0, 0], [0, side - height], [0, side - width], [0, 0]])
    return _resize_like_pipeline(tf, square, size, "bilinear"), height, width, side


def _softmax(tf, x):
    """Softmax computed as the NumPy pipelines do (``exp(x - max) / sum``)."""
    e = tf.exp(x - tf.reduce_max(x, -1, keepdims=True))
    return e / tf.reduce_sum(e, -1, keepdims=True)


def _dense_function(tf, model, kind, min_size, multiple):
    from keras_deconv.pipelines import CAFFE_MEAN_RGB

    def segment(images):
        x = tf.cast(images, tf.float32)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        padded_h = tf.maximum((height + multiple - 1) // multiple * multiple, min_size)
        padded_w = tf.maximum((width + multiple - 1) // multiple * multiple, min_size)
        paddings = [[0, 0], [0, padded_h - height], [0, padded_w - width]]
        # Pad each channel with its mean colour: zeros after the Caffe preprocessing.
        x = tf.stack([tf.pad(x[..., c], paddings, constant_values=CAFFE_MEAN_RGB[c]) for c in range(3)], axis=-1)
        scores = model(x, training=False)[:, :height, :width]
        probabilities = _softmax(tf, scores)
        return {
            "labels": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
            "probabilities": probabilities,
            "scores": tf.reduce_max(probabilities, axis=[1, 2]),
        }

    spec = [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]
    return {"serving_default": (segment, spec)}


def _decoupled_function(tf, model, threshold):
    encoder, decoder, cut = split_model(model)
    size = tuple(model.inputs[0].shape[1:3])
    num_classes = model.inputs[1].shape[-1]

    def segment(images):
        x, height, width, side = _pad_square_resize(tf, images[:1], size)
        encoded = encoder(x, training=False)
        scores = encoded["cls-score-avg-sigmoid"][0]
        detected_mask = scores > threshold
        detected = tf.where(detected_mask)[:, 0]
        one_hot = tf.one_hot(detected, num_classes, dtype=tf.float32)
        queries = tf.concat([(scores * tf.cast(detected_mask, tf.float32))[None], one_hot * tf.gather(scores, detected)[:, None]], 0)
        count = tf.shape(queries)[0]
        repeated = [tf.repeat(encoded[name], count, axis=0) for name in cut]
        seg = _softmax(tf, decoder([queries, *repeated], training=False))
        foreground = tf.einsum("kyx,kc->yxc", seg[1:, ..., 1], one_hot)
        maps = tf.concat([seg[0, ..., 0:1], foreground], axis=-1)
        empty = tf.cast(tf.reduce_sum(maps, -1, keepdims=True) <= 0, tf.float32)
        present = tf.cast(tf.concat([[True], detected_mask], 0), tf.float32)
        maps = maps + empty * present
        maps = maps / tf.reduce_sum(maps, -1, keepdims=True)
        maps = _resize_like_pipeline(tf, maps[None], tf.stack([side, side]), "bicubic")[:, :height, :width]
        return {"labels": tf.argmax(maps, -1, output_type=tf.int32), "probabilities": maps, "scores": scores[None]}

    spec = [tf.TensorSpec([1, None, None, 3], tf.uint8, name="images")]
    return {"serving_default": (segment, spec)}


def _transfer_function(tf, model, threshold, background_weight):
    encoder, decoder, cut = split_model(model)
    size = tuple(model.inputs[0].shape[1:3])
    num_classes = model.inputs[1].shape[-1]

    def segment_ids(images, class_ids):
        ids, _ = tf.unique(tf.cast(tf.reshape(class_ids, [-1]), tf.int32))
        checks = [
            tf.debugging.assert_greater_equal(ids, 1, message=f"class ids must be in 1..{num_classes}"),
            tf.debugging.assert_less_equal(ids, num_classes, message=f"class ids must be in 1..{num_classes}"),
        ]
        with tf.control_dependencies(checks):
            one_hot = tf.one_hot(ids - 1, num_classes, dtype=tf.float32)
        height, width = tf.shape(images)[1], tf.shape(images)[2]

        def run():
            x, _, _, side = _pad_square_resize(tf, images[:1], size)
            encoded = encoder(x, training=False)
            count = tf.shape(one_hot)[0]
            repeated = [tf.repeat(encoded[name], count, axis=0) for name in cut]
            seg = decoder([one_hot, *repeated], training=False)
            p = tf.exp(seg - tf.reduce_max(seg, -1, keepdims=True))
            p = p * tf.constant([background_weight, 1.0])
            p = p / tf.reduce_sum(p, -1, keepdims=True)
            p = _resize_like_pipeline(tf, p, tf.stack([side, side]), "bicubic")[:, :height, :width]
            maps = tf.where(p[..., 1] > p[..., 0], p[..., 1], 0.0)
            return tf.einsum("kyx,kc->yxc", maps, one_hot)

        # No class asked: no network pass, everything is background (as the pipeline).
        class_maps = tf.cond(tf.size(ids) > 0, run, lambda: tf.zeros(tf.stack([height, width, num_classes])))
        best = tf.reduce_max(class_maps, -1)
        labels = tf.where(best > 0, tf.argmax(class_maps, -1, output_type=tf.int32) + 1, 0)
        probabilities = tf.concat([(1 - best)[..., None], class_maps], -1)
        return labels[None], probabilities[None], tf.reduce_max(tf.concat([one_hot, tf.zeros([1, num_classes])], 0), 0)

    def segment(images, class_ids):
        labels, probabilities, scores = segment_ids(images, class_ids)
        return {"labels": labels, "probabilities": probabilities, "scores": scores[None]}

    def segment_with_scores(images, class_scores):
        scores = tf.reshape(tf.cast(class_scores, tf.float32), [num_classes])
        ids = tf.cast(tf.where(scores >= threshold)[:, 0], tf.int32) + 1
        ids = tf.cond(tf.size(ids) > 0, lambda: ids, lambda: tf.argmax(scores, output_type=tf.int32)[None] + 1)
        labels, probabilities, _ = segment_ids(images, ids)
        return {"labels": labels, "probabilities": probabilities, "scores": scores[None]}

    image_spec = tf.TensorSpec([1, None, None, 3], tf.uint8, name="images")
    return {
        "serving_default": (segment, [image_spec, tf.TensorSpec([None], tf.int32, name="class_ids")]),
        "segment_with_scores": (segment_with_scores, [image_spec, tf.TensorSpec([num_classes], tf.float32, name="class_scores")]),
    }


def serving_functions(model, **settings):
    """``{signature name: (python function, input_signature)}`` with the pipeline in-graph.

    * DeconvNet / FCN-8s, ``serving_default(images uint8 [B, H, W, 3])``:
      mean-colour padding (bottom/right) to a multiple of 32 and at least
      ``min_size`` (DeconvNet), one pass, crop back, softmax.
    * DecoupledNet, ``serving_default(images uint8 [1, H, W, 3])``: §3.4 with
      the encoder run once and the background + detected-class passes in one
      decoder batch (the batch size is the number of detected classes + 1).
    * TransferNet, ``serving_default(images uint8 [1, H, W, 3], class_ids
      int32 [K])`` (ids 1-based, duplicates ignored) and
      ``segment_with_scores(images, class_scores float32 [num_classes])``
      (ids with a score >= ``threshold``, else the best one, as the official
      classifier step); background probability times ``background_weight``.

    Every signature returns ``labels`` int32 ``[B, H, W]``,
    ``probabilities`` float32 ``[B, H, W, L]`` and ``scores`` float32
    ``[B, num_classes]`` with the meaning of the Keras pipeline's
    :class:`~keras_deconv.pipelines.Segmentation` fields.
    """
    import tensorflow as tf

    kind = model_kind(model)
    settings = {**_default_settings(kind, model), **settings}
    if kind in ("deconvnet", "fcn8s"):
        return _dense_function(tf, model, kind, int(settings["min_size"]), int(settings["multiple"]))
    if kind == "decouplednet":
        return _decoupled_function(tf, model, float(settings["threshold"]))
    return _transfer_function(tf, model, float(settings["threshold"]), float(settings["background_weight"]))


def to_saved_model(model, path, **settings):
    """Write a SavedModel whose signatures run the whole pipeline (see :func:`serving_functions`).

    The directory is built next to ``path`` and renamed into place, so a
    failure leaves nothing behind. It loads with plain
    ``tf.saved_model.load`` (no keras-deconv import needed).

    Example:

    >>> import tempfile, os, numpy as np, tensorflow as tf
    >>> from keras_deconv.models import DeconvNet
    >>> model = DeconvNet(num_classes=3, width=1 / 16, fc_units=32, fc_kernel_size=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "deconvnet")
    >>> _ = to_saved_model(model, path, min_size=64)
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> tuple(serve(images=tf.zeros([1, 40, 50, 3], tf.uint8))["labels"].shape)
    (1, 40, 50)
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, spec) in serving_functions(model, **settings).items():
        archive.add_endpoint(name, tf.autograph.experimental.do_not_convert(function), input_signature=spec)

    def write(temporary):
        with _quiet_stdout():
            archive.write_out(temporary, verbose=False)

    return _write_directory_atomically(path, write)
