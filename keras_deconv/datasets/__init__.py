"""Datasets: the built-in synthetic ``shapes`` and a PASCAL VOC 2012 + SBD builder.

Submodules load lazily so that ``import keras_deconv.datasets`` stays cheap:

* :mod:`keras_deconv.datasets.shapes`: deterministic synthetic segmentation
  data generated on the fly (NumPy; TensorFlow only for ``shapes.load``).
* :mod:`keras_deconv.datasets.voc`: the ``voc2012_seg`` TFDS builder (imports
  ``tensorflow_datasets``), reading VOC 2012 and SBD from a manual directory.

>>> from keras_deconv import datasets
>>> datasets.shapes.NUM_CLASSES
13
"""

import importlib

_SUBMODULES = ("shapes", "voc")

__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
