"""Training recipes of the DeconvNet family, on the built-in ``shapes`` data.

One recipe = an ordered list of stages (each an ordinary ``model.fit`` with
its own optimizer, data and frozen layers) plus an export step that turns
the trained networks into the zoo's inference architecture. The same code
runs the small configurations (64x64, width 1/16, minutes on a CPU) and the
full ones (``--image-size 224 --config width=1 ...``); only the numbers
change. The README (Training) lists every deviation from the papers.
"""

import dataclasses
import math
import sys

import keras
import numpy as np

from keras_deconv import models
from keras_deconv.datasets import shapes
from keras_deconv.metrics import StreamingMeanIoU
from keras_deconv.training import data as train_data
from keras_deconv.training import finetune
from keras_deconv.training import pretraining
from keras_deconv.training import scaffold
from keras_deconv.training.bn_folding import fold_batch_norm, fold_batch_norm_into_convolutions, recompute_statistics
from keras_deconv.training.callbacks import copy_weights_by_name
from keras_deconv.training.fused_adam import FusedAdam
from keras_deconv.training.losses import SegmentationLoss
from keras_deconv.training.optimizers import make_optimizer

IGNORE = 255


def seg_loss(background_weight=1.0):
    return SegmentationLoss(background_weight, ignore_class=IGNORE)


@dataclasses.dataclass
class Stage:
    """One training stage.

    Attributes:
        name: stage name (its folder in the run directory).
        owner: key of ``recipe.models`` whose weights the stage changes
            (saved when it ends, loaded when a resumed run skips it).
        steps: optimizer steps.
        prepare: ``callable()`` run before the stage (and when it is
            skipped), inside the strategy scope: builds/initialises models.
        build: ``callable() -> (fit_model, loss, loss_weights, optimizer,
            metrics)``, inside the strategy scope.
        dataset: ``callable() -> tf.data.Dataset`` of training batches.
    """

    name: str
    owner: str
    steps: int
    build: object
    dataset: object
    prepare: object = None


