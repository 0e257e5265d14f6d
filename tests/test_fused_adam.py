"""FusedAdam (keras_deconv.training.fused_adam): Keras's Adam, updated by one ResourceApplyAdam per variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deconv.training.fused_adam import FusedAdam


def train(optimizer, steps=20, jit=False):
    """A small conv net trained ``steps`` steps; returns every model and optimizer variable, in order, by name."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, use_bias=False),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    model.compile(optimizer, "mse", jit_compile=jit)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        model.train_on_batch(rng.normal(size=(4, 8, 8, 3)).astype("float32"),
                             rng.normal(size=(4, 2)).astype("float32"))
    return [(v.name, v.numpy()) for v in [*model.weights, *model.optimizer.variables]]


def assert_same_training(expected, actual):
    assert [value.shape for _, value in expected] == [value.shape for _, value in actual]
    for (name, want), (_, got) in zip(expected, actual):  # float rounding only: the kernel orders it differently
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("jit", [False, True])
def test_trains_exactly_as_keras_adam_with_schedule_weight_decay_and_clipping(jit):
    def options():
        return dict(learning_rate=keras.optimizers.schedules.CosineDecay(1e-2, 30), weight_decay=1e-3, clipnorm=1.0)

    expected = train(keras.optimizers.Adam(**options()))
    actual = train(FusedAdam(**options()), jit=jit)
    assert_same_training(expected, actual)
    moved = train(keras.optimizers.Adam(**options()), steps=19)  # the comparison can fail: one step fewer differs
    assert any(not np.allclose(a, b, rtol=1e-4, atol=1e-5) for (_, a), (_, b) in zip(moved, expected))


def apply_ops(optimizer, variables):
    """Op types of one traced ``optimizer.apply`` on ``variables``."""
    gradients = [tf.ones_like(v) for v in variables]

    @tf.function
    def apply():
        optimizer.apply(gradients, variables)

    return [op.type for op in apply.get_concrete_function().graph.get_operations()]


def test_one_fused_kernel_per_variable_and_adams_own_update_where_it_does_not_apply():
    variables = [keras.Variable(np.ones((3, 2), "float32")), keras.Variable(np.zeros((5,), "float32"))]
    fused = FusedAdam(1e-3)
    fused.build(variables)
    assert apply_ops(fused, variables).count("ResourceApplyAdam") == 2
    amsgrad = FusedAdam(1e-3, amsgrad=True)  # the kernel has no amsgrad: Adam's update
    amsgrad.build(variables)
    assert apply_ops(amsgrad, variables).count("ResourceApplyAdam") == 0
    assert_same_training(train(keras.optimizers.Adam(1e-2, amsgrad=True)), train(FusedAdam(1e-2, amsgrad=True)))


def test_config_round_trips_and_saved_models_reload_with_the_optimizer_state(tmp_path):
    optimizer = FusedAdam(3e-3, beta_1=0.8, epsilon=1e-6)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is FusedAdam and again.get_config() == optimizer.get_config()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(FusedAdam(1e-2), "mse")
    model.train_on_batch(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is FusedAdam and int(loaded.optimizer.iterations.numpy()) == 1
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
