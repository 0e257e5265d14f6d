"""Training batches streamed from a folder dataset (:mod:`keras_deconv.datasets.folder`).

Nothing is held in memory but the file list: the list is shuffled (every
epoch), each pair of files is decoded in a ``tf.data`` map (through
:func:`keras_deconv.images.read_image` and
:func:`keras_deconv.datasets.folder.read_mask` in a ``tf.numpy_function``,
so images decode exactly as ``predict``/``evaluate`` read them: EXIF
orientation applied, palette masks by index), then the image and its mask
move together through
:func:`~keras_deconv.training.augmentation.random_scale_crop_flip`: bilinear
for the image, nearest for the mask, padding with the mean colour and 255
(void), one crop and one mirror for both.

Two framings:

* ``"native"`` (default): the image at its own scale times ``U(scale_range)``,
  a random ``size`` crop. Inference (``DeconvNetPipeline`` whole mode,
  ``FCN8sPipeline``) runs at the native scale too, so this matches it.
* ``"fit"``: the image first resized so its longer side is the training
  size (the whole image in view, padded to a square with void), then the
  same jitter. DeconvNet's first stage uses it on folder data in place of
  the object-centred crops of ``shapes`` (folder masks have no instances).

Example:

>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> from keras_deconv.datasets import folder
>>> root = tempfile.mkdtemp()
>>> for sub in ("images/train", "masks/train"):
...     os.makedirs(os.path.join(root, sub))
>>> _ = open(os.path.join(root, "classes.txt"), "w").write("background\\nthing\\n")
>>> Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(os.path.join(root, "images/train/a.png"))
>>> Image.fromarray(np.ones((40, 50), np.uint8)).save(os.path.join(root, "masks/train/a.png"))
>>> images, labels = next(iter(batches(folder.scan(root, "train"), 2, (32, 32))))
>>> tuple(images.shape), tuple(labels.shape), sorted(np.unique(labels.numpy()).tolist())
((2, 32, 32, 3), (2, 32, 32), [1])
"""

import numpy as np
import tensorflow as tf

from keras_deconv.datasets import folder
from keras_deconv.images import read_image
from keras_deconv.training import augmentation

FRAMINGS = ("native", "fit")


def _read_pair(image_path, mask_path):
    image = read_image(image_path.decode())
    mask = folder.read_mask(mask_path.decode())
    if mask.shape != image.shape[:2]:  # the scan checked this; a file changed since
        raise folder.FolderDatasetError(f"{mask_path.decode()}: mask {mask.shape} and image {image.shape[:2]} "
                                        "sizes differ. Run `keras-deconv data check` on the dataset.")
    return image, mask.astype(np.uint8)


def load_pair(image_path, mask_path):
    """``(image (H, W, 3) uint8, mask (H, W) uint8)`` tensors of a pair of file names (inside ``tf.data``)."""
    image, mask = tf.numpy_function(_read_pair, [image_path, mask_path], [tf.uint8, tf.uint8], stateful=False)
    image.set_shape([None, None, 3])
    mask.set_shape([None, None])
    return image, mask


