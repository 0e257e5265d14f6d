"""Semantic-segmentation evaluation, VOC-devkit style.

Two tools share one convention:

* :class:`ConfusionMatrix` (NumPy) accumulates one confusion matrix over a
  whole dataset and reports VOC mean IoU, pixel accuracy, mean class
  accuracy, frequency-weighted IoU and a per-class table.
* :class:`StreamingMeanIoU` (a ``keras.metrics.Metric``) keeps the same state
  inside ``model.fit`` / ``model.evaluate`` (graph mode) and can be turned into
  a :class:`ConfusionMatrix` for the full report.

The convention (PASCAL VOC devkit ``VOCevalseg.m``):

* One confusion matrix over **all** pixels of all images (not a per-image mean).
* Ground-truth pixels equal to ``ignore_label`` (255, the VOC void/boundary
  band) are skipped.
* ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``; ``mean_iou`` averages it over the
  classes whose union is non-empty (present in the ground truth or the
  predictions). On VOC val every one of the 21 classes is present, so this
  equals the devkit's mean over 21 classes; on a small subset it avoids
  averaging in meaningless 0/0 entries.

Unlike ``keras.metrics.MeanIoU`` (which, since Keras 3.15, silently drops
out-of-range labels) invalid labels are **counted and reported**, never dropped:

* ``out_of_range_true``: ground-truth pixels outside ``[0, num_classes)`` that
  are not ``ignore_label``. They have no row in the matrix, so they are left
  out of all scores, and reported.
* ``out_of_range_pred``: predictions outside ``[0, num_classes)`` (including a
  prediction equal to ``ignore_label``: void is not a class) at pixels with a
  valid ground truth. They count as misses (false negatives of the true
  class), so they can only lower the scores. The VOC devkit would silently
  drop them and thereby inflate the IoU.

Example:

>>> import numpy as np
>>> from keras_deconv.metrics import ConfusionMatrix
>>> cm = ConfusionMatrix(3)
>>> cm.update(np.array([[0, 1], [2, 255]]), np.array([[0, 1], [1, 0]]))
>>> round(cm.mean_iou, 4)
0.5
>>> cm.pixel_accuracy
0.6666666666666666
"""

import math
import warnings as _warnings

import keras
import numpy as np

__all__ = ["ConfusionMatrix", "StreamingMeanIoU"]


def _to_int_array(x, what):
    x = np.asarray(x)
    if x.dtype.kind in "iub":
        return x
    if x.dtype.kind == "f":
        if x.size and not np.all(np.isfinite(x) & (np.mod(x, 1) == 0)):
            raise TypeError(
                f"Expected integer class ids for {what}; received non-integral "
                f"floats (dtype={x.dtype}). Pass labels, or scores with a "
                "trailing class axis of size num_classes."
            )
        return x.astype(np.int64)
    raise TypeError(f"Expected an integer array for {what}. Received: dtype={x.dtype}")


def _nan_to_none(value):
    value = float(value)
    return None if math.isnan(value) else value


