"""No-learning reference scores on ``shapes``: the all-background floor and a colour-only classifier.

A segmenter has learned shapes only if it beats both by a wide margin:

* :func:`background_only_miou`: every pixel labelled background.
* :func:`colour_only_miou`: each pixel labelled from its colour alone (the
  majority class of its RGB bin on training images). Object classes are
  drawn independently of colours, so this should stay close to the floor; the
  ``shapes`` tests keep it at or below 25 mIoU.

mIoU here follows :class:`keras_deconv.metrics.ConfusionMatrix` (void 255
ignored; mean over classes present in the ground truth or the predictions),
in NumPy so that this module stays light.

Example:

>>> from keras_deconv.datasets import shapes, shapes_baselines
>>> train, test = shapes.as_numpy("train", count=40), shapes.as_numpy("test", count=20)
>>> floor = shapes_baselines.background_only_miou(test["label"])
>>> colour = shapes_baselines.colour_only_miou(train["image"], train["label"], test["image"], test["label"])
>>> 0 < floor < 10, colour < 25
(True, True)
"""

import numpy as np

from keras_deconv.datasets._shapes_geometry import NUM_CLASSES, VOID_LABEL

__all__ = ["mean_iou", "background_only_miou", "colour_only_predictions", "colour_only_miou"]


def mean_iou(labels, predictions, num_classes=NUM_CLASSES, ignore_label=VOID_LABEL):
    """mIoU in percent of integer label maps (void ignored; classes present in either count).

    Example:

    >>> import numpy as np
    >>> mean_iou(np.array([[0, 1], [1, 255]]), np.array([[0, 1], [0, 3]]))
    50.0
    """
    labels = np.asarray(labels).ravel().astype(np.int64)
    predictions = np.asarray(predictions).ravel().astype(np.int64)
    keep = labels != ignore_label
    confusion = np.bincount(labels[keep] * num_classes + predictions[keep],
                            minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return float(100 * np.mean(tp[present] / union[present]))


def background_only_miou(labels):
    """mIoU (%) of labelling every pixel background: the no-learning floor."""
    return mean_iou(labels, np.zeros_like(np.asarray(labels)))


def _bins(images, bins):
    q = np.asarray(images, dtype=np.int64) * bins // 256  # (..., 3) in [0, bins)
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def colour_only_predictions(train_images, train_labels, images, bins=8, num_classes=NUM_CLASSES):
    """Label maps predicted from colour alone: the majority train class of each pixel's RGB bin.

    Args:
        train_images: uint8 ``(N, H, W, 3)`` images to fit on.
        train_labels: ``(N, H, W)`` label maps (255 ignored).
        images: uint8 ``(M, H', W', 3)`` images to label.
        bins: bins per colour channel (``bins ** 3`` colour cells).
        num_classes: labels, background included.

    Returns:
        ``(M, H', W')`` int64 label maps; cells never seen in training are
        labelled background.
    """
    cells = _bins(train_images, bins).ravel()
    labels = np.asarray(train_labels).ravel().astype(np.int64)
    keep = labels != VOID_LABEL
    counts = np.bincount(cells[keep] * num_classes + labels[keep],
                         minlength=bins**3 * num_classes).reshape(bins**3, num_classes)
    majority = counts.argmax(axis=1)  # all-zero rows (unseen colours) give 0: background
    return majority[_bins(images, bins)]


def colour_only_miou(train_images, train_labels, images, labels, bins=8):
    """mIoU (%) on ``images``/``labels`` of :func:`colour_only_predictions` fitted on the train arrays."""
    return mean_iou(labels, colour_only_predictions(train_images, train_labels, images, bins))
