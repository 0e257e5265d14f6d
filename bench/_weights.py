"""Trained-looking weights for the benchmarks (random models otherwise export a different graph).

With Keras' initial values every bias and BN shift is 0 and every BN scale
is 1, so the TFLite converter drops those adds and multiplies altogether: a
random-init model can export a graph a trained one never gets. That hid a
4-D ``TRANSPOSE_CONV`` bias, folded from the BN shift, that XNNPACK refused
to delegate (every deconvolution of a trained DeconvNet ran 7x slower in
LiteRT than the benchmark showed). The benchmarks therefore time models whose
biases, shifts and scales look trained; kernels keep their initialisation.
"""

import numpy as np


def trained_like(model, seed=0):
    """Nonzero biases and BN shifts, BN scales around 1 (in place); returns ``model``."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        name = weight.path.rsplit("/", 1)[-1]
        if name in ("bias", "shift"):
            weight.assign((0.1 * rng.standard_normal(weight.shape)).astype(weight.dtype))
        elif name == "scale":
            weight.assign(rng.uniform(0.8, 1.2, weight.shape).astype(weight.dtype))
    return model
