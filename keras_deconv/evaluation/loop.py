"""Evaluation and prediction engine behind ``keras-deconv evaluate`` and ``predict``.

Three pieces, usable from Python as well as from the CLI:

* :func:`load_segmenter` builds any zoo entry (any weights, builder
  overrides such as ``width=1/16``, a different number of classes, random
  initialisation) and wraps its pipeline in a :class:`Segmenter` with one
  interface for every model: ``segmenter.predict(images, image_labels=None)``
  returns one :class:`Prediction` (uint8 label map at the image's size, image
  scores, per-pixel probabilities) per image, whatever the model family.
* :func:`open_dataset` gives a :class:`DataSource` over the built-in
  ``shapes`` dataset or PASCAL VOC 2012 (read from the VOC folders, the same
  files as the ``voc2012_seg`` TFDS builder uses).
* :func:`evaluate` and :func:`score_predictions` accumulate **one**
  dataset-level :class:`~keras_deconv.metrics.ConfusionMatrix` (VOC devkit
  convention: ground truth 255 skipped, out-of-range labels counted and
  reported) and return an :class:`EvaluationReport`.

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
>>> seg = evaluation.load_segmenter("deconvnet", weights=None, num_classes=13,
...                                 config={"width": 1 / 16, "fc_units": 32})
>>> data = evaluation.open_dataset("shapes", "val", limit=2)
>>> report = evaluation.evaluate(seg, data)
>>> report.count, 0.0 <= report.confusion.mean_iou <= 1.0
(2, True)
>>> seg.weights_label
'none (random initialisation)'
"""

import ast
import dataclasses
import inspect
import json
import math
import os
import sys
import time

import numpy as np

from keras_deconv import viz
from keras_deconv._atomic import write_atomically
from keras_deconv.images import read_image
from keras_deconv.metrics import ConfusionMatrix

__all__ = [
    "RANDOM_WEIGHTS_LABEL",
    "DataError",
    "DataSource",
    "EvaluationReport",
    "Example",
    "Prediction",
    "Segmenter",
    "check_compatible",
    "check_planned",
    "crf_available",
    "evaluate",
    "example_gallery",
    "load_segmenter",
    "open_dataset",
    "parse_config",
    "planned_num_labels",
    "score_predictions",
    "write_json",
]

RANDOM_WEIGHTS_LABEL = "none (random initialisation)"
_CRF_HINT = "install keras-deconv[crf] (pip install 'keras-deconv[crf]', which provides pydensecrf2)"


class DataError(ValueError):
    """A dataset, split or prediction folder is missing, incomplete or inconsistent."""


# =============================================================================== config parsing
def parse_config(items):
    """Parses ``KEY=VALUE`` strings into a dict; values are Python literals when they parse.

    ``width=0.0625`` gives a float, ``input_shape=(64,64,3)`` a tuple,
    ``batch_norm=folded`` the string ``"folded"``, ``x=none`` None,
    ``x=true`` True.

    Args:
        items: Iterable of ``"KEY=VALUE"`` strings.

    Returns:
        A dict.

    Raises:
        ValueError: An item has no ``=`` or an empty key.

    Example:

    >>> parse_config(["width=0.0625", "fc_units=32", "input_shape=(64,64,3)", "mode=whole"])
    {'width': 0.0625, 'fc_units': 32, 'input_shape': (64, 64, 3), 'mode': 'whole'}
    """
    out = {}
    for item in items or ():
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key or not key.isidentifier():
            raise ValueError(f"Expected KEY=VALUE (e.g. width=0.0625). Received: {item!r}")
        raw = raw.strip()
        lowered = raw.lower()
        if lowered in ("none", "null"):
            value = None
        elif lowered in ("true", "false"):
            value = lowered == "true"
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        out[key] = value
    return out


# =============================================================================== segmenter
@dataclasses.dataclass
class Prediction:
    """One image's result.

    Attributes:
        labels: ``(H, W)`` uint8 label map at the image's size (0 = background).
        scores: Image-level scores as the pipeline defines them (may be None).
        probabilities: ``(H, W, L)`` float32 per-pixel maps (may be None).
        class_ids: Classes the pipeline looked for (TransferNet/DecoupledNet:
            the queried/detected ids; None for dense models).
        attention: TransferNet only: ``{class id: (H, W) float32 map}`` at
            the image's size, rescaled to [0, 1] per class.
    """

    labels: np.ndarray
    scores: np.ndarray = None
    probabilities: np.ndarray = None
    class_ids: list = None
    attention: dict = None


