"""The ``standard`` ``shapes`` generator (version 2): objects always visible, class by shape alone.

Per image:

* **Background**: a linear gradient between two random colours (at most 90
  RGB units apart), plus mild low-frequency noise (a bilinear 4x4 grid,
  amplitude 3-9 units) and 0-2 thin distractor lines (1-2 px at 64) of random
  colour, all labelled background.
* **Objects**: 1-3 (probabilities 0.35 / 0.35 / 0.3) of uniformly random
  class; diameters log-uniform from 10% to 90% of the side; random rotation;
  half of the later objects are placed next to an earlier one so occlusion is
  common. The count and classes come from a counter-based hash of the index
  (:func:`label_draws`), so the image-level labels of the million train
  images are known without rendering them; geometry is then drawn until every
  object keeps >= 35% of its in-image area and a few interior pixels.
* **Fills**: flat (60%), stripes (20%, two colours 35-60 units apart) or a
  mild gradient (20%, 20-40 units). Every fill colour (both ends and the
  middle) is at least :data:`BACKGROUND_CONTRAST` RGB units from every
  background pixel under the object and :data:`OBJECT_CONTRAST` from the fill
  colours of the objects it touches (the best of 64 random candidates when
  none meets both, which is rare). Colours are random otherwise, so
  colour alone says "object here", never which shape.
* **Noise**: Gaussian pixel noise, per-image sigma in [0, 4].
"""

import math

import numpy as np

from keras_deconv.datasets import _shapes_geometry as geo

MIN_DIAMETER, MAX_DIAMETER = 0.10, 0.90
OBJECT_COUNT_PROBS = (0.35, 0.35, 0.30)
BACKGROUND_CONTRAST = 110.0  # RGB distance of fill colours from the background beneath
OBJECT_CONTRAST = 90.0  # ... from the fill colours of touching objects
FILL_KINDS = ("flat", "stripes", "gradient")
FILL_PROBS = (0.6, 0.2, 0.2)
_COLOUR_BATCH, _COLOUR_BATCHES = 16, 4  # random fill candidates per try, tries
_PLACEMENT_ATTEMPTS = 30
_PLACEMENT_RESTARTS = 1000  # a restart redraws all geometry; one is needed in ~1% of images


# --- Object counts and classes -------------------------------------------


def _splitmix(x):
    # SplitMix64 finaliser on a uint64 array (wraps modulo 2**64, no warnings for arrays).
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def label_draws(key, indices):
    """Object counts and classes of images ``indices`` (vectorised hash of ``key`` and index).

    Returns an int64 ``(n,)`` array of counts (1-3) and an int64
    ``(n, MAX_OBJECTS)`` array of class ids in drawing order (padding -1).
    """
    indices = np.asarray(indices, dtype=np.int64).ravel()
    h = np.zeros(indices.shape, dtype=np.uint64)
    for part in key:
        h = _splitmix(h ^ np.uint64(part))
    h = _splitmix(h ^ indices.astype(np.uint64))
    draws = []
    for _ in range(1 + geo.MAX_OBJECTS):
        h = _splitmix(h)
        draws.append((h >> np.uint64(11)).astype(np.float64) * 2.0**-53)  # uniform [0, 1)
    p1, p2, _ = OBJECT_COUNT_PROBS
    counts = 1 + (draws[0] >= p1).astype(np.int64) + (draws[0] >= p1 + p2).astype(np.int64)
    classes = 1 + np.floor(np.stack(draws[1:], axis=1) * geo.NUM_OBJECT_CLASSES).astype(np.int64)
    classes[np.arange(geo.MAX_OBJECTS)[None, :] >= counts[:, None]] = -1
    return counts, classes


# --- Background ------------------------------------------------------------


def _ramp(angle, xx, yy):
    # Linear ramp from 0 to 1 across the unit square along ``angle`` (the same at every size).
    c, s = math.cos(angle), math.sin(angle)
    return ((xx - 0.5) * c + (yy - 0.5) * s) / (abs(c) + abs(s)) + 0.5


def _sample_background(rng):
    c1 = rng.uniform(0, 255, size=3)
    direction = rng.normal(size=3)
    c2 = np.clip(c1 + direction / np.linalg.norm(direction) * rng.uniform(20, 90), 0, 255)
    return {
        "c1": c1,
        "c2": c2,
        "angle": rng.uniform(0, 2 * math.pi),
        "noise": rng.normal(0, 1, size=(4, 4)) * rng.uniform(3, 9),
    }


def _background(bg, xx, yy):
    t = _ramp(bg["angle"], xx, yy)[..., None]
    image = (1 - t) * bg["c1"] + t * bg["c2"] + geo.upsample(bg["noise"], xx, yy)[..., None]
    return np.clip(image, 0, 255)


def _sample_line(rng):
    return {
        "p0": rng.uniform(-0.1, 1.1, size=2),
        "p1": rng.uniform(-0.1, 1.1, size=2),
        "width": rng.uniform(0.016, 0.03),
        "colour": rng.uniform(0, 255, size=3),
    }


def _line_mask(line, xx, yy):
    p0 = line["p0"]
    d = line["p1"] - p0
    length = max(float(np.hypot(*d)), 1e-6)
    ux, uy = d / length
    along = (xx - p0[0]) * ux + (yy - p0[1]) * uy
    across = -(xx - p0[0]) * uy + (yy - p0[1]) * ux
    return (along >= 0) & (along <= length) & (np.abs(across) <= line["width"] / 2)


# --- Objects -----------------------------------------------------------------


