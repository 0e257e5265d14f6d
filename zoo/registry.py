"""The registry: every model the zoo knows, from the cards in ``cards/*.json``.

A card is data: architecture (builder and config), paper and code, label
space, preprocessing, parameter count and, per weights tag, origin, licence,
files with sha256 where known, training data and metrics with their source.
"""

import copy
import difflib
import fnmatch
import functools
import json
import os
from pathlib import Path

from keras_deconv.zoo import cache
from keras_deconv.datasets.categories import LABEL_SPACES

CARDS_DIR = Path(__file__).with_name("cards")
SHIPPED_WEIGHTS_DIR = Path(__file__).with_name("weights")
DEFAULT = "default"


@functools.lru_cache(maxsize=None)
def _cards():
    cards = {}
    for path in sorted(CARDS_DIR.glob("*.json")):
        card = json.loads(path.read_text())
        if card["name"] in cards:
            raise RuntimeError(f"Duplicate zoo entry {card['name']!r} in {path}")
        cards[card["name"]] = card
    return cards


def names():
    return sorted(_cards())


def unknown_name_error(name):
    close = difflib.get_close_matches(str(name), names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"Unknown model {name!r}.{hint} Known models: {', '.join(names())} (see `keras-deconv list`).")


def split_name(name):
    """``"decouplednet.25"`` or ``"decouplednet:25"`` -> ``("decouplednet", "25")``."""
    for separator in (":", "."):
        if separator in name:
            base, tag = name.split(separator, 1)
            if base in _cards():
                return base, tag
    return name, None


def card(name):
    """The card of a zoo name, or of a training run directory (:func:`run_entry`)."""
    if is_run_dir(name):
        return run_entry(name)
    base, _ = split_name(name)
    if base not in _cards():
        if os.path.isdir(os.fspath(name)):
            raise ValueError(f"{name} is a folder without {RUN_CARD}: not a finished training run (a run writes it "
                             "after its export; resume it with `keras-deconv train ... --resume`), nor a zoo name "
                             "(see `keras-deconv list`).")
        raise unknown_name_error(name)
    return _cards()[base]


def list_models(pattern=None, *, weights_available=None):
    """Zoo names, optionally filtered by an fnmatch ``pattern`` (e.g. ``"*net"``).

    ``weights_available=True`` keeps entries with at least one weights tag
    that loads now (shipped, or converted into the local cache).
    """
    selected = [n for n in names() if pattern is None or fnmatch.fnmatch(n, pattern)]
    if weights_available is not None:
        selected = [n for n in selected if bool(available_tags(n)) == weights_available]
    return selected


def info(name):
    """The model card as a plain dict (a copy), with ``categories`` resolved."""
    result = copy.deepcopy(card(name))
    space = result.get("categories")
    if isinstance(space, str):
        result["category_names"] = list(LABEL_SPACES[space])
    if isinstance(result.get("query_labels"), str):
        result["query_label_names"] = list(LABEL_SPACES[result["query_labels"]])
    for tag in result.get("weights", {}):
        result["weights"][tag]["status"] = weights_status(result["name"], tag)
    return result


def resolve_tag(name, tag=DEFAULT):
    entry = card(name)
    _, tag_from_name = (name, None) if is_run_dir(name) else split_name(name)
    tag = tag_from_name if tag in (DEFAULT, None) and tag_from_name else tag
    if tag in (DEFAULT, None):
        tag = entry["default_weights"]
    if tag not in entry["weights"]:
        raise ValueError(f"{entry['name']!r} has no weights tagged {tag!r}. Tags: {', '.join(entry['weights'])}.")
    return entry["name"], tag


def shipped_weights_path(name, tag):
    spec = card(name)["weights"][tag]
    file_name = spec.get("shipped_file")
    return SHIPPED_WEIGHTS_DIR / file_name if file_name else None


