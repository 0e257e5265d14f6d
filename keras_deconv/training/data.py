"""Training inputs built from the synthetic ``shapes`` dataset (``tf.data``, no files).

The selected split is generated once per process into NumPy arrays (a few
ms an image at 64x64) and served from memory: at most
:data:`MAX_TRAIN_IMAGES` (4000) train images, the first of the selection,
since the standard ``shapes`` train split streams 1,000,000 images; every random choice
(shuffling, crops, windows, flips) happens in the ``tf.data`` graph, so the
same code feeds one device or a ``tf.distribute`` strategy.

The data layers of the official training (``networks.md`` §1.8) and what
stands in for them here:

* ``IMAGE_SEG_DATA`` on object-centred crops (DeconvNet stage 1):
  :func:`object_crops`, one example per ground-truth object, the crop centred
  on its box; only that object keeps its class, other objects become
  background (void rims stay 255).
* ``WINDOW_SEG_DATA`` on windows overlapping the ground truth (stage 2):
  :func:`windows`, a random square window around a random object (or the
  whole image), all objects labelled.
* ``SELECT_SEG_BINARY`` (DecoupledNet) and ``SelectSrcTgkSegBinary``
  (TransferNet): :func:`class_pairs`, one example per (image, class present),
  the label map rewritten to figure-ground for that class.
* Whole images with scale/crop/flip augmentation (FCN-8s): :func:`whole_images`;
  or fresh whole images from the streaming train split: :func:`stream`.
* Image-level multi-hot labels (classification stages): :func:`image_labels`.

Every function takes ``invariances=True`` to add
:func:`~keras_deconv.training.augmentation.random_shape_invariances` (rot90,
colour permutation and inversion) after the crop; the recipes turn it on for
``shapes`` (hyperparameter ``invariances``), where it is what lets a small
network generalise instead of memorising colours.
"""

import functools

import numpy as np
import tensorflow as tf

from keras_deconv.datasets import shapes
from keras_deconv.training import augmentation

#: Resize-then-crop ratio of the Caffe data layers (250 -> 224; 350 -> 320).
CROP_RATIO = 250 / 224


#: Train images held in memory at most (the first of the selection): the size of the
#: original ``shapes`` train split, now a slice of the streaming standard one.
MAX_TRAIN_IMAGES = 4000


@functools.lru_cache(maxsize=8)
def _arrays(split, image_size, indices_key):
    indices = None if indices_key is None else np.asarray(indices_key, dtype=np.int64)
    data = shapes.as_numpy(split, image_size=image_size, indices=indices)
    for value in data.values():
        value.flags.writeable = False
    return data


def arrays(split="train", image_size=64, indices=None):
    """The selected examples of a split as a dict of NumPy arrays (cached per process).

    The train split gives at most :data:`MAX_TRAIN_IMAGES`: the first of
    ``indices`` (default: of the split).
    """
    if split == "train":
        if indices is None:
            indices = np.arange(min(MAX_TRAIN_IMAGES, shapes.SPLITS["train"]))
        indices = np.asarray(indices).ravel()[:MAX_TRAIN_IMAGES]
    key = None if indices is None else tuple(int(i) for i in np.asarray(indices).ravel())
    return _arrays(split, int(image_size), key)


def _finish(ds, shuffle, seed, repeat=True, buffer=None):
    if shuffle:
        ds = ds.shuffle(buffer or 4096, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds


def _batch(ds, batch_size):
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _base(data, keys):
    return tf.data.Dataset.from_tensor_slices({k: np.asarray(data[k]) for k in keys})


def _augment(image, label, size, scale_range, flip, invariances):
    """Joint scale/crop/mirror, then (``invariances``) rot90 + colour permutation/inversion."""
    image, label = augmentation.random_scale_crop_flip(image, label, size, scale_range, flip)
    if invariances:
        image, label = augmentation.random_shape_invariances(image, label)
    return image, label


def whole_images(data, batch_size, size, *, scale_range=(0.8, 1.25), flip=True, shuffle=True, seed=0, repeat=True,
                 invariances=False):
    """``(image, label)`` batches of whole images with joint scale/crop/flip augmentation."""

    def prepare(ex):
        if scale_range is None:
            return tf.cast(ex["image"], tf.float32), tf.cast(ex["label"], tf.int32)
        return _augment(ex["image"], ex["label"], size, scale_range, flip, invariances)

    ds = _finish(_base(data, ("image", "label")), shuffle, seed, repeat)
    return _batch(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE), batch_size)


