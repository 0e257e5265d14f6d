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
