"""``shapes``: a built-in, deterministic synthetic segmentation dataset.

Images are generated on the fly from a seed (no files, no downloads) and are
cheap enough to train and evaluate small DeconvNet-family models on a CPU.
The **shape** of an object is the only cue to its class: colours and
textures are random, so a per-pixel colour classifier scores near the
all-background floor (:mod:`keras_deconv.datasets.shapes_baselines`).

Classes (``CLASS_NAMES``; 0 is background, 255 is void):

====  ==========  ======  ====  ==========  ======
 id   name        domain   id   name        domain
====  ==========  ======  ====  ==========  ======
  1   circle      source    7   ellipse     source
  2   square      source    8   hexagon     target
  3   triangle    source    9   heart       target
  4   star        source   10   crescent    target
  5   cross       source   11   arrow       target
  6   ring        source   12   diamond     target
====  ==========  ======  ====  ==========  ======

Two generator configs (argument ``config`` everywhere, default
``"standard"``; ``VERSIONS`` gives each one's version, recorded on model
cards):

* ``"standard"`` (version 2, ``VERSION``): objects always stand out from what
  is around them (fill colours >= 110 RGB units from the background beneath
  and >= 90 from touching objects; flat, striped or mildly graded fills) on a
  two-colour gradient background with mild low-frequency noise and 0-2 thin
  distractor lines. A small CNN learns most of it on a 2-core CPU in half an
  hour (``bench/shapes_baseline.py``). Its train split **streams**: 1,000,000
  distinct images, so no model memorises it. Details:
  :mod:`keras_deconv.datasets._shapes_standard`.
* ``"hard"`` (version 1): the original generator, unchanged bit for bit:
  textured objects whose colours may match the background, 1-4 distractors
  (lines, waves, blobs), stronger noise; 4000 train images. Small models
  trained here score near the all-background floor. Details:
  :mod:`keras_deconv.datasets._shapes_hard`.

Both share the geometry: 1-3 objects of uniformly random class, rotation,
diameter log-uniform from 10% to 90% (hard: 95%) of the side, later objects
drawn over earlier ones (occlusion is common), each keeping >= 35% of its
in-image area; the label map shows what is **visible**, and the outer rim of
every object (``max(1, S // 64)`` pixels for side ``S``) is void (255), as in
VOC. Geometry and colours are sampled in normalised coordinates from a seed
``(config version, split, index)``, so an example is identical bit for bit
however often and in whatever order it is generated, and the same scene is
rendered (up to pixel rounding) at every ``image_size`` (a multiple of 32,
>= 64).

Splits (``SPLITS``, or ``CONFIG_SPLITS[config]``): train 1,000,000
(hard: 4000), val 500, test 500, from disjoint seed streams. Val and test
are fixed.

Annotation budgets (DecoupledNet's semi-supervised setting,
:func:`strong_indices`): for a budget of 5, 10 or 25 images per class, a
deterministic greedy pass over a fixed permutation of the train split picks
an image whenever one of its classes still has fewer than ``budget`` strong
images; a chosen image counts for every class it contains. The other train
images are weak (image-level labels only).

Domains (TransferNet, :func:`domain_indices`): the first 7 object classes
(~60%) are *source* classes, the last 5 *target* classes. A source-domain
image contains source classes only; a target-domain image target classes
only; images mixing both belong to neither (like TransferNet's COCO subset,
whose categories are exclusive of VOC's). In the train split target images
are weak-only (mask all 255, as TransferNet's VOC images give only the
classification loss); in val/test they keep their masks for evaluation.

Example:

>>> from keras_deconv.datasets import shapes
>>> ex = shapes.generate_example("train", 0)
>>> ex["image"].shape, ex["image"].dtype, ex["label"].shape
((64, 64, 3), dtype('uint8'), (64, 64))
>>> len(shapes.CLASS_NAMES), shapes.SPLITS["test"], shapes.SPLITS["train"]
(13, 500, 1000000)
>>> hard = shapes.generate_example("train", 0, config="hard")
>>> shapes.VERSIONS
{'standard': 2, 'hard': 1}
"""

import functools

import numpy as np

