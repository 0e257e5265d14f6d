"""Caffe layer-type names, blob shape conventions and network-spec files.

Two serialized dialects exist for the networks of this package:

* **V1** (``NetParameter.layers = 2``), written by the ``HyeonwooNoh/caffe``
  fork (DeconvNet, DecoupledNet) and by the BVLC FCN-8s release. Layer types
  are enum numbers and every blob is 4-D (``num, channels, height, width``).
* **V2**, the "new" dialect (``NetParameter.layer = 100``), written by the
  ``maga33/TransferNet`` fork. Layer types are strings and blobs carry their
  real shape (``BlobShape.dim``).

Shape rules (see :func:`canonical_shape` and :func:`legacy_shape`):

========================  =================  ====================
layer type, blob          V1 stored shape    canonical (V2) shape
========================  =================  ====================
Convolution weights       (O, I, kh, kw)     (O, I, kh, kw)
Deconvolution weights     (I, O, kh, kw)     (I, O, kh, kw)
any bias (blob 1)         (1, 1, 1, C)       (C,)
InnerProduct weights      (1, 1, out, in)    (out, in)
BN scale / shift          (1, C, 1, 1)       (1, C, 1, 1)
========================  =================  ====================

A V1 writer left-pads a canonical shape with ones up to four axes; the
reverse needs the layer type and the blob index, because ``(1, 1, 1, C)``
may be a bias or a 1x1 weight.

The JSON network specs (``<name>.json``: ``layers`` with ``name``, ``type``,
``bottom``, ``top``, ``params``, ``blobs`` = canonical blob shapes) are
read with :func:`load_net_spec`. The official deploy networks ship with the
package in ``keras_deconv/caffe/nets/`` (:data:`NETS_DIR`, see its
``PROVENANCE.md``); a path, a ``spec_dir`` or ``KERAS_DECONV_SPEC_DIR``
selects others.
"""

import json
import os

# V1LayerParameter.LayerType: BVLC numbers plus the HyeonwooNoh/caffe fork
# additions (CROP=40 ... DROPOUT_CHANNEL=53). Values are the new-dialect type
# strings, i.e. what upstream's UpgradeV1LayerType produces, so both dialects
# report identical types.
V1_LAYER_TYPES = {
    0: "",
    1: "Accuracy",
    2: "BNLL",
    3: "Concat",
    4: "Convolution",
    5: "Data",
    6: "Dropout",
    7: "EuclideanLoss",
    8: "Flatten",
    9: "HDF5Data",
    10: "HDF5Output",
    11: "Im2col",
    12: "ImageData",
    13: "InfogainLoss",
    14: "InnerProduct",
    15: "LRN",
    16: "MultinomialLogisticLoss",
    17: "Pooling",
    18: "ReLU",
    19: "Sigmoid",
    20: "Softmax",
    21: "SoftmaxWithLoss",
    22: "Split",
    23: "TanH",
    24: "WindowData",
    25: "Eltwise",
    26: "Power",
    27: "SigmoidCrossEntropyLoss",
    28: "HingeLoss",
    29: "MemoryData",
    30: "ArgMax",
    31: "Threshold",
    32: "DummyData",
    33: "Slice",
    34: "MVN",
    35: "AbsVal",
    36: "Silence",
    37: "ContrastiveLoss",
    38: "Exp",
    39: "Deconvolution",
    # HyeonwooNoh/caffe fork (two revisions of its caffe.proto merged).
    40: "Crop",
    41: "EltwiseAccuracy",
    42: "Unpooling",
    43: "BN",
    44: "RedSoftmaxWithLoss",
    45: "RedAccuracy",
    46: "ImageSegData",
    47: "WindowSegData",
    48: "WindowInstSegData",
    49: "BinaryAccuracy",
    50: "WindowClsData",
    51: "WindowSegBinary",
    52: "SelectSegBinary",
    53: "DropoutChannel",
}

#: Type string -> V1 enum number (used by the V1 writer).
V1_LAYER_TYPE_NUMBERS = {name: num for num, name in V1_LAYER_TYPES.items() if name}


def v1_type_name(number):
    """Return the new-dialect type string for a V1 ``LayerType`` number.

    Unknown numbers (another fork's additions) become ``"V1_TYPE_<n>"`` so a
    file from an unexpected fork still loads; conversion only needs names and
    blobs.

    Example:
        >>> v1_type_name(43), v1_type_name(39), v1_type_name(999)
        ('BN', 'Deconvolution', 'V1_TYPE_999')
    """
    return V1_LAYER_TYPES.get(number, f"V1_TYPE_{number}")


def v1_type_number(type_name):
    """Return the V1 enum number of a type string (inverse of ``v1_type_name``).

    Raises:
        ValueError: the type has no V1 enum number.

    Example:
        >>> v1_type_number("Unpooling")
        42
    """
    if type_name in V1_LAYER_TYPE_NUMBERS:
        return V1_LAYER_TYPE_NUMBERS[type_name]
    if type_name.startswith("V1_TYPE_") and type_name[8:].isdigit():
        return int(type_name[8:])
    raise ValueError(
        f"Layer type {type_name!r} has no V1 (enum) number; write this network "
        f"with dialect='v2'. Known V1 types: {sorted(V1_LAYER_TYPE_NUMBERS)}."
    )


# Types whose blob 0 is 2-D (out, in) in the new dialect.
_MATRIX_WEIGHT_TYPES = ("InnerProduct",)
# Types whose second blob is a bias vector (C,).
_BIASED_TYPES = ("Convolution", "Deconvolution", "InnerProduct")


