"""Tests for the synthetic ``shapes`` dataset."""

import time

import numpy as np
import pytest

from keras_deconv.datasets import shapes

K = shapes.NUM_OBJECT_CLASSES


@pytest.fixture(scope="module")
def val_set():
    return shapes.as_numpy("val", count=300)


def test_constants():
    assert shapes.CLASS_NAMES[0] == "background"
    assert shapes.NUM_CLASSES == len(shapes.CLASS_NAMES) >= 11
    assert set(shapes.SOURCE_CLASSES) | set(shapes.TARGET_CLASSES) == set(range(1, shapes.NUM_CLASSES))
    assert not set(shapes.SOURCE_CLASSES) & set(shapes.TARGET_CLASSES)
    assert shapes.SPLITS == {"train": 4000, "val": 500, "test": 500}


def test_determinism_and_splits():
    a = shapes.generate_example("train", 17)
    shapes.generate_example("train", 3)  # order must not matter
    b = shapes.generate_example("train", 17)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    c = shapes.generate_example("val", 17)
    d = shapes.generate_example("train", 18)
    assert not np.array_equal(a["image"], c["image"])
    assert not np.array_equal(a["image"], d["image"])
    with pytest.raises(ValueError):
        shapes.generate_example("train", 0, image_size=70)
    with pytest.raises(IndexError):
        shapes.generate_example("val", 500)
    with pytest.raises(ValueError):
        shapes.generate_example("dev", 0)


def test_example_format(val_set):
    assert val_set["image"].shape == (300, 64, 64, 3)
    assert val_set["image"].dtype == np.uint8 and val_set["label"].dtype == np.uint8
    assert val_set["image_labels"].shape == (300, K)
    assert val_set["boxes"].shape == (300, shapes.MAX_OBJECTS, 4)
    values = np.unique(val_set["label"])
    assert set(values.tolist()) <= set(range(shapes.NUM_CLASSES)) | {255}
    n = val_set["num_objects"]
    assert n.min() >= 1 and n.max() <= 3 and len(np.unique(n)) == 3
    # Padding after num_objects.
    pad = np.arange(shapes.MAX_OBJECTS)[None] >= n[:, None]
    assert (val_set["classes"][pad] == -1).all() and (val_set["classes"][~pad] >= 1).all()
    b = val_set["boxes"][~pad]
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    assert b.min() >= 0 and b.max() <= 1


def test_every_class_appears(val_set):
    in_masks = set(np.unique(val_set["label"]).tolist()) - {0, 255}
    assert in_masks == set(range(1, shapes.NUM_CLASSES))
    assert (val_set["image_labels"].sum(0) >= 10).all()


def test_image_labels_match_masks(val_set):
    for i in range(len(val_set["label"])):
        in_mask = set(np.unique(val_set["label"][i]).tolist()) - {0, 255}
        tagged = set((np.nonzero(val_set["image_labels"][i])[0] + 1).tolist())
        n = val_set["num_objects"][i]
        assert in_mask == tagged == set(val_set["classes"][i, :n].tolist()), i
    np.testing.assert_array_equal(val_set["image_labels"], shapes.image_labels("val")[:300])


@pytest.mark.parametrize("size", [96, 128, 224])
def test_other_sizes_consistent(size):
    for i in range(6):
        ex = shapes.generate_example("test", i, image_size=size)
        assert ex["image"].shape == (size, size, 3)
        in_mask = set(np.unique(ex["label"]).tolist()) - {0, 255}
        assert in_mask == set((np.nonzero(ex["image_labels"])[0] + 1).tolist())


def test_object_sizes_span_small_to_large(val_set):
    n = val_set["num_objects"]
    valid = np.arange(shapes.MAX_OBJECTS)[None] < n[:, None]
    sizes = val_set["sizes"][valid]
    assert sizes.min() < 0.15  # under ~10 px at 64
    assert sizes.max() > 0.5  # larger than half the image
    assert (sizes > 0.5).mean() > 0.05


def test_occlusion_happens(val_set):
    n = val_set["num_objects"]
    valid = np.arange(shapes.MAX_OBJECTS)[None] < n[:, None]
    vis = val_set["visible_fraction"][valid]
    assert (vis < 0.9).sum() >= 10
    assert vis.min() >= 0.35
    # The occluder's pixels win: the last object is never occluded.
    last = val_set["visible_fraction"][np.arange(len(n)), n - 1]
    np.testing.assert_array_equal(last, 1.0)


