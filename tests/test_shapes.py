"""Tests for the synthetic ``shapes`` dataset: its guarantees in both configs.

Generation speed is measured by bench/shapes_speed.py, not here.
"""

import hashlib
import os

import numpy as np
import pytest

from keras_deconv.datasets import shapes, shapes_baselines

K = shapes.NUM_OBJECT_CLASSES


@pytest.fixture(scope="module")
def val_set():
    return shapes.as_numpy("val", count=300)


def test_constants():
    assert shapes.CLASS_NAMES[0] == "background"
    assert shapes.NUM_CLASSES == len(shapes.CLASS_NAMES) >= 11
    assert set(shapes.SOURCE_CLASSES) | set(shapes.TARGET_CLASSES) == set(range(1, shapes.NUM_CLASSES))
    assert not set(shapes.SOURCE_CLASSES) & set(shapes.TARGET_CLASSES)
    assert shapes.SPLITS == {"train": 1_000_000, "val": 500, "test": 500}
    assert shapes.CONFIG_SPLITS["hard"] == {"train": 4000, "val": 500, "test": 500}
    assert shapes.VERSION == shapes.VERSIONS["standard"] == 2 and shapes.VERSIONS["hard"] == 1


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
    with pytest.raises(ValueError, match="config"):
        shapes.generate_example("val", 0, config="easy")
    with pytest.raises(IndexError):
        shapes.generate_example("train", 4000, config="hard")
    hard = shapes.generate_example("train", 17, config="hard")
    assert not np.array_equal(a["image"], hard["image"])
    np.testing.assert_array_equal(hard["image"], shapes.generate_example("train", 17, config="hard")["image"])


#: SHA-256 over a few hard-config examples (every key) and its budgets/domains/labels, computed with the
#: generator as it was before version 2 (keras_deconv/datasets/shapes.py at a276ef6): the hard config must
#: reproduce version 1 bit for bit.
HARD_EXAMPLES_SHA256 = "402d78073cc60a8ae14a6e9264957e8300caacc8bdb9c7ec42c1dde8ce852cc9"
HARD_INDICES_SHA256 = "15d55197f86b446856d5254578c78efeda8834a0ab2a2310282ba1234d2754fe"


def test_hard_config_is_version_1_unchanged():
    h = hashlib.sha256()
    for split, index, size in [("train", 0, 64), ("train", 1, 64), ("train", 3999, 64), ("val", 7, 64),
                               ("test", 499, 64), ("test", 2, 96), ("val", 11, 224)]:
        ex = shapes.generate_example(split, index, size, config="hard")
        for key in sorted(ex):
            h.update(key.encode())
            h.update(np.ascontiguousarray(ex[key]).tobytes())
    assert h.hexdigest() == HARD_EXAMPLES_SHA256
    h = hashlib.sha256()
    for budget in (5, 10, 25):
        h.update(np.asarray(shapes.strong_indices(budget, config="hard"), np.int64).tobytes())
    for domain in ("source", "target"):
        h.update(np.asarray(shapes.domain_indices("train", domain, config="hard"), np.int64).tobytes())
    h.update(np.asarray(shapes.image_labels("val", config="hard")).tobytes())
    assert h.hexdigest() == HARD_INDICES_SHA256


def test_train_split_streams_a_million_distinct_images():
    size = shapes.SPLITS["train"]
    assert size >= 1_000_000
    labels = shapes.image_labels("train")  # from the hash of the index, without rendering
    assert labels.shape == (size, K) and (labels.sum(1) >= 1).all() and (labels.sum(1) <= 3).all()
    counts = labels.sum(0) / size  # every class about equally often
    assert counts.min() > 0.8 * counts.max()
    seen = set()
    for index in [0, 1, 4000, 123_456, 500_000, size - 1]:
        ex = shapes.generate_example("train", index)
        np.testing.assert_array_equal(ex["image_labels"], labels[index])
        seen.add(hashlib.sha256(ex["image"].tobytes()).hexdigest())
    assert len(seen) == 6
    with pytest.raises(IndexError):
        shapes.generate_example("train", size)
    with pytest.raises(ValueError, match="count"):
        shapes.as_numpy("train")  # a million images do not fit in memory


def _dilate(mask, steps):
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _contrasts(config, count):
    """Median-colour distances: each object's interior vs the background and the objects right around it."""
    to_background, to_objects = [], []
    for i in range(count):
        ex = shapes.generate_example("val", i, config=config)
        image, instances, label = ex["image"].astype(float), ex["instances"], ex["label"]
        n = int(ex["num_objects"])
        for k in range(1, n + 1):
            core = instances == k
            fill = np.median(image[core], axis=0)
            # Pixels within 2 px outside the object's void rim.
            ring = _dilate(_dilate(core, 1) | (_dilate(core, 2) & (label == 255)), 2) & ~core
            around = ring & (label == 0)
            if around.sum() >= 4:
                to_background.append(np.linalg.norm(fill - np.median(image[around], axis=0)))
            for j in range(1, n + 1):
                touching = ring & (instances == j)
                if j != k and touching.sum() >= 4:
                    to_objects.append(np.linalg.norm(fill - np.median(image[touching], axis=0)))
    return np.array(to_background), np.array(to_objects)


