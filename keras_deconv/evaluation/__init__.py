"""Evaluation and prediction engine behind ``keras-deconv evaluate`` and ``predict``.

Four pieces, usable from Python as well as from the CLI:

* A :class:`Segmenter` gives one interface over every pipeline:
  ``segmenter.predict(images, image_labels=None)`` returns one
  :class:`Prediction` (uint8 label map at the image's size, image scores,
  per-pixel probabilities) per image, whatever the model family. Build one
  with :meth:`Segmenter.from_pipeline`, :func:`load_exported_segmenter` (a
  TFLite export run by LiteRT) or, for a zoo name with any weights and
  builder overrides, :func:`keras_deconv.zoo.load_segmenter`.
* :func:`open_dataset` gives a :class:`DataSource` over the built-in
  ``shapes`` dataset or PASCAL VOC 2012 (read from the VOC folders, the same
  files as the ``voc2012_seg`` TFDS builder uses).
* :func:`evaluate` and :func:`score_predictions` accumulate **one**
  dataset-level :class:`~keras_deconv.metrics.ConfusionMatrix` (VOC devkit
  convention: ground truth 255 skipped, out-of-range labels counted and
  reported) and return an :class:`EvaluationReport`.
* :func:`example_gallery` draws image | ground truth | prediction rows.

Modules: :mod:`~keras_deconv.evaluation.segmenter`,
:mod:`~keras_deconv.evaluation.loading` (segmenters from exports and model
cards), :mod:`~keras_deconv.evaluation.sources`,
:mod:`~keras_deconv.evaluation.loop`, :mod:`~keras_deconv.evaluation.report`,
:mod:`~keras_deconv.evaluation.gallery`, :mod:`~keras_deconv.evaluation.config`
(``KEY=VALUE`` options). Every public name is available from this package.

Class counts: ``num_classes`` here always means the number of **labels the
segmenter outputs, background included** (21 for VOC, 13 for ``shapes``).
It is translated to each builder's own argument: DeconvNet and FCN-8s take it
as is; DecoupledNet (classifier over object classes) and TransferNet (query
size) take ``num_classes - 1``.

Class-conditional models: DecoupledNet classifies the image itself.
TransferNet needs the image-level labels from outside (the authors' separate
classifier was never released); :func:`evaluate` then passes the dataset's
ground-truth image labels, which makes it an **oracle-label** evaluation (an
upper bound on what the model reaches with a real classifier), and the report
says so.

Example (a randomly initialised small DeconvNet on ``shapes``; no download):

>>> from keras_deconv import evaluation
>>> from keras_deconv.models import DeconvNet
>>> from keras_deconv.pipelines import DeconvNetPipeline
>>> data = evaluation.open_dataset("shapes", "val", limit=2)
>>> model = DeconvNet(num_classes=data.num_classes, width=1 / 16, fc_units=32, fc_kernel_size=2)
>>> seg = evaluation.Segmenter.from_pipeline(DeconvNetPipeline(model, min_size=64), data.class_names)
>>> report = evaluation.evaluate(seg, data)
>>> report.count, 0.0 <= report.confusion.mean_iou <= 1.0
(2, True)
"""

from keras_deconv.evaluation.config import parse_config
from keras_deconv.evaluation.gallery import example_gallery
from keras_deconv.evaluation.loading import (
    card_label_names,
    card_num_labels,
    card_pipeline,
    crf_available,
    is_exported_model,
    label_names,
    load_exported_segmenter,
)
from keras_deconv.evaluation.loop import check_card_compatible, check_compatible, evaluate, score_predictions
from keras_deconv.evaluation.report import EvaluationReport, write_json
from keras_deconv.evaluation.segmenter import RANDOM_WEIGHTS_LABEL, Prediction, Segmenter
from keras_deconv.evaluation.sources import DataError, DataSource, Example, open_dataset

__all__ = [
    "RANDOM_WEIGHTS_LABEL",
    "DataError",
    "DataSource",
    "EvaluationReport",
    "Example",
    "Prediction",
    "Segmenter",
    "card_label_names",
    "card_num_labels",
    "card_pipeline",
    "check_card_compatible",
    "check_compatible",
    "crf_available",
    "evaluate",
    "example_gallery",
    "is_exported_model",
    "label_names",
    "load_exported_segmenter",
    "open_dataset",
    "parse_config",
    "score_predictions",
    "write_json",
]
