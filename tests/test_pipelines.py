"""Pipelines on small models: label maps at the input size, and the split sub-models."""

import numpy as np
import pytest
import tensorflow as tf

from keras_deconv.models import DeconvNet, DecoupledNet, FCN8s, TransferNet
from keras_deconv.pipelines import (
    TTA_VIEWS,
    DecoupledNetPipeline,
    DeconvNetPipeline,
    FCN8sPipeline,
    TransferNetPipeline,
    grid_proposals,
    split_decouplednet,
    split_transfernet,
)

SMALL = 1 / 16
SIZES = [(64, 64), (50, 70), (90, 33)]


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3)).astype("uint8") for h, w in sizes]


@pytest.fixture(scope="module")
def deconvnet():
    return DeconvNet(num_classes=3, width=SMALL, fc_kernel_size=2)


@pytest.fixture(scope="module")
def fcn():
    return FCN8s(num_classes=3, width=SMALL)


def _check(results, images, labels):
    assert len(results) == len(images)
    for result, image in zip(results, images):
        assert result.labels.shape == image.shape[:2]
        assert result.labels.dtype == np.int32
        assert result.probabilities.shape == image.shape[:2] + (labels,)
        assert result.labels.min() >= 0 and result.labels.max() < labels
        assert np.isfinite(result.probabilities).all()


def test_deconvnet_whole_image_and_ensembles(deconvnet, fcn):
    images = _images(SIZES)
    _check(DeconvNetPipeline(deconvnet, min_size=64)(images), images, 3)
    for ensemble in ("product", "average"):
        results = DeconvNetPipeline(deconvnet, fcn=fcn, ensemble=ensemble, min_size=64, fcn_pad_to=None)(images)
        _check(results, images, 3)
        np.testing.assert_allclose(results[0].probabilities.sum(-1), 1.0, rtol=1e-5)


def test_deconvnet_instance_mode_with_user_boxes_and_builtin_proposals(deconvnet):
    images = _images(SIZES[:2], seed=1)
    pipeline = DeconvNetPipeline(deconvnet, mode="instance", crop_size=64, min_box_size=16, max_proposals=6)
    boxes = [np.array([[0, 0, 64, 64], [-10, 5, 30, 45]]), np.array([[10, 10, 60, 40]])]
    _check(pipeline(images, boxes=boxes), images, 3)
    _check(pipeline(images), images, 3)
    assert len(grid_proposals(50, 70)) > 1
    with pytest.raises(ValueError, match="one box array per image"):
        pipeline(images, boxes=boxes[:1])


def test_decouplednet_pipeline_and_split_reuse_the_encoder():
    model = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1, bridging="gradient")
    encoder, decoder, names = split_decouplednet(model)
    image = _images([(64, 64)])[0][None]
    query = np.array([[0.0, 0.6, 0.0, 0.2]], "float32")
    encoded = encoder(image)
    split = decoder([tf.constant(query), *(encoded[n] for n in names)])
    full = model([image, query])
    np.testing.assert_allclose(split, full["seg-score"], rtol=1e-5, atol=1e-5)
    images = _images(SIZES, seed=2)
    for threshold in (0.0, 0.5, 1.0):  # all, some, no classes detected
        results = DecoupledNetPipeline(model, threshold=threshold)(images)
        _check(results, images, 5)
        assert results[0].scores.shape == (4,)
        np.testing.assert_allclose(results[0].probabilities.sum(-1), 1.0, rtol=1e-3)
    assert (DecoupledNetPipeline(model, threshold=1.0)(images[:1])[0].labels == 0).all()


def test_decouplednet_pipeline_with_known_labels_equals_the_detection_that_picks_them():
    model = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1)
    pipeline = DecoupledNetPipeline(model)
    image = _images([(50, 70)], seed=3)[0]
    scores = pipeline([image])[0].scores
    threshold = float(np.sort(scores)[1])  # the two best classes pass "s > threshold"
    ids = (np.flatnonzero(scores > threshold) + 1).tolist()
    expected = DecoupledNetPipeline(model, threshold=threshold)([image])[0]
    given = pipeline([image], labels=[ids[::-1]])[0]
    np.testing.assert_array_equal(given.labels, expected.labels)
    np.testing.assert_allclose(given.probabilities, expected.probabilities, rtol=1e-5, atol=1e-6)
    assert (pipeline([image], labels=[[]])[0].labels == 0).all()
    with pytest.raises(ValueError, match=r"Class ids must be in 1\.\.4"):
        pipeline([image], labels=[[5]])
    with pytest.raises(ValueError, match="one label list per image"):
        pipeline([image], labels=[[1], [2]])


def test_transfernet_pipeline_with_labels_or_a_classifier():
    model = TransferNet(num_classes=5, input_shape=(64, 64, 3), width=SMALL, return_attention=True)
    encoder, decoder, names = split_transfernet(model)
    image = _images([(64, 64)])[0][None]
    label = np.eye(5, dtype="float32")[[2]]
    encoded = encoder(image)
    np.testing.assert_allclose(
        decoder([tf.constant(label), *(encoded[n] for n in names)])["seg-score"], model([image, label])["seg-score"], rtol=1e-5, atol=1e-5
    )
    images = _images(SIZES, seed=3)
    results = TransferNetPipeline(model)(images, labels=[[1], [2, 5], []])
    _check(results, images, 6)
    assert set(np.unique(results[1].labels)) <= {0, 2, 5}
    assert (results[2].labels == 0).all()
    classifier = lambda img: np.array([0.1, 0.9, 0.7, 0.0, 0.2])  # noqa: E731
    _check(TransferNetPipeline(model, classifier=classifier)(images), images, 6)
    with pytest.raises(ValueError, match="class ids"):
        TransferNetPipeline(model)(images)
    with pytest.raises(ValueError, match="1..5"):
        TransferNetPipeline(model)(images[:1], labels=[[6]])