def weights_status(name, tag):
    """``"shipped"``, ``"cached"``, ``"needs requirements"`` or ``"not downloaded"``."""
    spec = card(name)["weights"][tag]
    if is_run_dir(name):
        return "in the run" if os.path.isfile(run_weights_path(name, tag)) else "missing"
    shipped = shipped_weights_path(name, tag)
    if shipped is not None and shipped.exists():
        return "shipped"
    if spec.get("requires"):
        missing = [req for req in spec["requires"] if weights_status(*req.split(":")) not in ("shipped", "cached")]
        return "cached" if not missing else "needs " + ", ".join(missing)
    return "cached" if cache.weights_path(name, tag).exists() else "not downloaded"


def available_tags(name):
    entry = card(name)
    return [tag for tag in entry["weights"] if weights_status(entry["name"], tag) in ("shipped", "cached")]


def missing_weights_message(name, tag):
    spec = card(name)["weights"][tag]
    if spec.get("requires"):
        return f"{name}:{tag} needs the weights {', '.join(spec['requires'])}; fetch or import each of them first."
    files = spec.get("files") or []
    file_name = files[0]["name"] if files else "the weights file"
    return (
        f"The weights {name}:{tag} are not in the local cache ({cache.weights_path(name, tag)}). "
        f"keras-deconv does not redistribute the authors' weights. Run `keras-deconv weights fetch {name} --tag {tag}` "
        f"to download and convert them, or `keras-deconv weights import {name} PATH/{file_name} --tag {tag}` "
        "if you already have the file. Use weights=None for a randomly initialised model."
    )


def weights_file(name, tag, check_hash=True):
    """Local path of usable weights for ``name:tag`` (shipped or cached; a run's own file)."""
    if is_run_dir(name):
        return Path(run_weights_path(name, tag))
    shipped = shipped_weights_path(name, tag)
    if shipped is not None and shipped.exists():
        return shipped
    try:
        return cache.verified_path(name, tag, check_hash=check_hash)
    except FileNotFoundError:
        raise cache.WeightsError(missing_weights_message(name, tag)) from None


def _builders(entry):
    builder = entry["architecture"]["builder"]
    return builder if isinstance(builder, list) else [builder]


def build(name, num_classes=None, **overrides):
    """Build the Keras model of ``name`` (first builder for ensembles), no weights."""
    from keras_deconv import models

    entry = card(name)
    config = dict(entry["architecture"].get("config", {}))
    config.update(overrides)
    if num_classes is not None:
        config["num_classes"] = num_classes
    return getattr(models, _builders(entry)[0])(**config)


def _load_weights_into(model, source, name):
    """Load weights from a path of any supported kind into ``model``."""
    source = os.fspath(source)
    if not os.path.exists(source):
        raise FileNotFoundError(f"Weights file not found: {source}")
    if source.endswith(".caffemodel"):
        from keras_deconv import caffe

        return caffe.load_caffemodel(model, source)
    if source.endswith(".weights.h5"):
        try:
            model.load_weights(source)
        except ValueError as error:
            raise ValueError(f"{source} does not fit the {name!r} architecture: {error}") from error
        return None
    raise ValueError(f"Unsupported weights file {source!r}: expected a .weights.h5 (Keras) or .caffemodel (Caffe) file.")