class Recipe:
    """Base class: hyperparameters, builder config, models and stages.

    ``init_model`` (``--init``): a Keras model (the zoo's inference
    architecture) whose same-named, same-shaped weights start the network;
    the others (the classifier when the class count differs) keep their
    fresh initialisation and are listed in ``self.reinitialised``.
    ``freeze_encoder`` keeps conv1_1 ... conv5_3 (and their BN) fixed.
    """

    name = None
    #: Hyperparameters of the small configuration (``--hparam KEY=VALUE`` overrides).
    defaults = {}
    #: Labels of the segmentation output (``shapes``: background + 12 shapes).
    num_classes = shapes.NUM_CLASSES
    class_names = shapes.CLASS_NAMES
    #: Weights tag of the exported model (``export/<tag>.weights.h5``).
    export_tag = "shapes"

    def __init__(self, image_size=64, config=None, hparams=None, init_vgg16=None, seed=0, init_model=None,
                 freeze_encoder=False):
        self.image_size = int(image_size)
        self.size = (self.image_size, self.image_size)
        self.input_shape = (self.image_size, self.image_size, 3)
        self.hp = dict(self.defaults)
        unknown = sorted(set(hparams or {}) - set(self.defaults))
        if unknown:
            raise ValueError(f"Unknown hyperparameter(s) {', '.join(unknown)} for recipe {self.name!r}. "
                             f"Known: {', '.join(sorted(self.defaults))}.")
        self.hp.update(hparams or {})
        self.config = dict(self.default_config())
        self.config.update(config or {})
        for reserved in ("num_classes", "input_shape", "batch_norm", "weights"):
            if reserved in (config or {}):
                raise ValueError(f"--config {reserved}=... is set by the recipe.")
        self.init_vgg16 = init_vgg16
        self.seed = int(seed)
        self.models = {}
        self.init_model = init_model
        self.freeze_encoder = bool(freeze_encoder)
        self.reinitialised = None
        self.revived = []  # pretrained layers revive_dead_layers reset (run.json revived_layers)

    # ------------------------------------------------------------------ to override
    def default_config(self):
        return {}

    def stages(self):
        raise NotImplementedError

    def export(self, calibration_batches=None):
        """``{tag: inference model}`` in the zoo's architecture (folded BN)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def set_steps(self, steps):
        """``--steps N``: every stage runs N steps; a stage that is off (0 steps, e.g. ``pretrain_steps``) stays off."""
        for key in self.hp:
            if key.endswith("_steps") and int(self.hp[key]) > 0:
                self.hp[key] = int(steps)

    def train_arrays(self, indices=None):
        return train_data.arrays("train", self.image_size, indices)

    def load_vgg16(self, model):
        if not self.init_vgg16:
            return None
        try:
            from keras_deconv.caffe.vgg16 import load_vgg16_weights
        except ImportError as error:  # pragma: no cover - depends on the caffe package state
            raise RuntimeError("--init-vgg16 needs keras_deconv.caffe.vgg16.load_vgg16_weights") from error
        return load_vgg16_weights(model, self.init_vgg16)

    @property
    def invariances(self):
        """``--hparam invariances=1`` (default): rot90 + colour permutation/inversion on training data.

        Not in the papers; right for ``shapes``, whose classes are shapes
        only. ``0`` keeps the papers' scale/crop/mirror augmentation alone.
        """
        return bool(int(self.hp.get("invariances", 0)))

    def pretrain_stages(self):
        """``[Stage("pretrain")]``: the encoder on source-domain masks (:mod:`~keras_deconv.training.pretraining`).

        Empty with ``--init-vgg16`` (the papers' ImageNet start) or
        ``--hparam pretrain_steps=0``.
        """
        steps = int(self.hp.get("pretrain_steps", 0))
        if self.init_vgg16 or steps <= 0:
            return []

        def prepare():
            if "pretrain" not in self.models:
                model = self.pretrain_net()
                unit_variance_init(model, self.init_batch(),
                                   [layer.name for layer in model.layers if layer.name.startswith(("conv", "fc"))])
                self.models["pretrain"] = model

        def build():
            optimizer = make_optimizer("adam", self.hp["pretrain_lr"], steps, 0.75,
                                       schedule=self.hp.get("schedule", "step"), warmup=self.hp.get("warmup", 0.0))
            return (self.models["pretrain"], seg_loss(self.hp.get("background_loss_weight", 1.0)), None, optimizer,
                    [StreamingMeanIoU(self.models["pretrain"].output.shape[-1])])

        return [Stage("pretrain", "pretrain", steps, build, lambda: self.pretrain_data(self.seed + 11), prepare)]

    #: Val images scored after every epoch (:meth:`validation`); the first of the split (or domain).
    val_images = 100
    #: Domain of the val images of stage ``pretrain`` (None: every image).
    pretrain_val_domain = "source"

    def validation(self, stage_name):
        """``(dataset_fn, output)`` scored after each epoch of ``stage_name`` (``val_miou``), or None.

        ``dataset_fn() -> finite (inputs, labels) batches``; ``output``: the
        output to score when the fit model returns a dict. The base class
        scores stage ``pretrain`` on whole val images.
        """
        if stage_name == "pretrain":
            return self.val_whole_images(self.pretrain_val_domain), None
        return None

    def val_arrays(self, domain=None):
        """The first :attr:`val_images` ``shapes`` val images (of ``domain``: "source", "target", None: all)."""
        indices = np.arange(shapes.SPLITS["val"]) if domain is None else shapes.domain_indices("val", domain)
        return train_data.arrays("val", self.image_size, np.asarray(indices)[: self.val_images])

    def val_whole_images(self, domain=None):
        """A ``dataset_fn`` of whole, unaugmented val images (see :meth:`validation`)."""
        return lambda: train_data.whole_images(self.val_arrays(domain), 20, self.size, scale_range=None,
                                               shuffle=False, repeat=False)

    def val_class_pairs(self, domain=None, target="binary"):
        """A ``dataset_fn`` of unaugmented figure-ground val pairs (see :meth:`validation`)."""
        return lambda: train_data.class_pairs(self.val_arrays(domain), 20, self.size, scale_range=None,
                                              shuffle=False, repeat=False, target=target)

    def pretrain_net(self):
        """The FCN-8s of stage ``pretrain``: background + the source classes (DecoupledNet, TransferNet)."""
        return pretraining.source_segmentation_net(self.input_shape, self.config.get("width", 1 / 16))

    def pretrain_arrays(self):
        """Images of stage ``pretrain``: the source-domain train images (no target class in them)."""
        return self.train_arrays(shapes.domain_indices("train", "source"))

    @property
    def streaming(self):
        """``--hparam train_stream=1`` (DeconvNet, FCN-8s): whole-image stages draw fresh train images.

        From the streaming train split (:func:`~keras_deconv.training.data.stream`,
        no image twice, no augmentation) instead of the first
        :data:`~keras_deconv.training.data.MAX_TRAIN_IMAGES` cached and augmented.
        """
        return bool(int(self.hp.get("train_stream", 0)))

    def pretrain_data(self, seed):
        """Batches of stage ``pretrain``: whole :meth:`pretrain_arrays` images, augmented (or streamed)."""
        if self.streaming and self.pretrain_val_domain is None:
            return train_data.stream(self.hp["batch_size"], self.image_size, seed=seed)
        return train_data.whole_images(self.pretrain_arrays(), self.hp["batch_size"], self.size, seed=seed,
                                       invariances=self.invariances)

    def init_encoder(self, model):
        """conv1_1 ... conv5_3 of ``model`` from ``--init-vgg16`` or the pretrain stage; False if neither."""
        if self.load_vgg16(model):
            return True
        if "pretrain" in self.models:
            pretraining.copy_encoder(self.models["pretrain"], model)
            return True
        return False

    def init_batch(self, count=32):
        """A fixed batch of train images for data-dependent initialisation."""
        return np.asarray(self.train_arrays()["image"][:count], "float32")

    def start_from_init(self, model):
        """``--init`` / ``--freeze-encoder`` on a freshly built network; True if weights were copied."""
        copied = False
        if self.init_model is not None:
            skipped = set(getattr(self.init_model, "init_skipped", ()))  # not in the start's file
            copied_names = finetune.transfer_weights(self.init_model, model)
            self.reinitialised = [layer.name for layer in model.layers
                                  if layer.weights and (layer.name in skipped or layer.name in copied_names)]
            copied = True
        if self.freeze_encoder:
            finetune.freeze_encoder(model)
        return copied

    def note_revived(self, names):
        """Records (``run.json`` ``revived_layers``) and prints the pretrained layers :func:`revive_dead_layers` reset."""
        if names:
            self.revived = list(names)
            print(f"[{self.name}] re-initialised pretrained layer(s) with under {MIN_ALIVE_CHANNELS:.0%} live channels: "
                  f"{', '.join(names)}", file=sys.stderr)

    def describe(self):
        info = {"recipe": self.name, "image_size": self.image_size, "config": self.config, "hparams": self.hp,
                "init_vgg16": self.init_vgg16, "seed": self.seed}
        if self.revived:
            info["revived_layers"] = self.revived
        if self.init_model is not None or self.freeze_encoder:
            info["init"] = {"source": getattr(self.init_model, "init_source", None),
                            "reinitialised": self.reinitialised, "freeze_encoder": self.freeze_encoder}
        return info


def unit_variance_init(model, images, layer_names=None, tolerance=0.1, max_iterations=3):
    """Data-dependent init of a network without BN (LSUV, Mishkin & Matas 2016), layer by layer.

    VGG-16 without batch normalisation does not train from a random
    initialisation on 0-255 Caffe inputs in our CPU budget (the loss sits at
    the label prior: measured). The papers start from ImageNet VGG-16; with no
    such weights (no ``--init-vgg16``) each convolution/dense layer's kernel
    is rescaled, in graph order, so that its pre-activation output has unit
    standard deviation on ``images``, and its bias is zeroed.

    Args:
        model: a functional model.
        images: a batch accepted by ``model.inputs[0]``, or a list with one
            batch per model input (for layers that depend on several inputs).
        layer_names: the layers to rescale (default: every trainable
            Conv2D/Dense); with a single batch, layers that also depend on
            another input are skipped.
        tolerance: stop when ``|std - 1| < tolerance``.
        max_iterations: rescaling passes per layer.

    Returns:
        ``{layer name: final std}``.
    """
    result = {}
    names = layer_names or [layer.name for layer in model.layers
                            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.trainable]
    for name in names:
        layer = model.get_layer(name)
        if not layer.weights:
            continue
        try:
            probe = keras.Model(model.inputs if isinstance(images, list) else model.inputs[0], layer.output)
        except ValueError:
            continue  # depends on another input (e.g. a query): left as it is
        weights = layer.get_weights()
        if len(weights) > 1:
            weights[1] = np.zeros_like(weights[1])
            layer.set_weights(weights)
        for _ in range(max_iterations):
            std = float(np.std(np.asarray(probe(images, training=False))))
            if not np.isfinite(std) or std == 0 or abs(std - 1) < tolerance:
                break
            weights = layer.get_weights()
            weights[0] = weights[0] / std
            layer.set_weights(weights)
        result[name] = std
    return result


#: A pretrained layer with fewer of its channels ever positive on the init batch is re-initialised.
MIN_ALIVE_CHANNELS = 0.25
#: VGG-16's convolutions, in graph order (the encoders :func:`revive_dead_layers` checks).
ENCODER_CONVS = tuple(f"conv{block}_{i}" for block, count in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, count + 1))


def revive_dead_layers(model, images, layer_names, min_alive=MIN_ALIVE_CHANNELS, seed=0):
    """Re-initialises (glorot, then :func:`unit_variance_init`) the layers whose ReLU would pass almost nothing.

    A channel is alive when its pre-activation output is positive somewhere
    on ``images``. The FCN-8s of stage ``pretrain`` leans on its pool3/pool4
    skips, and its ``conv5_3`` ends with no live channel (measured: 0 of 32
    on source val images at width 1/16); copied as it is, that layer blocks
    every gradient to the classifiers above it, which then sit at the label
    prior. Returns the names re-initialised, in ``layer_names`` order.
    """
    revived = []
    for number, name in enumerate(layer_names):
        layer = model.get_layer(name)
        out = np.asarray(keras.Model(model.inputs[0], layer.output)(images, training=False))
        alive = float((out.reshape(-1, out.shape[-1]) > 0).any(axis=0).mean())
        if alive >= min_alive:
            continue
        weights = layer.get_weights()
        weights[0] = np.asarray(keras.initializers.GlorotUniform(seed=seed + number)(weights[0].shape))
        weights[1:] = [np.zeros_like(w) for w in weights[1:]]
        layer.set_weights(weights)
        unit_variance_init(model, images, [name])
        revived.append(name)
    return revived


def scaffolded(model, fade, steps, drop=0, seed=0, order="together"):
    """``--hparam scaffold_fade=F``: ``model`` trained through skips that fade out over F of ``steps`` (scaffold.py).

    ``F = 0`` returns ``model`` itself. ``--hparam scaffold_drop=1`` switches
    each sample's skips off with probability ``1 - alpha`` instead of scaling them;
    ``--hparam scaffold_order=deep-first|fine-first`` fades the levels one after another.
    """
    fade = float(fade)
    if not 0 <= fade <= 1:
        raise ValueError(f"--hparam scaffold_fade must be a fraction of the stage in [0, 1]. Received {fade!r}.")
    if drop not in (0, 1, True, False):
        raise ValueError(f"--hparam scaffold_drop must be 0 (scale the skips) or 1 (drop them). Received {drop!r}.")
    if order not in scaffold.ORDERS:
        raise ValueError(f"--hparam scaffold_order must be one of {', '.join(scaffold.ORDERS)}. Received {order!r}.")
    if fade == 0:
        return model
    return scaffold.with_scaffold_skips(model, max(1, round(fade * steps)), drop=bool(drop), seed=seed, order=order)


def _fc_kernel(image_size, offset=0):
    """fc6 kernel for an input size: official 7 at pool5 = 7 (224) or 10 (320); ``pool5 - offset`` when smaller."""
    pool5 = -(-image_size // 32)
    return int(max(1, min(7, pool5 - offset)))


def export_folded(trained, builder, calibration=None, steps=None, check_inputs=None):
    """Folds BN of ``trained`` and copies every weight into ``builder()`` (the zoo architecture)."""
    folded = fold_batch_norm(trained, calibration=calibration, steps=steps)
    target = builder()
    copy_weights_by_name(folded, target)
    if check_inputs is not None:
        a, b = folded(check_inputs, training=False), target(check_inputs, training=False)
        a = a["seg-score"] if isinstance(a, dict) else a
        b = b["seg-score"] if isinstance(b, dict) else b
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
    return target


# ============================================================================ DeconvNet
class DeconvNetRecipe(Recipe):
    """DeconvNet (§2.4): stage 1 on object-centred crops, stage 2 on windows, BN folded for inference."""

    name = "deconvnet"
    defaults = {
        "batch_size": 16, "stage1_steps": 800, "stage2_steps": 1600, "lr": 0.01, "momentum": 0.9,
        "weight_decay": 5e-4, "stage1_stepsize": 9000 / 20000, "stage2_stepsize": 10000 / 40000,
        "calibration_batches": 50, "optimizer": "sgd", "invariances": 1, "background_loss_weight": 1.0,
        "pretrain_steps": 0, "pretrain_lr": 3e-3, "stage2_whole_images": 0.25, "schedule": "step", "train_stream": 0,
        "scaffold_fade": 0.0, "scaffold_drop": 0, "scaffold_order": "together", "warmup": 0.0,
    }

    def default_config(self):
        return {"width": 1 / 16, "fc_units": 64, "fc_kernel_size": _fc_kernel(self.image_size)}

    @property
    def training_batch_norm(self):
        """``"trainable"``, or ``"folded"`` when fine-tuning (``--init``): the start's statistics stay fixed."""
        return "folded" if self.init_model is not None else "trainable"

    def _build_model(self, batch_norm="trainable"):
        return models.DeconvNet(self.num_classes, self.input_shape, batch_norm=batch_norm, **self.config)

    def prepare(self):
        if "deconvnet" not in self.models:
            model = self.models["deconvnet"] = self._build_model(self.training_batch_norm)
            if not self.load_vgg16(model) and "pretrain" in self.models:
                pretraining.copy_encoder_layers(self.models["pretrain"], model)
            self.start_from_init(model)

    def pretrain_net(self):
        """``--hparam pretrain_steps=N``: the encoder in a U-Net on every class, our ImageNet stand-in.

        Not in the paper (which starts from ImageNet VGG-16); see
        :func:`~keras_deconv.training.pretraining.encoder_unet`.
        """
        return pretraining.encoder_unet(self.num_classes, self.input_shape, self.config["width"])

    def pretrain_arrays(self):
        return self.train_arrays()

    def _stage(self, key, dataset):
        steps = self.hp[f"{key}_steps"]

        def build():
            optimizer = make_optimizer(self.hp["optimizer"], self.hp["lr"], steps, self.hp[f"{key}_stepsize"],
                                       self.hp["momentum"], self.hp["weight_decay"], self.hp["schedule"],
                                       self.hp["warmup"])
            model = scaffolded(self.models["deconvnet"], self.hp["scaffold_fade"], steps, self.hp["scaffold_drop"],
                               self.seed, self.hp["scaffold_order"])
            return (model, seg_loss(self.hp["background_loss_weight"]), None, optimizer,
                    [StreamingMeanIoU(self.num_classes)])

        return Stage(key, "deconvnet", steps, build, dataset, self.prepare)

    pretrain_val_domain = None  # the encoder U-Net learns every class

    def validation(self, stage_name):
        """Every stage on whole val images, all 13 classes (the inference network's task)."""
        return self.val_whole_images(), None

    def stage1_data(self, seed, invariances):
        return train_data.object_crops(self.train_arrays(), self.hp["batch_size"], self.size, seed=seed,
                                       invariances=invariances)

    def stage2_data(self, seed, invariances):
        """Windows around objects; ``--hparam stage2_whole_images=P``: the whole image with probability P
        (0.25; 1.0 trains stage 2 at the scale the whole-image pipeline sees, and folds BN there too);
        ``--hparam train_stream=1``: fresh whole images (:attr:`streaming`)."""
        if self.streaming:
            return train_data.stream(self.hp["batch_size"], self.image_size, seed=seed)
        return train_data.windows(self.train_arrays(), self.hp["batch_size"], self.size, seed=seed,
                                  whole_image_probability=float(self.hp["stage2_whole_images"]),
                                  invariances=invariances)

    def stages(self):
        """``pretrain`` (when on), ``stage1``, ``stage2``; ``--hparam stage1_steps=0`` skips the crops."""
        stages = [self._stage("stage1", lambda: self.stage1_data(self.seed, self.invariances)),
                  self._stage("stage2", lambda: self.stage2_data(self.seed + 1, self.invariances))]
        return self.pretrain_stages() + [stage for stage in stages if stage.steps > 0]

    def calibration(self):
        """Stage-2 training windows (images only), as the official folding script."""
        ds = self.stage2_data(self.seed + 7, False)
        return (images for images, _ in ds.as_numpy_iterator())

    def export(self, calibration_batches=None):
        if self.training_batch_norm == "folded":  # fine-tuned with fixed statistics: nothing to fold
            model = self._build_model("folded")
            copy_weights_by_name(self.models["deconvnet"], model)
            return {self.export_tag: model}
        n = self.hp["calibration_batches"] if calibration_batches is None else calibration_batches
        model = export_folded(self.models["deconvnet"], lambda: self._build_model("folded"),
                              self.calibration() if n else None, n)
        return {self.export_tag: model}


# ============================================================================ FCN-8s
class FCN8sRecipe(Recipe):
    """FCN-8s baseline: whole images with scale/crop/flip augmentation, one stage.

    ``--hparam batch_norm=1`` trains with BN after every convolution (not in the
    paper, which starts from ImageNet VGG-16) and folds it into the convolutions
    for export, so the exported weights are those of the official network.
    """

    name = "fcn8s"
    defaults = {"batch_size": 16, "train_steps": 1200, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
                "train_stepsize": 0.5, "optimizer": "sgd", "invariances": 1, "background_loss_weight": 1.0,
                "schedule": "step", "train_stream": 0, "warmup": 0.0, "batch_norm": 0, "calibration_batches": 50}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.hp["batch_norm"] not in (0, 1):  # checked before a run directory is made
            raise ValueError(f"--hparam batch_norm must be 0 or 1. Received {self.hp['batch_norm']!r}.")

    def default_config(self):
        return {"width": 1 / 16, "fc_units": 64}

    @property
    def training_batch_norm(self):
        """``"trainable"`` with ``--hparam batch_norm=1`` from a random or VGG-16 start; None otherwise."""
        return "trainable" if self.hp["batch_norm"] and self.init_model is None else None

    def _build_model(self, batch_norm=None):
        return models.FCN8s(self.num_classes, self.input_shape, batch_norm=batch_norm, **self.config)

    def prepare(self):
        if "fcn8s" not in self.models:
            self.models["fcn8s"] = self._build_model(self.training_batch_norm)
            pretrained = self.load_vgg16(self.models["fcn8s"])
            if not self.start_from_init(self.models["fcn8s"]) and not pretrained and not self.training_batch_norm:
                unit_variance_init(self.models["fcn8s"], self.init_batch(),
                                   [layer.name for layer in self.models["fcn8s"].layers
                                    if layer.name.startswith(("conv", "fc"))])

    def stages(self):
        steps = self.hp["train_steps"]

        def build():
            optimizer = make_optimizer(self.hp["optimizer"], self.hp["lr"], steps, self.hp["train_stepsize"],
                                       self.hp["momentum"], self.hp["weight_decay"], self.hp["schedule"],
                                       self.hp["warmup"])
            return (self.models["fcn8s"], seg_loss(self.hp["background_loss_weight"]), None, optimizer,
                    [StreamingMeanIoU(self.num_classes)])

        return [Stage("train", "fcn8s", steps, build, lambda: self.train_data(self.seed), self.prepare)]

    def validation(self, stage_name):
        """Whole val images, all 13 classes."""
        return self.val_whole_images(), None

    def train_data(self, seed):
        """Whole cached images, augmented; ``--hparam train_stream=1``: fresh ones (:attr:`streaming`)."""
        if self.streaming:
            return train_data.stream(self.hp["batch_size"], self.image_size, seed=seed)
        return train_data.whole_images(self.train_arrays(), self.hp["batch_size"], self.size, seed=seed,
                                       invariances=self.invariances)

    def calibration(self):
        """Training batches (images only) for the BN statistics folded at export, as DeconvNet's."""
        return (images for images, _ in self.train_data(self.seed + 7).as_numpy_iterator())

    def export(self, calibration_batches=None):
        model = self._build_model()
        if not self.training_batch_norm:
            copy_weights_by_name(self.models["fcn8s"], model)
            return {self.export_tag: model}
        n = self.hp["calibration_batches"] if calibration_batches is None else calibration_batches
        if n:
            recompute_statistics(self.models["fcn8s"], self.calibration(), steps=n)
        return {self.export_tag: fold_batch_norm_into_convolutions(self.models["fcn8s"], model)}


# ============================================================================ DecoupledNet
#: Official (max_iter, stepsize) per annotation budget (§3.3).
DECOUPLEDNET_SOLVERS = {"all": (17500, 10000), 25: (15000, 10000), 10: (7500, 10000), 5: (5500, 4000)}
CLASSIFICATION_LAYERS = ("fc6", "fc7", "cls-score-voc")


def _is_classification_layer(name):
    return name.startswith("conv") or name in CLASSIFICATION_LAYERS


def parse_budget(value):
    value = str(value).strip().lower()
    if value in ("all", "full"):
        return "all"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"Expected an annotation budget: 5, 10, 25 (any positive int) or 'all'. Received {value!r}.")
    return int(value)