class ConfusionMatrix:
    """Dataset-level confusion matrix with VOC-devkit scores.

    Rows are ground-truth classes, columns predicted classes. A hidden extra
    column counts pixels whose prediction was not a valid class (see the
    module docstring); they count as false negatives.

    Args:
        num_classes: Number of classes (21 for VOC: background + 20).
        ignore_label: Ground-truth value to skip (VOC: 255), or None.
        class_names: Optional names for the per-class table and result.

    Example:

    >>> cm = ConfusionMatrix(2, class_names=["background", "cat"])
    >>> cm.update(np.array([0, 0, 1, 1, 255]), np.array([0, 1, 1, 1, 0]))
    >>> cm.iou().round(3).tolist()
    [0.5, 0.667]
    >>> cm.result()["out_of_range_pred"]
    0
    """

    def __init__(self, num_classes, ignore_label=255, class_names=None):
        num_classes = int(num_classes)
        if num_classes < 1:
            raise ValueError(
                f"Expected num_classes >= 1. Received: num_classes={num_classes}"
            )
        if class_names is not None:
            class_names = [str(n) for n in class_names]
            if len(class_names) != num_classes:
                raise ValueError(
                    f"Expected {num_classes} class names. "
                    f"Received: {len(class_names)} names"
                )
        self.num_classes = num_classes
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.class_names = class_names
        self.reset()

    # --- State -------------------------------------------------------------

    def reset(self):
        """Clears all counts."""
        n = self.num_classes
        # Column n holds "prediction was not a valid class" (a miss).
        self._counts = np.zeros((n, n + 1), dtype=np.int64)
        self.ignored_pixels = 0
        self.out_of_range_true = 0

    @property
    def matrix(self):
        """``(num_classes, num_classes)`` int64 confusion matrix (a copy)."""
        return self._counts[:, : self.num_classes].copy()

    @property
    def out_of_range_pred(self):
        """Number of valid ground-truth pixels with an invalid prediction."""
        return int(self._counts[:, self.num_classes].sum())

    def update(self, y_true, y_pred):
        """Adds a batch (or a single image) of labels.

        Args:
            y_true: Integer ground-truth labels of any shape, e.g. ``(H, W)``
                or ``(B, H, W)``; a trailing axis of size 1 is dropped.
            y_pred: Integer predictions of the same shape, or scores/logits of
                shape ``y_true.shape + (num_classes,)`` (argmax is taken).

        Example:

        >>> cm = ConfusionMatrix(2); cm.update([[0, 1]], [[0, 7]])
        >>> cm.out_of_range_pred
        1
        """
        y_true = np.asarray(y_true)
        y_pred = np.asarray(y_pred)
        if (
            y_true.ndim == y_pred.ndim
            and y_true.ndim >= 1
            and y_true.shape[-1] == 1
            and y_pred.shape[-1] == self.num_classes
            and y_pred.shape[:-1] == y_true.shape[:-1]
            and self.num_classes > 1
        ):
            y_true = y_true[..., 0]
        if y_pred.shape == y_true.shape + (self.num_classes,):
            y_pred = np.argmax(y_pred, axis=-1)
        elif y_true.shape != y_pred.shape:
            if y_true.size == y_pred.size and (
                np.squeeze(y_true).shape == np.squeeze(y_pred).shape
            ):
                pass  # e.g. (B, H, W, 1) labels vs (B, H, W) predictions.
            else:
                raise ValueError(
                    "y_true and y_pred must have the same shape (or y_pred an "
                    "extra trailing class axis). Received: "
                    f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
                )
        t = _to_int_array(y_true, "y_true").ravel().astype(np.int64)
        p = _to_int_array(y_pred, "y_pred").ravel().astype(np.int64)
        n = self.num_classes
        if self.ignore_label is not None:
            ignored = t == self.ignore_label
        else:
            ignored = np.zeros(t.shape, dtype=bool)
        true_ok = (t >= 0) & (t < n)
        self.ignored_pixels += int(ignored.sum())
        self.out_of_range_true += int((~ignored & ~true_ok).sum())
        t, p = t[true_ok], p[true_ok]
        # Invalid predictions land in the extra column n (a miss).
        p = np.where((p >= 0) & (p < n), p, n)
        self._counts += np.bincount(
            t * (n + 1) + p, minlength=n * (n + 1)
        ).reshape(n, n + 1)

    def merge(self, other):
        """Adds the counts of another matrix (e.g. from another worker).

        Args:
            other: A :class:`ConfusionMatrix` with the same ``num_classes``
                and ``ignore_label``.

        Returns:
            ``self``, for chaining.

        Example:

        >>> a = ConfusionMatrix(2); a.update([0], [0])
        >>> b = ConfusionMatrix(2); b.update([1], [0])
        >>> a.merge(b).matrix.tolist()
        [[1, 0], [1, 0]]
        """
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"Expected a ConfusionMatrix. Received: {type(other)}")
        if (other.num_classes, other.ignore_label) != (
            self.num_classes,
            self.ignore_label,
        ):
            raise ValueError(
                "Cannot merge confusion matrices with different settings: "
                f"(num_classes, ignore_label)=({self.num_classes}, "
                f"{self.ignore_label}) vs ({other.num_classes}, "
                f"{other.ignore_label})"
            )
        self._counts += other._counts
        self.ignored_pixels += other.ignored_pixels
        self.out_of_range_true += other.out_of_range_true
        return self

    # --- Scores ------------------------------------------------------------

    @property
    def _tp(self):
        return np.diag(self._counts[:, : self.num_classes]).astype(np.float64)

    @property
    def _gt_pixels(self):
        return self._counts.sum(axis=1).astype(np.float64)  # TP + FN

    @property
    def _pred_pixels(self):
        return self._counts[:, : self.num_classes].sum(axis=0).astype(np.float64)

    @property
    def evaluated_pixels(self):
        """Pixels with a valid ground truth (the pixels that are scored)."""
        return int(self._counts.sum())

    def iou(self):
        """Per-class IoU ``TP / (TP + FP + FN)``; NaN where the union is empty.

        Example:

        >>> cm = ConfusionMatrix(3); cm.update([0, 1], [0, 0])
        >>> cm.iou().round(2).tolist()
        [0.5, 0.0, nan]
        """
        tp = self._tp
        union = self._gt_pixels + self._pred_pixels - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    def class_accuracy(self):
        """Per-class recall ``TP / (TP + FN)``; NaN for classes absent from y_true."""
        gt = self._gt_pixels
        return np.where(gt > 0, self._tp / np.maximum(gt, 1), np.nan)

    @property
    def mean_iou(self):
        """Mean IoU over classes with a non-empty union (NaN if there are none)."""
        iou = self.iou()
        valid = ~np.isnan(iou)
        return float(iou[valid].mean()) if valid.any() else float("nan")

    @property
    def pixel_accuracy(self):
        """Correct pixels / evaluated pixels (MMSeg's aAcc)."""
        total = self.evaluated_pixels
        return float(self._tp.sum() / total) if total else float("nan")

    @property
    def mean_class_accuracy(self):
        """Mean per-class accuracy over classes present in y_true (MMSeg's mAcc)."""
        acc = self.class_accuracy()
        valid = ~np.isnan(acc)
        return float(acc[valid].mean()) if valid.any() else float("nan")

    @property
    def frequency_weighted_iou(self):
        """Sum of per-class IoU weighted by ground-truth pixel frequency."""
        total = self.evaluated_pixels
        if not total:
            return float("nan")
        iou = np.nan_to_num(self.iou(), nan=0.0)
        return float((self._gt_pixels / total * iou).sum())

    @property
    def warnings(self):
        """Human-readable warnings about invalid labels (empty list if none)."""
        out = []
        if self.out_of_range_true:
            out.append(
                f"{self.out_of_range_true} ground-truth pixel(s) had labels outside "
                f"[0, {self.num_classes}) other than ignore_label="
                f"{self.ignore_label}; they were excluded from every score. "
                "Check the label files (colour PNGs read as RGB? wrong "
                "num_classes?)."
            )
        if self.out_of_range_pred:
            out.append(
                f"{self.out_of_range_pred} prediction(s) were outside "
                f"[0, {self.num_classes}) at pixels with a valid ground truth; "
                "they were counted as misses."
            )
        return out

    def result(self, include_matrix=False):
        """All figures as a plain, JSON-serialisable dict.

        NaN (undefined, e.g. IoU of a class that appears nowhere) becomes None.

        Args:
            include_matrix: Also include the confusion matrix as nested lists.

        Returns:
            A dict with ``mean_iou``, ``pixel_accuracy``,
            ``mean_class_accuracy``, ``frequency_weighted_iou``, pixel counts,
            ``out_of_range_true``, ``out_of_range_pred``, ``warnings`` and
            ``per_class`` (a list of dicts with ``id``, ``name``, ``iou``,
            ``accuracy``, ``gt_pixels``, ``pred_pixels``, ``true_positives``).

        Example:

        >>> import json
        >>> cm = ConfusionMatrix(2); cm.update([0, 1], [0, 1])
        >>> json.loads(json.dumps(cm.result()))["mean_iou"]
        1.0
        """
        iou = self.iou()
        acc = self.class_accuracy()
        tp, gt, pred = self._tp, self._gt_pixels, self._pred_pixels
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        per_class = [
            {
                "id": i,
                "name": names[i],
                "iou": _nan_to_none(iou[i]),
                "accuracy": _nan_to_none(acc[i]),
                "gt_pixels": int(gt[i]),
                "pred_pixels": int(pred[i]),
                "true_positives": int(tp[i]),
            }
            for i in range(self.num_classes)
        ]
        out = {
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "mean_iou": _nan_to_none(self.mean_iou),
            "pixel_accuracy": _nan_to_none(self.pixel_accuracy),
            "mean_class_accuracy": _nan_to_none(self.mean_class_accuracy),
            "frequency_weighted_iou": _nan_to_none(self.frequency_weighted_iou),
            "classes_in_mean": int((~np.isnan(iou)).sum()),
            "evaluated_pixels": self.evaluated_pixels,
            "ignored_pixels": int(self.ignored_pixels),
            "out_of_range_true": int(self.out_of_range_true),
            "out_of_range_pred": self.out_of_range_pred,
            "warnings": self.warnings,
            "per_class": per_class,
        }
        if include_matrix:
            out["confusion_matrix"] = self.matrix.tolist()
        return out

    def format_table(self):
        """A per-class text table (IoU and accuracy in percent) with a summary.

        Example:

        >>> cm = ConfusionMatrix(2, class_names=["background", "cat"])
        >>> cm.update([0, 1], [0, 1])
        >>> print(cm.format_table().splitlines()[0])
        class               IoU     Acc    GT pixels
        """

        def pct(v):
            return "    -" if v is None else f"{100 * v:6.2f}"

        res = self.result()
        width = max([10] + [len(c["name"]) for c in res["per_class"]]) + 2
        width = max(width, 17)
        lines = [f"{'class':<{width}}{'IoU':>6}  {'Acc':>6}  {'GT pixels':>11}"]
        lines.append("-" * len(lines[0]))
        for c in res["per_class"]:
            lines.append(
                f"{c['name']:<{width}}{pct(c['iou']):>6}  {pct(c['accuracy']):>6}"
                f"  {c['gt_pixels']:>11d}"
            )
        lines.append("-" * len(lines[0]))
        lines.append(
            f"mIoU {pct(res['mean_iou']).strip()}  aAcc "
            f"{pct(res['pixel_accuracy']).strip()}  mAcc "
            f"{pct(res['mean_class_accuracy']).strip()}  fwIoU "
            f"{pct(res['frequency_weighted_iou']).strip()}  "
            f"(mean over {res['classes_in_mean']} of {self.num_classes} classes)"
        )
        lines.append(
            f"pixels: {res['evaluated_pixels']} evaluated, "
            f"{res['ignored_pixels']} ignored ({self.ignore_label}), "
            f"{res['out_of_range_true']} invalid ground truth, "
            f"{res['out_of_range_pred']} invalid predictions"
        )
        for w in res["warnings"]:
            lines.append(f"WARNING: {w}")
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, "
            f"ignore_label={self.ignore_label}, "
            f"evaluated_pixels={self.evaluated_pixels}, "
            f"mean_iou={self.mean_iou:.4f})"
        )

    def warn_if_invalid(self):
        """Emits the :attr:`warnings` as Python ``UserWarning`` s, if any."""
        for w in self.warnings:
            _warnings.warn(w, UserWarning, stacklevel=2)


