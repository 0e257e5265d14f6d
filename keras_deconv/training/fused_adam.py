"""Adam with TensorFlow's fused per-variable kernel: the same update in one op per variable.

Keras 3's ``Adam.update_step`` builds its update from about fifteen small
ops per variable (the bias corrections ``beta ** step`` among them, again for
every variable). On a CPU each op costs dispatch time, and for the small
networks trained here that is a measurable share of a step
(``bench/train_step.py --breakdown``). TensorFlow has the whole update as
one kernel, ``ResourceApplyAdam`` (what ``tf.keras`` 2 used), so
:class:`FusedAdam` computes the bias corrections once per step and calls that
kernel once per variable. It is ``keras.optimizers.Adam`` in everything else:
the same hyperparameters, slot variables (Adam's own ``build``) and
schedule; clipping, weight decay and EMA run before it as in Adam. Anything
the kernel does not cover (another backend, ``amsgrad``, sparse or
mixed-precision gradients, a distribution strategy) falls back to Adam's own
update.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
>>> model.compile(FusedAdam(1e-2), "mse")
>>> loss = model.train_on_batch(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"))
>>> int(model.optimizer.iterations.numpy())
1
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_deconv")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose TensorFlow update is one ``ResourceApplyAdam`` per variable."""

    def _fusable(self, grads, variables):
        return (keras.backend.backend() == "tensorflow" and not self.amsgrad and not tf.distribute.has_strategy()
                and all(isinstance(g, tf.Tensor) and g.dtype == tf.float32 for g in grads)
                and all(v.dtype == "float32" for v in variables))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self._fusable(grads, trainable_variables):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1, beta_2 = (tf.cast(beta() if callable(beta) else beta, tf.float32) for beta in (self.beta_1, self.beta_2))
        lr = tf.cast(learning_rate, tf.float32)
        epsilon = tf.constant(self.epsilon, tf.float32)
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        for gradient, variable in zip(grads, trainable_variables):
            index = self._get_variable_index(variable)
            m, v = self._momentums[index], self._velocities[index]
            # var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), after the m and v updates: Adam.update_step
            tf.raw_ops.ResourceApplyAdam(
                var=variable.value.handle, m=m.value.handle, v=v.value.handle, beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=lr, beta1=beta_1, beta2=beta_2, epsilon=epsilon, grad=gradient,
                use_locking=False, use_nesterov=False)
