"""Caffe ``.caffemodel`` files in pure Python + NumPy (no protobuf, no Caffe).

* :func:`read_caffemodel` / :func:`iter_caffemodel` parse both serialized
  dialects (V1 ``layers`` of the DeconvNet/DecoupledNet fork and FCN-8s,
  new-style ``layer`` of TransferNet) straight from the protobuf wire format
  on a memory map; any malformed input raises :class:`CaffeModelError`.
* :func:`write_caffemodel` streams a file in either dialect;
  :func:`synthetic_layers_from_spec` makes random weights shaped like a
  network spec.
* :func:`canonical_shape` / :func:`squeeze_legacy` turn V1 4-D legacy blob
  shapes into the new-dialect shapes.

>>> import os, tempfile, numpy as np
>>> from keras_deconv.caffe import read_caffemodel, write_caffemodel
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.caffemodel")
>>> write_caffemodel(path, [("score", "Convolution",
...     [np.zeros((21, 64, 1, 1)), np.zeros(21)])], dialect="v2")
>>> [b.shape for b in read_caffemodel(path)["score"].blobs]
[(21, 64, 1, 1), (21,)]
"""

from keras_deconv.caffe.reader import CaffeModel
from keras_deconv.caffe.reader import CaffeModelError
from keras_deconv.caffe.reader import LayerRecord
from keras_deconv.caffe.reader import iter_caffemodel
from keras_deconv.caffe.reader import read_caffemodel
from keras_deconv.caffe.spec import canonical_shape
from keras_deconv.caffe.spec import legacy_shape
from keras_deconv.caffe.spec import load_net_spec
from keras_deconv.caffe.spec import squeeze_legacy
from keras_deconv.caffe.writer import synthetic_layers_from_spec
from keras_deconv.caffe.writer import write_caffemodel

__all__ = [
    "CaffeModel",
    "CaffeModelError",
    "LayerRecord",
    "canonical_shape",
    "iter_caffemodel",
    "legacy_shape",
    "load_net_spec",
    "read_caffemodel",
    "squeeze_legacy",
    "synthetic_layers_from_spec",
    "write_caffemodel",
]

# The Keras importers need TensorFlow; import them lazily so the reader and
# writer above stay NumPy-only.
_CONVERT_EXPORTS = ("CaffeConversionError", "convert_caffemodel", "load_caffemodel", "load_vgg16_weights")
__all__ += list(_CONVERT_EXPORTS)


def __getattr__(name):
    if name == "load_vgg16_weights":
        from keras_deconv.caffe import vgg16

        return vgg16.load_vgg16_weights
    if name in _CONVERT_EXPORTS:
        from keras_deconv.caffe import convert

        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