def test_objects_contrast_with_their_surroundings():
    to_background, to_objects = _contrasts("standard", 120)
    assert len(to_background) > 150 and len(to_objects) > 30
    # Fill colours are >= 110 RGB units from the background beneath and >= 90 from touching
    # objects; medians of noisy, striped or graded pixels keep most of that.
    assert to_background.min() >= 100, np.sort(to_background)[:5]
    assert to_objects.min() >= 80, np.sort(to_objects)[:5]
    # The hard config makes no such promise, and the same check catches it.
    hard_background, hard_objects = _contrasts("hard", 120)
    assert (hard_background < 100).sum() >= 5 and (hard_objects < 80).sum() >= 3


@pytest.mark.parametrize("config", ["standard", "hard"])
def test_colour_alone_does_not_tell_the_class(config):
    """A per-pixel colour classifier (majority class per RGB bin, fitted on train) stays near the floor."""
    train = shapes.as_numpy("train", count=300, config=config)
    test = shapes.as_numpy("test", count=200, config=config)
    floor = shapes_baselines.background_only_miou(test["label"])
    for bins in (4, 8, 16):
        colour = shapes_baselines.colour_only_miou(train["image"], train["label"], test["image"], test["label"], bins)
        print(f"{config}: colour-only ({bins} bins/channel) {colour:.2f} mIoU; all-background {floor:.2f}")
        assert colour <= 25
    assert 3 < floor < 10


def test_baseline_miou_matches_the_metrics_module():
    from keras_deconv.metrics import ConfusionMatrix

    train, test = shapes.as_numpy("train", count=50), shapes.as_numpy("test", count=30)
    predictions = shapes_baselines.colour_only_predictions(train["image"], train["label"], test["image"], bins=16)
    matrix = ConfusionMatrix(shapes.NUM_CLASSES, ignore_label=255)
    matrix.update(test["label"], predictions)
    assert shapes_baselines.mean_iou(test["label"], predictions) == pytest.approx(100 * matrix.mean_iou)
    matrix = ConfusionMatrix(shapes.NUM_CLASSES, ignore_label=255)
    matrix.update(test["label"], np.zeros_like(test["label"]))
    assert shapes_baselines.background_only_miou(test["label"]) == pytest.approx(100 * matrix.mean_iou)


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


@pytest.mark.parametrize("config", ["standard", "hard"])
def test_object_counts_and_classes(config):
    data = shapes.as_numpy("val", count=200, config=config)
    assert set(np.unique(data["num_objects"]).tolist()) == {1, 2, 3}
    assert (data["image_labels"].sum(0) >= 5).all()


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


@pytest.mark.parametrize("config", ["standard", "hard"])
def test_budgets(config):
    labels = shapes.image_labels("train", config=config).astype(bool)
    for budget in (5, 10, 25):
        idx = shapes.strong_indices(budget, config=config)
        shapes._strong_cached.cache_clear()
        np.testing.assert_array_equal(idx, shapes.strong_indices(budget, config=config))  # deterministic
        assert len(np.unique(idx)) == len(idx)
        per_class = labels[idx].sum(axis=0)
        assert (per_class >= budget).all()
        # Each chosen image counts for all of its classes: no class is far over budget
        # and the subset is much smaller than budget * classes * max objects.
        assert len(idx) <= budget * K
        print(f"{config} budget {budget}: {len(idx)} images, per class {per_class.tolist()}")
    assert len(shapes.strong_indices("all", config=config)) == shapes.CONFIG_SPLITS[config]["train"]
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

    # The streaming train split: a seeded permutation of a million indices, generated on the fly.
    first = [next(iter(shapes.load("train", batch_size=3, as_dict=True, seed=4)))["index"].numpy() for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    assert len(set(first[0].tolist())) == 3 and first[0].max() > 4000
    hard = next(iter(shapes.load("val", batch_size=2, count=2, config="hard")))
    np.testing.assert_array_equal(hard[0][1].numpy(), shapes.generate_example("val", 1, config="hard")["image"])


def test_a_script_holding_a_load_iterator_exits():
    """``it = iter(shapes.load(...))`` still alive at exit used to hang the process (tf.data + numpy_function)."""
    import subprocess
    import sys

    code = ("from keras_deconv.datasets import shapes\n"
            "it = iter(shapes.load('val', batch_size=4, count=40))\n"
            "batch = next(it)\n"
            "print(tuple(batch[0].shape))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("(4, 64, 64, 3)")


def test_imports_stay_light():
    import subprocess
    import sys

    code = ("import sys, keras_deconv, keras_deconv.datasets.shapes, keras_deconv.viz; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'tensorflow_datasets') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
