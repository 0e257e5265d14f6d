"""Write ``.caffemodel`` files (V1 or new dialect) and make synthetic weights.

The writer exists for tests, benchmarks and round trips: it emits exactly the
fields a weight converter reads (layer name, type, optional bottoms/tops,
blobs with shapes and float32 data) and streams them to disk blob by blob,
so a 1 GB file never has to exist in memory. Each layer message's length is
computed from the blob shapes before any data is written.
"""

import os
import tempfile

import numpy as np

from keras_deconv._atomic import give_default_mode
from keras_deconv.caffe import spec as _spec

_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32 = 0, 1, 2, 5


def _varint(value):
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _bytes_field(field, payload):
    return _key(field, _WIRE_BYTES) + _varint(len(payload)) + payload


def _string_field(field, text):
    return _bytes_field(field, text.encode("utf-8"))


def _blob_header(shape, dialect, count):
    """Everything of a BlobProto except the float payload, plus its size."""
    parts = []
    if dialect == "v1":
        for field, dim in zip((1, 2, 3, 4), _spec.legacy_shape(shape)):
            parts.append(_key(field, _WIRE_VARINT) + _varint(dim))
        head = b"".join(parts)
        data_key = (_key(5, _WIRE_BYTES) + _varint(4 * count)) if count else b""
        return head + data_key, b""
    dims = b"".join(_varint(d) for d in shape)
    shape_msg = _bytes_field(1, dims) if shape else b""
    # Field order of a protobuf serializer: data (5) before shape (7).
    data_key = (_key(5, _WIRE_BYTES) + _varint(4 * count)) if count else b""
    return data_key, _bytes_field(7, shape_msg)


def _normalize_item(item):
    if len(item) == 3:
        name, type_name, arrays = item
        bottom, top = (), ()
    elif len(item) == 5:
        name, type_name, arrays, bottom, top = item
    else:
        raise ValueError(
            "Each layer must be (name, type, arrays) or (name, type, arrays, "
            f"bottom, top). Received a {len(item)}-tuple: {item!r:.200}"
        )
    if not isinstance(name, str) or not isinstance(type_name, str):
        raise TypeError(
            f"Layer name and type must be strings. Received: name={name!r}, "
            f"type={type_name!r}"
        )
    return name, type_name, arrays, tuple(bottom), tuple(top)


