"""keras-deconv: the POSTECH DeconvNet family for Keras 3 / TensorFlow.

Importing the package is cheap: TensorFlow and Keras load when a submodule
that needs them (``keras_deconv.layers``, ``keras_deconv.models``, ...) is
first used, and optional heavy packages (keras-cv, tensorflow-datasets,
LiteRT, torch) load only inside the functions that need them.

>>> import keras_deconv
>>> keras_deconv.__version__
'0.1.0'
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "layers",
    "models",
    "caffe",
    "datasets",
    "metrics",
    "export",
    "preprocessing",
    "viz",
    "training",
    "lite",
    "zoo",
    "cli",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    # Lazy submodules keep `import keras_deconv` fast (no TensorFlow at import).
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
