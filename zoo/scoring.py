"""Scoring zoo entries by name on the ``shapes`` splits (the model cards' figures, the CI check, bench/make_cards.py).

The zoo resolves the name (:func:`keras_deconv.zoo.load`) and hands the
pipeline to :func:`keras_deconv.training.evaluate.score`.

>>> needs_oracle_labels("transfernet"), needs_oracle_labels("deconvnet")
(True, False)
"""

from keras_deconv.zoo import registry


def needs_oracle_labels(name):
    """True for zoo entries whose pipeline takes class ids from outside (TransferNet)."""
    return registry.card(name)["pipeline"]["class"] == "TransferNetPipeline"


def shapes_config(name):
    """The shapes config a zoo entry's weights were trained on.

    The card field ``shapes_config`` of the weights entry; ``"standard"`` if absent.
    """
    base, tag = registry.resolve_tag(name)
    return registry.card(base)["weights"][tag].get("shapes_config", "standard")


def score_zoo_model(name, split="test", count=None, indices=None, image_size=64, oracle_labels=None, config=None,
                    pipeline_options=None):
    """``zoo.load(name, **pipeline_options)`` (name may carry a tag, ``"decouplednet-small.5"``) scored on shapes.

    ``oracle_labels``: default :func:`needs_oracle_labels`; ``True`` also for
    DecoupledNet (its pipeline then takes the ground-truth class ids instead
    of its classifier's). ``config``: the shapes generator config; default
    :func:`shapes_config`, the one the weights were trained on. Returns the
    :class:`~keras_deconv.metrics.ConfusionMatrix` of
    :func:`keras_deconv.training.evaluate.score`.
    """
    from keras_deconv.training.evaluate import score

    pipeline = registry.load(name, **(pipeline_options or {}))
    oracle = needs_oracle_labels(name) if oracle_labels is None else bool(oracle_labels)
    config = shapes_config(name) if config is None else config
    return score(pipeline, split, count=count, indices=indices, image_size=image_size, oracle_labels=oracle,
                 config=config)
