"""TransferNet's attention pooling layers: ``LinearSum`` and ``FilterSum``.

Both come from the custom layers of the TransferNet Caffe fork
(``linear_sum_layer.cpp``, ``filter_sum_layer.cpp``), rewritten for
channels_last tensors with ``keras.ops.einsum``.
"""

import keras


def _check_rank(tensor, rank, layer, what):
    if len(tensor.shape) != rank:
        raise ValueError(f"{layer}: {what} must be {rank}-D. Received shape {tuple(tensor.shape)}.")


@keras.saving.register_keras_serializable(package="keras_deconv")
class LinearSum(keras.layers.Layer):
    """Attention-weighted sum of a feature map over its spatial positions.

    ``y[b, c] = sum_{h, w} x[b, h, w, c] * alpha[b, h, w, 0]``: the attended
    feature vector ``z = A alpha`` of TransferNet (Caffe ``LinearSum``).

    Input:
        ``[x, alpha]`` with ``x`` of shape ``(batch, H, W, C)`` and ``alpha``
        of shape ``(batch, H, W, 1)`` (or ``(batch, H, W)``).

    Output shape:
        ``(batch, C)``.

    Example:

    >>> import numpy as np
    >>> x = np.ones((1, 2, 2, 3), "float32")
    >>> alpha = np.full((1, 2, 2, 1), 0.25, "float32")
    >>> [float(v) for v in LinearSum()([x, alpha])[0]]
    [1.0, 1.0, 1.0]
    """

    def call(self, inputs):
        features, alpha = inputs
        _check_rank(features, 4, "LinearSum", "the feature map")
        if len(alpha.shape) == 4:
            alpha = alpha[..., 0]
        _check_rank(alpha, 3, "LinearSum", "the attention map (after dropping its channel axis)")
        alpha = keras.ops.cast(alpha, features.dtype)
        # Multiply + sum rather than einsum: the TFLite converter rejects the
        # BatchMatMul that this einsum lowers to; the value is the same.
        return keras.ops.sum(features * keras.ops.expand_dims(alpha, -1), axis=(1, 2))

    def compute_output_shape(self, input_shape):
        features_shape = input_shape[0]
        return (features_shape[0], features_shape[3])


@keras.saving.register_keras_serializable(package="keras_deconv")
class FilterSum(keras.layers.Layer):
    """Per-position dot product of a feature map with one vector per image.

    ``s[b, h, w, 0] = sum_c z[b, c] * x[b, h, w, c]``: TransferNet's
    class-specific saliency ``s = A^T z`` fed to the decoder (Caffe
    ``FilterSum``; the Caffe CPU backward of this layer is wrong, the GPU one
    and this layer's autodiff gradient are the true gradient).

    Input:
        ``[x, z]`` with ``x`` of shape ``(batch, H, W, C)`` and ``z`` of shape
        ``(batch, C)``.

    Output shape:
        ``(batch, H, W, 1)``.

    Example:

    >>> import numpy as np
    >>> x = np.ones((1, 2, 2, 3), "float32")
    >>> z = np.array([[1.0, 2.0, 3.0]], "float32")
    >>> float(FilterSum()([x, z])[0, 1, 1, 0])
    6.0
    """

    def call(self, inputs):
        features, weights = inputs
        _check_rank(features, 4, "FilterSum", "the feature map")
        _check_rank(weights, 2, "FilterSum", "the filter vector")
        weights = keras.ops.cast(weights, features.dtype)
        return keras.ops.einsum("bhwc,bc->bhw", features, weights)[..., None]

    def compute_output_shape(self, input_shape):
        features_shape = input_shape[0]
        return (features_shape[0], features_shape[1], features_shape[2], 1)