from keras_deconv.datasets import _shapes_hard, _shapes_standard
from keras_deconv.datasets._shapes_geometry import (
    CLASS_NAMES,
    MAX_OBJECTS,
    NUM_CLASSES,
    NUM_OBJECT_CLASSES,
    VOID_LABEL,
)

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "NUM_OBJECT_CLASSES",
    "SOURCE_CLASSES",
    "TARGET_CLASSES",
    "SPLITS",
    "CONFIGS",
    "CONFIG_SPLITS",
    "VERSION",
    "VERSIONS",
    "VOID_LABEL",
    "MAX_OBJECTS",
    "BUDGETS",
    "generate_example",
    "as_numpy",
    "load",
    "image_labels",
    "strong_indices",
    "domain_indices",
]

SOURCE_CLASSES = tuple(range(1, 8))
TARGET_CLASSES = tuple(range(8, NUM_CLASSES))
BUDGETS = (5, 10, 25, "all")

#: Generator configs; ``"standard"`` is the default everywhere.
CONFIGS = ("standard", "hard")
#: Version of each config's generator: part of every seed, and recorded on model cards.
#: Bump a config's version whenever its output changes.
VERSIONS = {"standard": 2, "hard": 1}
VERSION = VERSIONS["standard"]
CONFIG_SPLITS = {
    "standard": {"train": 1_000_000, "val": 500, "test": 500},
    "hard": {"train": 4000, "val": 500, "test": 500},
}
SPLITS = CONFIG_SPLITS["standard"]

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_BASE_SEED = 20151207  # ICCV 2015 (DeconvNet)
_LABEL_STREAM = 7  # separates the hash of object classes from the geometry seeds
_MAX_AS_NUMPY = 100_000  # more images than this would take hours to render into memory
_SHUFFLE_BUFFER = 65_536  # larger selections are permuted once, not reshuffled per epoch


@functools.lru_cache(maxsize=None)  # once per process
def _release_iterators_at_exit():
    """Frees live ``tf.data`` iterators when the interpreter exits, before it tears itself down.

    :func:`load` generates examples in ``tf.numpy_function`` calls on tf.data
    threads. An iterator still referenced at exit (``it = iter(load(...))`` in
    a script) is otherwise destroyed during finalization while such a call
    waits for the GIL: the process hangs instead of exiting (TensorFlow issue
    21277). Freeing them from an ``atexit`` hook, while Python still runs
    normally, lets them stop cleanly.
    """
    import atexit
    import gc

    import tensorflow as tf

    def release():
        for obj in gc.get_objects():
            if isinstance(obj, tf.data.Iterator):
                obj.__dict__.clear()  # drops the iterator resource; the object is unusable after exit anyway
        gc.collect()

    atexit.register(release)


# --- Arguments and seeds ---------------------------------------------------


def _check_config(config):
    if config not in CONFIGS:
        raise ValueError(f"Expected config in {list(CONFIGS)}. Received: config={config!r}")


def _check_split(split, config="standard"):
    _check_config(config)
    if split not in CONFIG_SPLITS[config]:
        raise ValueError(
            f"Expected split in {sorted(CONFIG_SPLITS[config])}. Received: split={split!r}"
        )


def _check_index(split, index, config="standard"):
    index = int(index)
    size = CONFIG_SPLITS[config][split]
    if not 0 <= index < size:
        raise IndexError(
            f"Index {index} out of range for split {split!r} "
            f"(size {size}, config {config!r})."
        )
    return index


def _check_size(image_size):
    image_size = int(image_size)
    if image_size < 64 or image_size % 32:
        raise ValueError(
            "Expected image_size to be a multiple of 32 and >= 64 "
            f"(e.g. 64, 96, 128, 224). Received: image_size={image_size}"
        )
    return image_size


def _rngs(split, index, config):
    seq = np.random.SeedSequence([_BASE_SEED, VERSIONS[config], _SPLIT_IDS[split], index])
    scene_seq, pixel_seq = seq.spawn(2)
    return np.random.default_rng(scene_seq), np.random.default_rng(pixel_seq)


def _standard_classes(split, indices):
    key = (_BASE_SEED, VERSIONS["standard"], _LABEL_STREAM, _SPLIT_IDS[split])
    return _shapes_standard.label_draws(key, indices)[1]


def _sample_scene(split, index, config):
    rng, _ = _rngs(split, index, config)
    if config == "hard":
        return _shapes_hard.sample_scene(rng)
    classes = [int(c) for c in _standard_classes(split, [index])[0] if c > 0]
    return _shapes_standard.sample_scene(rng, classes)


# --- Public API ----------------------------------------------------------


