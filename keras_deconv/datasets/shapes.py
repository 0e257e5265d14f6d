"""``shapes``: a built-in, deterministic synthetic segmentation dataset.

Images are generated on the fly from a seed (no files, no downloads) and are
cheap enough to train and evaluate small DeconvNet-family models on a CPU.
The **shape** of an object is the only cue to its class: colours and
textures are random and shared by objects and background alike.

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

The generator, per image:

* **Background**: a random texture (linear gradient, stripes, checkerboard
  or smooth noise, two random colours), then 1-4 **distractors** that are not
  objects and stay labelled background: straight lines 1-3 px thick, wavy
  strokes, and irregular blobs (unions of 4-6 spread-out small discs).
* **Objects**: 1-3 (probabilities 0.4 / 0.35 / 0.25), each with a uniformly
  random class, a random rotation, a diameter drawn log-uniformly from 10% to
  95% of the image side (so from a few pixels to larger than half the
  image), and its own random texture whose mean colour differs from the
  background's. Later objects are drawn over earlier ones (40% of them are
  placed next to an earlier object, so occlusion is common); objects may be
  cut by the image border. The label map shows what is **visible**. Every
  object keeps at least 35% of its in-image area and a few non-void pixels,
  so image-level labels always agree with the mask.
* **Void band**: as in VOC, the outer rim of every object (``max(1, S // 64)``
  pixels for image side ``S``: 1 px at 64, 3 px at 224) is labelled 255;
  between two touching objects the band is therefore 2 rims wide. The image
  border gets no band.
* **Noise**: Gaussian pixel noise with a per-image sigma in [0, 10].

Geometry, colours and textures are sampled in normalised coordinates from a
per-example seed ``(split, index)``, so an example is identical bit for bit
however often and in whatever order it is generated, and the same scene is
rendered (up to pixel rounding) at every ``image_size`` (a multiple of 32,
>= 64, e.g. 64, 96, 128, 224).

Splits (``SPLITS``): train 4000, val 500, test 500, from disjoint seed streams.

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
>>> len(shapes.CLASS_NAMES), shapes.SPLITS["test"]
(13, 500)
"""

import functools
import math

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "NUM_OBJECT_CLASSES",
    "SOURCE_CLASSES",
    "TARGET_CLASSES",
    "SPLITS",
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

CLASS_NAMES = (
    "background",
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "ellipse",
    "hexagon",
    "heart",
    "crescent",
    "arrow",
    "diamond",
)
NUM_CLASSES = len(CLASS_NAMES)  # including background
NUM_OBJECT_CLASSES = NUM_CLASSES - 1
SOURCE_CLASSES = tuple(range(1, 8))
TARGET_CLASSES = tuple(range(8, NUM_CLASSES))
VOID_LABEL = 255
MAX_OBJECTS = 3
SPLITS = {"train": 4000, "val": 500, "test": 500}
BUDGETS = (5, 10, 25, "all")

# Disjoint seed streams per split; bump _VERSION if the generator changes.
_VERSION = 1
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_BASE_SEED = 20151207  # ICCV 2015 (DeconvNet)
_CHECK_SIZE = 64  # visibility is checked at this resolution

_MIN_DIAMETER, _MAX_DIAMETER = 0.10, 0.95
_MIN_VISIBLE_FRACTION = 0.35
_MIN_INTERIOR_PIXELS = 4  # at _CHECK_SIZE


# --- Seeds ---------------------------------------------------------------


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(
            f"Expected split in {sorted(SPLITS)}. Received: split={split!r}"
        )