def test_pipelines_reject_bad_images(deconvnet):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        DeconvNetPipeline(deconvnet, min_size=64)([np.zeros((10, 10), "uint8")])


def _tf_view(array, turns, mirror):
    """A view as tf.image makes it (counter-clockwise quarter turns, then the mirror): the reference."""
    view = tf.image.rot90(array, turns)
    return (tf.image.flip_left_right(view) if mirror else view).numpy()


def _tf_unview(array, turns, mirror):
    return tf.image.rot90(tf.image.flip_left_right(array) if mirror else array, (4 - turns) % 4).numpy()


@pytest.mark.parametrize("tta", ["flip", "dihedral"])
def test_test_time_augmentation_averages_the_scores_of_each_view(deconvnet, fcn, tta):
    images = _images(SIZES[:2], seed=3)
    for plain, augmented in ((DeconvNetPipeline(deconvnet, min_size=64), DeconvNetPipeline(deconvnet, min_size=64, tta=tta)),
                             (FCN8sPipeline(fcn, pad_to=64), FCN8sPipeline(fcn, pad_to=64, tta=tta))):
        for image, result in zip(images, augmented(images)):
            # softmax(mean of log-probabilities) = softmax(mean of scores): the per-pixel log-sum-exp cancels.
            logs = [_tf_unview(np.log(plain([_tf_view(image, *view)])[0].probabilities), *view) for view in TTA_VIEWS[tta]]
            expected = tf.nn.softmax(np.mean(logs, axis=0)).numpy()
            np.testing.assert_allclose(result.probabilities, expected, atol=2e-5)
            top2 = np.sort(expected, axis=-1)[..., -2:]
            clear = top2[..., 1] - top2[..., 0] > 1e-4  # random weights: many near ties between the classes
            np.testing.assert_array_equal(result.labels[clear], expected.argmax(-1)[clear])


def test_test_time_augmentation_rejects_unknown_views_and_user_boxes(deconvnet):
    with pytest.raises(ValueError, match="one of none, flip, dihedral"):
        DeconvNetPipeline(deconvnet, tta="rotate")
    pipeline = DeconvNetPipeline(deconvnet, mode="instance", crop_size=64, min_box_size=16, max_proposals=2, tta="flip")
    with pytest.raises(ValueError, match="not user boxes"):
        pipeline(_images(SIZES[:1]), boxes=[np.array([[0, 0, 64, 64]])])
    _check(pipeline(_images(SIZES[:1])), _images(SIZES[:1]), 3)  # generated proposals: each view has its own


def test_decouplednet_averages_whole_runs_over_the_views():
    """DecoupledNet: each view runs the whole procedure (its own detection); maps and image scores are averaged."""
    decoupled = DecoupledNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL, fc_kernel_size=1)
    image = _images([(50, 70)], seed=5)[0]
    plain, augmented = DecoupledNetPipeline(decoupled), DecoupledNetPipeline(decoupled, tta="dihedral")
    runs = [(plain([_tf_view(image, *view)])[0], view) for view in TTA_VIEWS["dihedral"]]
    result = augmented([image])[0]
    expected = np.mean([_tf_unview(run.probabilities, *view) for run, view in runs], axis=0)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(result.labels, result.probabilities.argmax(-1))
    np.testing.assert_allclose(result.scores, np.mean([run.scores for run, _ in runs], axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="one of none, flip, dihedral"):
        DecoupledNetPipeline(decoupled, tta="all")


def test_transfernet_averages_each_class_pass_over_the_views_before_deciding():
    """TransferNet: [p_bg, p_fg] of every class pass (seen through the CRF hook) is averaged over the views."""
    transfer = TransferNet(num_classes=4, input_shape=(64, 64, 3), width=SMALL)
    image = _images([(50, 70)], seed=5)[0]

    def recorder(seen):
        return lambda image, binary: seen.append(np.array(binary)) or binary  # a CRF that changes nothing

    per_view = []
    for view in TTA_VIEWS["dihedral"]:
        seen = []
        run = TransferNetPipeline(transfer, crf=recorder(seen))([_tf_view(image, *view)], labels=[[1, 3]])[0]
        per_view.append(([_tf_unview(binary, *view) for binary in seen],
                         {k: _tf_unview(a[..., None], *view)[..., 0] for k, a in run.attention.items()}))
    seen = []
    result = TransferNetPipeline(transfer, crf=recorder(seen), tta="dihedral")([image], labels=[[1, 3]])[0]
    for k, class_id in enumerate((1, 3)):
        expected = np.mean([binaries[k] for binaries, _ in per_view], axis=0)
        np.testing.assert_allclose(seen[k], expected, atol=1e-6)
        np.testing.assert_allclose(result.attention[class_id], np.mean([att[class_id] for _, att in per_view], axis=0),
                                   atol=1e-6)
        foreground = expected.argmax(-1) == 1
        np.testing.assert_allclose(result.probabilities[..., class_id], np.where(foreground, expected[..., 1], 0), atol=1e-6)
    with pytest.raises(ValueError, match="one of none, flip, dihedral"):
        TransferNetPipeline(transfer, tta="all")