def generate_example(split, index, image_size=64, config="standard"):
    """Generates one example, deterministically from ``(split, index)`` (and ``config``).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        index: Example index in ``[0, CONFIG_SPLITS[config][split])``.
        image_size: Side length in pixels; a multiple of 32, at least 64.
        config: ``"standard"`` (default) or ``"hard"`` (version 1).

    Returns:
        A dict of NumPy arrays (``S = image_size``, ``N = MAX_OBJECTS = 3``;
        per-object arrays are padded after ``num_objects`` entries):

        * ``image``: ``(S, S, 3)`` uint8 RGB.
        * ``label``: ``(S, S)`` uint8 class ids 0..12, 255 = void band.
        * ``instances``: ``(S, S)`` uint8: 0 background, ``k`` for the
          ``k``-th object in drawing order (1-based), 255 void.
        * ``image_labels``: ``(12,)`` uint8 multi-hot over object classes
          (entry ``c - 1`` for class ``c``; background excluded).
        * ``boxes``: ``(N, 4)`` float32 ``[ymin, xmin, ymax, xmax]`` of each
          object's visible pixels, normalised to [0, 1] (padding: zeros).
        * ``classes``: ``(N,)`` int32 class ids (padding: -1).
        * ``areas``: ``(N,)`` int32 visible pixels incl. the void rim.
        * ``sizes``: ``(N,)`` float32 longest visible box side / ``S``.
        * ``visible_fraction``: ``(N,)`` float32 share of the object's
          in-image pixels that later objects leave visible (1.0 = not
          occluded; always >= 0.35).
        * ``num_objects``: int32 scalar, 1..3.
        * ``index``: int32 scalar, and ``has_mask``: bool scalar (True).

    Example:

    >>> ex = generate_example("val", 3, image_size=96)
    >>> ex["label"].shape, int(ex["num_objects"]) >= 1
    ((96, 96), True)
    """
    _check_split(split, config)
    index = _check_index(split, index, config)
    image_size = _check_size(image_size)
    _, pixel_rng = _rngs(split, index, config)
    # The scene uses its own RNG stream, so pixel noise never shifts geometry.
    generator = _shapes_hard if config == "hard" else _shapes_standard
    out = generator.render(_sample_scene(split, index, config), image_size, pixel_rng)
    out["index"] = np.int32(index)
    out["has_mask"] = np.bool_(True)
    return out


@functools.lru_cache(maxsize=None)
def _image_labels_cached(split, config):
    size = CONFIG_SPLITS[config][split]
    labels = np.zeros((size, NUM_OBJECT_CLASSES), dtype=np.uint8)
    if config == "hard":  # the classes come out of scene sampling
        for i in range(size):
            for obj in _sample_scene(split, i, config)["objects"]:
                labels[i, obj["cls"] - 1] = 1
    else:  # the classes are a hash of the index: no scene needed
        for start in range(0, size, 1 << 16):
            rows = np.arange(start, min(size, start + (1 << 16)))
            classes = _standard_classes(split, rows)
            for k in range(MAX_OBJECTS):
                present = classes[:, k] > 0
                labels[rows[present], classes[present, k] - 1] = 1
    labels.flags.writeable = False
    return labels


def image_labels(split, config="standard"):
    """Multi-hot image-level labels of a whole split, without rendering.

    Standard config: the classes are a hash of the index (well under a
    second for the 1,000,000 train images). Hard config: the scenes are sampled (about 1-2 s
    for its 4000 train images). The result is cached for the process.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        config: ``"standard"`` (default) or ``"hard"``.

    Returns:
        Read-only ``(CONFIG_SPLITS[config][split], 12)`` uint8 array; column
        ``c - 1`` is class ``c``.

    Example:

    >>> image_labels("val").shape
    (500, 12)
    """
    _check_split(split, config)
    return _image_labels_cached(split, config)


@functools.lru_cache(maxsize=None)
def _strong_cached(budget, config):
    labels = image_labels("train", config).astype(bool)
    order = np.random.default_rng([_BASE_SEED, VERSIONS[config], 99]).permutation(len(labels))
    counts = np.zeros(NUM_OBJECT_CLASSES, dtype=np.int64)
    chosen = []
    for i in order:
        present = labels[i]
        if np.any(counts[present] < budget):
            chosen.append(i)
            counts[present] += 1
            if np.all(counts >= budget):
                break
    out = np.sort(np.array(chosen, dtype=np.int64))
    out.flags.writeable = False
    return out