def fit_longer_side(image, label, side):
    """Resizes so the longer side is ``side`` (aspect kept): image bilinear, labels nearest."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    new = tf.maximum(tf.cast(tf.round(shape * float(side) / tf.reduce_max(shape)), tf.int32), 1)
    image = tf.image.resize(tf.cast(image, tf.float32), new, method="bilinear")
    label = tf.image.resize(tf.cast(label, tf.int32)[..., None], new, method="nearest")[..., 0]
    return image, label


def augment(image, label, size, *, framing="native", scale_range=(0.8, 1.25), flip=True, invariances=False):
    """One training example: ``framing`` (``"native"``/``"fit"``), then the joint scale/crop/flip."""
    if framing not in FRAMINGS:
        raise ValueError(f"Expected framing 'native' or 'fit'. Received {framing!r}.")
    image = tf.cast(image, tf.float32)
    label = tf.cast(label, tf.int32)
    if framing == "fit":
        image, label = fit_longer_side(image, label, max(size))
    image, label = augmentation.random_scale_crop_flip(image, label, size, scale_range, flip)
    if invariances:
        image, label = augmentation.random_shape_invariances(image, label)
    return image, label


def batches(split, batch_size, size, *, framing="native", scale_range=(0.8, 1.25), flip=True, shuffle=True, seed=0,
            repeat=True, invariances=False):
    """``(image float32 (B, h, w, 3), label int32 (B, h, w))`` batches streamed from a scanned split.

    Args:
        split: a :class:`~keras_deconv.datasets.folder.FolderSplit`
            (``folder.scan(root, "train")``).
        batch_size: examples per batch (the last partial batch is dropped).
        size: ``(h, w)`` of the training crops.
        framing: ``"native"`` or ``"fit"`` (module docstring).
        scale_range: random scale factor range; ``(1, 1)`` for none.
        flip: random horizontal mirror.
        shuffle: reshuffle the file list every epoch.
        seed: the shuffling seed.
        repeat: repeat forever (training) or one pass.
        invariances: also rot90 + colour permutation/inversion (for
            data whose classes do not depend on colour or orientation).
    """
    files = tf.data.Dataset.from_tensor_slices((list(split.image_paths), list(split.mask_paths)))
    if shuffle:
        files = files.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()

    def prepare(image_path, mask_path):
        image, label = load_pair(image_path, mask_path)
        return augment(image, label, size, framing=framing, scale_range=scale_range, flip=flip,
                       invariances=invariances)

    ds = files.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------- image-level labels and (image, class) pairs
def present_classes(split):
    """Per image of a scanned split, the sorted object classes (1-based, no background, no void) its mask holds."""
    present = []
    for mask_path in split.mask_paths:
        values = np.unique(folder.read_mask(mask_path))
        present.append([int(v) for v in values if 0 < v < len(split.class_names)])
    return present


def strong_images(present, budget, seed=0):
    """Indices of the images that keep their masks under ``budget`` masks per class (DecoupledNet's budgets).

    For each class in turn, the first ``budget`` images holding it (in name
    order, or shuffled by a non-zero ``seed``) are chosen; an image counts for every class it
    holds, so some classes get more. ``"all"``: every image with a class.

    >>> strong_images([[1], [1, 2], [2], [1], []], 1)
    [0, 1]
    >>> strong_images([[1], [1, 2], [2], [1], []], 2)
    [0, 1, 2]
    >>> strong_images([[1], [1, 2], [2], [1], []], "all")
    [0, 1, 2, 3]
    """
    if budget == "all":
        return [i for i, classes in enumerate(present) if classes]
    order = np.random.default_rng(seed).permutation(len(present)) if seed else np.arange(len(present))
    chosen = set()
    for c in sorted({c for classes in present for c in classes}):
        have = sum(1 for i in chosen if c in present[i])
        for i in order:
            if have >= budget:
                break
            if c in present[i] and int(i) not in chosen:
                chosen.add(int(i))
                have += 1
    return sorted(chosen)


def image_label_batches(split, batch_size, size, num_object_classes, *, scale_range=(0.9, 1.15), seed=0):
    """``(image, multi-hot float32 (B, num_object_classes))``: the classes present in each augmented crop.

    The labels come from the mask after the same crop as the image (whole
    images resized to fit the crop side, then a mild jitter), so a class
    cropped away is not claimed.
    """
    files = tf.data.Dataset.from_tensor_slices((list(split.image_paths), list(split.mask_paths)))
    files = files.shuffle(len(split), seed=seed, reshuffle_each_iteration=True).repeat()
    classes = tf.range(1, num_object_classes + 1, dtype=tf.int32)

    def prepare(image_path, mask_path):
        image, label = augment(*load_pair(image_path, mask_path), size, framing="fit", scale_range=scale_range)
        present = tf.reduce_any(tf.equal(tf.reshape(label, [-1, 1]), classes[None]), axis=0)
        return image, tf.cast(present, tf.float32)

    ds = files.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def class_pair_batches(split, pairs, batch_size, size, num_object_classes, *, scale_range=(0.8, 1.25), seed=0,
                       shuffle=True, repeat=True, masks=True, target="binary"):
    """``({"data": image, "cls-label": one-hot}, figure-ground map)``: one example per (image, class) in ``pairs``.

    The map is 1 on the class, 0 elsewhere, 255 on void (DecoupledNet's
    ``SELECT_SEG_BINARY`` target), cropped with the image (native scale);
    all 255 with ``masks=False`` (an image-level label only: TransferNet's
    target domain). ``target``: ``"binary"`` (y = the map), ``"class"`` (y =
    the 0-based class index) or ``"both"`` (``{"seg-score": map,
    "cls-score-voc-att": index}``), as :func:`keras_deconv.training.data.class_pairs`.
    """
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    image_paths = np.asarray(split.image_paths)[pairs[:, 0]]
    mask_paths = np.asarray(split.mask_paths)[pairs[:, 0]]
    ds = tf.data.Dataset.from_tensor_slices((list(image_paths), list(mask_paths), pairs[:, 1].astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def prepare(image_path, mask_path, c):
        image, label = load_pair(image_path, mask_path)
        label = tf.cast(label, tf.int32)
        binary = tf.where(label == 255, 255, tf.cast(label == c, tf.int32))
        if not masks:
            binary = tf.fill(tf.shape(label), 255)
        image, binary = augment(image, binary, size, scale_range=scale_range)
        inputs = {"data": image, "cls-label": tf.one_hot(c - 1, num_object_classes)}
        if target == "class":
            return inputs, c - 1
        if target == "both":
            return inputs, {"seg-score": binary, "cls-score-voc-att": c - 1}
        return inputs, binary

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)
