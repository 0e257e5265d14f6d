"""Encoder pretraining on source-domain masks (keras_deconv.training.pretraining) and its use in the recipes."""

import keras
import numpy as np
import pytest

from keras_deconv import models, training
from keras_deconv.datasets import shapes
from keras_deconv.models import _blocks
from keras_deconv.models.vgg16_encoder import vgg16_encoder
from keras_deconv.training import pretraining
from keras_deconv.training.bn_folding import batch_norm_layers

ENCODER = [f"conv{b}_{i}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(1, n + 1)]


def _encoder(batch_norm):
    inputs, x = _blocks.image_input((64, 64, 3), True)
    return keras.Model(inputs, vgg16_encoder(x, width=1 / 16, batch_norm=batch_norm, num_pools=4)["conv5_3"])


def test_folding_bn_into_the_kernels_is_exact():
    """conv -> BN -> ReLU equals conv' -> ReLU; reference: the BN model itself in inference mode."""
    keras.utils.set_random_seed(0)
    trained = _encoder("trainable")
    rng = np.random.default_rng(0)
    for layer in batch_norm_layers(trained):
        c = layer.gamma.shape[0]
        layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 1, c), rng.normal(0, 1, c), rng.uniform(0.5, 2, c)])
    plain = _encoder(None)
    assert pretraining.copy_encoder(trained, plain) == ENCODER
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = np.asarray(trained(images, training=False))
    assert expected.std() > 0
    np.testing.assert_allclose(np.asarray(plain(images)), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("build", [
    lambda: models.TransferNet(12, (64, 64, 3), width=1 / 16),
    lambda: models.DecoupledNet(12, (64, 64, 3), width=1 / 16, fc_units=64, seg_fc_units=32, fc_kernel_size=1),
], ids=["transfernet", "decouplednet"])
def test_the_pretrained_fcn_encoder_goes_into_both_networks(build):
    keras.utils.set_random_seed(1)
    source = pretraining.source_segmentation_net((64, 64, 3), 1 / 16)
    assert source.output.shape[-1] == 8  # background + 7 source classes
    target = build()
    assert pretraining.copy_encoder(source, target) == ENCODER
    for name in ENCODER:
        for a, b in zip(source.get_layer(name).get_weights(), target.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_copy_encoder_rejects_a_network_without_the_vgg16_convs():
    source = pretraining.source_segmentation_net((64, 64, 3), 1 / 16)
    inputs = keras.Input((64, 64, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv1_1")(inputs))
    with pytest.raises(ValueError, match="Expected 13 VGG-16 conv layers"):
        pretraining.copy_encoder(source, other)


@pytest.mark.parametrize("name", ["decouplednet", "transfernet"])
def test_recipes_pretrain_first_on_source_masks_only(name):
    recipe = training.get_recipe(name)(hparams={"batch_size": 4, "pretrain_steps": 5})
    stages = recipe.stages()
    assert stages[0].name == "pretrain" and stages[0].steps == 5
    _, labels = next(iter(stages[0].dataset()))
    present = set(np.unique(np.asarray(labels)).tolist()) - {255}
    assert present <= set(range(8)) and len(present) > 1  # background + source classes 1-7, never 8-12
    # Turned off by pretrain_steps=0 (and by --init-vgg16, the papers' ImageNet start).
    assert training.get_recipe(name)(hparams={"pretrain_steps": 0}).stages()[0].name != "pretrain"


def test_the_next_stage_starts_from_the_pretrained_encoder():
    keras.utils.set_random_seed(2)
    recipe = training.get_recipe("transfernet")(hparams={"batch_size": 4})
    pretrain, encoder = recipe.stages()[:2]
    pretrain.prepare()
    encoder.prepare()
    np.testing.assert_array_equal(recipe.models["pretrain"].get_layer("conv3_2").get_weights()[0],
                                  recipe.models["transfernet"].get_layer("conv3_2").get_weights()[0])


def test_deconvnet_stage_switches(monkeypatch):
    """``stage1_steps=0`` skips the crops; ``stage2_whole_images`` reaches the window sampler."""
    from keras_deconv.training import data as train_data

    recipe = training.get_recipe("deconvnet")(hparams={"stage1_steps": 0, "stage2_whole_images": 1.0})
    assert [stage.name for stage in recipe.stages()] == ["stage2"]
    seen = {}
    monkeypatch.setattr(train_data, "windows", lambda *args, **kwargs: seen.update(kwargs))
    recipe.stage2_data(0, False)
    assert seen["whole_image_probability"] == 1.0
    default = training.get_recipe("deconvnet")()
    assert [stage.name for stage in default.stages()] == ["stage1", "stage2"]
    default.stage2_data(0, False)
    assert seen["whole_image_probability"] == 0.25  # the official mix: mostly windows around objects


def test_revive_dead_layers_resets_only_layers_without_live_channels():
    """A pretrained conv whose outputs are never positive is re-initialised; a live one is left bit for bit."""
    from keras_deconv.training.recipes import revive_dead_layers

    inputs = keras.Input((8, 8, 3))
    live = keras.layers.Conv2D(8, 3, padding="same", name="live")(inputs)
    dead = keras.layers.Conv2D(8, 3, padding="same", name="dead")(keras.layers.ReLU()(live))
    model = keras.Model(inputs, dead)
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    kernel, bias = model.get_layer("dead").get_weights()
    model.get_layer("dead").set_weights([np.zeros_like(kernel), np.full_like(bias, -1.0)])  # ReLU passes nothing
    before = [np.copy(w) for w in model.get_layer("live").get_weights()]

    assert revive_dead_layers(model, images, ["live", "dead"]) == ["dead"]
    for a, b in zip(before, model.get_layer("live").get_weights()):
        np.testing.assert_array_equal(a, b)
    out = np.asarray(model(images))
    assert (out.reshape(-1, 8) > 0).any(axis=0).mean() >= 0.25
    assert abs(float(out.std()) - 1.0) < 0.1  # unit variance, as unit_variance_init leaves it
    assert revive_dead_layers(model, images, ["live", "dead"]) == []


def test_transfernet_decoder_starts_at_unit_variance_from_its_tiny_saliency_input():
    """TransferNet's decoder input (the 0.004-scaled saliency map) is of order 1e-3: glorot deconvolutions without
    BN let it fade and the score is its biases. init_decoder rescales every decoder layer on source-domain pairs."""
    from keras_deconv.training import get_recipe

    recipe = get_recipe("transfernet")(hparams={"batch_size": 4})
    recipe.prepare()
    model = recipe.models["transfernet"]
    names = ["filter_sum", "deconv5_1", "deconv4_1", "deconv2_2", "deconv1_2", "seg-score"]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    images = recipe.train_arrays(shapes.domain_indices("train", "source"))["image"][:32].astype("float32")
    labels = np.eye(shapes.NUM_OBJECT_CLASSES, dtype="float32")[np.arange(32) % 7]
    before = [float(np.std(np.asarray(t))) for t in probe([images, labels])]
    assert before[0] < 0.01  # the saliency map
    stds = recipe.init_decoder(model)
    assert "deconv5_1" in stds and "seg-score" in stds and len(stds) == 1 + 10 + 1  # deconv5_1, levels 4-1 (3+3+2+2), score
    after = [float(np.std(np.asarray(t))) for t in probe([images, labels])]
    assert after[0] == pytest.approx(before[0])  # the encoder and attention are untouched
    for name, value in zip(names[1:], after[1:]):
        assert 0.5 < value < 2.0, (name, value)  # unit variance on the init batch, near it on these images
