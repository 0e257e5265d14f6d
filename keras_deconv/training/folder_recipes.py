"""The recipes on your own data (``keras-deconv train ... --data folder --data-dir DIR``) and on VOC 2012.

The number of classes and their names come from ``DIR/classes.txt``; the
training batches stream from ``DIR/images/train`` and ``DIR/masks/train``
(:mod:`keras_deconv.training.folder_data`); ``DIR/images/val``, when
present, is scored after the export (mIoU, pixel accuracy, per-class IoU,
whole images through the inference pipeline).

What changes against the ``shapes`` recipes, and why:

* DeconvNet stage 1 trains on whole images resized to fit the training
  size (``framing="fit"``) instead of object-centred crops: folder masks
  carry classes, not instances. Stage 2 trains on windows at the images'
  native scale (``framing="native"``, scale jitter 0.8-1.25), the scale
  the whole-image inference sees.
* FCN-8s trains on native-scale crops with the same jitter (as on shapes).
* ``invariances`` (rot90, colour permutation/inversion) is off unless
  ``--hparam invariances=1``: in real images colour and orientation matter.
* The solver defaults to Adam, lr 0.003, one drop (x0.1) at 75% of each
  stage: the settings of the shipped small models (SGD from scratch sat on
  the predict-background plateau there). ``--hparam optimizer=sgd
  --hparam lr=...`` restores the papers' solver.
* The exported weights are tagged ``folder`` (``export/folder.weights.h5``;
  DecoupledNet: one file per budget, ``export/<budget>.weights.h5``).
* DecoupledNet (:class:`FolderDecoupledNetRecipe`) and TransferNet
  (:class:`FolderTransferNetRecipe`) take their image-level labels from the
  masks and skip the ``shapes`` source-domain pretraining.

Any :class:`~keras_deconv.datasets.folder.PairDataset` trains the same way:
DeconvNet and FCN-8s also take PASCAL VOC 2012
(``--data voc2012``, :func:`keras_deconv.datasets.voc_files.voc_dataset`:
``train.txt`` to train, ``val.txt`` scored, weights tagged ``voc2012``).
"""

import numpy as np

from keras_deconv.datasets import folder
from keras_deconv.training import data as train_data
from keras_deconv.training import folder_data
from keras_deconv.training.recipes import (DeconvNetRecipe, DecoupledNetRecipe, FCN8sRecipe, TransferNetRecipe,
                                           build_cam_classifier, unit_variance_init)

#: Recipes that train on folder data.
FOLDER_RECIPES = ("deconvnet", "fcn8s", "decouplednet", "transfernet")


class FolderData:
    """Mixin: a recipe's data, class count and names from a file-pair dataset (a folder, or VOC 2012).

    ``data``: a folder dataset's path, or a
    :class:`~keras_deconv.datasets.folder.PairDataset`.
    """

    export_tag = "folder"

    def __init__(self, data, *args, hparams=None, **kwargs):
        self.dataset = data if isinstance(data, folder.PairDataset) else folder.open_folder(data)
        self.export_tag = self.dataset.kind
        self.data_dir = self.dataset.root
        self.class_names = tuple(self.dataset.class_names)
        self.num_classes = len(self.class_names)
        self.train_split = self.dataset.train
        self.val_split = self.dataset.val
        super().__init__(*args, hparams=hparams, **kwargs)

    def folder_batches(self, seed, framing="native", invariances=False, scale_range=(0.8, 1.25), shuffle=True):
        return folder_data.batches(self.train_split, self.hp["batch_size"], self.size, framing=framing,
                                   scale_range=scale_range, shuffle=shuffle, seed=seed, invariances=invariances)

    def validation(self, stage_name):
        """None: the ``shapes`` val images are not this data's; ``DIR/images/val`` is scored after the export."""
        return None

    def init_batch(self, count=32):
        """A fixed batch of training crops (no jitter) for data-dependent initialisation."""
        ds = folder_data.batches(self.train_split, count, self.size, scale_range=(1, 1), flip=False, shuffle=False)
        images, _ = next(iter(ds))
        return np.asarray(images, "float32")

    def train_arrays(self, indices=None):
        raise RuntimeError("A folder recipe streams its data; it has no shapes arrays.")

    def describe(self):
        info = super().describe()
        info["data"] = {"kind": self.dataset.kind, "dir": self.data_dir, "classes": list(self.class_names),
                        "train_images": len(self.train_split),
                        "val_images": len(self.val_split) if self.val_split is not None else 0}
        return info


