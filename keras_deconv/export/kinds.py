"""What an export needs to know about a model: its kind, its pipeline settings, its encoder / decoder split."""

#: Model kinds: how the network turns images into label maps.
KINDS = ("deconvnet", "fcn8s", "decouplednet", "transfernet")


#: Pipeline settings a zoo card can tune and a LiteRT pipeline takes.
_TUNABLE_SETTINGS = ("threshold", "background_weight")


def model_kind(model):
    """``"deconvnet"``, ``"fcn8s"``, ``"decouplednet"`` or ``"transfernet"`` from a model's inputs and layers.

    >>> from keras_deconv.models import TransferNet
    >>> model_kind(TransferNet(num_classes=3, input_shape=(64, 64, 3), width=1 / 16))
    'transfernet'
    """
    names = [tensor.name for tensor in model.inputs]
    if "cls-score-masked" in names:
        return "decouplednet"
    if "cls-label" in names:
        return "transfernet"
    if any(layer.name == "upscore" for layer in model.layers):
        return "fcn8s"
    return "deconvnet"


def _tflite_name(name):
    return name.replace("-", "_")


def export_settings(model, card_settings=None, pipeline_options=None):
    """Pipeline settings an export bakes in: the kind's defaults, then ``card_settings``, then ``pipeline_options``.

    Args:
        model: the Keras model.
        card_settings: a zoo card's pipeline settings (its ``pipeline.config``
            dict); only those an export takes (``threshold``,
            ``background_weight``) are used. For a zoo name, use
            :func:`keras_deconv.zoo.exporting.export_settings`.
        pipeline_options: the caller's settings; they win.

    >>> from keras_deconv.models import TransferNet
    >>> model = TransferNet(num_classes=3, input_shape=(64, 64, 3), width=1 / 16)
    >>> export_settings(model, {"threshold": 0.1, "crf": None}, {"background_weight": 0.7})
    {'threshold': 0.1, 'background_weight': 0.7}
    """
    if isinstance(card_settings, str):
        raise TypeError(f"export_settings takes a card's pipeline settings (a dict), not a zoo name ({card_settings!r}): "
                        "use keras_deconv.zoo.exporting.export_settings(model, name) for a zoo model.")
    kind = model_kind(model)
    settings = _default_settings(kind, model)
    tuned = card_settings or {}  # e.g. decouplednet-small's threshold 0.15
    settings.update({key: tuned[key] for key in _TUNABLE_SETTINGS if key in tuned})
    settings.update(_card_padding(kind, tuned))
    settings.update(pipeline_options or {})
    return settings


def _card_padding(kind, card_settings):
    """The card pipeline's padding as the serving function's ``min_size``.

    DeconvNet's ``min_size`` and FCN-8s's ``pad_to`` (None: no padding) decide
    how large the padded canvas is, and fc6 sees all of it: an export that
    pads ``deconvnet-small``'s 64-px images to the default 224 computes other
    scores than the Keras pipeline (``bench/export_agreement.py``).

    >>> _card_padding("deconvnet", {"min_size": 64}), _card_padding("fcn8s", {"pad_to": None})
    ({'min_size': 64}, {'min_size': 1})
    """
    if kind == "deconvnet" and card_settings.get("min_size") is not None:
        return {"min_size": int(card_settings["min_size"])}
    if kind == "fcn8s" and "pad_to" in card_settings:
        return {"min_size": int(card_settings["pad_to"] or 1)}
    return {}


def _default_settings(kind, model):
    """Pipeline settings (the Keras pipelines' defaults) per kind."""
    static = tuple(model.inputs[0].shape[1:3])
    if kind == "deconvnet":
        side = static[0] if None not in static else 224
        return {"min_size": side, "multiple": 32}
    if kind == "fcn8s":
        return {"min_size": 500, "multiple": 1}
    if kind == "decouplednet":
        return {"threshold": 0.5}
    return {"threshold": 0.6, "background_weight": 0.5}


def keras_pipeline(model, jit_compile=False, **settings):
    """The Keras pipeline (:mod:`keras_deconv.pipelines`) that an export reproduces.

    ``jit_compile=False`` (default here) gives the graph-mode numerics that
    the SavedModel and TFLite exports are compared with.
    """
    import inspect

    from keras_deconv import pipelines

    kind = model_kind(model)
    settings = {**_default_settings(kind, model), **settings}
    classes = {"deconvnet": "DeconvNetPipeline", "fcn8s": "FCN8sPipeline", "decouplednet": "DecoupledNetPipeline",
               "transfernet": "TransferNetPipeline"}
    cls = getattr(pipelines, classes[kind])
    if kind == "deconvnet":
        options = {"min_size": settings["min_size"]}
    elif kind == "fcn8s":
        options = {"pad_to": settings["min_size"]}
    elif kind == "decouplednet":
        options = {"threshold": settings["threshold"]}
    else:
        options = {"threshold": settings["threshold"], "background_weight": settings["background_weight"]}
    if "jit_compile" in inspect.signature(cls).parameters:
        options["jit_compile"] = jit_compile
    return cls(model, **options)


def split_model(model):
    """``(encoder, decoder, cut)`` of a DecoupledNet or TransferNet, sharing its layers.

    ``encoder(images)`` returns a dict of the ``cut`` tensors (plus
    ``cls-score-avg-sigmoid`` for DecoupledNet); ``decoder([query, *[those
    tensors in cut order]])`` returns ``seg-score``. ``pool{N}_input`` tensors
    are only size references of the unpoolings.
    """
    import keras

    from keras_deconv.pipelines import decoder_inputs

    kind = model_kind(model)
    layer = model.get_layer
    if kind == "decouplednet":
        extra = {"cls-score-avg-sigmoid": layer("cls-score-avg-sigmoid").output}
        seg = layer("seg-score-voc").output
    elif kind == "transfernet":
        extra, seg = {}, layer("seg-score").output
    else:
        raise ValueError(f"split_model needs a DecoupledNet or TransferNet. Received a {kind} model.")
    cut = decoder_inputs(model, kind)
    encoder = keras.Model(model.inputs[0], {**cut, **extra})
    decoder = keras.Model([model.inputs[1], *cut.values()], seg)
    return encoder, decoder, list(cut)
