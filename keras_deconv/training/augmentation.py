"""Segmentation-aware augmentation: the image and its label map move together.

Everything is plain ``tf.image`` / ``tf`` ops (no keras-cv), so the functions
run inside ``tf.data`` pipelines, on any device and under
``tf.distribute``. Images are float32 RGB in 0-255, label maps integer with
255 = void (ignored by the losses).

* :func:`random_scale_crop_flip`: random rescale (image bilinear, labels
  nearest), pad (image with the Caffe mean colour, labels with 255) and one
  joint random crop, joint random mirror. The ``TransformImgAndSeg`` step of
  the Caffe data layers (``networks.md`` §1.8) plus a scale jitter.
* :func:`crop_window`: a window ``[ymin, xmin, ymax, xmax]`` (normalised,
  may extend past the image) cropped and resized, the outside black for the
  image and 255 for the labels, as ``WINDOW_SEG_DATA``.
* :func:`random_shape_invariances`: a random rotation by a multiple of 90
  degrees (image and labels together), a random permutation of the colour
  channels and a random colour inversion (image only). Not in the papers:
  ``shapes`` classes are defined by shape alone, so these keep every label
  and stop a small network from memorising colours and textures (measured
  in ``bench/learnability_check.py``).
* :func:`object_centred_box` and :func:`window_around_object`: the boxes of
  DeconvNet's stage 1 (object-centred crops from the ground truth) and
  stage 2 (windows overlapping the ground truth).
"""

import tensorflow as tf

from keras_deconv.preprocessing import CAFFE_MEAN_BGR

#: The Caffe mean in RGB order (padding with it is zero after preprocessing).
MEAN_RGB = tuple(reversed(CAFFE_MEAN_BGR))
IGNORE_LABEL = 255


def _joint_crop_flip(image, label, size, flip):
    """One random crop of ``size`` and one random mirror applied to both tensors."""
    label = tf.cast(label, tf.float32)[..., None]
    both = tf.concat([image, label], axis=-1)
    both = tf.image.random_crop(both, (size[0], size[1], 4))
    if flip:
        both = tf.image.random_flip_left_right(both)
    return both[..., :3], tf.cast(tf.round(both[..., 3]), tf.int32)