def stream(batch_size, image_size=64, *, seed=0, config="standard"):
    """``(image, label)`` batches of fresh train images, never one twice (the streaming train split).

    No augmentation: each image is new, which is what the augmentations stand
    in for. Generated in the ``tf.data`` pipeline (``shapes.load``), so the
    first batch comes at once, not after caching thousands of images.
    """
    ds = shapes.load("train", batch_size=int(batch_size), image_size=int(image_size), seed=seed,
                     drop_remainder=True, config=config)
    ds = ds.map(lambda image, label: (tf.cast(image, tf.float32), tf.cast(label, tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.repeat().prefetch(tf.data.AUTOTUNE)


def _object_table(data):
    """Flat (image index, object index) pairs over every ground-truth object."""
    pairs = [(i, k) for i, n in enumerate(np.asarray(data["num_objects"])) for k in range(int(n))]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def object_crops(data, batch_size, size, *, context=(1.2, 1.6), shuffle=True, seed=0, invariances=False):
    """DeconvNet stage 1: object-centred crops, only the central object labelled.

    Each crop is a square ``U(context)`` times the object's longer side,
    centred on its box, resized to ``size * CROP_RATIO`` and then randomly
    cropped to ``size`` and mirrored (Caffe: 250 -> 224).
    """
    table = _object_table(data)
    images = tf.constant(data["image"])
    instances, boxes = tf.constant(data["instances"]), tf.constant(data["boxes"])
    classes = tf.constant(data["classes"])
    big = [int(round(s * CROP_RATIO)) for s in size]

    def prepare(pair):
        i, k = pair[0], pair[1]
        inst = tf.cast(instances[i], tf.int32)
        cls = tf.cast(classes[i, k], tf.int32)
        lab = tf.where(inst == tf.cast(k, tf.int32) + 1, cls, tf.where(inst == 255, 255, 0))
        box = augmentation.object_centred_box(boxes[i, k], context)
        image, lab = augmentation.crop_window(images[i], lab, box, big)
        return _augment(image, lab, size, (1, 1), True, invariances)

    ds = _finish(tf.data.Dataset.from_tensor_slices(table), shuffle, seed)
    return _batch(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE), batch_size)


def windows(data, batch_size, size, *, scale=(1.0, 3.0), whole_image_probability=0.25, shuffle=True, seed=0,
            invariances=False):
    """DeconvNet stage 2: windows overlapping the ground truth, all objects labelled.

    With probability ``whole_image_probability`` the window is the whole
    image, else a random square around a random object
    (:func:`~keras_deconv.training.augmentation.window_around_object`);
    resized to ``size * CROP_RATIO``, randomly cropped to ``size`` and
    mirrored. Outside the image: black pixels, void labels.
    """
    images, labels = tf.constant(data["image"]), tf.constant(data["label"])
    boxes, counts = tf.constant(data["boxes"]), tf.constant(data["num_objects"])
    big = [int(round(s * CROP_RATIO)) for s in size]

    def prepare(i):
        k = tf.random.uniform((), 0, tf.maximum(tf.cast(counts[i], tf.int32), 1), dtype=tf.int32)
        i = tf.cast(i, tf.int32)
        around = augmentation.window_around_object(boxes[i, k], scale)
        whole = tf.constant([0.0, 0.0, 1.0, 1.0])
        box = tf.where(tf.random.uniform(()) < whole_image_probability, whole, around)
        image, lab = augmentation.crop_window(images[i], labels[i], box, big)
        return _augment(image, lab, size, (1, 1), True, invariances)

    ds = _finish(tf.data.Dataset.range(len(data["image"])), shuffle, seed)
    return _batch(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE), batch_size)


def image_labels(data, batch_size, size, *, scale_range=(0.9, 1.15), shuffle=True, seed=0, classes=None,
                 invariances=False):
    """``(image, multi-hot float32)`` batches for the multi-label classification stages.

    ``classes``: optional 1-based class ids to keep as label columns (all 12 by default).
    """
    columns = np.arange(shapes.NUM_OBJECT_CLASSES) if classes is None else np.asarray(classes) - 1

    def prepare(ex):
        image, _ = _augment(ex["image"], ex["label"], size, scale_range, True, invariances)
        return image, tf.gather(tf.cast(ex["image_labels"], tf.float32), columns)

    ds = _finish(_base(data, ("image", "label", "image_labels")), shuffle, seed)
    return _batch(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE), batch_size)


def _pair_table(data):
    rows = []
    for i, labels in enumerate(np.asarray(data["image_labels"])):
        for c in np.flatnonzero(labels):
            rows.append((i, c + 1))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def class_pairs(data, batch_size, size, *, num_classes=shapes.NUM_OBJECT_CLASSES, masks=True,
                scale_range=(0.8, 1.25), shuffle=True, seed=0, query_key="cls-label", target="binary",
                invariances=False, repeat=True):
    """One example per (image, class present): figure-ground targets (``SELECT_SEG_BINARY``).

    Yields ``({"data": image, query_key: one-hot of the class}, y)``. The
    binary map is the label map rewritten to 1 on the selected class, 0
    elsewhere, 255 on void (``masks=True``), or all 255 (``masks=False``:
    image-level label only, as TransferNet's target-domain batches).
    ``target``: ``"binary"`` (y = the map), ``"class"`` (y = the 0-based
    class index) or ``"both"`` (``{"seg-score": map, "cls-score-voc-att":
    index}``). ``scale_range=None``: no augmentation at all (validation).
    """
    table = _pair_table(data)
    images, labels = tf.constant(data["image"]), tf.constant(data["label"])

    def prepare(row):
        i, c = row[0], tf.cast(row[1], tf.int32)
        lab = tf.cast(labels[i], tf.int32)
        binary = tf.where(lab == 255, 255, tf.cast(lab == c, tf.int32))
        if not masks:
            binary = tf.fill(tf.shape(lab), 255)
        if scale_range is None:
            image = tf.cast(images[i], tf.float32)
        else:
            image, binary = _augment(images[i], binary, size, scale_range, True, invariances)
        inputs = {"data": image, query_key: tf.one_hot(c - 1, num_classes)}
        if target == "class":
            return inputs, c - 1
        if target == "both":
            return inputs, {"seg-score": binary, "cls-score-voc-att": c - 1}
        return inputs, binary

    ds = _finish(tf.data.Dataset.from_tensor_slices(table), shuffle, seed, repeat)
    return _batch(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE), batch_size)


def alternate(first, second):
    """Batches from ``first`` and ``second`` in turn (TransferNet's domain switch: target, source, ...)."""
    choice = tf.data.Dataset.range(2).repeat()
    return tf.data.Dataset.choose_from_datasets([first, second], choice)
