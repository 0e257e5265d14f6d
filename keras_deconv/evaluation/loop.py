"""The evaluation loop: a segmenter (or a folder of label PNGs) over a data source, one confusion matrix.

Progress goes to stderr (:class:`_Progress`, a tqdm bar); the result is an
:class:`~keras_deconv.evaluation.report.EvaluationReport`.
"""

import math
import os
import time

import numpy as np

from keras_deconv import viz
from keras_deconv.evaluation.loading import card_builders, card_num_labels, label_names
from keras_deconv.evaluation.report import EvaluationReport
from keras_deconv.evaluation.sources import DataError
from keras_deconv.metrics import ConfusionMatrix
from keras_deconv.progress import progress_bar


class _Progress:
    """Progress on stderr through :func:`keras_deconv.progress.progress_bar`: images/s and the running mIoU."""

    def __init__(self, total, stream=None, label="evaluating", enabled=True):
        self.bar = progress_bar(total=total, desc=label, unit="img", enabled=bool(enabled), stream=stream,
                                leave=True)
        self.done = 0

    def update(self, done, miou=None):
        if miou is not None and not math.isnan(miou):
            self.bar.set_postfix_str(f"mIoU {100 * miou:.2f}%", refresh=False)
        self.bar.update(done - self.done)
        self.done = done
        if done >= (self.bar.total or 0):
            self.bar.close()


def _batches(iterable, size):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_labels(model_name, num_labels, model_names, source):
    check_names = getattr(source, "check_label_names", None)
    if check_names is not None:  # a folder dataset: its class names are the label space
        return check_names(model_name, num_labels, model_names)
    n = source.num_classes
    names = list(source.class_names)
    if num_labels == n:
        return
    if num_labels > n and [s.lower() for s in model_names[:n]] == [s.lower() for s in names]:
        return
    hint = ""
    if source.name.startswith("shapes"):
        hint = (f" Use --num-classes {n} with --weights none (random initialisation, e.g. with "
                f"--config width=0.0625 --config fc_units=32) or --weights PATH of a model trained on shapes.")
    raise ValueError(
        f"{model_name} outputs {num_labels} classes but {source.name} has {n} "
        f"({', '.join(names[:4])}, ...); the label spaces do not match.{hint}"
    )


def check_compatible(segmenter, source):
    """Raises ValueError unless the segmenter's labels match the dataset's classes.

    A segmenter with more labels is accepted when its first labels carry the
    dataset's names (TransferNet's 80-class query space on VOC: ids 1-20 are
    the VOC classes).

    Args:
        segmenter: A :class:`Segmenter`.
        source: A :class:`DataSource`.
    """
    _check_labels(segmenter.name, segmenter.num_labels, segmenter.class_names, source)


def check_card_compatible(card, num_classes, source):
    """:func:`check_compatible` from a model card alone (nothing is built).

    Args:
        card: A model card (``keras_deconv.zoo.info(name)``).
        num_classes: The labels override, or None for the card's.
        source: A :class:`~keras_deconv.evaluation.sources.DataSource`.

    Example:

    >>> from keras_deconv.evaluation import open_dataset
    >>> card = {"name": "net", "architecture": {"builder": "DeconvNet", "num_classes": 21},
    ...         "category_names": ["background"] + [f"c{i}" for i in range(20)]}
    >>> src = open_dataset("shapes", "val", limit=1)
    >>> check_card_compatible(card, 13, src)  # fine
    >>> try:
    ...     check_card_compatible(card, None, src)
    ... except ValueError as error:
    ...     print(str(error)[:36])
    net outputs 21 classes but shapes ha
    """
    family = card_builders(card)[0]
    n = card_num_labels(card, num_classes)
    _check_labels(card["name"], n, label_names(card, family, n, source.class_names), source)


