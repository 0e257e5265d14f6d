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


def test_bad_arguments_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="fade_steps must be a positive"):
        FadingSkip(0)
    with pytest.raises(ValueError, match="no MaxUnpooling2D"):
        with_scaffold_skips(FCN8s(3, (32, 32, 3), width=1 / 32, fc_units=8), fade_steps=5)
    with pytest.raises(ValueError, match="scaffold_fade"):
        recipe = training.get_recipe("deconvnet")(hparams={"scaffold_fade": 1.5})
        recipe.prepare()
        recipe.stages()[0].build()


def test_recipe_trains_through_the_scaffold_resumes_its_fade_and_exports_deconvnet(tmp_path):
    output = str(tmp_path / "run")
    hp = {"batch_size": 2, "scaffold_fade": 0.5, "stage1_steps": 0, "stage2_steps": 4, "stage2_whole_images": 1.0}
    config = {"width": 1 / 16, "fc_units": 16}
    recipe = training.get_recipe("deconvnet")(hparams=hp, config=config)
    training.train(recipe, output, epochs=4, verbose=0, export=False, stop_after_epochs=1, jit_compile=False)
    resumed = training.get_recipe("deconvnet")(hparams=hp, config=config)
    run = training.train(resumed, output, epochs=4, verbose=0, resume=True, jit_compile=False)
    assert run["hparams"]["scaffold_fade"] == 0.5 and run["stages"]["stage2"]["steps"] == 4
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