def write_caffemodel(path, layers, dialect="v1", name=""):
    """Write layers to a ``.caffemodel`` file, streaming blob by blob.

    The file is written to a temporary file in the same folder and renamed
    over ``path`` only when complete, so readers never see a partial file.

    Args:
        path: destination file.
        layers: iterable of ``(name, type, arrays)`` or
            ``(name, type, arrays, bottom, top)``; ``type`` is a new-dialect
            string (``"Convolution"``, ``"BN"``, ...) and ``arrays`` the
            layer's blobs (anything convertible to float32). A generator
            that builds each layer's arrays on demand keeps memory at one
            layer.
        dialect: ``"v1"`` (``layers`` field, enum types, 4-D blobs padded
            with leading ones: bias ``(1,1,1,C)``, InnerProduct weights
            ``(1,1,out,in)``) or ``"v2"`` (``layer`` field, string types,
            the arrays' own shapes).
        name: the ``NetParameter.name`` to store.

    Raises:
        ValueError: unknown dialect, a type without a V1 enum number, or a
            blob with more than four axes in V1.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "net.caffemodel")
        >>> write_caffemodel(path, [("bn1", "BN", [np.ones((1, 8, 1, 1))] * 2)],
        ...                  dialect="v2", name="tiny")
        >>> os.path.getsize(path) > 64
        True
    """
    if dialect not in ("v1", "v2"):
        raise ValueError(f"Expected dialect 'v1' or 'v2'. Received: dialect={dialect!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(
        dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb", buffering=1 << 20) as out:
            if name:
                out.write(_string_field(1, name))
            for item in layers:
                _write_layer(out, dialect, *_normalize_item(item))
            out.flush()
            os.fsync(out.fileno())
        give_default_mode(temp_path)
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise


def _write_layer(out, dialect, name, type_name, arrays, bottom, top):
    blobs = []
    for array in arrays:
        # asarray, not ascontiguousarray: the latter turns 0-d blobs into 1-d.
        array = np.asarray(array, dtype="<f4", order="C")
        if dialect == "v1":
            _spec.legacy_shape(array.shape)  # raises for > 4 axes
        blobs.append(array)
    if dialect == "v1":
        head = b"".join(_string_field(2, b) for b in bottom)
        head += b"".join(_string_field(3, t) for t in top)
        head += _string_field(4, name)
        head += _key(5, _WIRE_VARINT) + _varint(_spec.v1_type_number(type_name))
        blob_field = 6
        layer_field = 2
    else:
        head = _string_field(1, name) + _string_field(2, type_name)
        head += b"".join(_string_field(3, b) for b in bottom)
        head += b"".join(_string_field(4, t) for t in top)
        blob_field = 7
        layer_field = 100
    # Sizes first, from the shapes, so the layer's length prefix can be
    # written before its data.
    framed = []
    layer_size = len(head)
    for array in blobs:
        before, after = _blob_header(array.shape, dialect, array.size)
        blob_size = len(before) + 4 * array.size + len(after)
        prefix = _key(blob_field, _WIRE_BYTES) + _varint(blob_size)
        framed.append((prefix + before, array, after))
        layer_size += len(prefix) + blob_size
    out.write(_key(layer_field, _WIRE_BYTES) + _varint(layer_size) + head)
    for before, array, after in framed:
        out.write(before)
        if array.size:
            out.write(memoryview(array.reshape(-1)).cast("B"))
        out.write(after)


def _fan_in(layer, shape):
    layer_type = layer["type"]
    if layer_type == "Convolution" and len(shape) == 4:
        return shape[1] * shape[2] * shape[3]
    if layer_type == "Deconvolution" and len(shape) == 4:
        stride = int(layer.get("params", {}).get("stride", 1) or 1)
        return max(1, shape[0] * shape[2] * shape[3] // (stride * stride))
    if layer_type == "InnerProduct":
        return int(np.prod(shape[1:])) if len(shape) >= 2 else 1
    return 1


def _synthetic_blobs(layer, index, seed, dtype, scale, dialect):
    rng = np.random.default_rng([seed, index])
    arrays = []
    for blob_index, shape in enumerate(layer["blobs"]):
        shape = tuple(int(d) for d in shape)
        values = rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
        if scale == "fan_in":
            # He-style weights so deep synthetic nets keep sane activations;
            # BN becomes a near-identity affine map.
            if layer["type"] == "BN":
                values *= 0.1
                if blob_index == 0:
                    values += 1.0
            elif blob_index == 0:
                values *= np.sqrt(2.0 / _fan_in(layer, shape))
            else:
                values *= 0.01
        else:
            values *= float(scale)
        if dialect == "v1":
            values = values.reshape(_spec.legacy_shape(shape))
        arrays.append(values)
    return arrays


def synthetic_layers_from_spec(
    spec, seed=0, dtype=np.float32, scale="fan_in", dialect="v2", lazy=False
):
    """Random blobs with exactly a network spec's layer names, types and shapes.

    Args:
        spec: a spec dict (``{"layers": [...]}`` with canonical ``blobs``
            shapes) or a path to such a JSON file.
        seed: random seed; each layer uses ``(seed, layer_index)`` so a lazy
            and an eager call give identical values.
        dtype: dtype of the generated arrays.
        scale: ``"fan_in"`` (He-style weights, small biases, BN scale near 1)
            or a float: the standard deviation of every value.
        dialect: ``"v2"`` keeps the spec's canonical shapes; ``"v1"`` pads
            them to the 4-D legacy shapes a V1 file stores.
        lazy: return a generator that builds one layer at a time (use with
            :func:`write_caffemodel` for GB-sized files).

    Returns:
        A list (or generator) of ``(name, type, [arrays])`` for the layers
        that have blobs, in spec order.

    Example:
        >>> spec = {"layers": [
        ...     {"name": "fc", "type": "InnerProduct", "blobs": [[4, 3], [4]]},
        ...     {"name": "relu", "type": "ReLU", "blobs": []}]}
        >>> [(n, t, [a.shape for a in b])
        ...  for n, t, b in synthetic_layers_from_spec(spec, dialect="v1")]
        [('fc', 'InnerProduct', [(1, 1, 4, 3), (1, 1, 1, 4)])]
    """
    if dialect not in ("v1", "v2"):
        raise ValueError(f"Expected dialect 'v1' or 'v2'. Received: dialect={dialect!r}")
    if not isinstance(scale, str):
        scale = float(scale)
    elif scale != "fan_in":
        raise ValueError(f"Expected scale='fan_in' or a float. Received: scale={scale!r}")
    if not isinstance(spec, dict):
        spec = _spec.load_net_spec(spec)

    def generate():
        for index, layer in enumerate(spec["layers"]):
            if layer.get("blobs"):
                yield (
                    layer["name"],
                    layer["type"],
                    _synthetic_blobs(layer, index, seed, dtype, scale, dialect),
                )

    return generate() if lazy else list(generate())