def evaluate(segmenter, source, batch_size=1, progress=False, save_examples=0, save_predictions=None,
             oracle_labels=None, on_prediction=None):
    """Runs a segmenter over a data source and accumulates one confusion matrix.

    Args:
        segmenter: A :class:`Segmenter`.
        source: A :class:`DataSource` (:func:`open_dataset`).
        batch_size: Images per pipeline call.
        progress: True for a progress line on stderr (images/s, running mIoU),
            or a writable stream.
        save_examples: Keep the first N ``(id, image, ground truth,
            prediction)`` rows in ``report.gallery_rows``.
        save_predictions: Folder to write each prediction as a VOC-style
            palette PNG ``<id>.png`` (scorable later by
            :func:`score_predictions`).
        oracle_labels: Pass the ground-truth image labels to the model. None:
            only if the model needs them (TransferNet). Always reported.
        on_prediction: Optional ``callable(example, prediction)``.

    Returns:
        An :class:`EvaluationReport`.

    Example:

    >>> from keras_deconv.datasets import shapes
    >>> from keras_deconv.evaluation import Segmenter, open_dataset
    >>> from keras_deconv.models import DeconvNet
    >>> from keras_deconv.pipelines import DeconvNetPipeline
    >>> model = DeconvNet(num_classes=13, width=1 / 16, fc_units=16, fc_kernel_size=2)
    >>> seg = Segmenter.from_pipeline(DeconvNetPipeline(model, min_size=64), shapes.CLASS_NAMES)
    >>> evaluate(seg, open_dataset("shapes", "test", limit=1)).count
    1
    """
    check_compatible(segmenter, source)
    if oracle_labels is None:
        oracle_labels = segmenter.needs_image_labels
    if segmenter.needs_image_labels and not oracle_labels:
        raise ValueError(f"{segmenter.name} needs image-level labels; evaluate with oracle_labels=True.")
    cm = ConfusionMatrix(source.num_classes, ignore_label=255, class_names=source.class_names)
    stream = progress if hasattr(progress, "write") else None
    bar = _Progress(len(source), stream=stream, enabled=bool(progress))
    rows, done = [], 0
    start = time.perf_counter()
    for batch in _batches(source.examples(with_images=True), max(1, int(batch_size))):
        labels = [ex.image_labels for ex in batch] if oracle_labels else None
        predictions = segmenter.predict([ex.image for ex in batch], image_labels=labels)
        for ex, pred in zip(batch, predictions):
            if pred.labels.shape != ex.label.shape:
                raise ValueError(f"{ex.id}: prediction {pred.labels.shape} and ground truth {ex.label.shape} sizes differ.")
            cm.update(ex.label, pred.labels)
            if save_predictions:
                viz.save_label_png(os.path.join(save_predictions, f"{ex.id}.png"), pred.labels)
            if len(rows) < int(save_examples or 0):
                rows.append((ex.id, ex.image, ex.label, pred.labels))
            if on_prediction is not None:
                on_prediction(ex, pred)
            done += 1
        bar.update(done, cm.mean_iou if cm.evaluated_pixels else None)
    seconds = time.perf_counter() - start
    return EvaluationReport(cm, done, seconds, source, segmenter=segmenter, oracle_labels=bool(oracle_labels),
                            gallery_rows=rows)


def score_predictions(predictions_dir, source, progress=False, save_examples=0):
    """Scores a folder of predicted label PNGs (``<image id>.png``) against a split.

    The PNGs hold class indices: palette ("P") PNGs like VOC
    ``SegmentationClass`` (what ``keras-deconv predict`` and
    ``evaluate --save-predictions`` write) or 8-bit grayscale; colour PNGs are
    refused. Every selected image must have a file of the same size;
    files matching no image of the split are listed in ``extra_files``.

    Args:
        predictions_dir: The folder.
        source: A :class:`DataSource`.
        progress: As in :func:`evaluate`.
        save_examples: Keep the first N rows for :func:`example_gallery`.

    Returns:
        An :class:`EvaluationReport` with ``segmenter=None``.

    Raises:
        DataError: Missing folder or files, unreadable or mis-sized PNGs.
    """
    predictions_dir = os.fspath(predictions_dir)
    if not os.path.isdir(predictions_dir):
        raise DataError(f"Predictions directory not found: {predictions_dir}")
    present = {name[:-4] for name in os.listdir(predictions_dir) if name.lower().endswith(".png")}
    missing = [i for i in source.ids if i not in present]
    if missing:
        shown = ", ".join(f"{i}.png" for i in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(f"{len(missing)} of {len(source.ids)} prediction file(s) missing in {predictions_dir}: {shown}")
    extra = sorted(f"{i}.png" for i in present - set(source.all_ids))
    cm = ConfusionMatrix(source.num_classes, ignore_label=255, class_names=source.class_names)
    stream = progress if hasattr(progress, "write") else None
    bar = _Progress(len(source), stream=stream, label="scoring", enabled=bool(progress))
    rows, done = [], 0
    want_images = bool(save_examples)
    start = time.perf_counter()
    for ex in source.examples(with_images=want_images):
        path = os.path.join(predictions_dir, f"{ex.id}.png")
        try:
            pred = viz.read_label_png(path)
        except Exception as error:  # noqa: BLE001 - one line naming the file
            raise DataError(f"{path}: cannot read as a label PNG ({' '.join(str(error).split())})") from None
        if pred.shape != ex.label.shape:
            raise DataError(f"{path}: size {pred.shape[1]}x{pred.shape[0]} differs from the ground truth "
                            f"{ex.label.shape[1]}x{ex.label.shape[0]}.")
        cm.update(ex.label, pred)
        if len(rows) < int(save_examples or 0):
            rows.append((ex.id, ex.image, ex.label, np.clip(pred, 0, 255).astype(np.uint8)))
        done += 1
        bar.update(done, cm.mean_iou if cm.evaluated_pixels else None)
    seconds = time.perf_counter() - start
    return EvaluationReport(cm, done, seconds, source, gallery_rows=rows, predictions_dir=os.path.abspath(predictions_dir),
                            extra_files=extra)