def pad_to_at_least(image, label, size, image_value=MEAN_RGB, label_value=IGNORE_LABEL):
    """Pads (bottom/right) so both sides are at least ``size``: image with ``image_value``, labels with 255."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    pad_h = tf.maximum(size[0] - height, 0)
    pad_w = tf.maximum(size[1] - width, 0)
    paddings = [[0, pad_h], [0, pad_w]]
    channels = [tf.pad(image[..., c], paddings, constant_values=float(image_value[c])) for c in range(3)]
    image = tf.stack(channels, axis=-1)
    label = tf.pad(tf.cast(label, tf.int32), paddings, constant_values=label_value)
    return image, label


def random_scale_crop_flip(image, label, size, scale_range=(0.8, 1.25), flip=True):
    """Joint random rescale, pad, crop to ``size`` and mirror of an image and its label map.

    Args:
        image: ``(H, W, 3)`` float32 RGB, 0-255.
        label: ``(H, W)`` integer labels (255 = void).
        size: ``(height, width)`` of the output.
        scale_range: ``(low, high)`` of the uniform random scale factor;
            ``(1, 1)`` disables rescaling.
        flip: random horizontal mirror.

    Returns:
        ``(image (size, 3) float32, label (size) int32)``.
    """
    image = tf.cast(image, tf.float32)
    label = tf.cast(label, tf.int32)
    low, high = scale_range
    if (low, high) != (1, 1):
        scale = tf.random.uniform((), low, high)
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        new = tf.cast(tf.round(shape * scale), tf.int32)
        image = tf.image.resize(image, new, method="bilinear")
        label = tf.cast(tf.image.resize(label[..., None], new, method="nearest")[..., 0], tf.int32)
    image, label = pad_to_at_least(image, label, size)
    return _joint_crop_flip(image, label, size, flip)


def random_shape_invariances(image, label):
    """Random rot90 (image and labels), colour-channel permutation and colour inversion (image).

    For data whose classes depend on shape only (``shapes``): none of these
    changes a label, and together they leave 4 x 6 x 2 = 48 colour/orientation
    variants of every training image (x2 with a mirror), so memorising an
    image's colours no longer fits the training set. Images are float32 RGB
    in 0-255 and must be square (rot90 would change a non-square size).

    Example:

    >>> import numpy as np
    >>> image, label = random_shape_invariances(np.zeros((8, 8, 3), "float32"), np.zeros((8, 8), "int32"))
    >>> tuple(image.shape), tuple(label.shape)
    ((8, 8, 3), (8, 8))
    """
    image = tf.cast(image, tf.float32)
    label = tf.cast(label, tf.int32)
    turns = tf.random.uniform((), 0, 4, dtype=tf.int32)
    image = tf.image.rot90(image, turns)
    label = tf.image.rot90(label[..., None], turns)[..., 0]
    image = tf.gather(image, tf.random.shuffle(tf.range(3)), axis=-1)
    image = tf.where(tf.random.uniform(()) < 0.5, 255.0 - image, image)
    return image, label


def crop_window(image, label, box, size):
    """Crops ``box`` (normalised ``[ymin, xmin, ymax, xmax]``, may leave the image) and resizes it to ``size``.

    Outside the image the crop is black (0) and the labels are void (255),
    as in Caffe's ``WINDOW_SEG_DATA``. Image: bilinear; labels: nearest.
    """
    image = tf.cast(image, tf.float32)[None]
    label = tf.cast(label, tf.float32)[None, ..., None]
    boxes = tf.reshape(edge_box(box, tf.shape(image)[1], size[0]), (1, 4))
    index = tf.zeros((1,), tf.int32)
    crop = tf.image.crop_and_resize(image, boxes, index, size, method="bilinear", extrapolation_value=0.0)
    lab = tf.image.crop_and_resize(label, boxes, index, size, method="nearest", extrapolation_value=float(IGNORE_LABEL))
    return crop[0], tf.cast(tf.round(lab[0, ..., 0]), tf.int32)


def edge_box(box, image_size, output_size):
    """Edge-to-edge normalised box -> ``crop_and_resize``'s convention (one axis size per call site).

    ``crop_and_resize`` samples output pixel ``j`` at input pixel index
    ``y1 * (H - 1) + j * (y2 - y1) * (H - 1) / (out - 1)``; the shapes boxes
    use pixel edges, whose output pixel centres sit at index
    ``(e1 + (j + 0.5) * (e2 - e1) / out) * H - 0.5``. Solving for ``y1, y2``
    makes the two agree, so the identity box reproduces the image exactly.
    """
    box = tf.cast(box, tf.float32)
    n = tf.cast(image_size, tf.float32)
    out = tf.cast(output_size, tf.float32)
    start, end = box[:2], box[2:]
    extent = end - start
    y1 = (start * n + 0.5 * extent * n / out - 0.5) / (n - 1.0)
    y2 = y1 + extent * n * (out - 1.0) / (out * (n - 1.0))
    return tf.concat([y1, y2], axis=0)


def _square(cy, cx, side):
    half = side / 2
    return tf.stack([cy - half, cx - half, cy + half, cx + half])


def object_centred_box(object_box, context=(1.2, 1.6)):
    """A square box centred on an object's box, ``U(context)`` times its longer side (stage 1)."""
    ymin, xmin, ymax, xmax = tf.unstack(tf.cast(object_box, tf.float32))
    side = tf.maximum(ymax - ymin, xmax - xmin) * tf.random.uniform((), context[0], context[1])
    return _square((ymin + ymax) / 2, (xmin + xmax) / 2, side)


def window_around_object(object_box, scale=(1.0, 3.0), jitter=0.25, max_side=1.5):
    """A random square window overlapping an object (stage 2 "proposals").

    Side ``U(scale)`` times the object's longer side (at most ``max_side``
    of the image, at least the object), centre shifted by up to
    ``jitter * side``: the object stays mostly inside, context varies.
    """
    ymin, xmin, ymax, xmax = tf.unstack(tf.cast(object_box, tf.float32))
    longer = tf.maximum(ymax - ymin, xmax - xmin)
    side = tf.minimum(longer * tf.random.uniform((), scale[0], scale[1]), tf.maximum(max_side, longer))
    shift = tf.random.uniform((2,), -jitter, jitter) * side
    return _square((ymin + ymax) / 2 + shift[0], (xmin + xmax) / 2 + shift[1], side)