#: What the folder recipes change in the defaults: the shipped small models' solver, no invariances.
FOLDER_DEFAULTS = {"optimizer": "adam", "lr": 0.003, "invariances": 0}


class FolderDeconvNetRecipe(FolderData, DeconvNetRecipe):
    """DeconvNet on a folder dataset: stage 1 whole images (fit), stage 2 native-scale windows.

    Width 1/4, fc 256 and Adam 1e-3 by default: on ``bench/folder_train.py``'s
    3-class dataset the shapes recipe's 1/16 width at 3e-3 stayed on the
    all-background floor after 300 + 300 steps (val mIoU 29.95 = the floor),
    these settings reached 43.61.
    """

    defaults = dict(DeconvNetRecipe.defaults, stage1_stepsize=0.75, stage2_stepsize=0.75,
                    **{**FOLDER_DEFAULTS, "lr": 0.001})

    def default_config(self):
        return {**super().default_config(), "width": 0.25, "fc_units": 256}

    def stage1_data(self, seed, invariances):
        return self.folder_batches(seed, "fit", invariances)

    def stage2_data(self, seed, invariances):
        return self.folder_batches(seed, "native", invariances)

    def pretrain_data(self, seed):  # --hparam pretrain_steps=N: the encoder U-Net on the stage-1 batches
        return self.folder_batches(seed, "fit", self.invariances)


class FolderFCN8sRecipe(FolderData, FCN8sRecipe):
    """FCN-8s on a folder dataset: native-scale crops with scale/flip jitter."""

    defaults = dict(FCN8sRecipe.defaults, train_stepsize=0.75, **FOLDER_DEFAULTS)

    def train_data(self, seed):
        return self.folder_batches(seed, "native", self.invariances)


