"""Fully-connected CRF post-processing with the official parameters (optional extra).

The released DeconvNet and TransferNet code refine their probability maps with
Krähenbühl and Koltun's dense CRF (``meanfield-matlab``): unary ``-log p``, a
Gaussian term (``sxy=3``, weight 3), a bilateral term (``sxy=20``, ``srgb=3``,
weight 5), 10 mean-field iterations (spec §2.5 step 4, §4.5). This module runs
the same model through ``pydensecrf`` (``pip install keras-deconv[crf]``, which
installs the ``pydensecrf2`` build).

>>> import numpy as np
>>> crf = DenseCRF()                                       # doctest: +SKIP
>>> refined = crf(image_uint8, probabilities)              # doctest: +SKIP
"""

import numpy as np

OFFICIAL_PARAMETERS = {
    "gaussian_sxy": 3.0,
    "gaussian_weight": 3.0,
    "bilateral_sxy": 20.0,
    "bilateral_srgb": 3.0,
    "bilateral_weight": 5.0,
    "iterations": 10,
}


def _densecrf():
    try:
        import pydensecrf.densecrf as densecrf
    except ImportError as error:
        raise ImportError("The dense CRF needs pydensecrf: pip install 'keras-deconv[crf]' (installs pydensecrf2).") from error
    return densecrf


class DenseCRF:
    """``crf(image, probabilities) -> probabilities``: the pipelines' ``crf=`` hook.

    Args:
        **parameters: overrides of :data:`OFFICIAL_PARAMETERS`.

    The image is ``(H, W, 3)`` uint8 RGB; probabilities ``(H, W, L)`` with
    ``L >= 2`` labels summing to 1 per pixel. Returns refined ``(H, W, L)``
    float32 marginals.
    """

    def __init__(self, **parameters):
        unknown = set(parameters) - set(OFFICIAL_PARAMETERS)
        if unknown:
            raise ValueError(f"Unknown CRF parameters {sorted(unknown)}; known: {sorted(OFFICIAL_PARAMETERS)}.")
        self.parameters = {**OFFICIAL_PARAMETERS, **parameters}
        self._densecrf = _densecrf()  # fail at construction, not mid-evaluation

    def __call__(self, image, probabilities):
        image = np.asarray(image)
        probabilities = np.asarray(probabilities, "float32")
        if image.ndim != 3 or image.shape[2] != 3 or probabilities.shape[:2] != image.shape[:2] or probabilities.ndim != 3:
            raise ValueError(f"DenseCRF expects an (H, W, 3) image and (H, W, L) probabilities. Received {image.shape} and {probabilities.shape}.")
        height, width, labels = probabilities.shape
        p = self.parameters
        crf = self._densecrf.DenseCRF2D(width, height, labels)
        unary = -np.log(np.clip(probabilities, 1e-8, 1.0)).transpose(2, 0, 1).reshape(labels, -1)
        crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype="float32"))
        crf.addPairwiseGaussian(sxy=p["gaussian_sxy"], compat=p["gaussian_weight"])
        rgb = np.ascontiguousarray(np.clip(image, 0, 255).astype("uint8"))
        crf.addPairwiseBilateral(sxy=p["bilateral_sxy"], srgb=p["bilateral_srgb"], rgbim=rgb, compat=p["bilateral_weight"])
        marginals = np.asarray(crf.inference(int(p["iterations"])), "float32")
        return marginals.reshape(labels, height, width).transpose(1, 2, 0)
