"""Scaffold skips: train DeconvNet with U-Net-style shortcuts that fade away (not in the paper).

DeconvNet's decoder learns from nothing but the pooling switches of its
encoder, and from scratch on a CPU it learns that slowly: in the reference
loop of ``bench/shapes_baseline.py`` the shipped small DeconvNet stays near
the all-background floor where a U-Net, whose decoder also gets the encoder's
feature maps, learns the shapes (docs/training.md). The scaffold gives the
decoder those feature maps while it starts: after every ``unpool{L}`` it adds
``alpha * conv{L}_last`` (the map that was pooled), and ``alpha`` falls
linearly from 1 to 0 over the first ``fade_steps`` training steps. From then
on the graph computes DeconvNet exactly (the skips add ``0 *`` the map), so
the weights that leave the stage are DeconvNet's, with nothing to remove.

With ``drop=True`` the skips are not scaled but switched: in each training
step a sample keeps all of its skips with probability ``alpha`` and loses all
of them otherwise (one draw per sample, shared by every level, like dropout of
the whole shortcut path). The plain DeconvNet path then trains on a growing
share of each batch from the first step, instead of being handed the decoder
only when ``alpha`` reaches 0. Inference calls add the expectation,
``alpha * features``.

The scaffolded graph shares its layers with the network (``clone_model``
with the layers reused): training it trains the network. Each skip counts
its own training calls in a non-trainable weight, so the fade survives
checkpoints and resumed runs.

Example:

>>> from keras_deconv.models import DeconvNet
>>> net = DeconvNet(3, (32, 32, 3), width=1 / 32, fc_units=8, fc_kernel_size=1)
>>> trained = with_scaffold_skips(net, fade_steps=10)
>>> sorted(layer.name for layer in trained.layers if isinstance(layer, FadingSkip))[:2]
['scaffold_unpool1', 'scaffold_unpool2']
>>> float(trained.get_layer("scaffold_unpool1").alpha())
1.0
"""

import keras
import tensorflow as tf

from keras_deconv.layers import MaxUnpooling2D


@keras.saving.register_keras_serializable(package="keras_deconv")
class FadingSkip(keras.layers.Layer):
    """``[unpooled, features] -> unpooled + alpha * features``, alpha = ``max(0, 1 - calls / fade_steps)``.

    ``calls`` counts the layer's training-mode calls (one per step); inference
    calls use the current ``alpha`` and count nothing.

    Args:
        fade_steps: training steps until ``alpha`` reaches 0 (positive).
        drop: in training, add ``features`` to a sample with probability
            ``alpha`` (else nothing) instead of adding ``alpha * features``.
        seed: with ``drop``, the draws depend only on (``seed``, step), so
            skips that share a seed drop the same samples.
    """

    def __init__(self, fade_steps, drop=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(fade_steps, (int, float)) and fade_steps > 0):
            raise ValueError(f"FadingSkip: fade_steps must be a positive number of steps. Received: {fade_steps!r}")
        self.fade_steps = float(fade_steps)
        self.drop = bool(drop)
        self.seed = int(seed)

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def alpha(self):
        """The current weight of the skip."""
        return keras.ops.maximum(0.0, 1.0 - keras.ops.convert_to_tensor(self.calls) / self.fade_steps)

    def call(self, inputs, training=None):
        unpooled, features = inputs
        alpha = keras.ops.cast(self.alpha(), unpooled.dtype)
        if training and self.drop:
            # Stateless: every skip of the graph reads the same step count, so all levels drop the same samples.
            step = tf.cast(tf.convert_to_tensor(self.calls), tf.int32)
            draw = tf.random.stateless_uniform(tf.shape(unpooled)[:1], seed=tf.stack([self.seed, step]))
            alpha = tf.reshape(tf.cast(draw < alpha, unpooled.dtype), [-1, 1, 1, 1])
        if training:
            self.calls.assign_add(1.0)
        return unpooled + alpha * features

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "fade_steps": self.fade_steps, "drop": self.drop, "seed": self.seed}


def with_scaffold_skips(model, fade_steps, drop=False, seed=0):
    """``model``'s graph with a :class:`FadingSkip` after every unpooling that knows its pooled map.

    Args:
        model: a functional DeconvNet-family network (its ``MaxUnpooling2D``
            layers called on ``[values, switches, pooled_from]``).
        fade_steps: training steps over which the skips fade to 0.
        drop: switch whole samples' skips off with probability ``1 - alpha``
            (one draw per sample for all levels) instead of scaling them.
        seed: the drop draws' seed.

    Returns:
        A ``keras.Model`` on the same inputs, sharing every layer (and
        weight) of ``model``, with one ``scaffold_<unpool name>`` skip per
        unpooling. Raises ``ValueError`` when the model has no such unpooling.
    """
    added = []

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        inputs = args[0] if args else None
        if isinstance(layer, MaxUnpooling2D) and isinstance(inputs, (list, tuple)) and len(inputs) == 3:
            skip = FadingSkip(fade_steps, drop=drop, seed=seed, name=f"scaffold_{layer.name}")
            added.append(skip.name)
            out = skip([out, inputs[2]])
        return out

    scaffolded = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    if not added:
        raise ValueError(f"with_scaffold_skips: {model.name} has no MaxUnpooling2D called with its pooled map "
                         "([values, switches, pooled_from]); scaffold skips apply to the DeconvNet-family decoders.")
    return scaffolded
