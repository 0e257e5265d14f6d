"""Bilinear-interpolation kernels for transposed convolutions (FCN upsampling)."""

import numpy as np
import keras


def bilinear_kernel(kernel_size, channels):
    """A ``(k, k, channels, channels)`` Conv2DTranspose kernel that upsamples bilinearly.

    Channel ``i`` maps to channel ``i`` only, with FCN's ``upsample_filt``
    weights; with stride ``s = ceil(k / 2)`` rounded as in FCN (``k = 2s`` or
    ``k = 2s - 1``) the transposed convolution is bilinear upsampling by ``s``.
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(kernel_size) - center) / factor
    filt = np.outer(ramp, ramp).astype("float32")
    kernel = np.zeros((kernel_size, kernel_size, channels, channels), "float32")
    for channel in range(channels):
        kernel[:, :, channel, channel] = filt
    return kernel


@keras.saving.register_keras_serializable(package="keras_deconv")
class BilinearUpsamplingInitializer(keras.initializers.Initializer):
    """Initializes a square ``Conv2DTranspose`` kernel to per-channel bilinear upsampling.

    FCN initializes its ``score2``, ``score4`` and (frozen) ``upsample``
    deconvolutions this way; a randomly initialized FCN-8s then already
    upsamples its coarse scores smoothly. Shape must be ``(k, k, C, C)``.

    Example:

    >>> init = BilinearUpsamplingInitializer()
    >>> kernel = init((4, 4, 2, 2))
    >>> [round(float(v), 4) for v in kernel[:, 1, 0, 0]]
    [0.1875, 0.5625, 0.5625, 0.1875]
    """

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        if len(shape) != 4 or shape[0] != shape[1] or shape[2] != shape[3]:
            raise ValueError(f"BilinearUpsamplingInitializer needs a (k, k, C, C) shape. Received: shape={shape}")
        return keras.ops.convert_to_tensor(bilinear_kernel(shape[0], shape[2]), dtype=dtype or "float32")

    def get_config(self):
        return {}
