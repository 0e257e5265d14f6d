"""Batch normalization for training, on TensorFlow's fused kernel."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_deconv")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training pass runs TensorFlow's fused kernel.

    Keras 3 computes a training-mode batch normalization from separate ops
    (``moments``, then the normalization); TensorFlow's ``FusedBatchNormV3``
    does the statistics, the normalization and their gradients in one kernel
    each way. Same weights (``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance``), same results up to float rounding, same moving
    averages (the population variance, as Keras keeps it), fewer ops a step
    (timed in ``bench/train_step.py --keras-bn``). The parent's path runs wherever the fused
    kernel does not apply: inference, a frozen layer, a mask, renorm,
    ``synchronized``, inputs other than 4-D float32 with channels last. It
    takes the arguments of ``keras.layers.BatchNormalization``.

    Example:

    >>> import numpy as np
    >>> layer = FusedBatchNormalization(epsilon=1e-5)
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, (8, 4, 4, 2)).astype("float32")
    >>> y = np.asarray(layer(x, training=True))
    >>> bool(abs(y.mean()) < 1e-4 and abs(y.std() - 1) < 1e-3)
    True
    """

    def _fusable(self, inputs, mask):
        return (mask is None and not self.renorm and not self.synchronized and self.scale and self.center
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and inputs.dtype == "float32"
                and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance, *_ = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the sample (Bessel-corrected) variance; Keras averages the population one.
        values = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
        variance = variance * tf.maximum(values - 1.0, 1.0) / values
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
