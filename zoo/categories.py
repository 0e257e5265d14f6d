"""Label spaces used by the model cards (defined in :mod:`keras_deconv.datasets.categories`; kept here for compatibility)."""

from keras_deconv.datasets.categories import (  # noqa: F401 - re-exported
    COCO_CLASSES,
    COCO_EXCLUSIVE_CLASSES,
    COCO_NAMES_OF_VOC,
    LABEL_SPACES,
    TRANSFERNET_LABELS,
    VOC_CLASSES,
)
