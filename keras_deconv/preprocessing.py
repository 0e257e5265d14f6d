"""Caffe-style input preprocessing used by all POSTECH DeconvNet-family models.

The official MATLAB inference code of DeconvNet, DecoupledNet and TransferNet
feeds Caffe images in BGR channel order, in the 0-255 range, minus the
per-channel ImageNet mean ``[104.00698793, 116.66876762, 122.67891434]``
(B, G, R), with no scaling and no standard-deviation division.

Every model builder in :mod:`keras_deconv.models` starts with a
:class:`CaffePreprocessing` layer, so the models take plain RGB images
(uint8 or float, 0-255). Use :func:`preprocess_input` only to prepare inputs
for a model built with ``include_preprocessing=False``.
"""

import keras
import numpy as np

#: Per-channel mean in **BGR** order, from the official MATLAB inference code.
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


def preprocess_input(images, mean=CAFFE_MEAN_BGR):
    """RGB images (0-255) -> Caffe input: BGR order, mean subtracted, float32.

    Args:
        images: array or tensor ``(..., H, W, 3)`` of RGB values in 0-255
            (uint8 or float).
        mean: per-channel mean in BGR order.

    Returns:
        A float32 array (for NumPy input) or tensor of the same shape.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((1, 1, 1, 3), "uint8")
    >>> [round(float(v), 3) for v in preprocess_input(x)[0, 0, 0]]
    [-104.007, -116.669, -122.679]
    """
    _check_channels(getattr(images, "shape", None))
    if isinstance(images, np.ndarray) or not hasattr(images, "dtype"):
        images = np.asarray(images, dtype="float32")
        return images[..., ::-1] - np.asarray(mean, "float32")
    images = keras.ops.cast(images, "float32")
    return keras.ops.flip(images, axis=-1) - keras.ops.convert_to_tensor(np.asarray(mean, "float32"))


def _check_channels(shape):
    if shape is not None and len(shape) >= 1 and shape[-1] is not None and shape[-1] != 3:
        raise ValueError(f"Expected RGB images with 3 channels (..., H, W, 3). Received shape {tuple(shape)}.")


@keras.saving.register_keras_serializable(package="keras_deconv")
class CaffePreprocessing(keras.layers.Layer):
    """Layer form of :func:`preprocess_input`: RGB 0-255 -> BGR minus the Caffe mean.

    Accepts uint8 or float images of shape ``(batch, H, W, 3)`` and outputs
    the layer's compute dtype (float16/bfloat16 policies work: values stay
    within +-152, where float16 keeps 1/8-level precision).

    Args:
        mean: per-channel mean in BGR order. Default :data:`CAFFE_MEAN_BGR`.

    Raises:
        ValueError: when the input is not 4-D, does not have 3 channels, or
            is an empty batch (known batch size 0): TensorFlow's CPU
            convolutions mishandle zero-size batches, so the models reject
            them here with a clear message instead of failing deep inside.

    Example:

    >>> import numpy as np
    >>> y = CaffePreprocessing()(np.full((1, 2, 2, 3), 128, "uint8"))
    >>> [round(float(v), 3) for v in y[0, 0, 0]]
    [23.993, 11.331, 5.321]
    """

    def __init__(self, mean=CAFFE_MEAN_BGR, **kwargs):
        super().__init__(**kwargs)
        self.mean = tuple(float(m) for m in mean)
        if len(self.mean) != 3:
            raise ValueError(f"Expected a 3-value BGR mean. Received: mean={mean!r}")
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: 3})

    def call(self, inputs, training=None):
        if inputs.shape[0] == 0:
            raise ValueError(
                f"{self.name}: received an empty batch (shape {tuple(inputs.shape)}). "
                "Call the model with at least one image."
            )
        images = keras.ops.cast(inputs, self.compute_dtype)
        mean = keras.ops.convert_to_tensor(np.asarray(self.mean, "float32"), dtype=self.compute_dtype)
        if training:  # the same values; TensorFlow's reversed strided slice is much slower than its reverse on a CPU
            return keras.ops.flip(images, axis=-1) - mean
        # RGB -> BGR as a reversed slice, not a flip: TFLite's int8 REVERSE_V2 copies raw bytes, yet the
        # converter gives its output another scale than its input, which distorted every int8 export's input.
        return images[..., ::-1] - mean

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean})
        return config
