"""Datasets: the built-in synthetic ``shapes``, a PASCAL VOC 2012 + SBD builder and a COCO reader.

Submodules load lazily so that ``import keras_deconv.datasets`` stays cheap:

* :mod:`keras_deconv.datasets.shapes`: deterministic synthetic segmentation
  data generated on the fly (NumPy; TensorFlow only for ``shapes.load``), in a
  ``standard`` and a ``hard`` config; :mod:`keras_deconv.datasets.shapes_baselines`
  scores its no-learning references (all-background, colour-only).
* :mod:`keras_deconv.datasets.voc`: the ``voc2012_seg`` TFDS builder (imports
  ``tensorflow_datasets``), reading VOC 2012 and SBD from a manual directory;
  :mod:`keras_deconv.datasets.voc_files` lists VOC's (image, mask) files for
  training without it.
* :mod:`keras_deconv.datasets.folder`: your own data, a folder of images
  and class-index masks (``classes.txt``, ``images/<split>/``, ``masks/<split>/``).
* :mod:`keras_deconv.datasets.coco`: TransferNet's source domain (the 60
  non-VOC COCO classes) read from a COCO instances file and its images.

>>> from keras_deconv import datasets
>>> datasets.shapes.NUM_CLASSES
13
"""

import importlib

_SUBMODULES = ("shapes", "shapes_baselines", "voc", "voc_files", "coco", "folder")

__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
