"""Dense CRF post-processing (runs when the crf extra is installed, as in CI)."""

import numpy as np
import pytest

pytest.importorskip("pydensecrf.densecrf")

from keras_deconv.crf import OFFICIAL_PARAMETERS, DenseCRF  # noqa: E402


def two_region_scene(noise, seed=0):
    rng = np.random.default_rng(seed)
    image = np.zeros((40, 60, 3), "uint8")
    image[:, 30:] = (200, 40, 40)  # a red right half
    truth = np.zeros((40, 60), "int64")
    truth[:, 30:] = 1
    p_fg = np.where(truth == 1, 0.6, 0.4) + rng.uniform(-noise, noise, truth.shape)
    p_fg = np.clip(p_fg, 0.01, 0.99)
    return image, truth, np.stack([1 - p_fg, p_fg], -1).astype("float32")


def test_official_parameters():
    assert OFFICIAL_PARAMETERS == {"gaussian_sxy": 3.0, "gaussian_weight": 3.0, "bilateral_sxy": 20.0, "bilateral_srgb": 3.0,
                                   "bilateral_weight": 5.0, "iterations": 10}


def test_crf_follows_image_edges_and_returns_marginals():
    image, truth, probabilities = two_region_scene(noise=0.3)
    noisy_errors = (probabilities.argmax(-1) != truth).mean()
    refined = DenseCRF()(image, probabilities)
    assert refined.shape == probabilities.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(-1), 1.0, atol=1e-4)
    assert noisy_errors > 0.1
    assert (refined.argmax(-1) != truth).mean() < noisy_errors / 5


def test_crf_in_a_pipeline_and_bad_input():
    from keras_deconv.models import DeconvNet
    from keras_deconv.pipelines import DeconvNetPipeline

    pipeline = DeconvNetPipeline(DeconvNet(num_classes=3, width=1 / 16, fc_units=16), min_size=224, crf=DenseCRF(iterations=2))
    [result] = pipeline([np.zeros((30, 20, 3), "uint8")])
    assert result.labels.shape == (30, 20)
    with pytest.raises(ValueError, match="Unknown CRF parameters"):
        DenseCRF(sigma=1)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        DenseCRF()(np.zeros((4, 4), "uint8"), np.full((4, 4, 2), 0.5, "float32"))
