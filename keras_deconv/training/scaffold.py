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

With ``order="deep-first"`` or ``"fine-first"`` the levels fade one after
another instead of together: the fade window is cut into one slice per level,
and each skip stays at 1 until its slice, then falls to 0 across it (deepest
level ``unpool5`` first, or finest ``unpool1`` first). Summed over the
levels, the area under ``alpha`` is the same as when they fade together, so
the orders hand the decoder the same total help; the network loses one
level's maps at a time instead of all at once.

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
    """``[unpooled, features] -> unpooled + alpha * features``, ``alpha = clip(1 - (calls - start) / steps, 0, 1)``.

    ``start`` is ``fade_start`` and ``steps`` is ``fade_steps``.

    ``calls`` counts the layer's training-mode calls (one per step); inference
    calls use the current ``alpha`` and count nothing.

    Args:
        fade_steps: training steps from 1 to 0 once the fade starts (positive).
        fade_start: training steps at full strength before the fade (default 0).
        drop: in training, add ``features`` to a sample with probability
            ``alpha`` (else nothing) instead of adding ``alpha * features``.
        seed: with ``drop``, the draws depend only on (``seed``, step), so
            skips that share a seed drop the same samples.
    """

    def __init__(self, fade_steps, drop=False, seed=0, fade_start=0, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(fade_steps, (int, float)) and fade_steps > 0):
            raise ValueError(f"FadingSkip: fade_steps must be a positive number of steps. Received: {fade_steps!r}")
        if not (isinstance(fade_start, (int, float)) and fade_start >= 0):
            raise ValueError(f"FadingSkip: fade_start must be a number of steps >= 0. Received: {fade_start!r}")
        self.fade_steps = float(fade_steps)
        self.fade_start = float(fade_start)
        self.drop = bool(drop)
        self.seed = int(seed)

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def alpha(self):
        """The current weight of the skip."""
        faded = (keras.ops.convert_to_tensor(self.calls) - self.fade_start) / self.fade_steps
        return keras.ops.clip(1.0 - faded, 0.0, 1.0)

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
        return {**super().get_config(), "fade_steps": self.fade_steps, "drop": self.drop, "seed": self.seed,
                "fade_start": self.fade_start}


ORDERS = ("together", "deep-first", "fine-first")


def with_scaffold_skips(model, fade_steps, drop=False, seed=0, order="together"):
    """``model``'s graph with a :class:`FadingSkip` after every unpooling that knows its pooled map.

    Args:
        model: a functional DeconvNet-family network (its ``MaxUnpooling2D``
            layers called on ``[values, switches, pooled_from]``).
        fade_steps: training steps over which the skips fade to 0.
        drop: switch whole samples' skips off with probability ``1 - alpha``
            (one draw per sample for all levels) instead of scaling them.
        seed: the drop draws' seed.
        order: ``"together"`` (every level fades over the whole window),
            ``"deep-first"`` or ``"fine-first"`` (one slice of the window per
            level, in that order; see the module docstring).

    Returns:
        A ``keras.Model`` on the same inputs, sharing every layer (and
        weight) of ``model``, with one ``scaffold_<unpool name>`` skip per
        unpooling. Raises ``ValueError`` when the model has no such unpooling.
    """
    if order not in ORDERS:
        raise ValueError(f"with_scaffold_skips: order must be one of {', '.join(ORDERS)}. Received: {order!r}")
    added = []

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        inputs = args[0] if args else None
        if isinstance(layer, MaxUnpooling2D) and isinstance(inputs, (list, tuple)) and len(inputs) == 3:
            skip = FadingSkip(fade_steps, drop=drop, seed=seed, name=f"scaffold_{layer.name}")
            added.append(skip)
            out = skip([out, inputs[2]])
        return out

    scaffolded = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    if not added:
        raise ValueError(f"with_scaffold_skips: {model.name} has no MaxUnpooling2D called with its pooled map "
                         "([values, switches, pooled_from]); scaffold skips apply to the DeconvNet-family decoders.")
    if order != "together":
        # The decoders call their unpoolings deepest first; one slice of the window per level, in order.
        levels = added if order == "deep-first" else added[::-1]
        for number, skip in enumerate(levels):
            skip.fade_steps = fade_steps / len(levels)
            skip.fade_start = number * fade_steps / len(levels)
    return scaffolded
