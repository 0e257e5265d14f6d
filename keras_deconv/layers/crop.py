"""Crop a tensor to the spatial size of a reference tensor (Caffe's old ``CROP``)."""

import keras


@keras.saving.register_keras_serializable(package="keras_deconv")
class CropToReference(keras.layers.Layer):
    """``x[:, o:o + H_ref, o:o + W_ref, :]``: crop ``x`` to the size of ``reference``.

    FCN-8s fuses score maps of different sizes with this crop; the old Caffe
    ``CROP`` layer derives the offset from coordinate maps, which for the
    FCN-8s topology gives 5 (``score-pool4c``), 9 (``score-pool3c``) and 31
    (``upscore``). Only the reference's shape is used.

    Args:
        offset: int or pair ``(top, left)``, the crop offset.

    Input:
        ``[x, reference]``, both ``(batch, H, W, C)`` (channels may differ).
        ``x`` must extend at least ``offset + reference size`` pixels;
        eager calls check this.

    Output shape:
        ``(batch, H_ref, W_ref, C_x)``.

    Example:

    >>> import numpy as np
    >>> x = np.arange(36, dtype="float32").reshape(1, 6, 6, 1)
    >>> y = CropToReference(offset=1)([x, np.zeros((1, 2, 3, 5), "float32")])
    >>> tuple(y.shape), float(y[0, 0, 0, 0])
    ((1, 2, 3, 1), 7.0)
    """

    def __init__(self, offset=0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(offset, int):
            offset = (offset, offset)
        offset = tuple(int(v) for v in offset)
        if len(offset) != 2 or min(offset) < 0:
            raise ValueError(f"Expected `offset` to be a non-negative int or pair. Received: offset={offset!r}")
        self.offset = offset

    def call(self, inputs):
        x, reference = inputs
        top, left = self.offset
        height = keras.ops.shape(reference)[1]
        width = keras.ops.shape(reference)[2]
        if isinstance(height, int) and isinstance(width, int) and all(isinstance(d, int) for d in keras.ops.shape(x)[1:3]):
            if top + height > x.shape[1] or left + width > x.shape[2]:
                raise ValueError(
                    f"{self.name}: cannot crop {height}x{width} at offset {self.offset} from a "
                    f"{x.shape[1]}x{x.shape[2]} map."
                )
        return x[:, top : top + height, left : left + width, :]

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"offset": self.offset})
        return config
