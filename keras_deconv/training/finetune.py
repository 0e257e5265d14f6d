"""Fine-tuning helpers (``keras-deconv train --init ... --freeze-encoder``).

* :func:`transfer_weights`: copy every weight whose layer name and shapes
  match from a start model; the rest (the classifier when the number of
  classes differs) keeps its fresh initialisation.
* :func:`freeze_encoder`: keep the VGG-16 encoder (``conv1_1`` ...
  ``conv5_3`` and, in DeconvNet, their BN layers ``bn1_1`` ... ``bn5_3``)
  fixed; fc6/fc7, the decoder and the classifier train.

Example:

>>> from keras_deconv import models
>>> start = models.FCN8s(num_classes=21, width=1 / 16, fc_units=16)
>>> model = models.FCN8s(num_classes=3, width=1 / 16, fc_units=16)
>>> transfer_weights(start, model)
['score-fr', 'score2', 'score-pool4', 'score4', 'score-pool3', 'upsample']
>>> frozen = freeze_encoder(model)
>>> frozen[0], frozen[-1], model.get_layer("fc6").trainable
('conv1_1', 'conv5_3', True)
"""

import re

import keras

#: Encoder layers: VGG-16's 13 convolutions and the BN after each (DeconvNet).
ENCODER_LAYER = re.compile(r"^(conv|bn)[1-5]_[1-3]$")


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def transfer_weights(source, target):
    """Copies same-named, same-shaped weights of ``source`` into ``target``.

    Returns:
        The names of ``target``'s weighted layers that were not copied
        (re-initialised), in graph order.
    """
    donors = {layer.name: layer for layer in _layers(source)}
    reinitialised = []
    for layer in _layers(target):
        if not layer.weights:
            continue
        donor = donors.get(layer.name)
        if donor is None or [tuple(w.shape) for w in donor.weights] != [tuple(w.shape) for w in layer.weights]:
            reinitialised.append(layer.name)
            continue
        layer.set_weights(donor.get_weights())
    return reinitialised


def freeze_encoder(model):
    """Marks the encoder layers of ``model`` not trainable; returns their names."""
    frozen = []
    for layer in _layers(model):
        if ENCODER_LAYER.match(layer.name) and layer.weights:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen
