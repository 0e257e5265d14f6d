"""SegmentationLoss against Keras's own loss (weight 1) and a NumPy reference (any weight)."""

import keras
import numpy as np
import pytest

from keras_deconv.training.losses import SegmentationLoss


def _numpy_loss(labels, logits, background_weight):
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    labelled = labels != 255
    safe = np.where(labelled, labels, 0)
    pixel = -np.take_along_axis(log_p, safe[..., None], -1)[..., 0]
    weights = np.where(safe == 0, background_weight, 1.0) * labelled
    return (pixel * weights).sum() / max(labelled.sum(), 1)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(3, 6, 7)).astype("int32")
    labels[rng.random(labels.shape) < 0.2] = 255
    labels[1, :3] = 255  # images with different labelled-pixel counts
    return labels, rng.normal(size=(3, 6, 7, 5)).astype("float32") * 3


def test_weight_one_is_keras_sparse_cross_entropy_with_ignore_class(batch):
    labels, logits = batch
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    np.testing.assert_allclose(float(SegmentationLoss()(labels, logits)), float(keras_loss(labels, logits)),
                               rtol=1e-5)


@pytest.mark.parametrize("background_weight", [0.0, 0.2, 1.0, 3.0])
def test_matches_numpy_reference(batch, background_weight):
    labels, logits = batch
    got = float(SegmentationLoss(background_weight)(labels, logits))
    np.testing.assert_allclose(got, _numpy_loss(labels, logits, background_weight), rtol=1e-5)


def test_labels_with_a_channel_axis_and_all_void_batches(batch):
    labels, logits = batch
    np.testing.assert_allclose(float(SegmentationLoss(0.3)(labels[..., None], logits)),
                               float(SegmentationLoss(0.3)(labels, logits)), rtol=1e-6)
    assert float(SegmentationLoss(0.3)(np.full_like(labels, 255), logits)) == 0.0


def test_background_weight_lowers_the_gradient_on_background_only():
    labels = np.array([[[0, 1]]], "int32")
    logits = keras.Variable(np.zeros((1, 1, 2, 2), "float32"))
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = SegmentationLoss(0.25)(labels, logits)
    grad = tape.gradient(loss, logits).numpy()[0, 0]
    np.testing.assert_allclose(np.abs(grad[0]), 0.25 * np.abs(grad[1]), rtol=1e-6)


def test_rejects_negative_weight():
    with pytest.raises(ValueError, match="background_weight"):
        SegmentationLoss(-1)


def test_recipes_pass_the_hyperparameter_to_their_loss():
    from keras_deconv.training import recipes

    recipe = recipes.DeconvNetRecipe(hparams={"background_loss_weight": 0.2})
    recipe.prepare()
    _, loss, *_ = recipe.stages()[0].build()
    assert isinstance(loss, SegmentationLoss) and loss.background_weight == 0.2
    fcn = recipes.FCN8sRecipe(hparams={"background_loss_weight": 0.5})
    fcn.prepare()
    assert fcn.stages()[0].build()[1].background_weight == 0.5


def test_round_trips_through_keras_serialization():
    # A compiled model saved with this loss (checkpoints, --resume) must load it back.
    loss = SegmentationLoss(0.3)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, SegmentationLoss) and restored.background_weight == 0.3


def test_deconvnet_pretrain_stage_starts_the_encoder_from_a_unet():
    from keras_deconv.training import recipes

    recipe = recipes.DeconvNetRecipe(hparams={"pretrain_steps": 3, "background_loss_weight": 0.2})
    stages = recipe.stages()
    assert [stage.name for stage in stages] == ["pretrain", "stage1", "stage2"]
    stages[0].prepare()
    pretrain = recipe.models["pretrain"]
    assert pretrain.output.shape[-1] == recipe.num_classes  # every class, not only the source ones
    assert stages[0].build()[1].background_weight == 0.2
    images, labels = next(iter(stages[0].dataset()))
    assert images.shape[1:3] == (64, 64) and labels.shape[1:3] == (64, 64)
    for layer in ("conv3_2", "bn3_2"):  # make the donor differ from a fresh network
        pretrain.get_layer(layer).set_weights([w + 0.5 for w in pretrain.get_layer(layer).get_weights()])
    stages[1].prepare()
    for layer in ("conv3_2", "bn3_2"):
        for got, want in zip(recipe.models["deconvnet"].get_layer(layer).get_weights(),
                             pretrain.get_layer(layer).get_weights()):
            np.testing.assert_array_equal(got, want)
    assert [stage.name for stage in recipes.DeconvNetRecipe().stages()] == ["stage1", "stage2"]  # default: none