class FolderDecoupledNetRecipe(FolderData, DecoupledNetRecipe):
    """DecoupledNet on a folder dataset: image-level labels from the masks, ``--budget N`` masks per class.

    The classification stage sees every train image with the classes its
    (cropped) mask holds as image-level labels; each segmentation stage sees
    the (image, class) pairs of the strong images only
    (:func:`~keras_deconv.training.folder_data.strong_images`: ``N`` images
    per class, in name order; ``all``: every image). No pretraining stage
    (``shapes``' source domain does not exist here): the encoder starts from
    ``--init-vgg16`` or a data-dependent initialisation. One budget per run
    makes the run a model (``card.json``); several budgets export one weights
    file each.
    """

    defaults = {key: value for key, value in dict(DecoupledNetRecipe.defaults, budgets="all",
                                                  **FOLDER_DEFAULTS).items() if not key.startswith("pretrain")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.present = folder_data.present_classes(self.train_split)
        empty = [name for c, name in enumerate(self.class_names[1:], 1)
                 if not any(c in classes for classes in self.present)]
        if len(empty) == self.num_classes - 1:
            raise folder.FolderDatasetError(f"{self.data_dir}: no train mask holds a class other than the "
                                            "background; DecoupledNet learns the classes present in images.")

    def pretrain_stages(self):
        return []  # shapes' source-domain pretraining has no counterpart in a folder dataset

    def _build_model(self, batch_norm="trainable", query_input="cls-score-masked"):
        from keras_deconv import models

        return models.DecoupledNet(self.num_classes - 1, self.input_shape, batch_norm=batch_norm,
                                   query_input=query_input, **self.config)

    def strong_pairs(self, budget):
        """``[(image index, class)]`` of the images that keep their masks under ``budget``."""
        return [(i, c) for i in folder_data.strong_images(self.present, budget) for c in self.present[i]]

    def stages(self):
        stages = super().stages()
        classification = stages[0]
        classification.dataset = lambda: folder_data.image_label_batches(
            self.train_split, self.hp["batch_size"], self.size, self.num_classes - 1, seed=self.seed)
        for stage, budget in zip(stages[1:], self.budgets):
            stage.dataset = (lambda budget=budget: folder_data.class_pair_batches(
                self.train_split, self.strong_pairs(budget), self.hp["batch_size"], self.size, self.num_classes - 1,
                seed=self.seed + 3))
        return stages

    def calibration(self, model, budget):
        ds = folder_data.class_pair_batches(self.train_split, self.strong_pairs(budget), 16, self.size,
                                            self.num_classes - 1, seed=self.seed + 9, scale_range=(1, 1))
        for inputs, _ in ds.as_numpy_iterator():
            yield [inputs["data"], inputs["cls-label"]]

    def describe(self):
        info = super().describe()
        info["data"]["strong_images"] = {str(b): len(folder_data.strong_images(self.present, b)) for b in self.budgets}
        return info


def parse_classes(text, class_names, option):
    """``"cat,dog"`` or ``"1,2"`` -> sorted class ids (1-based) of ``class_names``; ValueError naming ``option``."""
    lookup = {name.lower(): i for i, name in enumerate(class_names)}
    ids = set()
    for token in (t.strip() for t in str(text).split(",")):
        if not token:
            continue
        value = int(token) if token.isdigit() else lookup.get(token.lower())
        if value is None or not 1 <= value < len(class_names):
            raise ValueError(f"{option}: {token!r} is not a class of classes.txt other than the background "
                             f"({', '.join(class_names[1:])}, or 1-{len(class_names) - 1}).")
        ids.add(value)
    return sorted(ids)


class FolderTransferNetRecipe(FolderData, TransferNetRecipe):
    """TransferNet on a folder dataset: masks of the source classes only, image-level labels of every class.

    ``source_classes`` (``--source-classes``) keep their masks;
    ``target_classes`` (``--target-classes``, default: every other class)
    are learnt from image-level labels (the classes their masks hold) and the
    source classes' segmentation, as in the paper. Source images hold source
    classes only, target images target classes only; images holding both
    serve the encoder stage alone. No pretraining stage, as for DecoupledNet.
    """

    defaults = {key: value for key, value in dict(TransferNetRecipe.defaults, **FOLDER_DEFAULTS).items()
                if not key.startswith("pretrain") and key not in ("optimizer", "lr")}

    def __init__(self, data_dir, *args, source_classes=None, target_classes=None, **kwargs):
        super().__init__(data_dir, *args, **kwargs)
        if not source_classes:
            raise ValueError("--data folder with transfernet needs --source-classes NAME[,NAME...]: the classes "
                             "whose masks it learns from (the others are learnt from image-level labels).")
        self.source_classes = parse_classes(source_classes, self.class_names, "--source-classes")
        others = [c for c in range(1, self.num_classes) if c not in self.source_classes]
        self.target_classes = (parse_classes(target_classes, self.class_names, "--target-classes")
                               if target_classes else others)
        both = sorted(set(self.source_classes) & set(self.target_classes))
        if both or not self.target_classes or sorted(self.source_classes + self.target_classes) != list(
                range(1, self.num_classes)):
            raise ValueError(f"--source-classes and --target-classes must split the classes "
                             f"{', '.join(self.class_names[1:])} in two non-empty parts, each class in one."
                             + (f" In both: {', '.join(self.class_names[c] for c in both)}." if both else ""))
        self.present = folder_data.present_classes(self.train_split)
        self.domains = {}
        for domain, classes in (("source", self.source_classes), ("target", self.target_classes)):
            self.domains[domain] = [(i, c) for i, held in enumerate(self.present)
                                    if held and set(held) <= set(classes) for c in held]
            if not self.domains[domain]:
                raise folder.FolderDatasetError(
                    f"{self.data_dir}: no train image holds {domain} classes only "
                    f"({', '.join(self.class_names[c] for c in classes)}); TransferNet needs images of each domain.")

    def pretrain_stages(self):
        return []

    def _build_model(self, include_classifier=True):
        from keras_deconv import models

        return models.TransferNet(self.num_classes - 1, self.input_shape, include_classifier=include_classifier,
                                  **self.config)

    def prepare(self):
        if "transfernet" not in self.models:
            model = self._build_model()
            if not self.init_encoder(model):
                convolutions = [layer.name for layer in model.layers if layer.name.startswith("conv") and layer.weights]
                unit_variance_init(model, self.init_batch(), convolutions)
            self.models["transfernet"] = model
            self.models["cam"] = build_cam_classifier(self.num_classes - 1, self.input_shape, encoder_model=model)

    def decoder_init_pairs(self):
        return folder_data.class_pair_batches(self.train_split, self.domains["source"], 32, self.size,
                                              self.num_classes - 1, scale_range=(1, 1), seed=self.seed, shuffle=False)

    def _domain_pairs(self, target):
        def pairs(domain, masks, seed):
            return folder_data.class_pair_batches(self.train_split, self.domains[domain], self.hp["batch_size"],
                                                  self.size, self.num_classes - 1, masks=masks, target=target,
                                                  seed=seed)

        return train_data.alternate(pairs("target", False, self.seed + 5), pairs("source", True, self.seed + 6))

    def stages(self):
        stages = super().stages()
        stages[0].dataset = lambda: folder_data.image_label_batches(
            self.train_split, self.hp["batch_size"], self.size, self.num_classes - 1, seed=self.seed)
        return stages

    def export(self, calibration_batches=None):
        from keras_deconv.training.callbacks import copy_weights_by_name

        deploy = self._build_model(include_classifier=False)
        copy_weights_by_name(self.models["transfernet"], deploy)
        cam = build_cam_classifier(self.num_classes - 1, self.input_shape, width=self.config.get("width", 1 / 16))
        copy_weights_by_name(self.models["cam"], cam)
        return {self.export_tag: deploy, "cam-baseline": cam}

    def describe(self):
        info = super().describe()
        info["data"]["domains"] = {
            domain: {"classes": [self.class_names[c] for c in classes],
                     "images": len({i for i, _ in self.domains[domain]})}
            for domain, classes in (("source", self.source_classes), ("target", self.target_classes))}
        return info


#: Recipes that train on PASCAL VOC 2012 (``--data voc2012``).
VOC_RECIPES = ("deconvnet", "fcn8s", "decouplednet")


def folder_recipe(name, data_dir, **kwargs):
    """The recipe ``name`` (one of :data:`FOLDER_RECIPES`) on the folder dataset ``data_dir``.

    ``data_dir`` may also be a :class:`~keras_deconv.datasets.folder.PairDataset`
    (e.g. :func:`keras_deconv.datasets.voc_files.voc_dataset`: ``deconvnet``,
    ``fcn8s`` and ``decouplednet``; :func:`keras_deconv.datasets.coco.transfer_dataset`:
    ``transfernet``, COCO's 60 classes with masks, VOC's 20 from image labels).

    ``transfernet`` also takes ``source_classes`` and ``target_classes``
    (comma-separated names or ids).

    Raises:
        ValueError: another recipe name.
        keras_deconv.datasets.folder.FolderDatasetError: a broken dataset.
    """
    recipes = {"deconvnet": FolderDeconvNetRecipe, "fcn8s": FolderFCN8sRecipe, "decouplednet": FolderDecoupledNetRecipe,
               "transfernet": FolderTransferNetRecipe}
    kind = data_dir.kind if isinstance(data_dir, folder.PairDataset) else "folder"
    names = {"folder": FOLDER_RECIPES, "voc2012": VOC_RECIPES, "coco-voc2012": ("transfernet",)}[kind]
    if name not in names:
        raise ValueError(f"--data {kind} trains {', '.join(names)}. Received {name!r}.")
    if kind == "coco-voc2012":  # TransferNet's label space: VOC 1-20 from image labels, COCO 21-80 with masks
        kwargs.setdefault("source_classes", ",".join(map(str, range(21, 81))))
        kwargs.setdefault("target_classes", ",".join(map(str, range(1, 21))))
    return recipes[name](data_dir, **kwargs)
