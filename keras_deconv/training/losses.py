"""The segmentation loss of the recipes: pixel softmax cross-entropy, void ignored, background weighted.

Why a background weight: on ``shapes`` about 87% of the labelled pixels are
background, so an unweighted loss is first minimised by "background
everywhere" and the 12 shape classes share a small part of its gradient.
Weighting background pixels below objects (``background_weight`` < 1, the
idea of SegNet's class balancing, one number instead of a table) moves a
small network off that plateau sooner: ``bench/torch_learnability.py``
measures it. ``background_weight=1`` is Caffe's ``SoftmaxWithLoss`` with
``ignore_label`` exactly (the mean over the labelled pixels of the batch).

>>> import numpy as np
>>> labels = np.array([[[0, 1], [255, 2]]])
>>> logits = np.zeros((1, 2, 2, 3), "float32")
>>> round(float(SegmentationLoss()(labels, logits)), 4)  # log(3) on 3 labelled pixels
1.0986
>>> round(float(SegmentationLoss(background_weight=0.5)(labels, logits)), 4)  # (0.5 + 1 + 1) / 3 * log(3)
0.9155
"""

import keras
from keras import ops

VOID_LABEL = 255


@keras.saving.register_keras_serializable(package="keras_deconv")
class SegmentationLoss(keras.losses.Loss):
    """Pixel cross-entropy over logits; ``ignore_class`` pixels count nowhere; background scaled.

    Args:
        background_weight: weight of class-0 pixels (objects have weight 1).
        ignore_class: the void label (255, as VOC).

    The sum of weighted pixel losses is divided by the number of labelled
    pixels of the whole batch, not of each image, so images with more
    labelled pixels count more, as in Caffe.
    """

    def __init__(self, background_weight=1.0, ignore_class=VOID_LABEL, name="segmentation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if not background_weight >= 0:
            raise ValueError(f"background_weight must be >= 0; got {background_weight!r}.")
        self.background_weight = float(background_weight)
        self.ignore_class = int(ignore_class)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):
            labels = ops.squeeze(labels, axis=-1)
        labelled = ops.not_equal(labels, self.ignore_class)
        safe = ops.where(labelled, labels, 0)
        pixel_loss = keras.losses.sparse_categorical_crossentropy(safe, y_pred, from_logits=True)
        weights = ops.where(ops.equal(safe, 0), self.background_weight, 1.0)
        weights = ops.where(labelled, weights, 0.0)
        # Keras averages the returned per-image values over the batch; scaling each image's
        # sum by batch / labelled-pixels-of-the-batch makes that average Caffe's normalisation.
        batch = ops.cast(ops.shape(labels)[0], pixel_loss.dtype)
        count = ops.maximum(ops.sum(ops.cast(labelled, pixel_loss.dtype)), 1.0)
        per_image = ops.sum(ops.reshape(pixel_loss * weights, (ops.shape(labels)[0], -1)), axis=1)
        return per_image * batch / count

    def get_config(self):
        return {**super().get_config(), "background_weight": self.background_weight,
                "ignore_class": self.ignore_class}
