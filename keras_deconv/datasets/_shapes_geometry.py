"""Shape masks and label maps shared by both ``shapes`` generators (:mod:`keras_deconv.datasets.shapes`).

Everything here works in normalised image coordinates (``[0, 1]`` on both
axes), so one scene renders the same at every image size. An *object* is a
dict with ``cls`` (class id), centre ``cx``/``cy``, diameter ``d``, rotation
``theta``, ``aspect`` and per-class ``params``.
"""

import functools
import math

import numpy as np

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
VOID_LABEL = 255
MAX_OBJECTS = 3

CHECK_SIZE = 64  # visibility (and colour contrast) is checked at this resolution
MIN_VISIBLE_FRACTION = 0.35
MIN_INTERIOR_PIXELS = 4  # at CHECK_SIZE



def grid(size):
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(c, c)  # xx, yy in [0, 1]


def in_polygon(u, v, vertices):
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


def regular(n, radius=1.0, phase=-math.pi / 2):
    a = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def shape_mask(obj, xx, yy):
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
        return in_polygon(u, v, regular(3))
    if name == "star":
        outer = regular(5)
        inner = regular(5, p["inner"], phase=-math.pi / 2 + math.pi / 5)
        verts = np.empty((10, 2))
        verts[0::2], verts[1::2] = outer, inner
        return in_polygon(u, v, verts)
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
        return in_polygon(u, v, verts)
    if name == "diamond":
        return np.abs(u) + np.abs(v) / p["minor"] <= 1.0
    raise AssertionError(name)


def sample_shape_params(rng, cls):
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


def upsample(grid, xx, yy):
    g = grid.shape[0]
    gx, gy = xx * (g - 1), yy * (g - 1)
    x0 = np.clip(np.floor(gx).astype(int), 0, g - 2)
    y0 = np.clip(np.floor(gy).astype(int), 0, g - 2)
    fx, fy = gx - x0, gy - y0
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def band_width(size):
    return max(1, size // 64)


def object_ids(objects, xx, yy):
    ids = np.zeros(xx.shape, dtype=np.uint8)
    full = []
    for k, obj in enumerate(objects):
        m = shape_mask(obj, xx, yy)
        ids[m] = k + 1
        full.append(int(m.sum()))
    return ids, full


def interior(ids, width):
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


def visible_ok(objects, xx, yy):
    ids, full = object_ids(objects, xx, yy)
    inner = interior(ids, band_width(xx.shape[0]))
    vis = np.bincount(ids.ravel(), minlength=len(objects) + 1)[1:]
    core = np.bincount(ids[inner].ravel(), minlength=len(objects) + 1)[1:]
    for k in range(len(objects)):
        if full[k] == 0 or vis[k] < MIN_VISIBLE_FRACTION * full[k]:
            return False
        if core[k] < MIN_INTERIOR_PIXELS:
            return False
    return True


@functools.lru_cache(maxsize=1)
def check_grid():
    return grid(CHECK_SIZE)




def paint_objects(image, objects, fill, xx, yy, noise_sigma, pixel_rng, size):
    """Paint ``objects`` in order over the float ``image`` (later ones occlude), add noise, annotate.

    ``fill(obj, xx, yy)`` gives an object's full-frame colours; both configs
    share this order of operations, which the ``hard`` checksums pin down.
    """
    ids = np.zeros((size, size), dtype=np.uint8)
    full = []
    for k, obj in enumerate(objects):
        m = shape_mask(obj, xx, yy)
        image[m] = fill(obj, xx, yy)[m]
        ids[m] = k + 1
        full.append(int(m.sum()))
    if noise_sigma > 0:
        image = image + pixel_rng.normal(0, noise_sigma, size=image.shape)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return {"image": image, **annotate(objects, ids, full, size)}


def annotate(objects, ids, full, size):
    """Label maps and per-object arrays of a rendered scene.

    ``ids`` is the ``(size, size)`` map of which object (1-based, drawing
    order; 0 background) is visible at each pixel and ``full[k]`` the in-image
    pixel count of object ``k`` before occlusion. The outer rim of every
    visible object becomes void, as in VOC.
    """
    classes = np.array([0] + [o["cls"] for o in objects], dtype=np.uint8)
    inner = interior(ids, band_width(size))
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
