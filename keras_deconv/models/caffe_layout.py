"""Caffe blob layout -> Keras weight layout, for every layer type with weights in these nets.

One place defines how a Caffe blob becomes a Keras weight, used by the
model tests (shapes) and by the Caffe importer (arrays):

==============  =============================  ===============================  =====================
Caffe type      Caffe blobs (NCHW, C-order)    Keras layer and weights          Conversion
==============  =============================  ===============================  =====================
Convolution     W (out, in, kh, kw), b (out)   Conv2D kernel (kh, kw, in, out)  ``W.transpose(2,3,1,0)``
Deconvolution   W (in, out, kh, kw), b (out)   Conv2DTranspose kernel           ``W.transpose(2,3,1,0)``,
                                               (kh, kw, out, in)                no spatial flip
InnerProduct    W (out, in), b (out)           Dense kernel (in, out)           ``W.T``
BN (inference)  scale, shift (1, C, 1, 1)      ChannelAffine scale, shift (C,)  reshape
==============  =============================  ===============================  =====================

InnerProduct inputs: the models feed Dense layers in Caffe's flatten order
(TransferNet's ``feat_embed`` permutes its input to (C, H, W) first), so no
row permutation is ever needed. Blobs of the old V1 dialect (4-D: biases
``(1, 1, 1, C)``, InnerProduct weights ``(1, 1, out, in)``) are accepted too.
"""

import numpy as np

#: V1 enum names -> new-dialect type strings.
_TYPE_ALIASES = {
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "INNER_PRODUCT": "InnerProduct",
    "BN": "BN",
}

LAYER_TYPES_WITH_WEIGHTS = ("Convolution", "Deconvolution", "InnerProduct", "BN")


def _canonical_type(layer_type):
    layer_type = _TYPE_ALIASES.get(layer_type, layer_type)
    if layer_type not in LAYER_TYPES_WITH_WEIGHTS:
        raise ValueError(f"No Keras layout is defined for Caffe layer type {layer_type!r}. Known: {LAYER_TYPES_WITH_WEIGHTS}.")
    return layer_type


def _squeeze_leading(shape, rank):
    """Drop the V1 dialect's leading 1s: (1, 1, 1, C) -> (C,), (1, 1, out, in) -> (out, in)."""
    shape = tuple(int(d) for d in shape)
    while len(shape) > rank and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != rank:
        raise ValueError(f"Expected a blob of rank {rank} (V1 leading 1s allowed). Received shape {shape}.")
    return shape


def _convert_shape(layer_type, index, shape):
    if layer_type == "BN":
        return (int(np.prod(shape)),)
    if index == 1:  # bias
        return _squeeze_leading(shape, 1)
    if layer_type == "InnerProduct":
        out_features, in_features = _squeeze_leading(shape, 2)
        return (in_features, out_features)
    first, second, kh, kw = (int(d) for d in shape)
    # Convolution (out, in, kh, kw) and Deconvolution (in, out, kh, kw) both
    # map with transpose(2, 3, 1, 0): (kh, kw, in, out) resp. (kh, kw, out, in).
    return (kh, kw, second, first)


def caffe_to_keras_shapes(layer_json):
    """Keras weight shapes, in Keras weight order, for one Caffe layer.

    Args:
        layer_json: a layer of ``spec/nets/*.json``: a dict with ``type``
            (``"Convolution"``, ``"Deconvolution"``, ``"InnerProduct"``,
            ``"BN"`` or their V1 enum names) and ``blobs`` (list of Caffe
            blob shapes).

    Returns:
        A list of shape tuples, e.g. ``[(3, 3, 3, 64), (64,)]`` for conv1_1;
        ``[]`` for a layer without blobs.

    Example:

    >>> caffe_to_keras_shapes({"type": "Deconvolution", "blobs": [[512, 256, 3, 3], [256]]})
    [(3, 3, 256, 512), (256,)]
    """
    blobs = layer_json.get("blobs") or []
    if not blobs:
        return []
    layer_type = _canonical_type(layer_json["type"])
    return [_convert_shape(layer_type, index, shape) for index, shape in enumerate(blobs)]


def caffe_to_keras_weights(layer_type, blobs):
    """Converts the arrays of one Caffe layer to the Keras weight list (``layer.set_weights``).

    Args:
        layer_type: Caffe type (new-dialect string or V1 enum name).
        blobs: list of NumPy arrays in Caffe layout (as read from a caffemodel).

    Returns:
        A list of float32 arrays with the shapes of :func:`caffe_to_keras_shapes`.

    Example:

    >>> import numpy as np
    >>> w = np.zeros((64, 3, 3, 3)); b = np.zeros((1, 1, 1, 64))
    >>> [a.shape for a in caffe_to_keras_weights("CONVOLUTION", [w, b])]
    [(3, 3, 3, 64), (64,)]
    """
    layer_type = _canonical_type(layer_type)
    arrays = []
    for index, blob in enumerate(blobs):
        blob = np.asarray(blob, dtype="float32")
        if layer_type == "BN":
            arrays.append(blob.reshape(-1))
        elif index == 1:
            arrays.append(blob.reshape(_squeeze_leading(blob.shape, 1)))
        elif layer_type == "InnerProduct":
            arrays.append(np.ascontiguousarray(blob.reshape(_squeeze_leading(blob.shape, 2)).T))
        else:
            arrays.append(np.ascontiguousarray(blob.transpose(2, 3, 1, 0)))
    return arrays


def keras_to_caffe_weights(layer_type, arrays):
    """Inverse of :func:`caffe_to_keras_weights`: Keras weights -> Caffe blobs (new dialect).

    Args:
        layer_type: Caffe type of the layer.
        arrays: the layer's Keras weights (``layer.get_weights()``); for a
            ``BatchNormalization`` pass only ``[scale, shift]`` of a folded model.

    Returns:
        A list of float32 arrays: conv/deconv ``(O, I, kh, kw)`` /
        ``(I, O, kh, kw)``, InnerProduct ``(out, in)``, biases ``(C,)``, BN
        ``(1, C, 1, 1)``.

    Example:

    >>> import numpy as np
    >>> [a.shape for a in keras_to_caffe_weights("Convolution", [np.zeros((3, 3, 3, 64)), np.zeros(64)])]
    [(64, 3, 3, 3), (64,)]
    """
    layer_type = _canonical_type(layer_type)
    blobs = []
    for index, array in enumerate(arrays):
        array = np.asarray(array, dtype="float32")
        if layer_type == "BN":
            blobs.append(array.reshape(1, -1, 1, 1))
        elif index == 1:
            blobs.append(array.reshape(-1))
        elif layer_type == "InnerProduct":
            blobs.append(np.ascontiguousarray(array.T))
        else:
            blobs.append(np.ascontiguousarray(array.transpose(3, 2, 0, 1)))
    return blobs