def strong_indices(budget, config="standard"):
    """Train indices that keep pixel masks under an annotation budget.

    Args:
        budget: Strong images per class (5, 10, 25 as in DecoupledNet, or any
            positive int) or ``"all"``. Each chosen image counts for every
            class it contains, so every class gets at least ``budget`` strong
            images and some get a few more.
        config: ``"standard"`` (default) or ``"hard"``.

    Returns:
        Sorted read-only int64 array of train indices.

    Example:

    >>> len(strong_indices(5)) < 60
    True
    """
    _check_config(config)
    if budget == "all" or budget is None:
        return np.arange(CONFIG_SPLITS[config]["train"], dtype=np.int64)
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(
            f"Expected budget to be a positive int or 'all'. Received: budget={budget!r}"
        )
    return _strong_cached(int(budget), config)


def domain_indices(split, domain, config="standard"):
    """Indices of the images of one TransferNet domain.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        domain: ``"source"`` (images whose objects are all source classes,
            ``SOURCE_CLASSES``) or ``"target"`` (all target classes).
        config: ``"standard"`` (default) or ``"hard"``.

    Returns:
        Sorted int64 array of indices.

    Example:

    >>> src = domain_indices("val", "source")
    >>> bool(image_labels("val")[src][:, len(SOURCE_CLASSES):].any())
    False
    """
    _check_split(split, config)
    labels = image_labels(split, config).astype(bool)
    src = labels[:, : len(SOURCE_CLASSES)].any(axis=1)
    tgt = labels[:, len(SOURCE_CLASSES) :].any(axis=1)
    if domain == "source":
        keep = src & ~tgt
    elif domain == "target":
        keep = tgt & ~src
    else:
        raise ValueError(
            f"Expected domain 'source' or 'target'. Received: domain={domain!r}"
        )
    return np.nonzero(keep)[0].astype(np.int64)


def _select(split, count, indices, budget, domain, config):
    _check_split(split, config)
    size = CONFIG_SPLITS[config][split]
    if budget is not None and split != "train":
        raise ValueError(
            "Annotation budgets apply to the train split only. "
            f"Received: split={split!r}, budget={budget!r}"
        )
    if indices is None:
        if domain is not None:
            indices = domain_indices(split, domain, config)
        else:
            indices = np.arange(size, dtype=np.int64)
    else:
        indices = np.asarray(indices, dtype=np.int64).ravel()
        for i in indices[:1].tolist() + indices[-1:].tolist():
            _check_index(split, i, config)
        if indices.size and (indices.min() < 0 or indices.max() >= size):
            raise IndexError(f"indices out of range for split {split!r}")
    if count is not None:
        indices = indices[: int(count)]
    strong = None
    if budget is not None and budget != "all":
        strong = np.zeros(CONFIG_SPLITS[config]["train"], dtype=bool)
        strong[strong_indices(budget, config)] = True
    weak_domain = domain == "target" and split == "train"
    return indices, strong, weak_domain


def _example_for(split, index, image_size, strong, weak_domain, config):
    ex = generate_example(split, index, image_size, config)
    if weak_domain or (strong is not None and not strong[index]):
        ex["label"] = np.full_like(ex["label"], VOID_LABEL)
        ex["instances"] = np.full_like(ex["instances"], VOID_LABEL)
        ex["has_mask"] = np.bool_(False)
    return ex


def as_numpy(split, count=None, image_size=64, indices=None, budget=None,
             domain=None, config="standard"):
    """Generates a (part of a) split as a dict of stacked NumPy arrays.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        count: Take only the first ``count`` selected examples.
        image_size: Side length (multiple of 32, >= 64).
        indices: Explicit example indices (default: all, or the domain's).
        budget: Train only: 5, 10, 25 or ``"all"``. Images outside
            :func:`strong_indices` get an all-255 ``label``/``instances`` and
            ``has_mask = False`` (image-level labels are kept).
        domain: ``"source"`` or ``"target"``: restrict to that domain's images
            (:func:`domain_indices`); target train images become weak-only.
        config: ``"standard"`` (default) or ``"hard"``.

    Returns:
        The keys of :func:`generate_example`, each stacked along axis 0.

    Raises:
        ValueError: More than 100,000 images selected (e.g. the whole
            streaming train split): pass ``count`` or ``indices``, or stream
            with :func:`load`.

    Example:

    >>> data = as_numpy("test", count=4)
    >>> data["image"].shape, data["label"].dtype
    ((4, 64, 64, 3), dtype('uint8'))
    """
    image_size = _check_size(image_size)
    indices, strong, weak_domain = _select(split, count, indices, budget, domain, config)
    if len(indices) > _MAX_AS_NUMPY:
        raise ValueError(
            f"as_numpy would render {len(indices)} images of split {split!r} into memory "
            f"(config {config!r}). Pass count= or indices= (at most {_MAX_AS_NUMPY}), "
            "or stream them with shapes.load()."
        )
    examples = [
        _example_for(split, int(i), image_size, strong, weak_domain, config) for i in indices
    ]
    if not examples:
        raise ValueError(f"No examples selected from split {split!r}.")
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