def _window_max(mask, radius):
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return out


@pytest.mark.parametrize("size,radius", [(64, 1), (128, 2)])
def test_void_band_present_and_thin(size, radius):
    for i in range(20):
        ex = shapes.generate_example("val", i, image_size=size)
        void = ex["label"] == 255
        assert void.any(), i
        # Thin: (almost) every void pixel touches a labelled pixel.
        near_labelled = _window_max(~void, radius)
        assert near_labelled[void].mean() > 0.97, i
        # Void only on objects: every void pixel lies inside an object's box.
        in_box = np.zeros_like(void)
        for k in range(ex["num_objects"]):
            y0, x0, y1, x1 = np.round(ex["boxes"][k] * size).astype(int)
            in_box[y0:y1, x0:x1] = True
        assert in_box[void].all(), i
        assert void.mean() < 0.2


def test_budgets():
    labels = shapes.image_labels("train").astype(bool)
    for budget in (5, 10, 25):
        idx = shapes.strong_indices(budget)
        shapes._strong_cached.cache_clear()
        np.testing.assert_array_equal(idx, shapes.strong_indices(budget))  # deterministic
        assert len(np.unique(idx)) == len(idx)
        per_class = labels[idx].sum(axis=0)
        assert (per_class >= budget).all()
        # Each chosen image counts for all of its classes: no class is far over budget
        # and the subset is much smaller than budget * classes * max objects.
        assert len(idx) <= budget * K
        print(f"budget {budget}: {len(idx)} images, per class {per_class.tolist()}")
    assert len(shapes.strong_indices("all")) == shapes.SPLITS["train"]
    with pytest.raises(ValueError):
        shapes.strong_indices(0)


def test_domains():
    source = set(shapes.SOURCE_CLASSES)
    target = set(shapes.TARGET_CLASSES)
    src = shapes.as_numpy("train", count=40, domain="source")
    present = set(np.unique(src["label"]).tolist()) - {0, 255}
    assert present and present <= source
    assert src["has_mask"].all()
    tgt = shapes.as_numpy("train", count=10, domain="target")
    assert (tgt["label"] == 255).all() and not tgt["has_mask"].any()
    assert tgt["image_labels"][:, : len(source)].sum() == 0
    assert tgt["image_labels"].sum() > 0
    val_tgt = shapes.as_numpy("val", count=20, domain="target")
    present = set(np.unique(val_tgt["label"]).tolist()) - {0, 255}
    assert present and present <= target
    assert not set(shapes.domain_indices("train", "source")) & set(
        shapes.domain_indices("train", "target"))


def test_load_tf_data():
    import tensorflow as tf

    ds = shapes.load("val", batch_size=4, count=8)
    image, label = next(iter(ds))
    assert image.dtype == tf.uint8 and tuple(image.shape) == (4, 64, 64, 3)
    assert label.dtype == tf.uint8 and tuple(label.shape) == (4, 64, 64)
    np.testing.assert_array_equal(label[1].numpy(), shapes.generate_example("val", 1)["label"])

    strong = set(shapes.strong_indices(5).tolist())
    ds = shapes.load("train", batch_size=None, budget=5, as_dict=True,
                     indices=sorted(strong)[:3] + [i for i in range(40) if i not in strong][:3])
    for ex in ds:
        i = int(ex["index"])
        assert bool(ex["has_mask"]) == (i in strong)
        assert bool(ex["has_mask"]) == bool((ex["label"].numpy() != 255).any())
        assert ex["image_labels"].numpy().sum() >= 1
    with pytest.raises(ValueError):
        shapes.load("val", budget=5)


def test_generation_speed():
    start = time.perf_counter()
    for i in range(100):
        shapes.generate_example("test", i)
    per_image = (time.perf_counter() - start) / 100
    print(f"shapes: {1000 * per_image:.2f} ms per 64x64 image; "
          f"whole test split ~{per_image * shapes.SPLITS['test']:.1f} s")
    assert per_image * shapes.SPLITS["test"] < 60  # generous: CPUs are shared


def test_imports_stay_light():
    import subprocess
    import sys

    code = ("import sys, keras_deconv, keras_deconv.datasets.shapes, keras_deconv.viz; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'tensorflow_datasets') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
