"""Tests for keras_deconv.metrics (VOC-devkit confusion matrix and streaming mIoU)."""

import json

import numpy as np
import pytest

from keras_deconv.metrics import ConfusionMatrix, StreamingMeanIoU


def _reference(y_true, y_pred, n, ignore=255):
    """Independent per-pixel loop: the documented convention, spelled out."""
    cm = np.zeros((n, n), np.int64)
    miss = np.zeros(n, np.int64)
    bad_true = bad_pred = ignored = 0
    for t, p in zip(np.ravel(y_true).tolist(), np.ravel(y_pred).tolist()):
        if t == ignore:
            ignored += 1
        elif not 0 <= t < n:
            bad_true += 1
        elif not 0 <= p < n:
            bad_pred += 1
            miss[t] += 1
        else:
            cm[t, p] += 1
    tp = np.diag(cm).astype(float)
    gt = cm.sum(1) + miss
    pred = cm.sum(0)
    union = gt + pred - tp
    iou = [tp[c] / union[c] for c in range(n) if union[c] > 0]
    acc = [tp[c] / gt[c] for c in range(n) if gt[c] > 0]
    return {
        "matrix": cm,
        "mean_iou": float(np.mean(iou)),
        "pixel_accuracy": tp.sum() / gt.sum(),
        "mean_class_accuracy": float(np.mean(acc)),
        "fwiou": float(sum(gt[c] / gt.sum() * tp[c] / union[c]
                           for c in range(n) if union[c] > 0)),
        "bad_true": bad_true,
        "bad_pred": bad_pred,
        "ignored": ignored,
    }


def _random_labels(rng, shape, n):
    y_true = rng.integers(0, n, size=shape)
    y_pred = np.where(rng.random(shape) < 0.6, y_true, rng.integers(0, n, size=shape))
    y_true = np.where(rng.random(shape) < 0.1, 255, y_true)
    y_true = np.where(rng.random(shape) < 0.01, n + 3, y_true)  # out of range
    y_pred = np.where(rng.random(shape) < 0.01, -1, y_pred)
    y_pred = np.where(rng.random(shape) < 0.01, 255, y_pred)
    return y_true, y_pred


def test_matches_independent_reference():
    rng = np.random.default_rng(0)
    n = 6
    y_true, y_pred = _random_labels(rng, (3, 20, 30), n)
    cm = ConfusionMatrix(n)
    cm.update(y_true, y_pred)
    ref = _reference(y_true, y_pred, n)
    np.testing.assert_array_equal(cm.matrix, ref["matrix"])
    assert cm.mean_iou == pytest.approx(ref["mean_iou"])
    assert cm.pixel_accuracy == pytest.approx(ref["pixel_accuracy"])
    assert cm.mean_class_accuracy == pytest.approx(ref["mean_class_accuracy"])
    assert cm.frequency_weighted_iou == pytest.approx(ref["fwiou"])
    assert cm.out_of_range_true == ref["bad_true"] > 0
    assert cm.out_of_range_pred == ref["bad_pred"] > 0
    assert cm.ignored_pixels == ref["ignored"] > 0
    res = json.loads(json.dumps(cm.result(include_matrix=True)))
    assert res["out_of_range_true"] == ref["bad_true"]
    assert res["out_of_range_pred"] == ref["bad_pred"]
    assert len(res["warnings"]) == 2 and "outside [0, 6)" in res["warnings"][0]
    assert res["confusion_matrix"] == ref["matrix"].tolist()
    assert "WARNING" in cm.format_table()
    with pytest.warns(UserWarning):
        cm.warn_if_invalid()