def _sample_object(rng, cls, placed):
    d = math.exp(rng.uniform(math.log(MIN_DIAMETER), math.log(MAX_DIAMETER)))
    r = d / 2
    if placed and rng.uniform() < 0.5:
        # Next to an earlier object, so that occlusion is common.
        other = placed[int(rng.integers(len(placed)))]
        a = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(0.3, 1.0) * (r + other["d"] / 2)
        cx, cy = other["cx"] + dist * math.cos(a), other["cy"] + dist * math.sin(a)
    else:
        m = min(r, 0.5) * 0.6
        cx, cy = rng.uniform(m, 1 - m), rng.uniform(m, 1 - m)
    params, aspect = geo.sample_shape_params(rng, cls)
    return {"cls": int(cls), "cx": float(cx), "cy": float(cy), "d": float(d),
            "theta": float(rng.uniform(0, 2 * math.pi)), "aspect": float(aspect), "params": params}


def _place_objects(rng, classes):
    xx, yy = geo.check_grid()
    for _restart in range(_PLACEMENT_RESTARTS):
        objects = []
        for cls in classes:
            for _attempt in range(_PLACEMENT_ATTEMPTS):
                obj = _sample_object(rng, cls, objects)
                if geo.visible_ok(objects + [obj], xx, yy):
                    objects.append(obj)
                    break
            else:
                break  # this object found no place: redraw the whole scene
        else:
            return objects
    raise RuntimeError(f"Could not place objects of classes {classes}.")  # never seen


def _min_distance(colours, points):
    """Smallest Euclidean distance from each row of ``colours`` (N, E, 3) to ``points`` (P, 3)."""
    if len(points) == 0:
        return np.full(colours.shape[0], np.inf)
    flat = colours.reshape(-1, 3)
    sq = (flat**2).sum(1)[:, None] + (points**2).sum(1)[None, :] - 2 * flat @ points.T
    return np.sqrt(np.maximum(sq.min(axis=1), 0)).reshape(colours.shape[:2]).min(axis=1)


def _sample_fill(rng, obj, under, touching):
    """Fill of ``obj``: colours far from the background ``under`` it and from ``touching`` fill colours."""
    kind = FILL_KINDS[int(rng.choice(len(FILL_KINDS), p=FILL_PROBS))]
    spread = {"flat": (0, 0), "stripes": (35, 60), "gradient": (20, 40)}[kind]
    best, best_margin = None, -np.inf
    for _batch in range(_COLOUR_BATCHES):  # usually the first batch has a fitting colour
        a = rng.uniform(0, 255, size=(_COLOUR_BATCH, 3))
        direction = rng.normal(size=(_COLOUR_BATCH, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        b = np.clip(a + direction * rng.uniform(*spread, size=(_COLOUR_BATCH, 1)), 0, 255)
        ends = np.stack([a, b, (a + b) / 2], axis=1)  # (N, 3, 3): both ends and the middle
        margin = np.minimum(_min_distance(ends, under) - BACKGROUND_CONTRAST,
                            _min_distance(ends, touching) - OBJECT_CONTRAST)
        pick = int(np.argmax(margin >= 0)) if (margin >= 0).any() else int(np.argmax(margin))
        if margin[pick] > best_margin:
            best, best_margin = (a[pick], b[pick]), margin[pick]
        if best_margin >= 0:
            break
    return {
        "kind": kind,
        "a": best[0],
        "b": best[1],
        "angle": rng.uniform(0, 2 * math.pi),
        "period": obj["d"] * rng.uniform(0.15, 0.3),
        "offset": rng.uniform(0, 1),
    }


def _dilate(mask):
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _colour_objects(rng, objects, background):
    xx, yy = geo.check_grid()
    bg = _background(background, xx, yy)
    masks = []
    for obj in objects:
        mask = geo.shape_mask(obj, xx, yy)
        near = _dilate(mask)
        touching = [np.stack([o["fill"]["a"], o["fill"]["b"], (o["fill"]["a"] + o["fill"]["b"]) / 2])
                    for o, m in zip(objects, masks) if (near & m).any()]
        touching = np.concatenate(touching) if touching else np.zeros((0, 3))
        obj["fill"] = _sample_fill(rng, obj, bg[mask], touching)
        masks.append(mask)


def _fill(obj, xx, yy):
    fill = obj["fill"]
    c, s = math.cos(fill["angle"]), math.sin(fill["angle"])
    t = (xx - obj["cx"]) * c + (yy - obj["cy"]) * s
    if fill["kind"] == "flat":
        return np.broadcast_to(fill["a"], xx.shape + (3,))
    if fill["kind"] == "stripes":
        w = (np.mod(t / fill["period"] + fill["offset"], 1.0) < 0.5).astype(np.float64)
    else:  # gradient across the object's diameter
        w = np.clip(t / obj["d"] + 0.5, 0, 1)
    w = w[..., None]
    return (1 - w) * fill["a"] + w * fill["b"]


# --- Scenes ------------------------------------------------------------------


def sample_scene(rng, classes):
    """Scene of one image with objects of ``classes`` (drawing order), drawn from ``rng``."""
    background = _sample_background(rng)
    lines = [_sample_line(rng) for _ in range(int(rng.integers(0, 3)))]
    objects = _place_objects(rng, classes)
    _colour_objects(rng, objects, background)
    return {"background": background, "lines": lines, "objects": objects,
            "noise_sigma": float(rng.uniform(0.0, 4.0))}


def render(scene, size, pixel_rng):
    """Image and labels of a scene from :func:`sample_scene` at ``size`` pixels."""
    xx, yy = geo.grid(size)
    image = _background(scene["background"], xx, yy)
    for line in scene["lines"]:
        image[_line_mask(line, xx, yy)] = line["colour"]
    return geo.paint_objects(image, scene["objects"], _fill, xx, yy, scene["noise_sigma"], pixel_rng, size)
