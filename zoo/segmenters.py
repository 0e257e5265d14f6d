"""Zoo entries as :class:`~keras_deconv.evaluation.Segmenter` objects, by name (``keras-deconv evaluate NAME``).

The zoo resolves the name, its card and its weights, builds the Keras models
and hands them to :mod:`keras_deconv.evaluation`, which never resolves a
zoo name itself.

Example (a randomly initialised small DeconvNet on ``shapes``; no download):

>>> from keras_deconv import evaluation, zoo
>>> seg = zoo.load_segmenter("deconvnet", weights=None, num_classes=13, config={"width": 1 / 16, "fc_units": 32})
>>> evaluation.evaluate(seg, evaluation.open_dataset("shapes", "val", limit=2)).count
2
>>> seg.weights_label
'none (random initialisation)'
"""

import os

from keras_deconv.zoo import registry


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
    from keras_deconv.evaluation.loading import card_num_labels

    if num_classes is not None:
        return int(num_classes)
    return card_num_labels(registry.info(name))


def check_planned(name, num_classes, source):
    """:func:`keras_deconv.evaluation.check_compatible` from the zoo card alone (nothing is built).

    Example:

    >>> from keras_deconv.evaluation import open_dataset
    >>> src = open_dataset("shapes", "val", limit=1)
    >>> check_planned("deconvnet", 13, src)  # fine
    >>> try:
    ...     check_planned("deconvnet", None, src)
    ... except ValueError as error:
    ...     print(str(error)[:42])
    deconvnet outputs 21 classes but shapes ha
    """
    from keras_deconv.evaluation.loop import check_card_compatible

    check_card_compatible(registry.info(name), num_classes, source)


def _weights_argument(weights):
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("none", "random")):
        return None
    if weights in ("", "default"):
        return registry.DEFAULT
    return os.fspath(weights) if not isinstance(weights, str) else weights


def load_segmenter(name, weights="default", num_classes=None, config=None, pipeline_options=None, crf=False,
                   class_names=None, seed=None):
    """Builds a zoo entry and wraps its pipeline in a :class:`~keras_deconv.evaluation.Segmenter`.

    Args:
        name: Zoo name (``keras-deconv list``), optionally with a tag
            (``"decouplednet.25"``), or a ``keras-deconv train`` run
            directory (its weights, architecture, pipeline and class names).
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
        A :class:`~keras_deconv.evaluation.Segmenter`.

    Raises:
        ValueError: Unknown name, option or weights; ``crf`` unavailable.
        keras_deconv.zoo.WeightsError: The weights are not in the local cache.

    Example:

    >>> seg = load_segmenter("fcn8s", weights="none", num_classes=3, config={"width": 1 / 16, "fc_units": 16})
    >>> seg.num_labels, seg.is_random
    (3, True)
    """
    from keras_deconv.evaluation import loading
    from keras_deconv.evaluation.segmenter import RANDOM_WEIGHTS_LABEL, Segmenter

    card = registry.info(name)
    base = card["name"]
    builders = loading.card_builders(card)
    family = builders[0]
    ensemble = len(builders) > 1
    config = dict(config or {})
    loading.check_builder_config(builders, config)
    user_options = dict(pipeline_options or {})

    num_labels = planned_num_labels(name, num_classes)
    if num_labels < 2 and family in ("DecoupledNet", "TransferNet"):
        raise ValueError(f"{base} needs num_classes >= 2 (background + at least one class).")
    if num_labels < 1 or num_labels > 256:
        raise ValueError(f"Expected 1 <= num_classes <= 256. Received: num_classes={num_labels}")
    builder_classes = None if num_classes is None else loading.builder_num_classes(family, num_labels)

    # The pipeline class and its settings, checked before building anything.
    cls, settings, notes = loading.card_pipeline(card, user_options, crf)

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
            parts[part_name] = registry.create_model(part_name, weights=part_weights, num_classes=builder_classes,
                                                     **loading.builder_config(builder, config))
        models_used = [parts["deconvnet"], parts["fcn8s"]]
    else:
        models_used = [registry.create_model(name, weights=weights_arg, num_classes=builder_classes, **config)]
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
            if registry.is_run_dir(name):  # a training run: its own weights file
                weights_info["path"] = os.path.abspath(registry.run_weights_path(name, tag))
                weights_label = f"{tag} ({registry.run_weights_path(name, tag)})"
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
    names = loading.label_names(card, family, num_labels, class_names)
    return Segmenter(
        name=base, family=family, pipeline=pipeline, num_labels=num_labels, class_names=names,
        weights_label=weights_label, weights_info=weights_info, needs_image_labels=needs_labels,
        crf=bool(crf), notes=notes, config=config, pipeline_options=user_options,
    )