def _transfer_body(source_model, target_model):
    """Copy every weight whose layer name and shapes match; return re-initialised layers."""
    reinitialised = []
    for layer in target_model.layers:
        if not layer.weights:
            continue
        try:
            donor = source_model.get_layer(layer.name)
        except ValueError:
            reinitialised.append(layer.name)
            continue
        donor_weights = donor.get_weights()
        if [w.shape for w in donor_weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(donor_weights)
        else:
            reinitialised.append(layer.name)
    return reinitialised


def _weights_source(name, weights):
    """``(tag, local file)`` for a ``weights`` argument: a tag, None or a path."""
    entry = card(name)
    if weights is None:
        return None, None
    if isinstance(weights, str) and (weights == DEFAULT or weights in entry["weights"]):
        base, tag = resolve_tag(name, weights)
        return tag, weights_file(base, tag)
    if os.path.exists(os.fspath(weights)):
        return None, weights
    raise ValueError(
        f"weights={weights!r} is neither a weights tag of {entry['name']!r} ({', '.join(entry['weights'])}), None, nor an existing file."
    )


def create_model(name, weights=DEFAULT, num_classes=None, **config):
    """Build the Keras model of a zoo entry and load its weights.

    Args:
        name: zoo name (``keras-deconv list``), optionally with a weights tag
            (``"decouplednet.25"``), or a training run directory.
        weights: a registered tag (default: the card's default), ``None``
            for random initialisation, or a path to a ``.weights.h5`` or
            ``.caffemodel`` file.
        num_classes: a different number of classes keeps the pretrained
            body and re-initialises the classifier (for fine-tuning).
        **config: builder overrides (e.g. ``batch_norm="trainable"``).

    Returns:
        A ``keras.Model``; ``model.zoo_info`` records name, weights and the
        re-initialised layers.
    """
    if is_run_dir(name):
        return _create_run_model(name, weights, num_classes, **config)
    entry = card(name)
    base = entry["name"]
    tag, source = _weights_source(name, weights)
    pretrained_classes = entry["architecture"]["num_classes"]
    reinitialised = []
    if source is not None and num_classes is not None and num_classes != pretrained_classes:
        donor = build(base, **config)
        _load_weights_into(donor, source, base)
        model = build(base, num_classes=num_classes, **config)
        reinitialised = _transfer_body(donor, model)
        del donor
    else:
        model = build(base, num_classes=num_classes, **config)
        if source is not None:
            _load_weights_into(model, source, base)
    model.zoo_info = {"name": base, "weights": tag or (os.fspath(source) if source else None), "reinitialised": reinitialised}
    return model


def load(name, weights=DEFAULT, num_classes=None, config=None, **options):
    """The ready-to-use pipeline of a zoo entry or a training run: images in, label maps out.

    ``name`` may also be the run directory of ``keras-deconv train deconvnet|fcn8s``
    (its ``card.json``): the run's exported weights, architecture, pipeline
    settings and class names (``pipeline.class_names``).

    See :func:`create_model` for ``name``, ``weights`` and ``num_classes``;
    ``config`` holds builder overrides (e.g. ``{"width": 1 / 16}``) and
    ``options`` override the card's pipeline settings (e.g. ``threshold``).

    Example:

    >>> import numpy as np
    >>> from keras_deconv import zoo
    >>> pipeline = zoo.load("deconvnet", weights=None, config={"width": 1 / 16, "fc_units": 32})
    >>> pipeline.predict([np.zeros((50, 70, 3), "uint8")])[0].shape
    (50, 70)
    """
    if is_run_dir(name):
        return _load_run(name, weights, num_classes, config, **options)
    config = dict(config or {})
    entry = card(name)
    from keras_deconv import pipelines

    pipeline_spec = entry["pipeline"]
    settings = dict(pipeline_spec.get("config", {}))
    settings.update(options)
    pipeline_class = getattr(pipelines, pipeline_spec["class"])
    if entry["name"] == "edeconvnet":
        deconvnet = create_model("deconvnet", weights=_required(entry, weights, "deconvnet"), num_classes=num_classes, **config)
        fcn = create_model("fcn8s", weights=_required(entry, weights, "fcn8s"), num_classes=num_classes, **config)
        return pipeline_class(deconvnet, fcn, **settings)
    model = create_model(name, weights=weights, num_classes=num_classes, **config)
    pipeline = pipeline_class(model, **settings)
    if num_classes is None:
        pipeline.class_names = class_names(name)
    return pipeline


def class_names(name):
    """The label names of a zoo entry (index 0 = background), or None if the card has none."""
    entry = card(name)
    space = entry.get("categories")
    names = LABEL_SPACES[space] if isinstance(space, str) else entry.get("category_names")
    return list(names) if names else None


def _required(entry, weights, part):
    if weights is None:
        return None
    _, tag = resolve_tag(entry["name"], weights)
    for requirement in entry["weights"][tag].get("requires", []):
        name, required_tag = requirement.split(":")
        if name == part:
            return required_tag
    return DEFAULT


# ----------------------------------------------------------------------------- runs as models
RUN_CARD = "card.json"


def is_run_dir(path):
    """True for a ``keras-deconv train`` run directory holding a ``card.json``."""
    try:
        return os.path.isfile(os.path.join(os.fspath(path), RUN_CARD))
    except TypeError:
        return False


def run_card(run_dir):
    """The ``card.json`` of a run directory (see :mod:`keras_deconv.training.run_card`)."""
    path = os.path.join(os.fspath(run_dir), RUN_CARD)
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
        entry["architecture"]["builder"], entry["weights"][entry["default_weights"]]["file"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{run_dir} is not a finished training run: no {RUN_CARD} (it is written after the "
                                "export; resume the run with `keras-deconv train ... --resume`).") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a valid run card ({error}). Re-export the run.") from None
    return entry


def run_entry(run_dir):
    """A run's card as a zoo entry: :func:`run_card` named by its path, with ``run_dir`` (absolute).

    ``card``, ``info``, ``resolve_tag``, ``weights_file`` and so everything
    that takes a zoo name (``zoo.load_segmenter``, ``zoo.export_model``, the
    ``predict``/``evaluate``/``export`` commands) take the run directory.
    """
    entry = run_card(run_dir)
    entry["name"] = os.path.normpath(os.fspath(run_dir))
    entry["run_dir"] = os.path.abspath(os.fspath(run_dir))
    return entry


def run_weights_path(run_dir, tag=None):
    """The weights file of a run (its default tag unless ``tag``)."""
    entry = run_card(run_dir)
    tag = entry["default_weights"] if tag in (None, DEFAULT) else tag
    if tag not in entry["weights"]:
        raise ValueError(f"The run {run_dir} has no weights tagged {tag!r}. Tags: {', '.join(entry['weights'])}.")
    return os.path.join(os.fspath(run_dir), entry["weights"][tag]["file"])


def run_training_images(run_dir):
    """A run's training images (int8 calibration): ``"shapes"``, ``DIR/images/train`` of its folder dataset, or
    ``"voc2012"``."""
    data = run_card(run_dir)["weights"]
    data = next(iter(data.values())).get("training", {}).get("data") or {}
    if data.get("kind") == "folder" and data.get("dir"):
        return os.path.join(data["dir"], "images", "train")
    if data.get("kind") in ("voc2012", "coco-voc2012"):  # as the authors' models: VOC train (the export's --data-dir)
        return "voc2012"
    return "shapes"


def _create_run_model(run_dir, weights=DEFAULT, num_classes=None, **config):
    from keras_deconv import models

    entry = run_card(run_dir)
    architecture = dict(entry["architecture"]["config"])
    architecture.update(config)
    tag = entry["default_weights"] if weights in (DEFAULT, None) or weights == entry["default_weights"] else None
    if weights is not None and tag is None:
        raise ValueError(f"A run directory holds its own weights ({', '.join(entry['weights'])}); received "
                         f"weights={weights!r}.")
    model = getattr(models, entry["architecture"]["builder"])(**architecture)
    reinitialised = []
    if weights is not None:
        source = os.path.join(os.fspath(run_dir), entry["weights"][tag]["file"])
        _load_weights_into(model, source, entry["name"])
        if num_classes is not None and num_classes != architecture["num_classes"]:
            target = getattr(models, entry["architecture"]["builder"])(**dict(architecture, num_classes=num_classes))
            reinitialised = _transfer_body(model, target)
            model = target
    elif num_classes is not None:
        model = getattr(models, entry["architecture"]["builder"])(**dict(architecture, num_classes=num_classes))
    model.zoo_info = {"name": os.fspath(run_dir), "weights": tag, "reinitialised": reinitialised,
                      "class_names": entry.get("category_names")}
    return model


def _load_run(run_dir, weights=DEFAULT, num_classes=None, config=None, **options):
    from keras_deconv import pipelines

    entry = run_card(run_dir)
    model = _create_run_model(run_dir, weights, num_classes, **dict(config or {}))
    settings = dict(entry["pipeline"].get("config", {}))
    settings.update(options)
    pipeline = getattr(pipelines, entry["pipeline"]["class"])(model, **settings)
    pipeline.class_names = list(entry.get("category_names") or [])
    return pipeline


def start_model(source, builder, num_classes, config=None):
    """The model that ``keras-deconv train --init SOURCE`` starts from, and its builder config.

    Args:
        source: a zoo name (``deconvnet-small``, ``fcn8s:voc``), a run
            directory, or a ``.weights.h5`` / ``.caffemodel`` file.
        builder: the recipe's builder (``"DeconvNet"`` or ``"FCN8s"``).
        num_classes: the classes of the new training (tried first for a file).
        config: builder config for a file (width, fc_units, ...).

    Returns:
        ``(model, config)``: ``model.init_source`` names the source; ``config``
        (without ``num_classes``) is the architecture the recipe must build.
    """
    from keras_deconv import models

    config = dict(config or {})
    if is_run_dir(source):
        entry = run_card(source)
        model, kind = _create_run_model(source), "run"
        config = {k: v for k, v in entry["architecture"]["config"].items() if k != "num_classes"}
    elif os.path.isfile(os.fspath(source)):
        entry, kind = None, "file"
        base = {"DeconvNet": "deconvnet", "FCN8s": "fcn8s"}[builder]
        model = getattr(models, builder)(num_classes=num_classes, **config)
        if os.fspath(source).endswith(".weights.h5"):
            model.init_skipped = _load_matching(model, source)
            if len(model.init_skipped) == len([layer for layer in model.layers if layer.weights]):
                raise ValueError(f"{source} fits no layer of a {builder} with config {config}: pass the --config "
                                 "it was trained with (width, fc_units, ...), or its run directory.")
        else:
            _load_weights_into(model, source, base)
    else:
        if split_name(os.fspath(source))[0] not in _cards():
            hint = (f" {source} is a folder without {RUN_CARD}: a run writes it after its export."
                    if os.path.isdir(os.fspath(source)) else "")
            raise ValueError(f"--init {source}: neither a zoo name ({', '.join(names())}), a run directory nor a "
                             f"weights file.{hint}")
        entry, kind = card(source), "zoo"
        if isinstance(entry["architecture"]["builder"], list):
            raise ValueError(f"{source!r} is an ensemble; start from one of its networks.")
        model = create_model(source)
        config = {k: v for k, v in entry["architecture"].get("config", {}).items() if k != "num_classes"}
    if entry is not None:  # the card's config leaves the builder's defaults out: spell them out for the recipe
        config = dict(_builder_defaults(builder), **config)
    found = entry["architecture"]["builder"] if entry is not None else builder
    if found != builder:
        raise ValueError(f"--init {source} is a {found}; this recipe trains a {builder}.")
    model.init_source = f"{kind}:{os.fspath(source)}"
    return model, config


def _builder_defaults(builder):
    import inspect

    from keras_deconv import models

    reserved = {"num_classes", "input_shape", "batch_norm", "weights", "name", "include_preprocessing"}
    parameters = inspect.signature(getattr(models, builder)).parameters.items()
    return {key: p.default for key, p in parameters if key not in reserved and p.default is not inspect.Parameter.empty}


def _load_matching(model, source):
    """Loads the layers of a ``.weights.h5`` whose shapes fit; returns the names of the others.

    Keras assigns every variable it can before it reports the ones that do
    not fit: every weight is set to NaN first, so a layer still holding NaN
    was not loaded; it gets its fresh initialisation back.
    """
    import numpy as np

    if not os.path.exists(os.fspath(source)):
        raise FileNotFoundError(f"Weights file not found: {source}")
    fresh = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    for name, weights in fresh.items():
        model.get_layer(name).set_weights([np.full_like(w, np.nan) for w in weights])
    import warnings

    try:
        with warnings.catch_warnings():  # Keras warns about every container it skips
            warnings.simplefilter("ignore")
            model.load_weights(os.fspath(source))
    except ValueError:
        pass  # some layers do not fit: found below
    skipped = []
    for name, weights in fresh.items():
        if any(np.isnan(w).any() for w in model.get_layer(name).get_weights()):
            model.get_layer(name).set_weights(weights)
            skipped.append(name)
    return skipped