def crf_available():
    """True if the dense-CRF extra (``pydensecrf2``) is importable.

    Example:

    >>> isinstance(crf_available(), bool)
    True
    """
    try:
        import pydensecrf.densecrf  # noqa: F401
    except Exception:  # noqa: BLE001 - any import problem means "not available"
        return False
    return True


def _accepted_arguments(cls):
    """Keyword arguments of ``cls.__init__``, following ``**options`` into the base classes."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return names
    return None  # accepts anything (object.__init__ reached through **kwargs)


def _pipeline_settings(cls, card_settings, user_settings, notes):
    accepted = _accepted_arguments(cls)

    def translate(settings, from_user):
        out = {}
        for key, value in settings.items():
            if accepted is not None and key not in accepted:
                if from_user:
                    raise ValueError(
                        f"{cls.__name__} has no option {key!r}. Options: {', '.join(sorted(accepted))}."
                    )
                notes.append(f"model card option {key}={value!r} is not understood by {cls.__name__}; ignored")
                continue
            out[key] = value
        return out

    settings = translate(card_settings, False)
    settings.update(translate(user_settings, True))
    return settings


def _builder_config(builder, config):
    """Keeps only the overrides a builder accepts (EDeconvNet builds two different models)."""
    from keras_deconv import models

    params = inspect.signature(getattr(models, builder)).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(config)
    return {k: v for k, v in config.items() if k in params}


def _check_config(builders, config):
    from keras_deconv import models

    known = set()
    for builder in builders:
        known |= set(inspect.signature(getattr(models, builder)).parameters)
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"Unknown builder option(s) {', '.join(unknown)} for {' + '.join(builders)}. "
            f"Options: {', '.join(sorted(known - {'num_classes', 'weights', 'name'}))}."
        )
    for reserved in ("num_classes", "weights"):
        if reserved in config:
            raise ValueError(f"Pass {reserved} with its own option (--{reserved.replace('_', '-')}), not in the config.")


def _builder_classes(builder, num_labels):
    """Builder ``num_classes`` for a segmenter with ``num_labels`` outputs (background included)."""
    if builder in ("DecoupledNet", "TransferNet"):
        return num_labels - 1
    return num_labels


class Segmenter:
    """One interface over every zoo pipeline (use :func:`load_segmenter` to build one).

    Attributes:
        name: Zoo entry name.
        family: Builder name (``"DeconvNet"``, ``"DecoupledNet"``, ...).
        pipeline: The underlying :mod:`keras_deconv.pipelines` object.
        num_labels: Labels the segmenter can output, background included.
        class_names: ``num_labels`` names.
        weights_label: Human-readable weights, e.g. ``"voc2012"`` or
            :data:`RANDOM_WEIGHTS_LABEL`.
        weights_info: Dict with tag/path, random flag and re-initialised layers.
        needs_image_labels: True when ``predict`` needs ``image_labels``
            (TransferNet without a classifier).
        crf: Whether a dense CRF is applied.
        notes: Messages about how the pipeline was set up.
    """

    def __init__(self, *, name, family, pipeline, num_labels, class_names, weights_label, weights_info,
                 needs_image_labels=False, crf=False, notes=(), config=None, pipeline_options=None):
        self.name, self.family, self.pipeline = name, family, pipeline
        self.num_labels, self.class_names = int(num_labels), list(class_names)
        self.weights_label, self.weights_info = weights_label, weights_info
        self.needs_image_labels, self.crf = needs_image_labels, crf
        self.notes = list(notes)
        self.config = dict(config or {})
        self.pipeline_options = dict(pipeline_options or {})

    @property
    def accepts_image_labels(self):
        """True when ``predict`` can take known class ids (TransferNet, DecoupledNet: oracle evaluation)."""
        return self.family in ("TransferNet", "DecoupledNet")

    @property
    def is_random(self):
        """True if the weights are a random initialisation."""
        return bool(self.weights_info.get("random"))

    def describe(self):
        """A JSON-serialisable summary of the model and its weights."""
        return {
            "name": self.name,
            "family": self.family,
            "weights": self.weights_label,
            "weights_detail": self.weights_info,
            "num_labels": self.num_labels,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.config.items()},
            "pipeline_options": self.pipeline_options,
            "crf": self.crf,
            "notes": self.notes,
        }

    def predict(self, images, image_labels=None):
        """Segments a list of RGB images of any sizes.

        Args:
            images: List of ``(H, W, 3)`` uint8 RGB arrays.
            image_labels: For class-conditional pipelines, one list of class
                ids (1-based label ids, i.e. values in the label map) per
                image. Required when :attr:`needs_image_labels`.

        Returns:
            A list of :class:`Prediction`, one per image, label maps at each
            image's original size.
        """
        images = [np.asarray(image) for image in images]
        if not images:
            return []
        if image_labels is None and self.needs_image_labels:
            raise ValueError(
                f"{self.name} needs image-level labels (class ids per image): the authors' "
                "classifier was not released."
            )
        if image_labels is not None and not self.accepts_image_labels:
            raise ValueError(f"{self.name} ({self.family}) does not take image-level labels.")
        if image_labels is not None:
            results = self.pipeline(images, labels=[[int(i) for i in ids] for ids in image_labels])
        else:
            results = self.pipeline(images)
        out = []
        for k, result in enumerate(results):
            labels = np.asarray(getattr(result, "labels", result))
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise ValueError(f"{self.name} returned labels outside 0..255 (min {labels.min()}, max {labels.max()}).")
            class_ids = None
            if image_labels is not None:
                class_ids = sorted({int(i) for i in image_labels[k]})
            elif self.family == "DecoupledNet" and getattr(result, "scores", None) is not None:
                threshold = getattr(self.pipeline, "threshold", 0.5)
                class_ids = (np.flatnonzero(np.asarray(result.scores) > threshold) + 1).tolist()
            attention = getattr(result, "attention", None)
            if attention:
                attention = {int(k): _unit_range(v) for k, v in attention.items()}
            out.append(Prediction(
                labels=labels.astype(np.uint8),
                scores=getattr(result, "scores", None),
                probabilities=getattr(result, "probabilities", None),
                class_ids=class_ids,
                attention=attention or None,
            ))
        return out


def is_exported_model(path):
    """True for a TFLite export :func:`load_exported_segmenter` takes: a ``.tflite`` file, or a folder with ``manifest.json``.

    Example:

    >>> is_exported_model("deconvnet"), is_exported_model("missing.tflite")
    (False, True)
    """
    path = os.fspath(path)
    return path.lower().endswith(".tflite") or (os.path.isdir(path) and os.path.isfile(os.path.join(path, "manifest.json")))


def load_exported_segmenter(path, class_names=None, pipeline_options=None, xnnpack=True, num_threads=None,
                            weight_cache=None):
    """A :class:`Segmenter` over a TFLite export, run by LiteRT (:mod:`keras_deconv.lite`).

    What ``keras-deconv evaluate PATH`` and ``keras-deconv predict PATH``
    run: the deployed artifact itself, with the same pre- and post-processing
    as the Keras pipelines, so its mIoU can be compared with the Keras model's.

    Args:
        path: a DeconvNet / FCN-8s ``.tflite`` file or a DecoupledNet /
            TransferNet export folder.
        class_names: names of the labels when the export does not record them
            (a ``.tflite`` file exported from a Keras model rather than a zoo
            name): used if their count fits, else ``class_1``, ``class_2``, ...
        pipeline_options: ``threshold`` (DecoupledNet, TransferNet) and
            ``background_weight`` (TransferNet).
        xnnpack, num_threads, weight_cache: see :func:`keras_deconv.lite.load`.

    Raises:
        ValueError: not a loadable export (with the export command), or an
            option the pipeline does not take.
        FileNotFoundError: nothing at ``path``.

    Example:

    >>> import os, tempfile, tensorflow as tf
    >>> from keras_deconv import export
    >>> from keras_deconv.models import DeconvNet
    >>> model = DeconvNet(num_classes=3, width=1 / 16, fc_units=32, fc_kernel_size=2, input_shape=(64, 64, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "deconvnet.tflite")
    >>> _ = export.to_tflite(model, path, input_signature=[tf.TensorSpec((1, 64, 64, 3), tf.float32, name="images")])
    >>> segmenter = load_exported_segmenter(path, class_names=["background", "cat", "dog"])
    >>> segmenter.family, segmenter.num_labels, segmenter.predict([np.zeros((20, 30, 3), "uint8")])[0].labels.shape
    ('DeconvNet / FCN-8s (TFLite)', 3, (20, 30))
    """
    from keras_deconv import lite

    path = os.fspath(path)
    options = dict(pipeline_options or {})
    try:
        pipeline = lite.load(path, xnnpack=xnnpack, num_threads=num_threads, weight_cache=weight_cache, **options)
    except TypeError as error:  # an option the pipeline class does not take
        raise ValueError(f"{path}: unknown pipeline option(s) {sorted(options)} for this export "
                         f"(DecoupledNet: threshold; TransferNet: threshold, background_weight): {error}") from None
    recorded_names = None
    if isinstance(pipeline, lite.LiteDenseSegmenter):
        family = "DeconvNet / FCN-8s (TFLite)"
        num_labels = int(pipeline.model.outputs["scores"]["shape"][-1])
        quantize = pipeline.metadata.get("quantize")
        recorded_names = pipeline.class_names
    else:
        family = {"decouplednet": "DecoupledNet", "transfernet": "TransferNet"}[pipeline.manifest["kind"]]
        num_labels = int(pipeline.num_classes) + 1
        quantize = pipeline.manifest.get("quantize")
        recorded_names = pipeline.manifest.get("class_names")
    if recorded_names and len(recorded_names) == num_labels:
        names = list(recorded_names)
    elif class_names is not None and len(class_names) == num_labels:
        names = list(class_names)
    else:
        names = _generic_label_names(num_labels)
    label = f"exported TFLite {path}" + (f" ({quantize})" if quantize and quantize != "none" else "")
    return Segmenter(name=os.path.basename(os.path.normpath(path)), family=family, pipeline=pipeline,
                     num_labels=num_labels, class_names=names, weights_label=label,
                     weights_info={"path": os.path.abspath(path), "format": "tflite", "quantize": quantize,
                                   "random": False},
                     needs_image_labels=family == "TransferNet", pipeline_options=options)


def _unit_range(values):
    values = np.nan_to_num(np.asarray(values, np.float32))
    values = values - values.min() if values.size else values
    top = values.max() if values.size else 0.0
    return values / top if top > 0 else values


def card_label_names(card, family, num_labels):
    """The card's names for ``num_labels`` labels (background first), or None when its label space does not fit.

    TransferNet labels are its query classes after background; other models
    use the card's categories.
    """
    if family == "TransferNet" and card.get("query_label_names"):
        names = ["background"] + list(card["query_label_names"])
        if len(names) == num_labels:
            return names
    names = card.get("category_names") or []
    return list(names) if len(names) == num_labels else None


def _class_names_for(card, family, num_labels, fallback=None):
    """Names of the segmenter's labels: the card's label space if the count fits."""
    names = card_label_names(card, family, num_labels)
    if names is not None:
        return names
    if fallback is not None and len(fallback) == num_labels:
        return list(fallback)
    return _generic_label_names(num_labels)


def _generic_label_names(num_labels):
    """``background, class_1, class_2, ...``: labels nobody named."""
    return ["background"] + [f"class_{i}" for i in range(1, num_labels)]


def _weights_argument(weights):
    from keras_deconv.zoo import registry

    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("none", "random")):
        return None
    if weights in ("", "default"):
        return registry.DEFAULT
    return os.fspath(weights) if not isinstance(weights, str) else weights


def planned_num_labels(name, num_classes=None):
    """Labels (background included) that :func:`load_segmenter` would give, without building anything.

    Args:
        name: Zoo name.
        num_classes: The override, or None for the card's label space.

    Returns:
        An int: e.g. 21 for ``deconvnet``, 81 for ``transfernet`` (background
        + its 80-class query space), ``num_classes`` when given.

    Example:

    >>> planned_num_labels("deconvnet"), planned_num_labels("transfernet"), planned_num_labels("fcn8s", 13)
    (21, 81, 13)
    """
    from keras_deconv import zoo

    if num_classes is not None:
        return int(num_classes)
    card = zoo.info(name)
    builder = card["architecture"]["builder"]
    builder = builder[0] if isinstance(builder, list) else builder
    if builder == "TransferNet":
        return card["architecture"]["num_classes"] + 1
    return len(card.get("category_names") or []) or card["architecture"]["num_classes"]


def load_segmenter(name, weights="default", num_classes=None, config=None, pipeline_options=None, crf=False,
                   class_names=None, seed=None):
    """Builds a zoo entry and wraps its pipeline in a :class:`Segmenter`.

    Args:
        name: Zoo name (``keras-deconv list``), optionally with a tag
            (``"decouplednet.25"``).
        weights: ``"default"`` (the card's default tag), a tag, a path to a
            ``.weights.h5``/``.caffemodel`` file, or None / ``"none"`` for a
            random initialisation (clearly labelled as such everywhere).
        num_classes: Labels to output, background included (e.g. 13 for
            ``shapes``); None keeps the card's. With pretrained weights the
            classifier is re-initialised (the body is kept).
        config: Builder overrides, e.g. ``{"width": 1/16, "fc_units": 32}``.
        pipeline_options: Pipeline overrides, e.g. ``{"threshold": 0.3}``.
        crf: Apply a dense CRF (needs ``keras-deconv[crf]`` and a pipeline
            with a ``crf`` hook).
        class_names: Names to use when the label count differs from the
            card's label space (e.g. the ``shapes`` names).
        seed: If given, ``keras.utils.set_random_seed(seed)`` before building
            (reproducible random initialisations).

    Returns:
        A :class:`Segmenter`.

    Raises:
        ValueError: Unknown name, option or weights; ``crf`` unavailable.
        keras_deconv.zoo.WeightsError: The weights are not in the local cache.

    Example:

    >>> seg = load_segmenter("fcn8s", weights="none", num_classes=3, config={"width": 1 / 16, "fc_units": 16})
    >>> seg.num_labels, seg.is_random
    (3, True)
    """
    from keras_deconv import pipelines, zoo
    from keras_deconv.zoo import registry

    card = zoo.info(name)
    base = card["name"]
    builders = card["architecture"]["builder"]
    builders = builders if isinstance(builders, list) else [builders]
    family = builders[0]
    ensemble = len(builders) > 1
    config = dict(config or {})
    _check_config(builders, config)
    user_options = dict(pipeline_options or {})
    notes = []

    num_labels = planned_num_labels(name, num_classes)
    if num_labels < 2 and family in ("DecoupledNet", "TransferNet"):
        raise ValueError(f"{base} needs num_classes >= 2 (background + at least one class).")
    if num_labels < 1 or num_labels > 256:
        raise ValueError(f"Expected 1 <= num_classes <= 256. Received: num_classes={num_labels}")
    builder_classes = None if num_classes is None else _builder_classes(family, num_labels)

    # The pipeline class: the card's, or the closest existing one (checked before building anything).
    spec = card["pipeline"]
    cls_name = spec["class"]
    cls = getattr(pipelines, cls_name, None)
    if cls is None:
        raise ValueError(f"The pipeline class {cls_name!r} of {base!r} is not in keras_deconv.pipelines.")
    accepted = _accepted_arguments(cls)
    settings = _pipeline_settings(cls, spec.get("config", {}), user_options, notes)
    if crf:
        if accepted is not None and "crf" not in accepted:
            raise ValueError(f"The {base} pipeline ({cls.__name__}) has no CRF step; run it without --crf.")
        if not crf_available():
            raise ValueError(f"--crf needs the dense CRF: {_CRF_HINT}.")
        from keras_deconv.crf import DenseCRF

        settings["crf"] = DenseCRF()

    weights_arg = _weights_argument(weights)
    if seed is not None:
        import keras

        keras.utils.set_random_seed(int(seed))

    if ensemble:
        parts = {}
        if weights_arg is not None and not (weights_arg == registry.DEFAULT or weights_arg in card["weights"]):
            raise ValueError(f"{base} is an ensemble of two models: weights must be a tag "
                             f"({', '.join(card['weights'])}) or none, not a file.")
        for builder, part_name in zip(builders, ("deconvnet", "fcn8s")):
            part_weights = registry._required(card, weights_arg, part_name)
            parts[part_name] = zoo.create_model(part_name, weights=part_weights, num_classes=builder_classes,
                                                **_builder_config(builder, config))
        models_used = [parts["deconvnet"], parts["fcn8s"]]
    else:
        models_used = [zoo.create_model(name, weights=weights_arg, num_classes=builder_classes, **config)]
    model = models_used[0]

    if weights_arg is None:
        weights_label = RANDOM_WEIGHTS_LABEL
        weights_info = {"tag": None, "path": None, "random": True, "reinitialised": []}
    else:
        reinit = sorted({layer for m in models_used for layer in (getattr(m, "zoo_info", {}) or {}).get("reinitialised", [])})
        if weights_arg == registry.DEFAULT or weights_arg in card["weights"]:
            _, tag = registry.resolve_tag(name, weights_arg)
            weights_info = {"tag": tag, "path": None, "random": False, "reinitialised": reinit}
            weights_label = tag
        else:
            weights_info = {"tag": None, "path": os.path.abspath(weights_arg), "random": False, "reinitialised": reinit}
            weights_label = os.path.abspath(weights_arg)
        if reinit:
            weights_label += f" (classifier re-initialised at random for {num_labels} classes: {', '.join(reinit)})"

    if ensemble:
        pipeline = cls(models_used[0], models_used[1], **settings)
    else:
        pipeline = cls(model, **settings)

    needs_labels = family == "TransferNet" and getattr(pipeline, "classifier", None) is None
    names = _class_names_for(card, family, num_labels, class_names)
    return Segmenter(
        name=base, family=family, pipeline=pipeline, num_labels=num_labels, class_names=names,
        weights_label=weights_label, weights_info=weights_info, needs_image_labels=needs_labels,
        crf=bool(crf), notes=notes, config=config, pipeline_options=user_options,
    )


# =============================================================================== datasets
@dataclasses.dataclass
class Example:
    """One evaluation example.

    Attributes:
        id: Image id (the name of its label PNG without ``.png``).
        image: ``(H, W, 3)`` uint8 RGB image, or None when only labels are needed.
        label: ``(H, W)`` uint8 ground truth (255 = void).
        image_labels: Sorted 1-based class ids present in the image.
    """

    id: str
    image: np.ndarray
    label: np.ndarray
    image_labels: list


class DataSource:
    """A split of a dataset to evaluate on (see :func:`open_dataset`).

    Attributes:
        name: ``"shapes"`` or ``"voc2012"``.
        split: The split name.
        class_names: Names of the ``num_classes`` labels (background first).
        ids: Ids of the selected examples, in order.
        all_ids: Ids of the whole split (to tell extra prediction files).
        description: One line saying which data and list this is.
        image_labels_source: Where image-level labels come from.
    """

    name = split = description = image_labels_source = ""
    class_names = ()
    ids = all_ids = ()

    @property
    def num_classes(self):
        return len(self.class_names)

    def __len__(self):
        return len(self.ids)

    def examples(self, with_images=True):
        """Yields :class:`Example` objects in order."""
        raise NotImplementedError


class _ShapesSource(DataSource):
    def __init__(self, split, limit=None, image_size=64):
        from keras_deconv.datasets import shapes

        if split not in shapes.SPLITS:
            raise DataError(f"shapes has no split {split!r}. Splits: {', '.join(shapes.SPLITS)}.")
        self._shapes = shapes
        self.name, self.split, self.image_size = "shapes", split, int(image_size)
        self.class_names = tuple(shapes.CLASS_NAMES)
        total = shapes.SPLITS[split]
        count = total if limit is None else min(int(limit), total)
        self._indices = list(range(count))
        self.ids = [self._id(i) for i in self._indices]
        self.all_ids = [self._id(i) for i in range(total)]
        self.description = (f"shapes (built-in synthetic, {shapes.NUM_CLASSES} classes), split {split!r}: "
                            f"{count} of {total} images, {self.image_size}x{self.image_size}")
        self.image_labels_source = "the dataset's image-level labels (objects present in the image)"

    def _id(self, index):
        return f"{self.split}_{index:05d}"

    def examples(self, with_images=True):
        for index in self._indices:
            ex = self._shapes.generate_example(self.split, index, self.image_size)
            ids = (np.flatnonzero(ex["image_labels"]) + 1).tolist()
            yield Example(self._id(index), ex["image"] if with_images else None, ex["label"], ids)


_VOC_LAYOUTS = [("VOCdevkit", "VOC2012"), ("VOC2012",), ("VOCtrainval_11-May-2012", "VOCdevkit", "VOC2012")]


class _VocSource(DataSource):
    def __init__(self, split, data_dir, limit=None):
        if not data_dir:
            raise DataError(
                "--data voc2012 needs --data-dir DIR: the folder holding VOCdevkit/VOC2012/ (extracted from "
                "VOCtrainval_11-May-2012.tar; add benchmark_RELEASE/ from SBD's benchmark.tgz for train_aug)."
            )
        data_dir = os.path.expanduser(os.fspath(data_dir))
        if not os.path.isdir(data_dir):
            raise DataError(f"VOC data directory not found: {data_dir}")
        from keras_deconv.datasets import voc

        root = voc._find_dir(data_dir, _VOC_LAYOUTS)
        if root is None:
            if os.path.isfile(os.path.join(data_dir, voc.VOC_TAR)):
                raise DataError(
                    f"{data_dir} holds {voc.VOC_TAR} but not its extracted VOCdevkit/VOC2012/; "
                    f"extract it first (tar xf {os.path.join(data_dir, voc.VOC_TAR)} -C {data_dir})."
                )
            raise DataError(f"PASCAL VOC 2012 not found in {data_dir}: expected VOCdevkit/VOC2012/ "
                            f"(from {voc.VOC_TAR}) or VOC2012/.")
        seg_sets = os.path.join(root, "ImageSets", "Segmentation")
        self.name, self.split, self.root = "voc2012", split, root
        self.class_names = tuple(voc.CLASS_NAMES)
        self._sbd = None
        if split in ("train", "val"):
            list_file = os.path.join(seg_sets, f"{split}.txt")
            if not os.path.isfile(list_file):
                raise DataError(f"VOC split list missing: {list_file}")
            ids = voc._read_ids(list_file)
            listing = f"ImageSets/Segmentation/{split}.txt"
        elif split == "train_aug":
            sbd = voc._find_dir(data_dir, [("benchmark_RELEASE", "dataset"), ("dataset",)])
            if sbd is None:
                raise DataError(f"train_aug needs SBD: benchmark_RELEASE/dataset/ (from {voc.SBD_TGZ}) not found in {data_dir}.")
            lists = [os.path.join(seg_sets, "train.txt"), os.path.join(seg_sets, "val.txt"),
                     os.path.join(sbd, "train.txt"), os.path.join(sbd, "val.txt")]
            missing = [p for p in lists if not os.path.isfile(p)]
            if missing:
                raise DataError(f"Split list(s) missing: {', '.join(missing)}")
            train, val, sbd_train, sbd_val = (voc._read_ids(p) for p in lists)
            ids = sorted((set(sbd_train) | set(sbd_val) | set(train)) - set(val))
            self._sbd = sbd
            listing = "train_aug = SBD train + SBD val + VOC train - VOC val"
        elif split == "test":
            raise DataError("VOC 2012 test has no public labels; evaluate on 'val' (or submit test results to the VOC server).")
        else:
            raise DataError(f"voc2012 has no split {split!r}. Splits: train, val, train_aug.")
        self.all_ids = list(ids)
        self.ids = ids if limit is None else ids[: int(limit)]
        missing = []
        for image_id in self.ids:
            image, label = self._files(image_id)
            if image is None:
                missing.append(f"JPEGImages/{image_id}.jpg")
            if label is None:
                missing.append(f"SegmentationClass/{image_id}.png")
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DataError(f"{len(missing)} file(s) of VOC {split} missing under {root}: {shown}")
        self.description = (f"PASCAL VOC 2012 {split} ({listing}): {len(self.ids)} of {len(ids)} images "
                            f"from {root}")
        self.image_labels_source = "the classes present in each ground-truth mask (255 excluded)"

    def _files(self, image_id):
        image = os.path.join(self.root, "JPEGImages", f"{image_id}.jpg")
        label = os.path.join(self.root, "SegmentationClass", f"{image_id}.png")
        if self._sbd is not None:
            if not os.path.isfile(image):
                image = os.path.join(self._sbd, "img", f"{image_id}.jpg")
            if not os.path.isfile(label):
                label = os.path.join(self._sbd, "cls", f"{image_id}.mat")
        return (image if os.path.isfile(image) else None), (label if os.path.isfile(label) else None)

    def examples(self, with_images=True):
        from keras_deconv.datasets import voc

        for image_id in self.ids:
            image_path, label_path = self._files(image_id)
            label = voc.read_sbd_mat(label_path) if label_path.endswith(".mat") else viz.read_label_png(label_path)
            label = np.asarray(label, dtype=np.uint8)
            image = read_image(image_path, max_pixels=0) if with_images else None
            if image is not None and image.shape[:2] != label.shape:
                raise DataError(f"{image_id}: image {image.shape[:2]} and label {label.shape} sizes differ.")
            present = np.unique(label)
            ids = [int(c) for c in present if 0 < c < len(self.class_names)]
            yield Example(image_id, image, label, ids)


def open_dataset(data, split, data_dir=None, limit=None, image_size=64):
    """Opens a split for evaluation.

    Args:
        data: ``"shapes"`` (built in, no files) or ``"voc2012"``.
        split: shapes: ``train``/``val``/``test``; voc2012: ``train``,
            ``val`` (1,449 images, the standard evaluation list) or
            ``train_aug`` (needs SBD).
        data_dir: voc2012 only: the manual directory of the ``voc2012_seg``
            builder, i.e. the folder holding ``VOCdevkit/VOC2012/`` (and
            ``benchmark_RELEASE/`` for ``train_aug``).
        limit: Use only the first ``limit`` images of the list.
        image_size: shapes only: image side (multiple of 32, >= 64).

    Returns:
        A :class:`DataSource`.

    Raises:
        DataError: Unknown data/split, or missing directory/files (one line
            naming what is missing).

    Example:

    >>> src = open_dataset("shapes", "val", limit=3)
    >>> len(src), src.num_classes, src.ids[0]
    (3, 13, 'val_00000')
    """
    if limit is not None and int(limit) < 1:
        raise DataError(f"Expected limit >= 1. Received: limit={limit}")
    if data == "shapes":
        return _ShapesSource(split, limit, image_size)
    if data in ("voc2012", "voc"):
        return _VocSource(split, data_dir, limit)
    raise DataError(f"Unknown dataset {data!r}: expected 'shapes' or 'voc2012'.")


# =============================================================================== evaluation
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


class _Progress:
    """Progress on stderr: a ``\\r`` line on a terminal, a line every ~10% otherwise."""

    def __init__(self, total, stream=None, label="evaluating", enabled=True):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.every = max(1, total // 10)
        self._last_len = 0

    def update(self, done, miou=None):
        if not self.enabled:
            return
        final = done >= self.total
        if not self.tty and not final and done % self.every:
            return
        elapsed = time.perf_counter() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        width = 24
        filled = int(width * done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        text = f"{self.label} [{bar}] {done}/{self.total}  {rate:.2f} img/s"
        if miou is not None and not math.isnan(miou):
            text += f"  mIoU {100 * miou:.2f}%"
        text += f"  {elapsed:.1f}s"
        if self.tty:
            pad = " " * max(0, self._last_len - len(text))
            self.stream.write("\r" + text + pad + ("\n" if final else ""))
            self._last_len = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


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
    n = source.num_classes
    names = list(source.class_names)
    if num_labels == n:
        return
    if num_labels > n and [s.lower() for s in model_names[:n]] == [s.lower() for s in names]:
        return
    hint = ""
    if source.name == "shapes":
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


def check_planned(name, num_classes, source):
    """:func:`check_compatible` from the model card alone (nothing is built).

    Example:

    >>> src = open_dataset("shapes", "val", limit=1)
    >>> check_planned("deconvnet", 13, src)  # fine
    >>> try:
    ...     check_planned("deconvnet", None, src)
    ... except ValueError as error:
    ...     print(str(error)[:42])
    deconvnet outputs 21 classes but shapes ha
    """
    from keras_deconv import zoo

    card = zoo.info(name)
    builder = card["architecture"]["builder"]
    family = builder[0] if isinstance(builder, list) else builder
    n = planned_num_labels(name, num_classes)
    _check_labels(card["name"], n, _class_names_for(card, family, n, source.class_names), source)


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

    >>> seg = load_segmenter("deconvnet", weights=None, num_classes=13, config={"width": 1 / 16, "fc_units": 16})
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


# =============================================================================== outputs
def _pad_to(rgb, height, width):
    out = np.full((height, width, 3), 255, np.uint8)
    out[: rgb.shape[0], : rgb.shape[1]] = rgb
    return out


def example_gallery(rows, class_names, title=None, target_side=192):
    """One RGB picture: a row per example with image | ground truth | prediction and a legend.

    Cells of different sizes are padded (white, bottom/right) to the largest;
    small images are enlarged by an integer factor up to ``target_side``.

    Args:
        rows: ``(id, image, ground_truth, prediction)`` tuples (the image
            may be None).
        class_names: Names for the legend (indexed by label id).
        title: Optional line drawn at the top (e.g. model and weights).
        target_side: Enlarge cells whose longer side is below this.

    Returns:
        ``(H, W, 3)`` uint8 image; write it with :func:`keras_deconv.viz.save_image`.

    Example:

    >>> img = np.zeros((8, 8, 3), np.uint8); lab = np.ones((8, 8), np.uint8)
    >>> example_gallery([("a", img, lab, lab)], ["bg", "fg"]).shape[2]
    3
    """
    if not rows:
        raise ValueError("No examples to draw.")
    height = max(r[2].shape[0] for r in rows)
    width = max(r[2].shape[1] for r in rows)
    scale = max(1, int(target_side // max(height, width)))
    present = set()
    cells = []
    id_height = 12
    for image_id, image, truth, pred in rows:
        present.update(np.unique(truth).tolist())
        present.update(np.unique(pred).tolist())
        truth_rgb = viz.colorize(truth)
        pred_rgb = viz.colorize(pred)
        image_rgb = np.asarray(image, np.uint8) if image is not None else np.full_like(truth_rgb, 255)
        cells.append((image_id, [_pad_to(c, height, width) for c in (image_rgb, truth_rgb, pred_rgb)]))
    blocks = []
    for image_id, row in cells:
        grid = viz.gallery([tuple(row)], titles=None, scale=scale, pad=2)
        label = viz._text_image(str(image_id), id_height)[:, : grid.shape[1]]
        strip = np.full((id_height, grid.shape[1], 3), 255, np.uint8)
        strip[:, : label.shape[1]] = label
        blocks.append(np.concatenate([strip, grid], axis=0))
    header = viz.gallery([tuple(cells[0][1])], titles=("image", "ground truth", "prediction"), scale=scale, pad=2)
    header = header[:14]
    total_width = blocks[0].shape[1]
    parts = []
    if title:
        text = viz._text_image(str(title), 14)[:, :total_width]
        line = np.full((14, total_width, 3), 255, np.uint8)
        line[:, : text.shape[1]] = text
        parts.append(line)
    parts.append(header)
    parts.extend(blocks)
    legend = viz.legend(class_names, sorted(present), columns=max(1, total_width // 120))[:, :total_width]
    bottom = np.full((legend.shape[0] + 4, total_width, 3), 255, np.uint8)
    bottom[2 : 2 + legend.shape[0], : legend.shape[1]] = legend
    parts.append(bottom)
    return np.concatenate(parts, axis=0)


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
