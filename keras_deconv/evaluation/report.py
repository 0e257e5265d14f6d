"""What an evaluation returns (:class:`EvaluationReport`) and how its JSON is written (:func:`write_json`)."""

import dataclasses
import json
import math
import os
import sys
import time

import numpy as np

from keras_deconv._atomic import write_atomically
from keras_deconv.evaluation.segmenter import Segmenter
from keras_deconv.evaluation.sources import DataSource
from keras_deconv.metrics import ConfusionMatrix


@dataclasses.dataclass
class EvaluationReport:
    """What :func:`evaluate` / :func:`score_predictions` return.

    Attributes:
        confusion: The dataset-level :class:`ConfusionMatrix`.
        count: Images scored.
        seconds: Wall time of the loop.
        source: The :class:`DataSource`.
        segmenter: The :class:`Segmenter` (None when scoring files).
        oracle_labels: True if ground-truth image labels were given to the model.
        gallery_rows: ``(id, image, ground truth, prediction)`` tuples kept for
            :func:`example_gallery`.
        predictions_dir: The scored folder (:func:`score_predictions`).
        extra_files: Prediction files matching no image of the split.
    """

    confusion: ConfusionMatrix
    count: int
    seconds: float
    source: DataSource
    segmenter: Segmenter = None
    oracle_labels: bool = False
    gallery_rows: list = dataclasses.field(default_factory=list)
    predictions_dir: str = None
    extra_files: list = dataclasses.field(default_factory=list)

    @property
    def images_per_second(self):
        return self.count / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self):
        """All figures as a JSON-serialisable dict (model, weights, dataset, split, count, timing, metrics).

        Example:

        >>> from keras_deconv.evaluation import open_dataset
        >>> src = open_dataset("shapes", "val", limit=1)
        >>> ex = next(src.examples(with_images=False))
        >>> cm = ConfusionMatrix(13); cm.update(ex.label, ex.label)
        >>> EvaluationReport(cm, 1, 0.5, src).to_dict()["metrics"]["mean_iou"]
        1.0
        """
        from keras_deconv import __version__

        seg = self.segmenter
        ips = self.images_per_second
        out = {
            "keras_deconv_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "mode": "model" if seg is not None else "prediction files",
            "model": seg.name if seg is not None else None,
            "weights": seg.weights_label if seg is not None else None,
            "random_weights": seg.is_random if seg is not None else None,
            "model_detail": seg.describe() if seg is not None else None,
            "predictions_dir": self.predictions_dir,
            "extra_prediction_files": list(self.extra_files),
            "dataset": self.source.name,
            "split": self.source.split,
            "dataset_description": self.source.description,
            "count": self.count,
            "oracle_image_labels": self.oracle_labels,
            "image_labels_source": self.source.image_labels_source if self.oracle_labels else None,
            "timing": {"seconds": round(self.seconds, 3),
                       "images_per_second": None if math.isnan(ips) else round(ips, 3)},
            "convention": "VOC devkit: one confusion matrix over all images, ground truth 255 ignored, "
                          "IoU = TP/(TP+FP+FN), mean over classes with a non-empty union",
            "metrics": self.confusion.result(include_matrix=True),
        }
        return out


def write_json(path, data):
    """Writes JSON atomically (temporary file in the same folder, then rename).

    Args:
        path: Destination file, or ``"-"`` for stdout.
        data: JSON-serialisable object (NaN is written as null).

    Returns:
        The path.

    Example:

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> _ = write_json(p, {"a": float("nan")}); open(p).read().strip()
    '{\\n "a": null\\n}'
    """
    text = json.dumps(_clean(data), indent=1, allow_nan=False) + "\n"
    if os.fspath(path) == "-":
        sys.stdout.write(text)
        return path
    return write_atomically(path, text)


def _clean(value):
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    return value
