"""Per-channel affine transform: the folded inference-mode batch normalization."""

import keras


@keras.saving.register_keras_serializable(package="keras_deconv")
class ChannelAffine(keras.layers.Layer):
    """``y = scale * x + shift`` with one ``scale`` and one ``shift`` per channel.

    This is the Caffe fork's ``BN`` layer in ``bn_mode: INFERENCE``: the
    released DeconvNet/DecoupledNet ``*_inference.caffemodel`` files store
    batch normalization already folded into ``scale = gamma / sqrt(var + eps)``
    and ``shift = beta - gamma * mean / sqrt(var + eps)``, and no running
    statistics. The two weights have the shape ``(C,)`` of the Caffe blobs
    ``(1, C, 1, 1)`` after squeezing, so the layer holds exactly 2 parameters
    per channel, like the official models.

    Args:
        scale_initializer: initializer of ``scale``. Default ``"ones"``.
        shift_initializer: initializer of ``shift``. Default ``"zeros"``.
        axis: the channel axis. Default ``-1`` (channels_last).

    Input shape:
        Any tensor whose ``axis`` dimension is known when the layer is built.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> layer = ChannelAffine()
    >>> y = layer(np.ones((1, 2, 2, 3), "float32"))
    >>> layer.set_weights([np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.5, 1.0])])
    >>> [float(v) for v in layer(np.ones((1, 1, 1, 3), "float32"))[0, 0, 0]]
    [1.0, 2.5, 4.0]
    """

    def __init__(self, scale_initializer="ones", shift_initializer="zeros", axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.scale_initializer = keras.initializers.get(scale_initializer)
        self.shift_initializer = keras.initializers.get(shift_initializer)
        self.axis = int(axis)
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                f"ChannelAffine needs a known channel dimension on axis {self.axis}. Received input_shape={tuple(input_shape)}."
            )
        self.scale = self.add_weight(name="scale", shape=(channels,), initializer=self.scale_initializer)
        self.shift = self.add_weight(name="shift", shape=(channels,), initializer=self.shift_initializer)

    def call(self, inputs):
        scale = keras.ops.cast(self.scale, inputs.dtype)
        shift = keras.ops.cast(self.shift, inputs.dtype)
        if self.axis not in (-1, len(inputs.shape) - 1):
            shape = [1] * len(inputs.shape)
            shape[self.axis] = -1
            scale, shift = keras.ops.reshape(scale, shape), keras.ops.reshape(shift, shape)
        # On the last axis the (C,) weights broadcast as they are. Reshaped to (1, 1, 1, C),
        # the TFLite converter folds the shift into a TRANSPOSE_CONV bias of that 4-D shape,
        # which XNNPACK refuses to delegate: every deconvolution then ran in TFLite's own
        # kernel, 4-11x slower than XLA per layer (python bench/litert_vs_xla.py).
        return inputs * scale + shift

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "scale_initializer": keras.initializers.serialize(self.scale_initializer),
                "shift_initializer": keras.initializers.serialize(self.shift_initializer),
                "axis": self.axis,
            }
        )
        return config