@keras.saving.register_keras_serializable(package="keras_deconv")
class StreamingMeanIoU(keras.metrics.Metric):
    """Dataset-level mean IoU for ``model.fit`` / ``evaluate`` (VOC convention).

    Accumulates the same confusion matrix as :class:`ConfusionMatrix`
    (ground truth ``ignore_label`` skipped, invalid ground truth counted and
    excluded, invalid predictions counted as misses) in integer variables, so
    it works in graph mode and under ``tf.distribute`` (sum aggregation).
    ``result()`` is the mean IoU over classes with a non-empty union;
    :meth:`to_confusion_matrix` gives the full report.

    Args:
        num_classes: Number of classes.
        ignore_label: Ground-truth value to skip, or None.
        sparse_y_pred: True if ``y_pred`` holds class ids, False if it holds
            scores/logits with a trailing class axis (argmax is taken), None
            (default) to decide from the shapes: a trailing axis of size
            ``num_classes`` that ``y_true`` lacks (or has as size 1) means
            scores.
        name: Metric name.
        dtype: Result dtype.

    Example:

    >>> m = StreamingMeanIoU(num_classes=2)
    >>> m.update_state(np.array([[0, 1, 255]]), np.array([[[2., 1.], [0., 3.], [5., 0.]]]))
    >>> float(m.result())
    1.0
    """

    def __init__(self, num_classes, ignore_label=255, sparse_y_pred=None,
                 name="mean_iou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.sparse_y_pred = sparse_y_pred
        n = self.num_classes
        # Column n counts invalid predictions, as in ConfusionMatrix.
        self.total_cm = self.add_variable(
            shape=(n, n + 1), initializer="zeros", dtype="int64",
            aggregation="sum", name="total_cm",
        )
        self.ignored_pixels = self.add_variable(
            shape=(), initializer="zeros", dtype="int64", aggregation="sum",
            name="ignored_pixels",
        )
        self.out_of_range_true = self.add_variable(
            shape=(), initializer="zeros", dtype="int64", aggregation="sum",
            name="out_of_range_true",
        )

    def _labels_from_pred(self, y_true, y_pred):
        ops = keras.ops
        n = self.num_classes
        true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
        scores = self.sparse_y_pred is False
        if self.sparse_y_pred is None:
            scores = pred_rank >= 1 and y_pred.shape[-1] == n and (
                pred_rank == true_rank + 1
                or (pred_rank == true_rank and y_true.shape[-1] == 1 and n > 1)
            )
        if scores:
            y_pred = ops.argmax(y_pred, axis=-1)
        return y_pred

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Accumulates a batch.

        Args:
            y_true: Integer labels, e.g. ``(B, H, W)`` or ``(B, H, W, 1)``.
            y_pred: Class ids of the same shape, or scores ``(B, H, W, C)``.
            sample_weight: Optional weights broadcastable to the labels; they
                act as a mask (pixels with weight <= 0 are skipped), because
                the counts are integers.
        """
        ops = keras.ops
        n = self.num_classes
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        y_pred = self._labels_from_pred(y_true, y_pred)
        t = ops.reshape(ops.cast(y_true, "int64"), (-1,))
        p = ops.reshape(ops.cast(y_pred, "int64"), (-1,))
        keep = ops.ones_like(t, dtype="bool")
        if sample_weight is not None:
            w = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            while len(w.shape) < len(y_true.shape):
                w = ops.expand_dims(w, -1)  # per-image weights -> per pixel
            w = ops.broadcast_to(w, ops.shape(y_true))
            keep = ops.reshape(w > 0, (-1,))
        if self.ignore_label is not None:
            ignored = ops.logical_and(keep, ops.equal(t, self.ignore_label))
        else:
            ignored = ops.zeros_like(keep)
        true_ok = ops.logical_and(ops.greater_equal(t, 0), ops.less(t, n))
        bad_true = ops.logical_and(
            keep, ops.logical_and(ops.logical_not(ignored), ops.logical_not(true_ok))
        )
        self.ignored_pixels.assign_add(ops.sum(ops.cast(ignored, "int64")))
        self.out_of_range_true.assign_add(ops.sum(ops.cast(bad_true, "int64")))
        valid = ops.logical_and(keep, true_ok)
        pred_ok = ops.logical_and(ops.greater_equal(p, 0), ops.less(p, n))
        p = ops.where(pred_ok, p, n)
        # Pixels not counted go to a dump bin n * (n + 1) that is cut off.
        index = ops.where(valid, t * (n + 1) + p, n * (n + 1))
        counts = ops.bincount(
            ops.cast(index, "int32"), minlength=n * (n + 1) + 1
        )
        counts = ops.cast(counts[: n * (n + 1)], "int64")
        self.total_cm.assign_add(ops.reshape(counts, (n, n + 1)))

    def result(self):
        ops = keras.ops
        n = self.num_classes
        cm = ops.cast(self.total_cm, "float64")
        tp = ops.diagonal(cm[:, :n])
        union = ops.sum(cm, axis=1) + ops.sum(cm[:, :n], axis=0) - tp
        present = ops.greater(union, 0)
        iou = ops.where(present, tp / ops.maximum(union, 1.0), 0.0)
        count = ops.sum(ops.cast(present, "float64"))
        mean = ops.where(count > 0, ops.sum(iou) / ops.maximum(count, 1.0), 0.0)
        return ops.cast(mean, self.dtype)

    def reset_state(self):
        for v in (self.total_cm, self.ignored_pixels, self.out_of_range_true):
            v.assign(keras.ops.zeros(v.shape, dtype=v.dtype))

    def to_confusion_matrix(self, class_names=None):
        """Returns the accumulated state as a :class:`ConfusionMatrix`.

        Example:

        >>> m = StreamingMeanIoU(2); m.update_state([[0, 1]], [[0, 0]])
        >>> m.to_confusion_matrix().matrix.tolist()
        [[1, 0], [1, 0]]
        """
        cm = ConfusionMatrix(self.num_classes, self.ignore_label, class_names)
        cm._counts = np.array(keras.ops.convert_to_numpy(self.total_cm), np.int64)
        cm.ignored_pixels = int(keras.ops.convert_to_numpy(self.ignored_pixels))
        cm.out_of_range_true = int(keras.ops.convert_to_numpy(self.out_of_range_true))
        return cm

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "ignore_label": self.ignore_label,
                "sparse_y_pred": self.sparse_y_pred,
            }
        )
        return config
