"""Scaffold skips (keras_deconv.training.scaffold): fade to exactly DeconvNet, share its weights, resume."""

import keras
import numpy as np
import pytest

from keras_deconv import training
from keras_deconv.models import DeconvNet, FCN8s
from keras_deconv.training.scaffold import FadingSkip, with_scaffold_skips

RNG = np.random.default_rng(7)


def small_deconvnet():
    keras.utils.set_random_seed(1)
    return DeconvNet(3, (32, 32, 3), width=1 / 32, fc_units=8, fc_kernel_size=1, batch_norm="trainable")


def test_skips_add_the_pooled_maps_then_fade_to_exactly_deconvnet():
    net = small_deconvnet()
    scaffolded = with_scaffold_skips(net, fade_steps=3)
    skips = [layer for layer in scaffolded.layers if isinstance(layer, FadingSkip)]
    assert sorted(layer.name for layer in skips) == [f"scaffold_unpool{level}" for level in range(1, 6)]
    assert all(a is b for a, b in zip(net.weights, [w for w in scaffolded.weights if "calls" not in w.path]))

    x = RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    plain = np.asarray(net(x, training=False))
    assert not np.allclose(np.asarray(scaffolded(x, training=False)), plain)  # alpha 1: the skips count
    y = RNG.integers(0, 3, (2, 32, 32)).astype("int32")
    scaffolded.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    alphas = []
    for _ in range(4):  # lr 0: only the fade moves (and BN's moving statistics)
        scaffolded.train_on_batch(x, y)
        alphas.append(round(float(skips[0].alpha()), 4))
    assert alphas == [0.6667, 0.3333, 0.0, 0.0]
    np.testing.assert_array_equal(np.asarray(scaffolded(x, training=False)), np.asarray(net(x, training=False)))


def test_the_fade_is_saved_with_the_weights(tmp_path):
    scaffolded = with_scaffold_skips(small_deconvnet(), fade_steps=4)
    scaffolded.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    scaffolded.train_on_batch(RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32"),
                              RNG.integers(0, 3, (2, 32, 32)).astype("int32"))
    scaffolded.save_weights(tmp_path / "checkpoint.weights.h5")  # what BackupAndRestore keeps of a stage
    again = with_scaffold_skips(small_deconvnet(), fade_steps=4)
    again.load_weights(tmp_path / "checkpoint.weights.h5")
    assert float(again.get_layer("scaffold_unpool3").alpha()) == 0.75