def canonical_shape(layer_type, stored_shape, blob_index=None):
    """Convert a V1 (4-D legacy) blob shape to the new-dialect shape.

    Rules: a Convolution/Deconvolution/InnerProduct bias ``(1,1,1,C)`` becomes
    ``(C,)``; InnerProduct weights ``(1,1,out,in)`` become ``(out, in)``; BN
    blobs and conv/deconv weights keep their 4-D shape; shapes that are not
    4-D are already canonical and are returned unchanged, so the function is
    idempotent. Other layer types are left alone.

    Args:
        layer_type: new-dialect type string, e.g. ``"Convolution"``.
        stored_shape: shape as stored in the file.
        blob_index: position of the blob in the layer (0 = weights,
            1 = bias). If ``None`` it is guessed from the shape: for these
            layer types ``(1,1,1,C)`` is taken as a bias, which is wrong only
            for a single-output 1xC weight; pass the index to be exact.

    Returns:
        A tuple of ints.

    Example:
        >>> canonical_shape("Convolution", (1, 1, 1, 64), blob_index=1)
        (64,)
        >>> canonical_shape("InnerProduct", (1, 1, 1024, 80), blob_index=0)
        (1024, 80)
        >>> canonical_shape("BN", (1, 64, 1, 1), blob_index=0)
        (1, 64, 1, 1)
    """
    shape = tuple(int(d) for d in stored_shape)
    if len(shape) != 4 or layer_type not in _BIASED_TYPES:
        return shape
    if shape[:2] != (1, 1):
        return shape
    if blob_index is None:
        blob_index = 1 if shape[2] == 1 else 0
    if blob_index >= 1:
        return shape[3:] if shape[2] == 1 else shape
    if layer_type in _MATRIX_WEIGHT_TYPES:
        return shape[2:]
    return shape


def legacy_shape(stored_or_canonical_shape):
    """Return the 4-D shape the V1 fork stores for a canonical blob shape.

    Caffe's legacy 4-D blobs left-pad with ones: ``(C,) -> (1,1,1,C)``,
    ``(out, in) -> (1,1,out,in)``.

    Raises:
        ValueError: the shape has more than four axes.

    Example:
        >>> legacy_shape((21,)), legacy_shape((1024, 80))
        ((1, 1, 1, 21), (1, 1, 1024, 80))
    """
    shape = tuple(int(d) for d in stored_or_canonical_shape)
    if len(shape) > 4:
        raise ValueError(
            f"A V1 .caffemodel stores 4-D blobs only; received shape {shape}. "
            "Write it with dialect='v2'."
        )
    return (1,) * (4 - len(shape)) + shape


def squeeze_legacy(layer_type, arrays):
    """Reshape a layer's V1 blobs to their canonical shapes (no data copy).

    Args:
        layer_type: new-dialect type string.
        arrays: the layer's blobs in stored order.

    Returns:
        A list of reshaped views, one per blob.

    Example:
        >>> import numpy as np
        >>> w, b = squeeze_legacy("InnerProduct",
        ...                       [np.zeros((1, 1, 4, 3)), np.zeros((1, 1, 1, 4))])
        >>> w.shape, b.shape
        ((4, 3), (4,))
    """
    return [
        array.reshape(canonical_shape(layer_type, array.shape, index))
        for index, array in enumerate(arrays)
    ]


SPEC_DIR_ENV = "KERAS_DECONV_SPEC_DIR"

#: The official deploy networks as data, vendored with the package (provenance
#: in ``nets/PROVENANCE.md``): ``<name>.json`` for each of :data:`OFFICIAL_NETS`.
NETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nets")

#: Names of the vendored official networks, usable as ``load_net_spec(name)``.
OFFICIAL_NETS = (
    "DeconvNet_inference_deploy",
    "DecoupledNet_Full_anno_inference_deploy",
    "TransferNet_deploy",
    "fcn-8s-pascal-deploy",
)


def load_net_spec(name_or_path, spec_dir=None):
    """Read a network spec JSON (``layers`` list + metadata) into a dict.

    Args:
        name_or_path: a path to a ``.json`` file, or a bare network name such
            as ``"DeconvNet_inference_deploy"``, looked up in ``spec_dir``,
            then ``KERAS_DECONV_SPEC_DIR``, then the vendored :data:`NETS_DIR`.
        spec_dir: folder holding ``<name>.json``.

    Returns:
        The parsed JSON dict.

    Raises:
        FileNotFoundError: the file (or the spec folder) cannot be found.

    Example:
        >>> import json, tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> with open(os.path.join(folder, "tiny.json"), "w") as f:
        ...     json.dump({"layers": []}, f)
        >>> load_net_spec("tiny", spec_dir=folder)
        {'layers': []}
        >>> load_net_spec("DeconvNet_inference_deploy")["parameter_count"]
        251805653
    """
    path = os.fspath(name_or_path)
    if not os.path.exists(path):
        file_name = path if path.endswith(".json") else path + ".json"
        folders = [f for f in (spec_dir, os.environ.get(SPEC_DIR_ENV), NETS_DIR) if f]
        candidates = [os.path.join(folder, file_name) for folder in folders]
        found = [c for c in candidates if os.path.exists(c)]
        if not found:
            raise FileNotFoundError(
                f"No network spec {name_or_path!r}: pass a path to a .json file, a vendored "
                f"name ({', '.join(OFFICIAL_NETS)}), or a name together with spec_dir= "
                f"(or set {SPEC_DIR_ENV}). Looked at: {', '.join(candidates)}."
            )
        path = found[0]
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