_KEYS = ("image", "label", "instances", "image_labels", "boxes", "classes",
         "areas", "sizes", "visible_fraction", "num_objects", "index",
         "has_mask")


def load(split, batch_size=32, image_size=64, budget=None, domain=None,
         shuffle=None, seed=0, as_dict=False, indices=None, count=None,
         drop_remainder=False, config="standard"):
    """A ``tf.data.Dataset`` that generates the split on the fly.

    Examples are generated in parallel ``tf.numpy_function`` calls (no files).
    Shuffling permutes the indices only, so it is cheap and reproducible.
    Selections of more than 65,536 images (the streaming standard train
    split) are permuted once with ``seed`` instead of reshuffled each epoch:
    one pass over a million images outlasts any training run here.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        batch_size: Batch size, or None for unbatched examples.
        image_size: Side length (multiple of 32, >= 64).
        budget: Train only: 5, 10, 25 or ``"all"``; see :func:`as_numpy`.
        domain: ``"source"`` / ``"target"``; see :func:`as_numpy`.
        shuffle: Shuffle each epoch; defaults to True for train only.
        seed: Shuffle seed.
        as_dict: If False (default) yield ``(image, label)`` pairs: uint8
            ``(B, S, S, 3)`` and uint8 ``(B, S, S)``. If True yield dicts with
            every key of :func:`generate_example`.
        indices: Explicit example indices, e.g. ``strong_indices(10)``.
        count: Use only the first ``count`` selected examples.
        drop_remainder: Drop the last incomplete batch.
        config: ``"standard"`` (default) or ``"hard"``.

    Returns:
        A ``tf.data.Dataset``.

    Example:

    >>> ds = load("val", batch_size=2, count=4)
    >>> [tuple(t.shape) for t in next(iter(ds))]
    [(2, 64, 64, 3), (2, 64, 64)]
    """
    import tensorflow as tf

    image_size = _check_size(image_size)
    indices, strong, weak_domain = _select(split, count, indices, budget, domain, config)
    _release_iterators_at_exit()
    if shuffle is None:
        shuffle = split == "train"
    S = image_size
    specs = {
        "image": (tf.uint8, (S, S, 3)),
        "label": (tf.uint8, (S, S)),
        "instances": (tf.uint8, (S, S)),
        "image_labels": (tf.uint8, (NUM_OBJECT_CLASSES,)),
        "boxes": (tf.float32, (MAX_OBJECTS, 4)),
        "classes": (tf.int32, (MAX_OBJECTS,)),
        "areas": (tf.int32, (MAX_OBJECTS,)),
        "sizes": (tf.float32, (MAX_OBJECTS,)),
        "visible_fraction": (tf.float32, (MAX_OBJECTS,)),
        "num_objects": (tf.int32, ()),
        "index": (tf.int32, ()),
        "has_mask": (tf.bool, ()),
    }
    keys = _KEYS if as_dict else ("image", "label")

    def make(i):
        ex = _example_for(split, int(i), S, strong, weak_domain, config)
        return tuple(np.asarray(ex[k], dtype=specs[k][0].as_numpy_dtype) for k in keys)

    def generate(i):
        values = tf.numpy_function(make, [i], [specs[k][0] for k in keys],
                                   stateful=False)
        for k, v in zip(keys, values):
            v.set_shape(specs[k][1])
        return dict(zip(keys, values)) if as_dict else tuple(values)

    indices = np.asarray(indices, dtype=np.int64)
    streaming = len(indices) > _SHUFFLE_BUFFER
    if shuffle and streaming:
        indices = np.random.default_rng(seed).permutation(indices)
    ds = tf.data.Dataset.from_tensor_slices(indices)
    if shuffle and not streaming:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(generate, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    if batch_size:
        ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
