"""Batch-normalisation folding: trainable BN -> the inference-mode ``ChannelAffine`` (``networks.md`` §1.5).

The official Caffe BN layer keeps no running statistics; a separate step
("make BN layer testable") runs the trained net on training batches in
LEARN mode, averages the per-batch means and variances, applies the
unbiased correction ``var * m / (m - 1)`` (``m = N*H*W`` of one batch) and
writes ``scale' = gamma / sqrt(var + eps)``, ``shift' = beta - gamma * mean
/ sqrt(var + eps)``. :func:`recompute_statistics` is that step (it sets the
Keras moving statistics); :func:`fold_batch_norm` writes the folded model.
Keras keeps moving averages during training, so folding them directly (no
calibration pass) is also possible and is the default.
"""

import keras
import numpy as np

from keras_deconv.layers.affine import ChannelAffine


def batch_norm_layers(model):
    """Every ``BatchNormalization`` layer of a model, nested models included, in graph order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batch_norm_layers(layer))
    return found


def folded_parameters(layer):
    """``(scale, shift)`` of a ``BatchNormalization`` layer folded with its moving statistics."""
    mean = np.asarray(layer.moving_mean, "float64")
    var = np.asarray(layer.moving_variance, "float64")
    gamma = np.asarray(layer.gamma, "float64") if layer.scale else np.ones_like(mean)
    beta = np.asarray(layer.beta, "float64") if layer.center else np.zeros_like(mean)
    inv = 1.0 / np.sqrt(var + layer.epsilon)
    scale = gamma * inv
    shift = beta - gamma * mean * inv
    return scale.astype("float32"), shift.astype("float32")


def recompute_statistics(model, batches, *, steps=None, unbiased=True):
    """Caffe's "make BN layer testable": set each BN layer's moving statistics from training batches.

    Each batch goes through the network in training mode (every BN layer
    normalises with its batch statistics, as Caffe's LEARN mode); the
    per-batch means and biased variances of each BN layer's input are
    averaged over the batches, and the variance is multiplied by
    ``m / (m - 1)`` with ``m`` the number of values per channel in one batch.

    Args:
        model: a functional model containing ``BatchNormalization`` layers
            (``batch_norm="trainable"``).
        batches: iterable of inputs for ``model`` (what ``model(x)`` accepts).
        steps: use at most this many batches.
        unbiased: apply the ``m / (m - 1)`` correction (Caffe's script does).

    Returns:
        The number of batches used.
    """
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        raise ValueError(f"{model.name} has no BatchNormalization layer (build it with batch_norm='trainable').")
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    saved = [(np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)) for layer in layers]
    sums = [[0.0, 0.0] for _ in layers]
    count, m = 0, None
    for batch in batches:
        if steps is not None and count >= steps:
            break
        outputs = probe(batch, training=True)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for index, value in enumerate(outputs):
            value = np.asarray(value, "float64")
            axes = tuple(range(value.ndim - 1))
            sums[index][0] = sums[index][0] + value.mean(axis=axes)
            sums[index][1] = sums[index][1] + value.var(axis=axes)
            m = int(np.prod([value.shape[a] for a in axes]))
        count += 1
    if count == 0:
        raise ValueError("No calibration batch was given.")
    for layer, (total_mean, total_var), (old_mean, old_var) in zip(layers, sums, saved):
        mean, var = total_mean / count, total_var / count
        if unbiased and m > 1:
            var = var * m / (m - 1)
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(var.astype("float32"))
    return count


@keras.saving.register_keras_serializable(package="keras_deconv")
class FoldedBatchNormalization(ChannelAffine):
    """A :class:`~keras_deconv.layers.ChannelAffine` that replaces a ``BatchNormalization`` in a cloned graph.

    Identical weights (``scale``, ``shift``) and output; it only accepts (and
    ignores) the ``mask`` argument that Keras records on BN calls, so that
    ``keras.models.clone_model`` can swap the layer in place.
    """

    def call(self, inputs, mask=None):
        return super().call(inputs)


def _clone_layer(layer):
    if isinstance(layer, keras.layers.BatchNormalization):
        return FoldedBatchNormalization(name=layer.name)
    return layer.__class__.from_config(layer.get_config())


def fold_batch_norm(trained_model, *, calibration=None, steps=None):
    """The inference model of a model trained with ``batch_norm="trainable"``.

    Every ``BatchNormalization`` layer becomes a
    :class:`~keras_deconv.layers.ChannelAffine` of the same name with
    ``scale = gamma / sqrt(var + eps)`` and ``shift = beta - gamma * mean /
    sqrt(var + eps)``; every other layer keeps its weights. The result has
    the architecture of the builder's ``batch_norm="folded"`` model, so its
    weights load into ``DeconvNet(..., batch_norm="folded")`` (and the zoo).

    Args:
        trained_model: a functional model with ``BatchNormalization`` layers.
        calibration: optional iterable of input batches: first recompute the
            statistics the Caffe way (:func:`recompute_statistics`); default
            folds the Keras moving averages.
        steps: at most this many calibration batches.

    Returns:
        A new ``keras.Model`` whose inference output equals
        ``trained_model(x, training=False)`` up to float rounding.
    """
    if calibration is not None:
        recompute_statistics(trained_model, calibration, steps=steps)
    folded = keras.models.clone_model(trained_model, clone_function=_clone_layer)
    for source, target in zip(trained_model.layers, folded.layers):
        if source.name != target.name:
            raise AssertionError(f"layer order differs after cloning: {source.name} vs {target.name}")
        if isinstance(source, keras.layers.BatchNormalization):
            target.set_weights(list(folded_parameters(source)))
        elif source.weights:
            target.set_weights(source.get_weights())
        target.trainable = source.trainable
    return folded


def _producer(tensor):
    """The layer whose output ``tensor`` is (a functional model's graph)."""
    return tensor._keras_history.operation


def fold_batch_norm_into_convolutions(trained_model, target):
    """Writes ``trained_model`` (BN after its convolutions) into ``target``, the same net without the BN layers.

    A network whose official form has no BN (FCN-8s) can still be trained
    with it from a random start; each ``BatchNormalization`` that directly
    follows a convolution with a bias is then exact to fold into that
    convolution: ``kernel' = kernel * scale`` per output channel and
    ``bias' = bias * scale + shift`` (``scale``, ``shift`` as
    :func:`folded_parameters`). Every other layer is copied by name.

    Args:
        trained_model: the trained functional model (e.g. ``FCN8s(...,
            batch_norm="trainable")``); its moving statistics are used (run
            :func:`recompute_statistics` first for Caffe's).
        target: the model without BN, same layer names otherwise (e.g.
            ``FCN8s(...)``); its weights are overwritten.

    Returns:
        ``target``, whose inference output equals ``trained_model(x,
        training=False)`` up to float rounding.

    Example:

    >>> import numpy as np
    >>> from keras_deconv.models import FCN8s
    >>> trained = FCN8s(num_classes=3, width=1 / 16, fc_units=8, batch_norm="trainable")
    >>> plain = fold_batch_norm_into_convolutions(trained, FCN8s(num_classes=3, width=1 / 16, fc_units=8))
    >>> x = np.random.default_rng(0).uniform(0, 255, (1, 40, 40, 3)).astype("float32")
    >>> bool(np.allclose(trained(x, training=False), plain(x), atol=1e-4))
    True
    """
    targets = {layer.name: layer for layer in target.layers}
    folded = {}
    for layer in batch_norm_layers(trained_model):
        conv = _producer(layer.input)
        if not isinstance(conv, keras.layers.Conv2D) or not conv.use_bias:
            raise ValueError(f"BN layer {layer.name!r} follows {conv.name!r}, not a convolution with a bias: "
                             "only BN right after a convolution folds into it.")
        scale, shift = folded_parameters(layer)
        kernel, bias = (np.asarray(weight, "float64") for weight in conv.get_weights())
        folded[conv.name] = [(kernel * scale).astype("float32"), (bias * scale + shift).astype("float32")]
    for layer in trained_model.layers:
        if not layer.weights or isinstance(layer, keras.layers.BatchNormalization):
            continue
        if layer.name not in targets:
            raise ValueError(f"{target.name} has no layer {layer.name!r} to receive {trained_model.name}'s weights.")
        targets[layer.name].set_weights(folded.get(layer.name, layer.get_weights()))
    sources = {layer.name for layer in trained_model.layers}
    missing = [layer.name for layer in target.layers if layer.weights and layer.name not in sources]
    if missing:
        raise ValueError(f"{trained_model.name} has no weights for {', '.join(missing)} of {target.name}.")
    return target
