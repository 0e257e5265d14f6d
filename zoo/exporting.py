"""Exporting zoo entries by name (``keras-deconv export NAME``).

The zoo builds the model with its weights and hands it to
:func:`keras_deconv.export.export_model` with what its card says: the tuned
pipeline settings, the label names, the official input size and, for int8,
the dataset the weights were trained on (for calibration).

>>> export_settings(registry.create_model("decouplednet-small", weights=None), "decouplednet-small")
{'threshold': 0.15}
"""

import os

from keras_deconv.zoo import registry


def calibration_dataset(name, weights="default"):
    """Where int8 calibration images for zoo model ``name`` with ``weights`` come from by default.

    The weights' own training data, from their card: ``"shapes"`` for the
    models keras-deconv trained on the synthetic shapes (``"shapes-hard"``
    when the card records its ``hard`` config), ``"voc2012"`` for
    the authors' models, trained on natural images (PASCAL VOC, COCO), for
    which VOC 2012 train images stand in. Random weights (None) were trained
    on nothing: ``"shapes"`` (offline). A weights file (a path) is taken to be
    like the card's default weights.

    Example:

    >>> calibration_dataset("deconvnet-small"), calibration_dataset("transfernet-small")
    ('shapes', 'shapes')
    >>> calibration_dataset("transfernet"), calibration_dataset("fcn8s", None)
    ('voc2012', 'shapes')
    """
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("none", "random")):
        return "shapes"
    if registry.is_run_dir(name):  # a training run: its own training images
        return registry.run_training_images(name)
    entry = registry.card(name)
    tag = weights if isinstance(weights, str) and weights in entry["weights"] else registry.DEFAULT
    _, tag = registry.resolve_tag(name, tag)
    spec = entry["weights"][tag]
    datasets = {metric.get("dataset") for metric in spec.get("metrics", [])}
    if datasets != {"shapes"}:
        return "voc2012"
    return "shapes-hard" if spec.get("shapes_config") == "hard" else "shapes"


def export_settings(model, name, pipeline_options=None):
    """Pipeline settings an export of zoo model ``name`` bakes in: the kind's defaults, the card's, ``pipeline_options``.

    See :func:`keras_deconv.export.export_settings`.
    """
    from keras_deconv.export import kinds

    return kinds.export_settings(model, registry.card(name)["pipeline"].get("config", {}), pipeline_options)


def card_class_names(name, model):
    """The zoo card's label names for the model's labels (background first), or None when they do not fit."""
    from keras_deconv.evaluation.loading import card_label_names
    from keras_deconv.export.kinds import model_kind

    card = registry.info(name)
    kind = model_kind(model)
    if kind in ("deconvnet", "fcn8s"):
        return card_label_names(card, "DeconvNet", int(model.outputs[0].shape[-1]))
    family = {"decouplednet": "DecoupledNet", "transfernet": "TransferNet"}[kind]
    return card_label_names(card, family, int(model.inputs[1].shape[-1]) + 1)


def export_model(name, path, format="saved_model", *, quantize="none", weights="default", config=None, input_size=None,
                 calibration_data="auto", calibration_count=None, data_dir=None, verify=False,
                 pipeline_options=None, log=None, integer_only=False, any_size=False):
    """Export zoo model ``name`` with ``weights``, optionally verifying the artifact.

    Builds the model (:func:`keras_deconv.zoo.create_model`) and runs
    :func:`keras_deconv.export.export_model` with the card's settings: its
    tuned pipeline settings under ``pipeline_options``, its label names
    (recorded in the file or manifest, with the model name and weights), its
    official input size when the model's is dynamic, and for int8 with
    ``calibration_data="auto"`` the weights' training data
    (:func:`calibration_dataset`).

    Args:
        name: a zoo name (``"deconvnet"``, ``"decouplednet.25"``, ...).
        weights: a weights tag, ``None`` (random) or a path.
        config: builder overrides (e.g. ``{"width": 0.0625}``).
        calibration_count: int8 only: how many calibration images (default
            :data:`keras_deconv.export.CALIBRATION_COUNT`).
        The others: see :func:`keras_deconv.export.export_model`.

    Returns:
        The dict :func:`keras_deconv.export.export_model` returns.

    Example:

    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "deconvnet.tflite")
    >>> export_model("deconvnet-small", out, "tflite")["kind"]  # doctest: +SKIP
    'deconvnet'
    """
    from keras_deconv import export
    from keras_deconv.export.calibration import _voc_files
    from keras_deconv.export.kinds import model_kind

    log = log or (lambda message: None)
    calibration_count = export.CALIBRATION_COUNT if calibration_count is None else calibration_count
    export.check_export_options(format, quantize, integer_only)
    if quantize == "int8" and isinstance(calibration_data, str) and calibration_data == "auto":
        calibration_data = calibration_dataset(name, weights)
        log(f"int8 calibration: {calibration_count} {calibration_data} images (the weights' training data).")
    if quantize == "int8" and isinstance(calibration_data, str) and calibration_data == "voc2012":
        _voc_files(data_dir, calibration_count)  # fail now, before building a large model
    log(f"Building {name} (weights={weights})...")
    model = registry.create_model(name, weights=weights, **(config or {}))
    if input_size is None and model_kind(model) in ("deconvnet", "fcn8s") and None in tuple(model.inputs[0].shape[1:3]):
        input_size = tuple(registry.card(name)["architecture"]["input_size"])
    # A weights path is recorded by its file name only: the file may be shipped.
    about = {"model": name, "weights": None if weights is None else os.path.basename(os.fspath(weights))}
    return export.export_model(model, path, format, quantize=quantize, input_size=input_size,
                               calibration_data=calibration_data, calibration_count=calibration_count, data_dir=data_dir,
                               verify=verify, pipeline_options=export_settings(model, name, pipeline_options), log=log,
                               integer_only=integer_only, class_names=card_class_names(name, model), metadata=about,
                               any_size=any_size)
