"""Building segmenters: from a TFLite export, or from a model card and its Keras models.

The zoo builds a zoo entry by name (:func:`keras_deconv.zoo.load_segmenter`)
with the card-reading helpers here; this module never resolves a zoo name.
"""

import inspect
import os

from keras_deconv.evaluation.segmenter import Segmenter

_CRF_HINT = "install keras-deconv[crf] (pip install 'keras-deconv[crf]', which provides pydensecrf2)"


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


def card_builders(card):
    """The builder names of a card's architecture: one, or two for an ensemble (EDeconvNet).

    >>> card_builders({"architecture": {"builder": ["DeconvNet", "FCN8s"]}})
    ['DeconvNet', 'FCN8s']
    """
    builders = card["architecture"]["builder"]
    return list(builders) if isinstance(builders, list) else [builders]


def builder_config(builder, config):
    """Keeps only the overrides a builder accepts (EDeconvNet builds two different models).

    >>> builder_config("FCN8s", {"width": 0.5, "fc_kernel_size": 2})
    {'width': 0.5}
    """
    from keras_deconv import models

    params = inspect.signature(getattr(models, builder)).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(config)
    return {k: v for k, v in config.items() if k in params}


def check_builder_config(builders, config):
    """Raises ValueError for a builder override none of ``builders`` takes, or for ``num_classes`` / ``weights``.

    >>> check_builder_config(["DeconvNet"], {"width": 0.0625})
    >>> try:
    ...     check_builder_config(["DeconvNet"], {"widht": 0.0625})
    ... except ValueError as error:
    ...     print(str(error)[:46])
    Unknown builder option(s) widht for DeconvNet.
    """
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


def builder_num_classes(builder, num_labels):
    """Builder ``num_classes`` for a segmenter with ``num_labels`` outputs (background included).

    >>> builder_num_classes("DeconvNet", 21), builder_num_classes("TransferNet", 21)
    (21, 20)
    """
    if builder in ("DecoupledNet", "TransferNet"):
        return num_labels - 1
    return num_labels


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
        pipeline_options: ``threshold`` (DecoupledNet, TransferNet),
            ``background_weight`` (TransferNet) and ``tta`` (all).
        xnnpack, num_threads, weight_cache: see :func:`keras_deconv.lite.load`.

    Raises:
        ValueError: not a loadable export (with the export command), or an
            option the pipeline does not take.
        FileNotFoundError: nothing at ``path``.

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
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
                         f"(all: tta; DecoupledNet: threshold; TransferNet: threshold, background_weight): {error}") from None
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


def label_names(card, family, num_labels, fallback=None):
    """Names of a segmenter's labels: the card's label space if the count fits, else ``fallback``, else generic.

    >>> label_names({"category_names": ["background", "cat"]}, "DeconvNet", 2)
    ['background', 'cat']
    >>> label_names({"category_names": ["background", "cat"]}, "DeconvNet", 3)
    ['background', 'class_1', 'class_2']
    """
    names = card_label_names(card, family, num_labels)
    if names is not None:
        return names
    if fallback is not None and len(fallback) == num_labels:
        return list(fallback)
    return _generic_label_names(num_labels)


def _generic_label_names(num_labels):
    """``background, class_1, class_2, ...``: labels nobody named."""
    return ["background"] + [f"class_{i}" for i in range(1, num_labels)]


def card_num_labels(card, num_classes=None):
    """Labels (background included) a segmenter of ``card`` outputs, without building anything.

    Args:
        card: A model card (``keras_deconv.zoo.info(name)``).
        num_classes: The override, or None for the card's label space.

    Returns:
        An int: the card's categories (21 for VOC), its query classes + 1
        for TransferNet, ``num_classes`` when given.

    Example:

    >>> card_num_labels({"architecture": {"builder": "TransferNet", "num_classes": 80}})
    81
    >>> card_num_labels({"architecture": {"builder": "FCN8s", "num_classes": 21}}, 13)
    13
    """
    if num_classes is not None:
        return int(num_classes)
    if card_builders(card)[0] == "TransferNet":
        return card["architecture"]["num_classes"] + 1
    return len(card.get("category_names") or []) or card["architecture"]["num_classes"]


def card_pipeline(card, pipeline_options=None, crf=False):
    """The pipeline class a card names, its settings and notes: ``(cls, settings, notes)``.

    Checked before any model is built: the class exists, the caller's
    ``pipeline_options`` are options it takes (card options it does not take
    are dropped with a note), ``crf`` has a step and the package to run.

    Args:
        card: A model card (its ``pipeline`` entry: ``class`` and ``config``).
        pipeline_options: The caller's settings; they win over the card's.
        crf: Add a dense CRF (``settings["crf"]``).

    Raises:
        ValueError: Unknown class or option, or no CRF.

    Example:

    >>> cls, settings, notes = card_pipeline({"name": "x", "pipeline": {"class": "DecoupledNetPipeline",
    ...                                      "config": {"threshold": 0.1}}}, {"threshold": 0.3})
    >>> cls.__name__, settings, notes
    ('DecoupledNetPipeline', {'threshold': 0.3}, [])
    """
    from keras_deconv import pipelines

    base, spec, notes = card.get("name"), card["pipeline"], []
    cls = getattr(pipelines, spec["class"], None)
    if cls is None:
        raise ValueError(f"The pipeline class {spec['class']!r} of {base!r} is not in keras_deconv.pipelines.")
    accepted = _accepted_arguments(cls)
    settings = _pipeline_settings(cls, spec.get("config", {}), dict(pipeline_options or {}), notes)
    if crf:
        if accepted is not None and "crf" not in accepted:
            raise ValueError(f"The {base} pipeline ({cls.__name__}) has no CRF step; run it without --crf.")
        if not crf_available():
            raise ValueError(f"--crf needs the dense CRF: {_CRF_HINT}.")
        from keras_deconv.crf import DenseCRF

        settings["crf"] = DenseCRF()
    return cls, settings, notes