def test_training_the_scaffold_trains_the_network():
    net = small_deconvnet()
    before = [np.asarray(w).copy() for w in net.trainable_weights]
    scaffolded = with_scaffold_skips(net, fade_steps=10)
    scaffolded.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    scaffolded.train_on_batch(RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32"),
                              RNG.integers(0, 3, (2, 32, 32)).astype("int32"))
    changed = [not np.array_equal(a, np.asarray(b)) for a, b in zip(before, net.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(net.trainable_weights, changed) if not c]


def test_drop_mode_switches_whole_samples_and_every_level_drops_the_same_ones():
    import tensorflow as tf

    levels = [FadingSkip(4, drop=True, seed=5) for _ in range(2)]
    unpooled, features = np.zeros((4000, 2, 2, 3), "float32"), np.ones((4000, 2, 2, 3), "float32")

    @tf.function
    def step():  # as in a compiled training step: both levels read their step count, then count it
        return [level([unpooled, features], training=True) for level in levels]

    kept_shares = []
    for _ in range(6):
        first, second = (np.asarray(out) for out in step())
        np.testing.assert_array_equal(first, second)  # one draw per sample, shared by the levels
        per_sample = first.reshape(len(first), -1)
        assert np.all((per_sample == 0) | (per_sample == 1)) and np.all(per_sample.min(1) == per_sample.max(1))
        kept_shares.append(per_sample[:, 0].mean())
    assert kept_shares[0] == 1.0 and kept_shares[-2:] == [0.0, 0.0]  # alpha 1, then 0 from step 4 on
    np.testing.assert_allclose(kept_shares[1:4], [0.75, 0.5, 0.25], atol=0.03)
    # inference adds the expectation; another seed drops other samples
    half = FadingSkip(2, drop=True, seed=5)
    half([unpooled, features], training=True)
    np.testing.assert_array_equal(np.asarray(half([unpooled, features], training=False)), 0.5 * features)
    other = FadingSkip(2, drop=True, seed=6)
    other([unpooled, features], training=True)
    assert not np.array_equal(np.asarray(half([unpooled, features], training=True)),
                              np.asarray(other([unpooled, features], training=True)))


@pytest.mark.parametrize("order, first", [("deep-first", 5), ("fine-first", 1)])
def test_staggered_orders_fade_one_level_after_another(order, first):
    net = small_deconvnet()
    scaffolded = with_scaffold_skips(net, fade_steps=10, order=order)
    by_level = {int(layer.name[-1]): layer for layer in scaffolded.layers if isinstance(layer, FadingSkip)}
    sequence = [first + step * (-1 if first == 5 else 1) for step in range(5)]  # the order the levels leave in
    x = RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    y = RNG.integers(0, 3, (2, 32, 32)).astype("int32")
    scaffolded.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = []
    for _ in range(11):
        history.append([round(float(by_level[level].alpha()), 4) for level in sequence])
        scaffolded.train_on_batch(x, y)
    # each level holds 1 until its slice of 2 steps, falls through 0.5 to 0, then the next one starts
    assert history[0] == [1.0] * 5
    assert history[1] == [0.5, 1.0, 1.0, 1.0, 1.0] and history[2] == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert history[3] == [0.0, 0.5, 1.0, 1.0, 1.0] and history[9] == [0.0, 0.0, 0.0, 0.0, 0.5]
    assert history[10] == [0.0] * 5
    # the same total help as fading together: summed over levels and steps, alpha adds up to the same
    together = with_scaffold_skips(small_deconvnet(), fade_steps=10).get_layer("scaffold_unpool3")
    together_sum = 0.0
    for calls in range(11):
        together.calls.assign(float(calls))
        together_sum += float(together.alpha())
    assert together_sum == pytest.approx(5.5)
    assert sum(map(sum, history)) == pytest.approx(5 * together_sum)
    np.testing.assert_array_equal(np.asarray(scaffolded(x, training=False)), np.asarray(net(x, training=False)))


def test_bad_arguments_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="fade_steps must be a positive"):
        FadingSkip(0)
    with pytest.raises(ValueError, match="no MaxUnpooling2D"):
        with_scaffold_skips(FCN8s(3, (32, 32, 3), width=1 / 32, fc_units=8), fade_steps=5)
    with pytest.raises(ValueError, match="scaffold_fade"):
        recipe = training.get_recipe("deconvnet")(hparams={"scaffold_fade": 1.5})
        recipe.prepare()
        recipe.stages()[0].build()
    with pytest.raises(ValueError, match="order must be one of together, deep-first, fine-first"):
        with_scaffold_skips(small_deconvnet(), fade_steps=5, order="backwards")
    with pytest.raises(ValueError, match="scaffold_order must be one of"):
        recipe = training.get_recipe("deconvnet")(hparams={"scaffold_fade": 0.5, "scaffold_order": "random"})
        recipe.prepare()
        recipe.stages()[0].build()
    with pytest.raises(ValueError, match="scaffold_drop must be 0"):
        recipe = training.get_recipe("deconvnet")(hparams={"scaffold_fade": 0.5, "scaffold_drop": 2})
        recipe.prepare()
        recipe.stages()[0].build()


def test_recipe_trains_through_the_scaffold_resumes_its_fade_and_exports_deconvnet(tmp_path):
    output = str(tmp_path / "run")
    hp = {"batch_size": 2, "scaffold_fade": 0.5, "scaffold_drop": 1, "stage1_steps": 0, "stage2_steps": 4,
          "stage2_whole_images": 1.0}
    config = {"width": 1 / 16, "fc_units": 16}
    recipe = training.get_recipe("deconvnet")(hparams=hp, config=config)
    training.train(recipe, output, epochs=4, verbose=0, export=False, stop_after_epochs=1, jit_compile=False)
    resumed = training.get_recipe("deconvnet")(hparams=hp, config=config)
    run = training.train(resumed, output, epochs=4, verbose=0, resume=True, jit_compile=False)
    assert run["hparams"]["scaffold_fade"] == 0.5 and run["stages"]["stage2"]["steps"] == 4
    assert run["hparams"]["scaffold_drop"] == 1
    # the export is the plain folded network, loadable into the inference DeconvNet
    model = DeconvNet(resumed.num_classes, resumed.input_shape, batch_norm="folded", **resumed.config)
    model.load_weights(run["export"]["files"]["shapes"])
    assert np.isfinite(np.asarray(model(np.zeros((1, *resumed.input_shape), "float32")))).all()


def test_transfernet_segmentation_stage_trains_its_decoder_through_the_scaffold():
    recipe = training.get_recipe("transfernet")(hparams={"batch_size": 2, "pretrain_steps": 0, "scaffold_fade": 0.5})
    stage = recipe.stages()[-1]
    assert stage.name == "segmentation"
    stage.prepare()
    fit_model, losses, loss_weights, _, _ = stage.build()
    skips = [layer.name for layer in fit_model.layers if isinstance(layer, FadingSkip)]
    network = recipe.models["transfernet"]
    unpoolings = [layer.name for layer in network.layers if type(layer).__name__ == "MaxUnpooling2D"]
    assert unpoolings and sorted(skips) == sorted(f"scaffold_{name}" for name in unpoolings)
    assert not set(skips) & {layer.name for layer in network.layers}  # the network itself stays plain
    x, y = next(iter(stage.dataset()))
    fit_model.compile(optimizer="adam", loss=losses, loss_weights=loss_weights, run_eagerly=True)
    assert np.isfinite(np.ravel(fit_model.train_on_batch(x, y))).all()
