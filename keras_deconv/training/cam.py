"""Weakly supervised baseline for TransferNet: thresholded class-activation maps (CAM).

A classifier trained on image-level labels only (VGG-16 encoder, global
average pooling, linear layer: the ``encoder`` stage of the TransferNet
recipe) gives, for class ``c``, the map ``CAM_c = ReLU(conv5_3 . W[:, c])``
(Zhou et al., CVPR 2016). Given the image's class ids (the same oracle
image-level labels TransferNet's pipeline gets), each map is upsampled to
the image (bilinear), divided by its maximum, and a pixel gets the class
with the largest normalised CAM if that value exceeds ``threshold``, else
background.
"""

import keras
import numpy as np

from keras_deconv import pipelines
from keras_deconv.pipelines import Segmentation


class CAMPipeline:
    """``pipeline(images, labels=[[ids], ...]) -> [Segmentation]`` from a CAM classifier.

    Args:
        classifier: a model built by
            :func:`keras_deconv.training.recipes.build_cam_classifier`
            (layers ``relu5_3``, ``cam_classifier``).
        threshold: foreground threshold on the max-normalised CAM.
    """

    def __init__(self, classifier, threshold=0.3):
        self.classifier, self.threshold = classifier, float(threshold)
        self.size = tuple(classifier.inputs[0].shape[1:3])
        self.features = keras.Model(classifier.inputs, classifier.get_layer("relu5_3").output)
        self.weights = np.asarray(classifier.get_layer("cam_classifier").kernel)  # (C_feat, classes)
        self._features = pipelines.compiled(self.features, True)

    def cams(self, image, ids):
        """``(H, W, len(ids))`` max-normalised CAMs of the given 1-based class ids."""
        height, width = image.shape[:2]
        square = pipelines._pad_square_and_resize(np.asarray(image), self.size)
        features = np.asarray(self._features(square[None].astype("float32")))[0]
        maps = np.maximum(features @ self.weights[:, np.asarray(ids) - 1], 0)
        maps = pipelines._resize(maps, self.size, method="bilinear")
        side = max(height, width)
        maps = pipelines._resize(maps, (side, side), method="bilinear")[:height, :width]
        peak = maps.reshape(-1, maps.shape[-1]).max(0)
        return maps / np.where(peak > 0, peak, 1.0)

    def __call__(self, images, labels):
        results = []
        for image, ids in zip(pipelines._as_images(images), labels):
            ids = sorted({int(i) for i in ids})
            height, width = image.shape[:2]
            if not ids:
                results.append(Segmentation(np.zeros((height, width), "int32"), np.zeros(0), None))
                continue
            maps = self.cams(image, ids)
            best = maps.argmax(-1)
            fg = maps.max(-1) > self.threshold
            label_map = np.where(fg, np.asarray(ids)[best], 0).astype("int32")
            results.append(Segmentation(label_map, np.ones(len(ids), "float32"), maps))
        return results

    def predict(self, images, labels):
        return [r.labels for r in self(images, labels)]
