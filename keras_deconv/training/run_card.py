"""A run directory as a model: ``card.json`` and ``classes.txt`` next to ``export/``.

After the export of a DeconvNet, FCN-8s, (one-budget) DecoupledNet or TransferNet run, :func:`write_card` writes a
card in the zoo's format (architecture, pipeline, class names, the weights
file, training data and steps) plus, for folder data with a ``val`` split,
the metrics of the exported model on it. ``keras_deconv.zoo.load(RUN_DIR)``
reads it. The library never imports the zoo: the card is plain JSON.
"""

import os
import time

import numpy as np

from keras_deconv.metrics import ConfusionMatrix
from keras_deconv.training.callbacks import write_json

CARD_FILE = "card.json"
CLASSES_FILE = "classes.txt"

#: recipe -> (builder in keras_deconv.models, pipeline class in keras_deconv.pipelines)
ARCHITECTURES = {"deconvnet": ("DeconvNet", "DeconvNetPipeline"), "fcn8s": ("FCN8s", "FCN8sPipeline"),
                 "decouplednet": ("DecoupledNet", "DecoupledNetPipeline"),
                 "transfernet": ("TransferNet", "TransferNetPipeline")}


def builder_config(recipe):
    """The builder arguments of the exported model: DecoupledNet counts object classes and has a fixed input."""
    if recipe.name in ("decouplednet", "transfernet"):
        return dict(recipe.config, num_classes=recipe.num_classes - 1, input_shape=list(recipe.input_shape))
    return dict(recipe.config, num_classes=recipe.num_classes)


def pipeline_spec(recipe):
    """The inference pipeline of a run: whole images (padded to at least the training size)."""
    _, pipeline = ARCHITECTURES[recipe.name]
    if pipeline == "DeconvNetPipeline":
        return {"class": pipeline, "config": {"mode": "whole", "min_size": recipe.image_size}}
    if pipeline in ("DecoupledNetPipeline", "TransferNetPipeline"):
        return {"class": pipeline, "config": {}}
    return {"class": pipeline, "config": {"pad_to": None}}


def make_pipeline(recipe, model):
    """The pipeline ``zoo.load(RUN_DIR)`` returns: ``model``'s weights in a model of any input size."""
    from keras_deconv import models, pipelines

    builder, _ = ARCHITECTURES[recipe.name]
    inference = getattr(models, builder)(**builder_config(recipe))
    inference.set_weights(model.get_weights())
    spec = pipeline_spec(recipe)
    return getattr(pipelines, spec["class"])(inference, **spec["config"])


def evaluate_split(recipe, model, split):
    """Confusion matrix of the exported ``model`` on a split's file pairs (whole images, native size)."""
    from keras_deconv.datasets import folder

    pipeline = make_pipeline(recipe, model)
    matrix = ConfusionMatrix(recipe.num_classes, ignore_label=folder.IGNORE_LABEL,
                             class_names=list(recipe.class_names))
    for _, image, label in split.examples():
        if recipe.name == "transfernet":  # it segments the classes it is told: those of the ground truth (oracle)
            present = [[int(c) for c in np.unique(label) if 0 < c < recipe.num_classes]]
            matrix.update(label, pipeline.predict([image], labels=present)[0])
        else:
            matrix.update(label, pipeline.predict([image])[0])
    return matrix


def val_metrics(recipe, model):
    """Metrics on the dataset's held-out split (folder ``val``, VOC ``val.txt``), or ``[]`` without one."""
    split = getattr(recipe, "val_split", None)
    if split is None:
        return []
    start = time.perf_counter()
    matrix = evaluate_split(recipe, model, split)
    iou = matrix.iou()
    return [{
        "dataset": recipe.data_dir, "split": "val", "images": len(split), "metric": "mIoU",
        "value": round(100 * float(matrix.mean_iou), 2), "pixel_accuracy": round(100 * float(matrix.pixel_accuracy), 2),
        "class_iou": {name: (None if v != v else round(100 * float(v), 2))
                      for name, v in zip(recipe.class_names, iou)},
        "setting": "whole images, native size, no CRF" + (", oracle image-level labels (the classes in each mask)"
                                                          if recipe.name == "transfernet" else ""),
        "seconds": round(time.perf_counter() - start, 1),
    }]


def write_card(output, recipe, run, models):
    """Writes ``card.json`` and ``classes.txt`` into the run directory ``output``; returns the card."""
    if recipe.name not in ARCHITECTURES:
        return None
    if len(models) == 1:
        (tag, model), = models.items()
    elif recipe.export_tag in models:  # TransferNet: the network, next to its CAM baseline
        tag, model = recipe.export_tag, models[recipe.export_tag]
    else:
        return None
    builder, _ = ARCHITECTURES[recipe.name]
    data = run.get("data") or {"kind": "shapes"}
    card = {
        "name": os.path.basename(os.path.abspath(output)),
        "title": f"{builder} trained by keras-deconv train ({data['kind']} data)",
        "architecture": {"builder": builder, "config": builder_config(recipe),
                         "input_size": [recipe.image_size, recipe.image_size],
                         "num_classes": builder_config(recipe)["num_classes"],
                         "parameter_count": int(model.count_params())},
        "pipeline": pipeline_spec(recipe),
        "category_names": list(recipe.class_names),
        "default_weights": tag,
        "weights": {tag: {
            "file": f"export/{tag}.weights.h5",
            "origin": "keras-deconv train",
            "training": {"command": run.get("command"), "data": data, "recipe": recipe.name,
                         "steps": {name: stage["steps"] for name, stage in run.get("stages", {}).items()},
                         "hparams": recipe.hp, "init": run.get("init"), "seed": recipe.seed},
            "metrics": val_metrics(recipe, model),
        }},
    }
    write_json(os.path.join(output, CARD_FILE), card)
    with open(os.path.join(output, CLASSES_FILE), "w", encoding="utf-8") as f:
        f.write("\n".join(recipe.class_names) + "\n")
    return card
