"""Scoring pipelines on the ``shapes`` splits (used by the model cards, the CI check and bench/claims.py).

Every number is one :class:`~keras_deconv.metrics.ConfusionMatrix` over the
selected images (VOC convention: void 255 ignored, mean over classes present
in the ground truth or the predictions), the images going through the
pipeline exactly as a user's would. Scoring a zoo entry by name is
:func:`keras_deconv.zoo.scoring.score_zoo_model` (the zoo resolves names).
"""

import numpy as np

from keras_deconv.datasets import shapes
from keras_deconv.metrics import ConfusionMatrix

#: Images of the fixed test subset that CI re-evaluates (the first N of the test split).
CI_SUBSET = 64


def class_ids(example):
    """1-based class ids present in a shapes example (its image-level labels)."""
    return (np.flatnonzero(example["image_labels"]) + 1).tolist()


def predict_labels(pipeline, image, ids=None):
    """Label map of one image; ``ids`` (oracle image-level labels) for class-conditional pipelines."""
    if ids is not None:
        return np.asarray(pipeline([image], labels=[ids])[0].labels)
    return np.asarray(pipeline([image])[0].labels)


def score(pipeline, split="test", *, count=None, indices=None, image_size=64, oracle_labels=False, on_example=None,
          config="standard"):
    """Confusion matrix of ``pipeline`` over shapes images.

    Args:
        pipeline: a zoo pipeline (``zoo.load(name)``) or any callable
            accepted by :func:`predict_labels`.
        split: shapes split.
        count: only the first ``count`` images (of ``indices`` if given).
        indices: explicit image indices (e.g. ``shapes.domain_indices("test", "target")``).
        image_size: shapes image side.
        oracle_labels: pass the ground-truth image-level labels (TransferNet,
            the CAM baseline: their class ids come from outside).
        on_example: optional ``callable(example, prediction)``.
        config: shapes generator config, ``"standard"`` or ``"hard"``.

    Returns:
        A :class:`~keras_deconv.metrics.ConfusionMatrix` over the 13 labels.
    """
    if indices is None:
        indices = np.arange(shapes.CONFIG_SPLITS[config][split])
    indices = np.asarray(indices)[: count if count is not None else None]
    matrix = ConfusionMatrix(shapes.NUM_CLASSES, ignore_label=255, class_names=shapes.CLASS_NAMES)
    for index in indices:
        example = shapes.generate_example(split, int(index), image_size, config=config)
        prediction = predict_labels(pipeline, example["image"], class_ids(example) if oracle_labels else None)
        matrix.update(example["label"], prediction)
        if on_example is not None:
            on_example(example, prediction)
    return matrix