class DecoupledNetRecipe(Recipe):
    """DecoupledNet (§3.3): a multi-label classifier, then one figure-ground network per annotation budget.

    Without ``--init-vgg16`` a stage ``pretrain`` first trains the encoder on
    source-domain masks (:mod:`~keras_deconv.training.pretraining`; a
    deviation: the source classes' masks are seen there). The classification
    network trains on the image-level labels of every
    train image (sigmoid cross-entropy on the average-pooled class scores);
    then, per budget, a segmentation network (classification layers and
    bridging frozen, bridging fed with ``sigmoid(maxpool(cls-score)) *
    label``) trains on the strong images only, one example per (image, class)
    with a figure-ground target.
    """

    name = "decouplednet"
    defaults = {
        "batch_size": 16, "classification_steps": 1500, "classification_lr": 1e-3,
        "segmentation_steps": 1200, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
        "calibration_batches": 30, "budgets": "all,25,10,5", "optimizer": "sgd", "invariances": 1,
        "pretrain_steps": 1500, "pretrain_lr": 3e-3, "background_loss_weight": 1.0, "schedule": "step",
        "warmup": 0.0,
    }

    def __init__(self, *args, budgets=None, **kwargs):
        super().__init__(*args, **kwargs)
        if budgets is not None:
            self.hp["budgets"] = ",".join(str(b) for b in budgets)
        self.budgets = [parse_budget(b) for b in str(self.hp["budgets"]).split(",") if b.strip()]

    def default_config(self):
        return {"width": 1 / 16, "fc_units": 64, "seg_fc_units": 32, "fc_kernel_size": _fc_kernel(self.image_size, 3)}

    def _build_model(self, batch_norm="trainable", query_input="cls-score-masked"):
        return models.DecoupledNet(shapes.NUM_OBJECT_CLASSES, self.input_shape, batch_norm=batch_norm,
                                   query_input=query_input, **self.config)

    def budget_steps(self, budget):
        """Segmentation steps per budget: the official max_iter ratios (17500 : 15000 : 7500 : 5500)."""
        full = DECOUPLEDNET_SOLVERS["all"][0]
        max_iter, _ = DECOUPLEDNET_SOLVERS.get(budget, DECOUPLEDNET_SOLVERS["all"])
        return max(1, int(round(self.hp["segmentation_steps"] * max_iter / full)))

    def prepare_classification(self):
        if "classification" not in self.models:
            model = self._build_model()
            pretrained = self.init_encoder(model)
            if pretrained:
                self.note_revived(revive_dead_layers(model, self.init_batch(), ENCODER_CONVS))
            unit_variance_init(model, self.init_batch(),
                               [layer.name for layer in model.layers
                                if _is_classification_layer(layer.name)
                                and not (pretrained and layer.name.startswith("conv"))])
            models.sync_bridging_weights(model)
            self.models["classification"] = model

    def stages(self):
        bs = self.hp["batch_size"]
        steps = self.hp["classification_steps"]

        def build_classification():
            model = self.models["classification"]
            fit_model = keras.Model(model.inputs[0], model.get_layer("cls-score-avg-pooled").output,
                                    name="classification")
            optimizer = FusedAdam(self.hp["classification_lr"])
            return (fit_model, keras.losses.BinaryCrossentropy(from_logits=True), None, optimizer,
                    [keras.metrics.BinaryAccuracy(threshold=0.0)])

        classification = Stage("classification", "classification", steps, build_classification,
                               lambda: train_data.image_labels(self.train_arrays(), bs, self.size, seed=self.seed,
                                                               invariances=self.invariances),
                               self.prepare_classification)
        return (self.pretrain_stages() + [classification]
                + [self._segmentation_stage(budget) for budget in self.budgets])

    def _segmentation_stage(self, budget):
        key = f"seg-{budget}"
        steps = self.budget_steps(budget)
        max_iter, stepsize = DECOUPLEDNET_SOLVERS.get(budget, DECOUPLEDNET_SOLVERS["all"])

        def prepare():
            self.prepare_classification()
            if key in self.models:
                return
            model = self._build_model(query_input="cls-label")  # the training net: one classifier pass a step
            classifier = self.models["classification"]
            for layer in model.layers:
                if layer.weights and _is_classification_layer(layer.name):
                    layer.set_weights(classifier.get_layer(layer.name).get_weights())
                    layer.trainable = False  # Caffe blobs_lr: 0
            models.sync_bridging_weights(model)
            self.models[key] = model

        def build():
            fit_model = self.segmentation_graph(self.models[key])
            optimizer = make_optimizer(self.hp["optimizer"], self.hp["lr"], steps, stepsize / max_iter,
                                       self.hp["momentum"], self.hp["weight_decay"], self.hp["schedule"],
                                       self.hp["warmup"])
            return fit_model, seg_loss(self.hp["background_loss_weight"]), None, optimizer, [StreamingMeanIoU(2)]

        def dataset():
            arrays = self.train_arrays(shapes.strong_indices(budget))
            return train_data.class_pairs(arrays, self.hp["batch_size"], self.size, seed=self.seed + 3,
                                          invariances=self.invariances)

        return Stage(f"segmentation-{budget}", key, steps, build, dataset, prepare)

    def validation(self, stage_name):
        """Stage ``pretrain`` on whole source-domain val images; each segmentation stage on figure-ground
        val pairs (2 classes), queried with the frozen classifier's scores as in training."""
        if stage_name.startswith("segmentation-"):
            return self.val_class_pairs(), None
        return super().validation(stage_name)

    def segmentation_graph(self, model):
        """Training graph ``{data, cls-label} -> seg-score`` of a DecoupledNet built with ``query_input="cls-label"``.

        As in the Caffe training nets, the network makes its query
        ``sigmoid(maxpool(cls-score)) * label`` itself (ELTWISE PROD layer
        ``cls-score-mask``) from the frozen classifier's scores, so the
        classifier runs once a step.
        """
        data, label = model.inputs
        return keras.Model({"data": data, "cls-label": label}, model.get_layer("seg-score-voc").output,
                           name="decouplednet_segmentation")

    def calibration(self, model, budget):
        arrays = self.train_arrays(shapes.strong_indices(budget))
        ds = train_data.class_pairs(arrays, 16, self.size, seed=self.seed + 9)
        for inputs, _ in ds.as_numpy_iterator():
            yield [inputs["data"], inputs["cls-label"]]

    def export(self, calibration_batches=None):
        n = self.hp["calibration_batches"] if calibration_batches is None else calibration_batches
        out = {}
        for budget in self.budgets:
            model = self.models[f"seg-{budget}"]
            out[str(budget)] = export_folded(model, lambda: self._build_model("folded"),
                                             self.calibration(model, budget) if n else None, n)
        return out


