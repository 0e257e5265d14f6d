"""Validation mIoU after every epoch of a stage, and the run's curve (``curve.png``).

:class:`ValidationMIoU` adds ``val_miou`` (percent) to the epoch logs, so it
lands in the stage's ``log.csv`` beside the training loss. The recipes say
which stages have a pixel output worth scoring and on what
(:meth:`~keras_deconv.training.recipes.Recipe.validation`): whole val images
for the segmentation networks (every class, background included),
figure-ground pairs for DecoupledNet's and TransferNet's class-conditional
decoders (2 classes: the queried class against the rest; TransferNet on the
target-domain val images, whose masks it never trains on).

:func:`save_curve` draws the loss and the validation mIoU of every stage
against wall-clock time into one PNG (Pillow: no plotting library is a
dependency), the file ``keras-deconv train`` writes as ``RUN/curve.png``;
:func:`draw_curve` draws rows from elsewhere (``bench/shapes_baseline.py``).

Example:

>>> import numpy as np, tensorflow as tf, keras
>>> from keras_deconv.training.validation import ValidationMIoU
>>> images = np.zeros((4, 8, 8, 3), "float32"); labels = np.zeros((4, 8, 8), "int32")
>>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1)])
>>> callback = ValidationMIoU(tf.data.Dataset.from_tensor_slices((images, labels)).batch(2))
>>> callback.set_model(model)
>>> logs = {}; callback.on_epoch_end(0, logs); 0.0 <= logs["val_miou"] <= 100.0
True
"""

import csv
import math
import os

import keras
import numpy as np

from keras_deconv.metrics import ConfusionMatrix


class ValidationMIoU(keras.callbacks.Callback):
    """Scores the model being fitted on a finite dataset after each epoch: ``logs["val_miou"]``.

    Args:
        dataset: finite ``(inputs, label_maps)`` batches (no augmentation).
        output: the output to score when the model returns a dict
            (``"seg-score"``), else None; its labels are
            ``argmax`` over the last axis.
        ignore_label: label value skipped (void).
    """

    def __init__(self, dataset, output=None, ignore_label=255):
        super().__init__()
        self.dataset, self.output, self.ignore_label = dataset, output, ignore_label

    def score(self):
        confusion = None
        for inputs, labels in self.dataset:
            scores = self.model(inputs, training=False)
            if isinstance(labels, dict):
                labels = labels[self.output]
            if isinstance(scores, dict):
                scores = scores[self.output]
            scores = keras.ops.convert_to_numpy(scores)
            if confusion is None:
                confusion = ConfusionMatrix(scores.shape[-1], ignore_label=self.ignore_label)
            confusion.update(np.asarray(labels), scores.argmax(-1))
        return 100.0 * confusion.mean_iou

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_miou"] = self.score()


def read_stage_logs(run_dir, stage_names):
    """``[(stage, rows)]``: each stage's ``log.csv`` rows as dicts of floats (NaN where absent)."""
    out = []
    for name in stage_names:
        path = os.path.join(run_dir, name, "log.csv")
        if not os.path.exists(path):
            continue
        with open(path, newline="") as f:
            rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
        out.append((name, rows))
    return out


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def save_curve(run_dir, stage_names, path, title=None):
    """Draws every stage's training loss (red) and ``val_miou`` (blue) against time into ``path`` (PNG).

    Reads each stage's ``log.csv`` (:func:`read_stage_logs`) and draws it with
    :func:`draw_curve`. Returns the path, or None when no stage has logged an
    epoch.
    """
    return draw_curve(read_stage_logs(run_dir, stage_names), path,
                      title or os.path.basename(os.path.abspath(run_dir)))


def draw_curve(stages, path, title, levels=()):
    """Draws ``[(stage, rows)]`` (rows: dicts with ``seconds``, ``loss``, ``val_miou``) into ``path`` (PNG).

    Time runs on across stages (each stage's ``seconds`` added to the stages
    before it); grey lines mark where a stage starts. Stages train different
    losses, so each stage's loss is drawn relative to its own largest value
    (the top of the chart). ``levels``: ``[(label, mIoU, colour)]`` reference
    lines across the chart (e.g. the all-background floor). Returns the path,
    or None when no stage has a row.
    """
    from PIL import Image, ImageDraw

    stages = [(name, rows) for name, rows in stages if rows]
    if not stages:
        return None
    width, height, margin = 720, 420, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    offset, placed = 0.0, []
    for name, rows in stages:
        points = [(offset + r["seconds"], r["loss"], r.get("val_miou", math.nan)) for r in rows]
        placed.append((name, offset, points))
        offset = points[-1][0]
    t_max = offset or 1.0

    def xy(t, value, top):
        return (margin + (width - 2 * margin) * t / t_max, height - margin - (height - 2 * margin) * value / top)

    draw.rectangle([margin, margin, width - margin, height - margin], outline="black")
    for value in range(0, 101, 20):
        y = xy(0, value, 100)[1]
        draw.line([margin - 4, y, margin, y], fill="black")
        draw.text((12, y - 6), f"{value}", fill="black")
    for number, (label, level, colour) in enumerate(levels):
        y = xy(0, level, 100)[1]
        draw.line([margin, y, width - margin, y], fill=colour)
        draw.text((width - margin - 150, y - 12 - 12 * number), f"{label} {level:.1f}", fill=colour)
    for number, (name, start, points) in enumerate(placed):
        x = xy(start, 0, 1)[0]
        draw.line([x, margin, x, height - margin], fill="gray")
        draw.text((x + 3, height - margin + 4 + 12 * (number % 3)), name, fill="gray")  # short stages: staggered
        loss_max = max((p[1] for p in points if math.isfinite(p[1])), default=1.0) or 1.0
        for index, top, colour in ((1, loss_max, "red"), (2, 100.0, "blue")):
            line = [xy(p[0], p[index], top) for p in points if math.isfinite(p[index])]
            if len(line) > 1:
                draw.line(line, fill=colour, width=2)
            for x_dot, y_dot in line:
                draw.ellipse([x_dot - 2, y_dot - 2, x_dot + 2, y_dot + 2], fill=colour)
    draw.text((margin, 12), title, fill="black")
    draw.text((margin, 28), f"val mIoU (blue, %, left axis) and training loss (red, each stage relative to its "
                            f"largest value) over {t_max / 60:.1f} min", fill="black")
    image.save(path)
    return path