def _check_index(split, index):
    index = int(index)
    if not 0 <= index < SPLITS[split]:
        raise IndexError(
            f"Index {index} out of range for split {split!r} "
            f"(size {SPLITS[split]})."
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


def _rngs(split, index):
    seq = np.random.SeedSequence([_BASE_SEED, _VERSION, _SPLIT_IDS[split], index])
    scene_seq, pixel_seq = seq.spawn(2)
    return np.random.default_rng(scene_seq), np.random.default_rng(pixel_seq)


# --- Geometry ------------------------------------------------------------


def _grid(size):
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(c, c)  # xx, yy in [0, 1]


def _in_polygon(u, v, vertices):
    # Even-odd crossing test, vectorised over pixels (loop over edges only).
    inside = np.zeros(u.shape, dtype=bool)
    xs, ys = vertices[:, 0], vertices[:, 1]
    for i in range(len(vertices)):
        x1, y1, x2, y2 = xs[i], ys[i], xs[i - 1], ys[i - 1]
        crosses = (y1 > v) != (y2 > v)
        dy = y2 - y1 if y2 != y1 else 1e-12
        x_at = (x2 - x1) * (v - y1) / dy + x1
        inside ^= crosses & (u < x_at)
    return inside


def _regular(n, radius=1.0, phase=-math.pi / 2):
    a = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def _shape_mask(obj, xx, yy):
    """Boolean mask of one object in canonical coordinates (unit radius)."""
    cls, p = obj["cls"], obj["params"]
    dx, dy = xx - obj["cx"], yy - obj["cy"]
    c, s = math.cos(obj["theta"]), math.sin(obj["theta"])
    r = obj["d"] / 2
    u = (dx * c + dy * s) / r
    v = (-dx * s + dy * c) / r / obj["aspect"]
    name = CLASS_NAMES[cls]
    if name == "circle":
        return u * u + v * v <= 1.0
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.72
    if name == "triangle":
        return _in_polygon(u, v, _regular(3))
    if name == "star":
        outer = _regular(5)
        inner = _regular(5, p["inner"], phase=-math.pi / 2 + math.pi / 5)
        verts = np.empty((10, 2))
        verts[0::2], verts[1::2] = outer, inner
        return _in_polygon(u, v, verts)
    if name == "cross":
        w, au, av = p["arm"], np.abs(u), np.abs(v)
        return ((au <= w) & (av <= 0.9)) | ((av <= w) & (au <= 0.9))
    if name == "ring":
        rr = u * u + v * v
        return (rr <= 1.0) & (rr >= p["inner"] ** 2)
    if name == "ellipse":
        return u * u + (v / p["minor"]) ** 2 <= 1.0
    if name == "hexagon":
        out = np.ones(u.shape, dtype=bool)
        for k in range(6):
            a = math.pi / 3 * k
            out &= u * math.cos(a) + v * math.sin(a) <= math.cos(math.pi / 6)
        return out
    if name == "heart":
        x, y = 1.2 * u, -1.2 * v + 0.2
        q = x * x + y * y - 1.0
        return q * q * q - x * x * y * y * y <= 0.0
    if name == "crescent":
        bite = (u - p["offset"]) ** 2 + v * v <= p["bite"] ** 2
        return (u * u + v * v <= 1.0) & ~bite
    if name == "arrow":
        sw, hw, h0 = p["shaft"], p["head"], p["neck"]
        verts = np.array(
            [[-1, -sw], [h0, -sw], [h0, -hw], [1, 0], [h0, hw], [h0, sw], [-1, sw]],
            dtype=np.float64,
        )
        return _in_polygon(u, v, verts)
    if name == "diamond":
        return np.abs(u) + np.abs(v) / p["minor"] <= 1.0
    raise AssertionError(name)


def _sample_shape_params(rng, cls):
    name = CLASS_NAMES[cls]
    p = {}
    aspect = 1.0
    if name == "star":
        p["inner"] = rng.uniform(0.38, 0.5)
    elif name == "cross":
        p["arm"] = rng.uniform(0.24, 0.36)
    elif name == "ring":
        p["inner"] = rng.uniform(0.45, 0.62)
    elif name == "ellipse":
        p["minor"] = rng.uniform(0.4, 0.62)
    elif name == "crescent":
        p["offset"] = rng.uniform(0.4, 0.55)
        p["bite"] = rng.uniform(0.75, 0.88)
    elif name == "arrow":
        p["shaft"] = rng.uniform(0.17, 0.27)
        p["head"] = rng.uniform(0.55, 0.72)
        p["neck"] = rng.uniform(0.0, 0.2)
    elif name == "diamond":
        p["minor"] = rng.uniform(0.5, 0.68)
    if name in ("triangle", "star", "cross", "hexagon", "heart", "arrow", "crescent"):
        # Mild squash: variety without turning one class into another.
        aspect = rng.uniform(0.85, 1.0)
    return p, aspect


# --- Textures ------------------------------------------------------------


def _random_colour(rng):
    return rng.uniform(0, 255, size=3)


def _sample_texture(rng, avoid=None, min_distance=90.0, contrast=None):
    """Texture parameters; ``avoid`` is a colour to keep away from."""
    best, best_d = None, -1.0
    for _ in range(12):
        c1 = _random_colour(rng)
        if contrast is None:
            c2 = _random_colour(rng)
        else:
            c2 = np.clip(c1 + rng.normal(0, contrast, size=3), 0, 255)
        mean = (c1 + c2) / 2
        d = np.inf if avoid is None else float(np.linalg.norm(mean - avoid))
        if d > best_d:
            best, best_d = (c1, c2), d
        if d >= min_distance:
            break
    c1, c2 = best
    kind = rng.choice(["solid", "gradient", "stripes", "checker", "noise"],
                      p=[0.2, 0.2, 0.25, 0.15, 0.2])
    return {
        "kind": str(kind),
        "c1": c1,
        "c2": c2,
        "angle": rng.uniform(0, math.pi),
        "period": rng.uniform(0.03, 0.15),
        "offset": rng.uniform(0, 1),
        "grid": rng.uniform(0, 1, size=(int(rng.integers(3, 8)),) * 2),
    }


def _upsample(grid, xx, yy):
    g = grid.shape[0]
    gx, gy = xx * (g - 1), yy * (g - 1)
    x0 = np.clip(np.floor(gx).astype(int), 0, g - 2)
    y0 = np.clip(np.floor(gy).astype(int), 0, g - 2)
    fx, fy = gx - x0, gy - y0
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _render_texture(tex, xx, yy):
    kind = tex["kind"]
    t = xx * math.cos(tex["angle"]) + yy * math.sin(tex["angle"])
    if kind == "solid":
        w = np.zeros_like(xx)
    elif kind == "gradient":
        w = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "stripes":
        w = (np.mod(t / tex["period"] + tex["offset"], 1.0) < 0.5).astype(np.float32)
    elif kind == "checker":
        t2 = -xx * math.sin(tex["angle"]) + yy * math.cos(tex["angle"])
        a = np.floor(t / tex["period"] / 1.5) + np.floor(t2 / tex["period"] / 1.5)
        w = np.mod(a, 2).astype(np.float32)
    else:  # smooth noise
        w = _upsample(tex["grid"], xx, yy)
    w = w[..., None]
    return (1 - w) * tex["c1"] + w * tex["c2"]


# --- Scene sampling ------------------------------------------------------


def _sample_object(rng, placed):
    cls = int(rng.integers(1, NUM_CLASSES))
    d = math.exp(rng.uniform(math.log(_MIN_DIAMETER), math.log(_MAX_DIAMETER)))
    r = d / 2
    if placed and rng.uniform() < 0.4:
        # Next to an earlier object, so that occlusion is common.
        other = placed[int(rng.integers(len(placed)))]
        a = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(0.3, 1.0) * (r + other["d"] / 2)
        cx = other["cx"] + dist * math.cos(a)
        cy = other["cy"] + dist * math.sin(a)
    else:
        m = min(r, 0.5) * 0.6
        cx, cy = rng.uniform(m, 1 - m), rng.uniform(m, 1 - m)
    params, aspect = _sample_shape_params(rng, cls)
    return {
        "cls": cls,
        "cx": float(cx),
        "cy": float(cy),
        "d": float(d),
        "theta": float(rng.uniform(0, 2 * math.pi)),
        "aspect": float(aspect),
        "params": params,
    }


def _band_width(size):
    return max(1, size // 64)


def _object_ids(objects, xx, yy):
    ids = np.zeros(xx.shape, dtype=np.uint8)
    full = []
    for k, obj in enumerate(objects):
        m = _shape_mask(obj, xx, yy)
        ids[m] = k + 1
        full.append(int(m.sum()))
    return ids, full


def _interior(ids, width):
    """Object pixels farther than ``width`` (4-connected) from a label change."""
    inner = ids > 0
    for _ in range(width):
        # Edge replication: the image border is not a boundary.
        p_ids = np.pad(ids, 1, mode="edge")
        p_in = np.pad(inner, 1, mode="edge")
        keep = inner.copy()
        for sy, sx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            nb_ids = p_ids[sy : sy + ids.shape[0], sx : sx + ids.shape[1]]
            nb_in = p_in[sy : sy + ids.shape[0], sx : sx + ids.shape[1]]
            keep &= (nb_ids == ids) & nb_in
        inner = keep
    return inner


def _visible_ok(objects, xx, yy):
    ids, full = _object_ids(objects, xx, yy)
    inner = _interior(ids, _band_width(xx.shape[0]))
    vis = np.bincount(ids.ravel(), minlength=len(objects) + 1)[1:]
    core = np.bincount(ids[inner].ravel(), minlength=len(objects) + 1)[1:]
    for k in range(len(objects)):
        if full[k] == 0 or vis[k] < _MIN_VISIBLE_FRACTION * full[k]:
            return False
        if core[k] < _MIN_INTERIOR_PIXELS:
            return False
    return True


@functools.lru_cache(maxsize=1)
def _check_grid():
    return _grid(_CHECK_SIZE)


def _sample_distractor(rng):
    kind = str(rng.choice(["line", "wave", "blob"], p=[0.4, 0.3, 0.3]))
    out = {
        "kind": kind,
        "colour": _random_colour(rng),
        "width": rng.uniform(0.012, 0.045),
        "p0": rng.uniform(-0.1, 1.1, size=2),
        "p1": rng.uniform(-0.1, 1.1, size=2),
        "amp": rng.uniform(0.02, 0.08),
        "freq": rng.uniform(2.0, 6.0),
        "phase": rng.uniform(0, 2 * math.pi),
    }
    centre = rng.uniform(0.05, 0.95, size=2)
    scale = math.exp(rng.uniform(math.log(0.03), math.log(0.12)))
    # Several small, well-spread discs: irregular, never a clean circle.
    n = int(rng.integers(4, 7))
    out["discs"] = [
        (centre + rng.normal(0, scale * 1.1, size=2), scale * rng.uniform(0.35, 0.75))
        for _ in range(n)
    ]
    return out


def _distractor_mask(dis, xx, yy):
    if dis["kind"] == "blob":
        m = np.zeros(xx.shape, dtype=bool)
        for (cx, cy), r in dis["discs"]:
            m |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        return m
    p0, p1 = dis["p0"], dis["p1"]
    d = p1 - p0
    length = max(float(np.hypot(*d)), 1e-6)
    ux, uy = d / length
    along = (xx - p0[0]) * ux + (yy - p0[1]) * uy
    across = -(xx - p0[0]) * uy + (yy - p0[1]) * ux
    if dis["kind"] == "wave":
        across = across - dis["amp"] * np.sin(
            dis["freq"] * 2 * math.pi * along / length + dis["phase"]
        )
    return (along >= 0) & (along <= length) & (np.abs(across) <= dis["width"] / 2)


def _sample_scene(split, index):
    rng, _ = _rngs(split, index)
    background = _sample_texture(rng)
    bg_mean = (background["c1"] + background["c2"]) / 2
    distractors = [_sample_distractor(rng) for _ in range(int(rng.integers(1, 5)))]
    n_objects = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    xx, yy = _check_grid()
    objects = []
    for _ in range(n_objects):
        for _attempt in range(20):
            obj = _sample_object(rng, objects)
            if _visible_ok(objects + [obj], xx, yy):
                objects.append(obj)
                break
    if not objects:  # practically never; keeps "at least one object" true
        obj = _sample_object(rng, [])
        obj.update(cx=0.5, cy=0.5, d=0.5)
        objects.append(obj)
    for obj in objects:
        obj["texture"] = _sample_texture(rng, avoid=bg_mean, contrast=60.0)
    return {
        "background": background,
        "distractors": distractors,
        "objects": objects,
        "noise_sigma": float(rng.uniform(0.0, 10.0)),
    }


# --- Rendering -----------------------------------------------------------


def _render(scene, size, pixel_rng):
    xx, yy = _grid(size)
    image = _render_texture(scene["background"], xx, yy)
    for dis in scene["distractors"]:
        image[_distractor_mask(dis, xx, yy)] = dis["colour"]
    objects = scene["objects"]
    ids = np.zeros((size, size), dtype=np.uint8)
    full = []
    for k, obj in enumerate(objects):
        m = _shape_mask(obj, xx, yy)
        image[m] = _render_texture(obj["texture"], xx, yy)[m]
        ids[m] = k + 1
        full.append(int(m.sum()))
    if scene["noise_sigma"] > 0:
        image = image + pixel_rng.normal(0, scene["noise_sigma"], size=image.shape)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)

    classes = np.array([0] + [o["cls"] for o in objects], dtype=np.uint8)
    inner = _interior(ids, _band_width(size))
    label = classes[ids]
    band = (ids > 0) & ~inner
    label[band] = VOID_LABEL
    instances = ids.copy()
    instances[band] = VOID_LABEL

    n = len(objects)
    boxes = np.zeros((MAX_OBJECTS, 4), dtype=np.float32)
    obj_classes = np.full((MAX_OBJECTS,), -1, dtype=np.int32)
    areas = np.zeros((MAX_OBJECTS,), dtype=np.int32)
    sizes = np.zeros((MAX_OBJECTS,), dtype=np.float32)
    visible = np.zeros((MAX_OBJECTS,), dtype=np.float32)
    for k in range(n):
        ys, xs = np.nonzero(ids == k + 1)
        boxes[k] = [ys.min() / size, xs.min() / size,
                    (ys.max() + 1) / size, (xs.max() + 1) / size]
        obj_classes[k] = objects[k]["cls"]
        areas[k] = len(ys)
        sizes[k] = max(ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min()) / size
        visible[k] = len(ys) / full[k]
    multi_hot = np.zeros((NUM_OBJECT_CLASSES,), dtype=np.uint8)
    multi_hot[obj_classes[:n] - 1] = 1
    return {
        "image": image,
        "label": label,
        "instances": instances,
        "image_labels": multi_hot,
        "boxes": boxes,
        "classes": obj_classes,
        "areas": areas,
        "sizes": sizes,
        "visible_fraction": visible,
        "num_objects": np.int32(n),
    }


# --- Public API ----------------------------------------------------------


def generate_example(split, index, image_size=64):
    """Generates one example, deterministically from ``(split, index)``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        index: Example index in ``[0, SPLITS[split])``.
        image_size: Side length in pixels; a multiple of 32, at least 64.

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
    _check_split(split)
    index = _check_index(split, index)
    image_size = _check_size(image_size)
    _, pixel_rng = _rngs(split, index)
    # The scene uses its own RNG stream, so pixel noise never shifts geometry.
    out = _render(_sample_scene(split, index), image_size, pixel_rng)
    out["index"] = np.int32(index)
    out["has_mask"] = np.bool_(True)
    return out


@functools.lru_cache(maxsize=None)
def _image_labels_cached(split):
    labels = np.zeros((SPLITS[split], NUM_OBJECT_CLASSES), dtype=np.uint8)
    for i in range(SPLITS[split]):
        for obj in _sample_scene(split, i)["objects"]:
            labels[i, obj["cls"] - 1] = 1
    labels.flags.writeable = False
    return labels


def image_labels(split):
    """Multi-hot image-level labels of a whole split, without rendering.

    Only the scenes are sampled (about 1-2 s for the 4000 train images); the
    result is cached for the process.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.

    Returns:
        Read-only ``(SPLITS[split], 12)`` uint8 array; column ``c - 1`` is
        class ``c``.

    Example:

    >>> image_labels("val").shape
    (500, 12)
    """
    _check_split(split)
    return _image_labels_cached(split)


@functools.lru_cache(maxsize=None)
def _strong_cached(budget):
    labels = image_labels("train").astype(bool)
    order = np.random.default_rng([_BASE_SEED, _VERSION, 99]).permutation(len(labels))
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


def strong_indices(budget):
    """Train indices that keep pixel masks under an annotation budget.

    Args:
        budget: Strong images per class (5, 10, 25 as in DecoupledNet, or any
            positive int) or ``"all"``. Each chosen image counts for every
            class it contains, so every class gets at least ``budget`` strong
            images and some get a few more.

    Returns:
        Sorted read-only int64 array of train indices.

    Example:

    >>> len(strong_indices(5)) < 60
    True
    """
    if budget == "all" or budget is None:
        return np.arange(SPLITS["train"], dtype=np.int64)
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(
            f"Expected budget to be a positive int or 'all'. Received: budget={budget!r}"
        )
    return _strong_cached(int(budget))


def domain_indices(split, domain):
    """Indices of the images of one TransferNet domain.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        domain: ``"source"`` (images whose objects are all source classes,
            ``SOURCE_CLASSES``) or ``"target"`` (all target classes).

    Returns:
        Sorted int64 array of indices.

    Example:

    >>> src = domain_indices("val", "source")
    >>> bool(image_labels("val")[src][:, len(SOURCE_CLASSES):].any())
    False
    """
    _check_split(split)
    labels = image_labels(split).astype(bool)
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


def _select(split, count, indices, budget, domain):
    _check_split(split)
    if budget is not None and split != "train":
        raise ValueError(
            "Annotation budgets apply to the train split only. "
            f"Received: split={split!r}, budget={budget!r}"
        )
    if indices is None:
        if domain is not None:
            indices = domain_indices(split, domain)
        else:
            indices = np.arange(SPLITS[split], dtype=np.int64)
    else:
        indices = np.asarray(indices, dtype=np.int64).ravel()
        for i in indices[:1].tolist() + indices[-1:].tolist():
            _check_index(split, i)
        if indices.size and (indices.min() < 0 or indices.max() >= SPLITS[split]):
            raise IndexError(f"indices out of range for split {split!r}")
    if count is not None:
        indices = indices[: int(count)]
    strong = None
    if budget is not None and budget != "all":
        strong = np.zeros(SPLITS["train"], dtype=bool)
        strong[strong_indices(budget)] = True
    weak_domain = domain == "target" and split == "train"
    return indices, strong, weak_domain


def _example_for(split, index, image_size, strong, weak_domain):
    ex = generate_example(split, index, image_size)
    if weak_domain or (strong is not None and not strong[index]):
        ex["label"] = np.full_like(ex["label"], VOID_LABEL)
        ex["instances"] = np.full_like(ex["instances"], VOID_LABEL)
        ex["has_mask"] = np.bool_(False)
    return ex


def as_numpy(split, count=None, image_size=64, indices=None, budget=None,
             domain=None):
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

    Returns:
        The keys of :func:`generate_example`, each stacked along axis 0.

    Example:

    >>> data = as_numpy("test", count=4)
    >>> data["image"].shape, data["label"].dtype
    ((4, 64, 64, 3), dtype('uint8'))
    """
    image_size = _check_size(image_size)
    indices, strong, weak_domain = _select(split, count, indices, budget, domain)
    examples = [
        _example_for(split, int(i), image_size, strong, weak_domain) for i in indices
    ]
    if not examples:
        raise ValueError(f"No examples selected from split {split!r}.")
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


_KEYS = ("image", "label", "instances", "image_labels", "boxes", "classes",
         "areas", "sizes", "visible_fraction", "num_objects", "index",
         "has_mask")


def load(split, batch_size=32, image_size=64, budget=None, domain=None,
         shuffle=None, seed=0, as_dict=False, indices=None, count=None,
         drop_remainder=False):
    """A ``tf.data.Dataset`` that generates the split on the fly.

    Examples are generated in parallel ``tf.numpy_function`` calls (no files).
    Shuffling permutes the indices only, so it is cheap and reproducible.

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

    Returns:
        A ``tf.data.Dataset``.

    Example:

    >>> ds = load("val", batch_size=2, count=4)
    >>> [tuple(t.shape) for t in next(iter(ds))]
    [(2, 64, 64, 3), (2, 64, 64)]
    """
    import tensorflow as tf

    image_size = _check_size(image_size)
    indices, strong, weak_domain = _select(split, count, indices, budget, domain)
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
        ex = _example_for(split, int(i), S, strong, weak_domain)
        return tuple(np.asarray(ex[k], dtype=specs[k][0].as_numpy_dtype) for k in keys)

    def generate(i):
        values = tf.numpy_function(make, [i], [specs[k][0] for k in keys],
                                   stateful=False)
        for k, v in zip(keys, values):
            v.set_shape(specs[k][1])
        return dict(zip(keys, values)) if as_dict else tuple(values)

    ds = tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
    if shuffle:
        ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(generate, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    if batch_size:
        ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