# ============================================================================ TransferNet
def build_cam_classifier(num_classes, input_shape, width=1 / 16, encoder_model=None):
    """VGG-16 conv1_1...conv5_3 (TransferNet's encoder: 4 pools) + global average pooling + a linear classifier.

    With ``encoder_model`` (a TransferNet) the encoder layers are shared
    with it; otherwise a stand-alone classifier is built (for loading the
    shipped CAM-baseline weights). The class-activation map of class ``c``
    is ``conv5_3 . W[:, c]`` (:mod:`keras_deconv.training.cam`).
    """
    if encoder_model is None:
        from keras_deconv.models import _blocks
        from keras_deconv.models.vgg16_encoder import vgg16_encoder

        inputs, x = _blocks.image_input(input_shape, True)
        features = vgg16_encoder(x, width=width, num_pools=4)["conv5_3"]
    else:
        inputs, features = encoder_model.inputs[0], encoder_model.get_layer("relu5_3").output
    pooled = keras.layers.GlobalAveragePooling2D(name="cam_pool")(features)
    logits = keras.layers.Dense(num_classes, name="cam_classifier")(pooled)
    return keras.Model(inputs, logits, name="cam_classifier_net")


class TransferNetRecipe(Recipe):
    """TransferNet (§4.4): encoder frozen; attention + classification on image labels of both domains;
    decoder + attention on source-domain masks only; source and target batches alternate; Adam.

    Deviation: no ImageNet VGG-16 here. Stage ``pretrain`` trains the encoder
    on source-domain masks (:mod:`~keras_deconv.training.pretraining`), then
    stage ``encoder`` fine-tunes it as a multi-label classifier (global
    average pooling + linear layer) on the image-level labels of every train
    image, both domains. Target masks are never used. That classifier is also
    the weakly supervised baseline (class-activation maps).
    """

    name = "transfernet"
    defaults = {
        "batch_size": 16, "encoder_steps": 1500, "encoder_lr": 1e-3, "attention_steps": 800, "attention_lr": 1e-3,
        "segmentation_steps": 1200, "segmentation_lr": 5e-4, "seg_loss_weight": 2.0, "invariances": 1,
        "pretrain_steps": 1500, "pretrain_lr": 3e-3, "background_loss_weight": 1.0, "scaffold_fade": 0.0,
        "scaffold_drop": 0, "scaffold_order": "together", "warmup": 0.0,
    }

    def default_config(self):
        return {"width": 1 / 16}

    def _build_model(self, include_classifier=True):
        return models.TransferNet(shapes.NUM_OBJECT_CLASSES, self.input_shape, include_classifier=include_classifier,
                                  **self.config)

    def prepare(self):
        if "transfernet" not in self.models:
            model = self._build_model()
            if self.init_encoder(model):
                self.note_revived(revive_dead_layers(model, self.init_batch(), ENCODER_CONVS))
            else:
                unit_variance_init(model, self.init_batch(),
                                   [layer.name for layer in model.layers if layer.name.startswith("conv") and layer.weights])
            self.models["transfernet"] = model
            self.models["cam"] = build_cam_classifier(shapes.NUM_OBJECT_CLASSES, self.input_shape,
                                                      encoder_model=model)

    def validation(self, stage_name):
        """Stage ``pretrain`` on whole source-domain val images; stage ``segmentation`` on figure-ground
        pairs of the *target*-domain val images (2 classes), whose masks training never sees."""
        if stage_name == "segmentation":
            return self.val_class_pairs("target", target="both"), "seg-score"
        return super().validation(stage_name)

    def _freeze_encoder(self):
        for layer in self.models["transfernet"].layers:
            if layer.name.startswith("conv") and layer.weights:
                layer.trainable = False

    def init_decoder(self, model):
        """Data-dependent init (:func:`unit_variance_init`) of the decoder, before the stage that trains it.

        Its input, the saliency map ``filter_sum`` of 0.004-scaled conv5_3
        features, is of order 1e-3; through glorot-initialised deconvolutions
        without BN it fades to 1e-4 and the 2-class score is its biases: in 2
        of 3 seeds the decoder never left "all background" (measured with
        ``bench/decoder_signal.py``). Rescaled on a batch of source-domain
        figure-ground pairs, every decoder layer starts with unit-variance
        outputs. A resumed stage restores its checkpoint over this.
        """
        inputs, _ = next(iter(self.decoder_init_pairs().as_numpy_iterator()))
        names = [layer.name for layer in model.layers if layer.name.startswith("deconv")] + ["seg-score"]
        stds = unit_variance_init(model, [np.asarray(inputs["data"], "float32"), inputs["cls-label"]], names)
        print(f"[{self.name}] decoder initialised to unit variance on source-domain pairs: {len(stds)} layers",
              file=sys.stderr)
        return stds

    def decoder_init_pairs(self):
        """32 unaugmented source-domain figure-ground pairs for :meth:`init_decoder`."""
        return train_data.class_pairs(self.train_arrays(shapes.domain_indices("train", "source")), 32, self.size,
                                      scale_range=None, shuffle=False, seed=self.seed)

    def _domain_pairs(self, target):
        bs, size = self.hp["batch_size"], self.size
        source = self.train_arrays(shapes.domain_indices("train", "source"))
        tgt = self.train_arrays(shapes.domain_indices("train", "target"))
        return train_data.alternate(
            train_data.class_pairs(tgt, bs, size, masks=False, target=target, seed=self.seed + 5,
                                   invariances=self.invariances),
            train_data.class_pairs(source, bs, size, masks=True, target=target, seed=self.seed + 6,
                                   invariances=self.invariances),
        )

    def stages(self):
        bs = self.hp["batch_size"]

        def build_encoder():
            optimizer = FusedAdam(self.hp["encoder_lr"])
            return (self.models["cam"], keras.losses.BinaryCrossentropy(from_logits=True), None, optimizer,
                    [keras.metrics.BinaryAccuracy(threshold=0.0)])

        def build_attention():
            self._freeze_encoder()
            model = self.models["transfernet"]
            fit_model = keras.Model(model.inputs, model.output["cls-score-voc-att"], name="attention")
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            return (fit_model, loss, None, FusedAdam(self.hp["attention_lr"]),
                    [keras.metrics.SparseCategoricalAccuracy()])

        def build_segmentation():
            self._freeze_encoder()
            model = self.models["transfernet"]
            self.init_decoder(model)
            model = scaffolded(model, self.hp["scaffold_fade"], self.hp["segmentation_steps"],
                               self.hp["scaffold_drop"], self.seed, self.hp["scaffold_order"])
            fit_model = keras.Model(model.inputs, {"seg-score": model.output["seg-score"],
                                                   "cls-score-voc-att": model.output["cls-score-voc-att"]})
            losses = {"seg-score": seg_loss(self.hp["background_loss_weight"]),
                      "cls-score-voc-att": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
            weights = {"seg-score": self.hp["seg_loss_weight"], "cls-score-voc-att": 1.0}
            return fit_model, losses, weights, FusedAdam(self.hp["segmentation_lr"]), None

        return self.pretrain_stages() + [
            Stage("encoder", "cam", self.hp["encoder_steps"], build_encoder,
                  lambda: train_data.image_labels(self.train_arrays(), bs, self.size, seed=self.seed,
                                                          invariances=self.invariances), self.prepare),
            Stage("attention", "transfernet", self.hp["attention_steps"], build_attention,
                  lambda: self._domain_pairs("class"), self.prepare),
            Stage("segmentation", "transfernet", self.hp["segmentation_steps"], build_segmentation,
                  lambda: self._domain_pairs("both"), self.prepare),
        ]

    def export(self, calibration_batches=None):
        deploy = self._build_model(include_classifier=False)
        copy_weights_by_name(self.models["transfernet"], deploy)
        cam = build_cam_classifier(shapes.NUM_OBJECT_CLASSES, self.input_shape, width=self.config.get("width", 1 / 16))
        copy_weights_by_name(self.models["cam"], cam)
        return {"shapes": deploy, "cam-baseline": cam}


RECIPES = {cls.name: cls for cls in (DeconvNetRecipe, FCN8sRecipe, DecoupledNetRecipe, TransferNetRecipe)}


def get_recipe(name):
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Recipes: {', '.join(RECIPES)}.")
    return RECIPES[name]


def total_steps(recipe):
    return sum(stage.steps for stage in recipe.stages())


def ceil_div(a, b):
    return int(math.ceil(a / b))