def test_hand_computed_example():
    # gt:   0 0 1 1 2 255      pred: 0 1 1 1 0 2
    cm = ConfusionMatrix(3, class_names=["background", "cat", "dog"])
    cm.update(np.array([0, 0, 1, 1, 2, 255]), np.array([0, 1, 1, 1, 0, 2]))
    # background: TP 1, FP 1 (dog->bg), FN 1 (bg->cat): 1/3
    # cat: TP 2, FP 1, FN 0: 2/3;  dog: TP 0, FN 1: 0
    np.testing.assert_allclose(cm.iou(), [1 / 3, 2 / 3, 0.0])
    assert cm.mean_iou == pytest.approx(1 / 3)
    assert cm.pixel_accuracy == pytest.approx(3 / 5)
    assert cm.mean_class_accuracy == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert cm.frequency_weighted_iou == pytest.approx(2 / 5 * 1 / 3 + 2 / 5 * 2 / 3)
    assert cm.ignored_pixels == 1 and cm.result()["warnings"] == []
    table = cm.format_table()
    assert "dog" in table and "33.33" in table and "66.67" in table


def test_absent_classes_excluded_and_logits_accepted():
    cm = ConfusionMatrix(4)
    y_true = np.array([[0, 1], [1, 255]])
    logits = np.zeros((2, 2, 4))
    logits[..., 0] = 1
    logits[0, 1, 1] = logits[1, 0, 1] = 5
    cm.update(y_true[..., None], logits)  # (H, W, 1) labels, (H, W, C) scores
    assert np.isnan(cm.iou()[2:]).all()
    assert cm.mean_iou == 1.0 and cm.result()["classes_in_mean"] == 2
    assert cm.result()["per_class"][3]["iou"] is None
    with pytest.raises(TypeError):
        cm.update([0.5], [0])
    with pytest.raises(ValueError):
        cm.update([0, 1], [0])


def test_merge_equals_single_pass():
    rng = np.random.default_rng(1)
    batches = [_random_labels(rng, (2, 9, 11), 5) for _ in range(4)]
    single = ConfusionMatrix(5)
    single.update(np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches]))
    parts = [ConfusionMatrix(5) for _ in batches]
    for part, (t, p) in zip(parts, batches):
        part.update(t, p)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    assert merged.result(include_matrix=True) == single.result(include_matrix=True)
    with pytest.raises(ValueError):
        merged.merge(ConfusionMatrix(6))


def test_large_input_is_fast():
    import time

    rng = np.random.default_rng(2)
    y = rng.integers(0, 21, size=(8, 500, 500), dtype=np.uint8)  # 2M pixels
    cm = ConfusionMatrix(21)
    start = time.perf_counter()
    cm.update(y, y)
    assert time.perf_counter() - start < 5.0
    assert cm.mean_iou == 1.0


def test_streaming_metric_equals_confusion_matrix():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    n = 5
    ref = ConfusionMatrix(n)
    metric = StreamingMeanIoU(n)
    update = tf.function(metric.update_state)  # graph mode
    for _ in range(3):
        y_true, y_pred = _random_labels(rng, (2, 7, 9), n)
        ref.update(y_true, y_pred)
        update(tf.constant(y_true, tf.int32), tf.constant(y_pred, tf.int32))
    got = metric.to_confusion_matrix()
    assert got.result(include_matrix=True) == ref.result(include_matrix=True)
    assert float(metric.result()) == pytest.approx(ref.mean_iou, rel=1e-6)
    metric.reset_state()
    assert metric.to_confusion_matrix().evaluated_pixels == 0


def test_streaming_metric_in_fit_and_serialization():
    import keras

    rng = np.random.default_rng(4)
    n = 3
    x = rng.random((8, 8, 8, 3)).astype("float32")
    y = rng.integers(0, n, size=(8, 8, 8)).astype("int32")
    y[:, 0] = 255
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(n, 1)(inputs))
    metric = StreamingMeanIoU(n, name="miou")
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
        metrics=[metric],
    )
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert "miou" in history.history
    model.evaluate(x, y, batch_size=4, verbose=0)
    ref = ConfusionMatrix(n)
    ref.update(y, model.predict(x, verbose=0))  # logits -> argmax
    np.testing.assert_array_equal(metric.to_confusion_matrix().matrix, ref.matrix)
    assert float(metric.result()) == pytest.approx(ref.mean_iou, rel=1e-6)

    config = metric.get_config()
    assert config["num_classes"] == n and config["ignore_label"] == 255
    clone = StreamingMeanIoU.from_config(config)
    assert clone.get_config() == config
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(restored, StreamingMeanIoU) and restored.name == "miou"
