"""The ``hard`` ``shapes`` generator: version 1 of the dataset, kept bit for bit for research.

Per image: a random background texture (gradient, stripes, checkerboard or
smooth noise) with 1-4 distractors (lines, wavy strokes, irregular blobs),
1-3 objects whose textures are drawn like the background's (their mean
colour only loosely kept away from the background mean), and Gaussian pixel
noise. Objects can be nearly invisible, which is what makes it hard: small
CNNs trained on a 2-core CPU score close to the all-background floor on it.
Select it with ``config="hard"`` in :mod:`keras_deconv.datasets.shapes`.
"""

import math

import numpy as np

from keras_deconv.datasets import _shapes_geometry as geo

_MIN_DIAMETER, _MAX_DIAMETER = 0.10, 0.95


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
        w = geo.upsample(tex["grid"], xx, yy)
    w = w[..., None]
    return (1 - w) * tex["c1"] + w * tex["c2"]


# --- Scene sampling ------------------------------------------------------


def _sample_object(rng, placed):
    cls = int(rng.integers(1, geo.NUM_CLASSES))
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
    params, aspect = geo.sample_shape_params(rng, cls)
    return {
        "cls": cls,
        "cx": float(cx),
        "cy": float(cy),
        "d": float(d),
        "theta": float(rng.uniform(0, 2 * math.pi)),
        "aspect": float(aspect),
        "params": params,
    }


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


def sample_scene(rng):
    """Scene of one image (geometry, textures, noise level) drawn from ``rng``."""
    background = _sample_texture(rng)
    bg_mean = (background["c1"] + background["c2"]) / 2
    distractors = [_sample_distractor(rng) for _ in range(int(rng.integers(1, 5)))]
    n_objects = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    xx, yy = geo.check_grid()
    objects = []
    for _ in range(n_objects):
        for _attempt in range(20):
            obj = _sample_object(rng, objects)
            if geo.visible_ok(objects + [obj], xx, yy):
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


def render(scene, size, pixel_rng):
    """Image and labels of a scene from :func:`sample_scene` at ``size`` pixels."""
    xx, yy = geo.grid(size)
    image = _render_texture(scene["background"], xx, yy)
    for dis in scene["distractors"]:
        image[_distractor_mask(dis, xx, yy)] = dis["colour"]
    return geo.paint_objects(image, scene["objects"], lambda obj, x, y: _render_texture(obj["texture"], x, y),
                             xx, yy, scene["noise_sigma"], pixel_rng, size)
