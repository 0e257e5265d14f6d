"""Load Caffe ``.caffemodel`` weights into the Keras models (ImageNet VGG-16 weights: :mod:`keras_deconv.caffe.vgg16`).

:func:`load_caffemodel` matches Caffe layers to Keras layers **by name** (the
builders in :mod:`keras_deconv.models` name every layer with weights after
its Caffe layer) and converts each blob with the layout rules of
``networks.md`` §1.2:

================  ===============================  =====================================
Caffe layer       Caffe blobs (canonical shapes)   Keras weights
================  ===============================  =====================================
Convolution       W (O, I, kh, kw), b (O)          Conv2D ``W.transpose(2, 3, 1, 0)``, b
Deconvolution     W (I, O, kh, kw), b (O)          Conv2DTranspose ``W.transpose(2, 3, 1, 0)``
                                                   (no spatial flip), b
InnerProduct      W (O, K), b (O)                  Dense ``W.T`` with its K rows put in the
                                                   flatten order of the Keras graph
BN (inference)    scale, shift (1, C, 1, 1)        ChannelAffine ``scale, shift``; or
                                                   BatchNormalization ``gamma=scale,
                                                   beta=shift, mean=0, var=1-epsilon``
================  ===============================  =====================================

V1 files (DeconvNet, DecoupledNet, FCN-8s) store 4-D legacy shapes; they are
squeezed with :func:`~keras_deconv.caffe.canonical_shape` first.

The file is read twice, never held whole: a first pass parses only the layer
headers and blob shapes (no float data), computes the SHA-256 and validates
every layer against the model; nothing is assigned unless everything fits.
The second pass streams one layer at a time and assigns it, large kernels
in slabs of :data:`ASSIGN_CHUNK_BYTES`, so the memory on top of the model is
about one layer's blob plus one slab.

:func:`keras_deconv.caffe.vgg16.load_vgg16_weights` initializes the VGG-16
encoder (conv1_1 ... conv5_3 and, where the model has them, fc6/fc7) from a
keras.applications VGG16 weights file or a Caffe VGG-16 ``.caffemodel``.
"""

import hashlib
import os
import time
import warnings

import keras
import numpy as np

from keras_deconv._atomic import atomic_path
from keras_deconv.caffe.reader import CaffeModelError, iter_caffemodel, read_caffemodel
from keras_deconv.caffe.spec import canonical_shape
from keras_deconv.layers.affine import ChannelAffine

#: Large kernels are converted and assigned in slabs of about this many bytes
#: along their first Keras axis, so no full transposed copy of a 400-800 MB
#: blob (DeconvNet fc6, TransferNet feat_embed) ever exists next to the blob.
ASSIGN_CHUNK_BYTES = 64 << 20

#: DecoupledNet's bridging copies: copy layer -> (forward layer, how the copy's
#: Caffe blob derives from the forward blob). The copies are bias-free.
BRIDGING_COPIES = {
    "cls-score-voc-bp": ("cls-score-voc", (1, 0, 2, 3)),  # Convolution with the transposed kernel
    "fc7-bp": ("fc7", None),  # Deconvolution with the conv blob as-is
    "fc6-bp": ("fc6", None),
}

#: Layers of TransferNet's training-only classification head (in the released
#: caffemodel, not in the deploy net).
TRAINING_ONLY_LAYERS = ("ip1", "cls-score-voc-att")

#: Layer names that identify a network: (network, names). A set of layer names
#: belongs to the network whose signature it covers best (at least half).
NETWORK_SIGNATURES = (
    ("DecoupledNet", ("cls-score-voc-bp", "fc7-bp", "fc6-bp", "fc6-seg", "fc7-seg", "pool5-bp-bn")),
    ("TransferNet", ("feat_embed", "cls_embed", "combined_embed", "att-w")),
    ("FCN-8s", ("score-fr", "score2", "score4", "score-pool4", "score-pool3", "upsample")),
    ("DeconvNet", ("bn1_1", "bn5_3", "bnfc6", "bnfc7")),
    ("VGG-16", ("fc8",)),
)

_CAFFE_TYPE = {"conv": "Convolution", "deconv": "Deconvolution", "dense": "InnerProduct", "affine": "BN", "bn": "BN"}


class CaffeConversionError(CaffeModelError):
    """A ``.caffemodel`` does not fit the Keras model (nothing was assigned).

    Attributes:
        missing: model layers with weights that the file lacks.
        unexpected: file layers with blobs that the model lacks.
        mismatched: ``{layer: reason}`` for layers whose type, blob count or
            blob shapes do not fit.
        bridging: DecoupledNet bridging copies that differ from the
            transposed forward weights (``bridging="gradient"`` models).
    """

    def __init__(self, message, missing=(), unexpected=(), mismatched=None, bridging=()):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = dict(mismatched or {})
        self.bridging = list(bridging)


# --------------------------------------------------------------------------
# Model side: which Keras layers take which Caffe blobs
# --------------------------------------------------------------------------
def _layer_kind(layer):
    # Conv2DTranspose is not a Conv2D subclass in Keras 3; TransposableConv2D is.
    if isinstance(layer, ChannelAffine):
        return "affine"
    if isinstance(layer, keras.layers.BatchNormalization):
        return "bn"
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return "deconv"
    if isinstance(layer, keras.layers.Conv2D):
        return "conv"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return None


def _iter_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _iter_layers(layer)
        else:
            yield layer


class _Target:
    """One Keras layer with weights and the Caffe blobs it expects."""

    def __init__(self, layer):
        self.layer = layer
        self.name = layer.name
        self.kind = _layer_kind(layer)
        self.caffe_type = _CAFFE_TYPE.get(self.kind)
        self.expected = self._expected_shapes() if self.kind else None
        self.rows = None  # Dense only: Keras kernel row -> Caffe input index

    def _expected_shapes(self):
        layer = self.layer
        if self.kind in ("affine", "bn"):
            if self.kind == "bn" and not (layer.scale and layer.center):
                return None  # a BN without gamma/beta cannot hold Caffe's affine map
            channels = int(layer.weights[0].shape[0])
            return [(1, channels, 1, 1)] * 2
        kernel = tuple(int(d) for d in layer.kernel.shape)
        if self.kind == "conv":
            kh, kw, cin, cout = kernel
            shapes = [(cout, cin, kh, kw)]
        elif self.kind == "deconv":
            kh, kw, cout, cin = kernel
            shapes = [(cin, cout, kh, kw)]
        else:
            cin, cout = kernel
            shapes = [(cout, cin)]
        if layer.use_bias:
            shapes.append((cout,))
        return shapes

    def check(self, layer_type, stored_shapes):
        """Return None if the file blobs fit, else a one-line reason."""
        if self.expected is None:
            return f"Keras layer {type(self.layer).__name__} has no Caffe weight layout"
        shapes = [canonical_shape(layer_type, s, i) for i, s in enumerate(stored_shapes)]
        accepted = (self.caffe_type,)
        if self.kind == "conv":
            accepted += ("InnerProduct",)  # VGG fc6/fc7 stored as InnerProduct
        if layer_type not in accepted:
            return f"file has a {layer_type} layer, the model a {type(self.layer).__name__} (expects {self.caffe_type})"
        if len(shapes) != len(self.expected):
            return (
                f"file has {len(shapes)} blob(s) {_fmt(shapes)}, the model expects "
                f"{len(self.expected)} {_fmt(self.expected)} (bias_term / use_bias differ)"
            )
        for index, (got, want) in enumerate(zip(shapes, self.expected)):
            if self.caffe_type == "BN":
                fits = int(np.prod(got)) == want[1] and max(got) == want[1]
            elif index == 0 and layer_type == "InnerProduct" and self.kind == "conv":
                fits = len(got) == 2 and got == (want[0], int(np.prod(want[1:])))
            elif index == 0 and self.kind == "dense":
                fits = got == want and (self.rows is None or len(self.rows) == want[1])
            else:
                fits = got == want
            if not fits:
                return f"blob shapes {_fmt(shapes)} in the file, the model expects {_fmt(self.expected)}"
        return None

    def keras_arrays(self, layer_type, blobs):
        """Lazily converted Keras weights (``_Slabs``) in ``layer.weights`` order."""
        blobs = [np.asarray(b).reshape(canonical_shape(layer_type, b.shape, i)) for i, b in enumerate(blobs)]
        if self.kind in ("affine", "bn"):
            scale, shift = (_Slabs(b.reshape(-1)) for b in blobs)
            if self.kind == "affine":
                return [scale, shift]
            channels = scale.shape[0]
            epsilon = float(self.layer.epsilon)
            # gamma * (x - 0) / sqrt((1 - eps) + eps) + beta == scale * x + shift.
            return [scale, shift, _Slabs(np.zeros(channels, np.float32)), _Slabs(np.full(channels, 1.0 - epsilon, np.float32))]
        weight = blobs[0]
        if self.kind == "dense":
            arrays = [_Slabs(weight, "matrix", rows=self.rows)]
        else:
            if weight.ndim == 2:  # InnerProduct into a conv: (O, C*kh*kw) is (O, C, kh, kw) in C order
                weight = weight.reshape(self.expected[0])
            arrays = [_Slabs(weight, "kernel")]
        return arrays + [_Slabs(b) for b in blobs[1:]]


def _fmt(shapes):
    return "[" + ", ".join("x".join(str(d) for d in s) if s else "scalar" for s in shapes) + "]"


def _producer(tensor):
    """The operation that produced a symbolic tensor, and its input tensors."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None, ()
    operation = history.operation
    try:
        node = operation._inbound_nodes[history.node_index]
        return operation, tuple(node.input_tensors)
    except (AttributeError, IndexError):
        return operation, ()


def _dense_row_order(layer):
    """For a Dense on a flattened feature map: Caffe input index of each kernel row.

    Caffe's InnerProduct flattens its bottom in (C, H, W) order. The Keras
    graph may flatten channels-last (H, W, C) or permute first (TransferNet's
    ``feat_embed_chw``). The exact order is found by replaying the chain of
    pure reordering layers (Flatten / Permute / Reshape) between the Dense and
    the last 4-D tensor on an array of Caffe indices. Returns None when no
    reordering is needed (identity order, or the input is not a feature map).
    """
    try:
        tensor = layer.input
    except (AttributeError, ValueError):
        return None
    chain = []
    while True:
        operation, inputs = _producer(tensor)
        if not isinstance(operation, (keras.layers.Flatten, keras.layers.Permute, keras.layers.Reshape)) or len(inputs) != 1:
            break
        chain.append(operation)
        tensor = inputs[0]
    shape = tuple(tensor.shape[1:])
    if not chain or len(shape) != 3 or any(d is None for d in shape):
        return None
    height, width, channels = shape  # channels_last feature map
    h, w, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(channels), indexing="ij")
    caffe_index = (c * height * width + h * width + w).astype("int32")[None]
    values = caffe_index
    for operation in reversed(chain):
        values = operation(values)
    rows = keras.ops.convert_to_numpy(values).reshape(-1).astype(np.int64)
    if rows.size != caffe_index.size or not np.array_equal(np.sort(rows), np.arange(rows.size)):
        raise ValueError(f"Cannot derive the flatten order feeding Dense layer {layer.name!r}.")
    return None if np.array_equal(rows, np.arange(rows.size)) else rows


def _model_targets(model):
    targets = {}
    for layer in _iter_layers(model):
        if layer.weights:
            target = _Target(layer)
            if target.kind == "dense":
                target.rows = _dense_row_order(layer)
            targets[layer.name] = target
    return targets


# --------------------------------------------------------------------------
# Assignment in slabs
# --------------------------------------------------------------------------
class _Slabs:
    """A Keras weight computed from a Caffe blob on demand, slab by slab along Keras axis 0.

    ``layout`` says how: ``"plain"`` (the blob as is), ``"kernel"`` (a conv or
    deconv blob ``(A, B, kh, kw)`` -> ``transpose(2, 3, 1, 0)``) or ``"matrix"``
    (an InnerProduct blob ``(O, K)`` -> ``W.T``, rows reordered by ``rows``).
    Transposes are copied in blocks of the blob's first axis: a plain
    ``ascontiguousarray`` of the transposed 400 MB fc6 reads memory with a
    16 KB stride and is ~4x slower.
    """

    _BLOCK = 256

    def __init__(self, blob, layout="plain", rows=None):
        self.blob = blob
        self.layout = layout
        self.rows = rows
        if layout == "kernel":
            first, second, kh, kw = blob.shape
            self.shape = (kh, kw, second, first)
        elif layout == "matrix":
            self.shape = (len(rows) if rows is not None else blob.shape[1], blob.shape[0])
        else:
            self.shape = tuple(blob.shape)

    def slab(self, start, stop):
        blob = self.blob
        if self.layout == "plain":
            return np.ascontiguousarray(blob[start:stop], dtype=np.float32)
        out = np.empty((stop - start,) + self.shape[1:], np.float32)
        columns = self.rows[start:stop] if self.rows is not None else slice(start, stop)
        for first in range(0, blob.shape[0], self._BLOCK):
            block = slice(first, first + self._BLOCK)
            if self.layout == "kernel":
                out[..., block] = blob[block, :, start:stop].transpose(2, 3, 1, 0)
            else:
                out[:, block] = blob[block][:, columns].T
        return out

    def full(self):
        return self.slab(0, self.shape[0]) if self.shape else np.asarray(self.blob, np.float32)


def _assign(variable, array):
    if tuple(variable.shape) != array.shape:
        raise ValueError(f"internal error: {variable.path} has shape {tuple(variable.shape)}, converted blob {array.shape}")
    row_bytes = 4 * int(np.prod(array.shape[1:], dtype=np.int64)) if array.shape else 4
    rows = max(1, ASSIGN_CHUNK_BYTES // max(row_bytes, 1))
    backend_variable = getattr(variable, "value", None)
    if not array.shape or array.shape[0] <= rows or not hasattr(backend_variable, "__getitem__"):
        variable.assign(array.full())
        return
    dtype = variable.dtype
    for start in range(0, array.shape[0], rows):
        stop = min(start + rows, array.shape[0])
        # TensorFlow variables support in-place slice assignment; the slab
        # is the only converted copy alive.
        backend_variable[start:stop].assign(array.slab(start, stop).astype(dtype, copy=False))


# --------------------------------------------------------------------------
# Network identification for error messages
# --------------------------------------------------------------------------
def _identify_network(names):
    names = set(names)
    best, best_fraction = None, 0.0
    for network, signature in NETWORK_SIGNATURES:
        fraction = sum(name in names for name in signature) / len(signature)
        if fraction > best_fraction:
            best, best_fraction = network, fraction
    return best if best_fraction >= 0.5 else None


# --------------------------------------------------------------------------
# load_caffemodel
# --------------------------------------------------------------------------
def _winners(records):
    """Index of the record that wins for each name with blobs (Caffe: last wins)."""
    winners, duplicates = {}, []
    for record in records:
        if record.blob_shapes:
            if record.name in winners and record.name not in duplicates:
                duplicates.append(record.name)
            winners[record.name] = record
    return winners, duplicates


def _bridging_differences(path, winners):
    """Names of bridging copies that differ from the transposed forward weights.

    Streams only the six layers involved and keeps a digest per blob, so at
    most one layer's blobs are in memory.
    """
    names = {n for copy, (forward, _) in BRIDGING_COPIES.items() if copy in winners for n in (copy, forward)}
    names &= set(winners)
    digests, nonzero_bias = {}, set()
    for record in iter_caffemodel(path, layers=names):
        if record.name not in names or winners[record.name].index != record.index:
            continue
        blobs = record.canonical_blobs()
        weight = blobs[0]
        for copy, (forward, axes) in BRIDGING_COPIES.items():
            if record.name == forward and axes is not None:
                weight = weight.transpose(axes)
        if record.name in BRIDGING_COPIES and len(blobs) > 1 and np.any(blobs[1]):
            nonzero_bias.add(record.name)
        digests[record.name] = (weight.shape, hashlib.sha256(np.ascontiguousarray(weight)).digest())
        del blobs, weight, record
    differing = []
    for copy, (forward, _) in BRIDGING_COPIES.items():
        if copy not in digests:
            continue
        if forward not in digests:
            differing.append(f"{copy} (forward layer {forward!r} absent)")
        elif digests[copy] != digests[forward]:
            differing.append(f"{copy} != transposed {forward}")
        elif copy in nonzero_bias:
            differing.append(f"{copy} has a non-zero bias (the gradient path has none)")
    return differing


def load_caffemodel(model, path, *, expected_sha256=None, strict=True, progress=None):
    """Load a ``.caffemodel`` (V1 or new dialect) into a built Keras network.

    Caffe layers are matched to Keras layers by name. Every layer is
    validated (presence, type, blob count, blob shapes) before anything is
    assigned; on any problem one :class:`CaffeConversionError` lists all of
    them and the model keeps its weights. The file is streamed layer by
    layer (1-2 GB files need about one layer's blob of extra memory).

    Special cases:

    * TransferNet ``feat_embed``: Caffe flattens (C, H, W); the Dense rows are
      put in the model's own flatten order (read from its graph), exactly.
    * DeconvNet/DecoupledNet ``BN``: folded ``scale``/``shift`` go into
      ``ChannelAffine``, or for ``batch_norm="trainable"`` models into
      ``BatchNormalization`` as ``gamma=scale, beta=shift, moving_mean=0,
      moving_variance=1-epsilon`` (output exactly ``scale * x + shift``).
    * DecoupledNet bridging copies (``cls-score-voc-bp``, ``fc7-bp``,
      ``fc6-bp``): loaded into the copy layers of a ``bridging="copy"``
      model (re-created from fc6/fc7/cls-score-voc if the file lacks all
      three); for ``bridging="gradient"`` checked to equal the transposed
      forward weights with zero bias, then skipped.
    * TransferNet's training-only ``ip1``/``cls-score-voc-att`` load into a
      model built with ``include_classifier=True``, else they are skipped.
    * Several layers with one name: the last one wins, as in Caffe.

    Args:
        model: a built ``keras.Model`` whose layer names are Caffe layer
            names (any builder of :mod:`keras_deconv.models`).
        path: the ``.caffemodel`` file.
        expected_sha256: if given, the file's SHA-256 must match.
        strict: ``True`` (default): missing, unexpected or misfitting layers
            raise. ``False``: they are skipped with a warning and listed in
            the report (e.g. to reuse a DeconvNet file in a model with another
            number of classes); it still raises if no layer fits.
        progress: optional ``callable(layer_name, done, total)`` called after
            each assigned layer.

    Returns:
        A report dict: ``path``, ``sha256``, ``dialect`` (``"v1"``/``"v2"``),
        ``network`` (identified from the file's layer names, or None),
        ``loaded`` (layer names), ``skipped`` (``{name: reason}``),
        ``missing``, ``mismatched`` (``{name: reason}``, non-strict only),
        ``synced`` (bridging copies re-created from forward weights),
        ``duplicates``, ``parameters`` (number of values loaded) and
        ``seconds``.

    Raises:
        CaffeModelError: unreadable, truncated, non-Caffe file, or checksum
            mismatch (the model is unchanged).
        CaffeConversionError: the file does not fit the model (unchanged).

    Example:
        >>> import os, tempfile, numpy as np, keras
        >>> from keras_deconv.caffe import write_caffemodel, load_caffemodel
        >>> inputs = keras.Input((8, 8, 3))
        >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv1_1")(inputs))
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.caffemodel")
        >>> w = np.random.rand(4, 3, 3, 3).astype("float32")
        >>> write_caffemodel(path, [("conv1_1", "Convolution", [w, np.zeros(4)])])
        >>> report = load_caffemodel(model, path)
        >>> report["loaded"], report["dialect"], report["parameters"]
        (['conv1_1'], 'v1', 112)
        >>> bool(np.array_equal(model.get_layer("conv1_1").kernel.numpy(), w.transpose(2, 3, 1, 0)))
        True
    """
    start_time = time.perf_counter()
    path = os.fspath(path)
    # Pass 1: headers and shapes only (no float data), plus the checksum.
    index = read_caffemodel(path, layers=(), sha256=True, expected_sha256=expected_sha256)
    winners, duplicates = _winners(index.layers)
    targets = _model_targets(model)
    file_network = _identify_network(winners)
    model_network = _identify_network(targets)

    skipped, mismatched, unexpected, to_load = {}, {}, [], {}
    for name, record in winners.items():
        target = targets.get(name)
        if target is None:
            # A DecoupledNet (both modes have pool5-bp-bn) without copy layers: bridging="gradient".
            if name in BRIDGING_COPIES and "pool5-bp-bn" in targets:
                skipped[name] = "bridging copy: the model back-propagates through the forward layers (bridging='gradient')"
            elif name in TRAINING_ONLY_LAYERS and "feat_embed" in targets:
                skipped[name] = "training-only classifier layer (build TransferNet with include_classifier=True to load it)"
            else:
                unexpected.append(name)
            continue
        reason = target.check(record.type, record.blob_shapes)
        if reason:
            mismatched[name] = reason
        else:
            to_load[name] = record
    missing = [name for name in targets if name not in winners]
    synced = []
    copies = [name for name in BRIDGING_COPIES if name in targets]
    if copies and all(name in missing for name in copies) and all(BRIDGING_COPIES[n][0] in to_load for n in copies):
        synced = copies  # re-created from the forward weights after loading
        missing = [name for name in missing if name not in synced]

    bridging = []
    gradient_copies = [name for name in skipped if name in BRIDGING_COPIES]
    if gradient_copies:
        bridging = _bridging_differences(path, winners)

    problems = bool(missing or unexpected or mismatched or bridging)
    if problems and (strict or not to_load):
        raise _conversion_error(path, model, file_network, model_network, missing, unexpected, mismatched, bridging, winners, targets)
    if problems:
        warnings.warn(
            f"load_caffemodel({os.path.basename(path)!r}, strict=False): "
            + _problem_summary(missing, unexpected, mismatched, bridging, winners),
            stacklevel=2,
        )
    for name in unexpected:
        skipped[name] = "not in the model"
    for name, reason in mismatched.items():
        skipped[name] = f"does not fit: {reason}"

    # Pass 2: stream the blobs of the winning records and assign them.
    loaded, parameters = [], 0
    total = len(to_load)
    for record in iter_caffemodel(path, layers=set(to_load)):
        if record.name not in to_load or to_load[record.name].index != record.index:
            continue
        target = targets[record.name]
        arrays = target.keras_arrays(record.type, record.blobs)
        for variable, array in zip(target.layer.weights, arrays):
            _assign(variable, array)
        parameters += sum(int(b.size) for b in record.blobs)
        loaded.append(record.name)
        del arrays, record
        if progress is not None:
            progress(loaded[-1], len(loaded), total)
    if len(loaded) != total:  # the file changed between the two passes
        raise CaffeModelError(
            f"{path}: layers {sorted(set(to_load) - set(loaded))} vanished between two reads; "
            "the file was modified while loading. The model is partly loaded: reload it."
        )
    if synced:
        from keras_deconv.models.decouplednet import sync_bridging_weights

        sync_bridging_weights(model)
    return {
        "path": path,
        "sha256": index.sha256,
        "dialect": index.dialect,
        "network": file_network,
        "loaded": loaded,
        "skipped": skipped,
        "missing": missing,
        "mismatched": mismatched,
        "synced": synced,
        "duplicates": duplicates,
        "parameters": parameters,
        "seconds": round(time.perf_counter() - start_time, 3),
    }


def _problem_summary(missing, unexpected, mismatched, bridging, winners):
    lines = []
    if missing:
        lines.append(f"{len(missing)} model layer(s) missing from the file: {', '.join(missing)}")
    if unexpected:
        described = [
            f"{n} ({winners[n].type} {_fmt([canonical_shape(winners[n].type, s, i) for i, s in enumerate(winners[n].blob_shapes)])})"
            for n in unexpected
        ]
        lines.append(f"{len(unexpected)} file layer(s) not in the model: {', '.join(described)}")
    if mismatched:
        lines.append(f"{len(mismatched)} layer(s) that do not fit:")
        lines.extend(f"  {name}: {reason}" for name, reason in mismatched.items())
    if bridging:
        lines.append("bridging copies that differ from the transposed forward weights: " + "; ".join(bridging))
    return "\n".join(lines)


def _conversion_error(path, model, file_network, model_network, missing, unexpected, mismatched, bridging, winners, targets):
    head = f"{path}: cannot load into model {model.name!r}"
    if file_network and model_network and file_network != model_network:
        head = f"{path}: the file is a {file_network} model but the target is {model_network} (model {model.name!r})"
    hints = []
    if file_network == "VGG-16":
        hints.append("to initialize the encoder from VGG-16 use keras_deconv.caffe.load_vgg16_weights()")
    elif mismatched and len(mismatched) == len([n for n in targets if n in winners]) and file_network == model_network:
        hints.append("no layer fits: was the model built with the official width / number of classes?")
    if bridging:
        hints.append("load it into DecoupledNet(bridging='copy') to use the stored copies, or pass strict=False")
    message = f"{head}; nothing was assigned.\n{_problem_summary(missing, unexpected, mismatched, bridging, winners)}"
    if hints:
        message += "\nHint: " + "; ".join(hints) + "."
    return CaffeConversionError(message, missing, unexpected, mismatched, bridging)


# --------------------------------------------------------------------------
# convert_caffemodel
# --------------------------------------------------------------------------
_BUILDERS = {"deconvnet": "DeconvNet", "decouplednet": "DecoupledNet", "transfernet": "TransferNet", "fcn8s": "FCN8s", "fcn-8s": "FCN8s"}


def _build(builder):
    if isinstance(builder, keras.Model):
        return builder
    from keras_deconv import models

    if callable(builder):
        return builder()
    key = str(builder).lower().replace("_", "")
    if key not in _BUILDERS:
        raise ValueError(f"Expected a keras.Model or one of {sorted(set(_BUILDERS.values()))}. Received: {builder!r}")
    return getattr(models, _BUILDERS[key])()


def convert_caffemodel(path, model, output_path, *, expected_sha256=None, strict=True):
    """Build a model, load a ``.caffemodel`` into it and save ``.weights.h5`` atomically.

    Args:
        path: the ``.caffemodel`` file.
        model: a builder name (``"DeconvNet"``, ``"DecoupledNet"``,
            ``"TransferNet"``, ``"FCN8s"``: built with default arguments), a
            zero-argument callable returning a model, or a built model.
        output_path: destination; must end in ``.weights.h5``. It is written
            to a temporary file in the same folder and renamed when complete.
        expected_sha256: optional SHA-256 the ``.caffemodel`` must have.
        strict: as in :func:`load_caffemodel`.

    Returns:
        The :func:`load_caffemodel` report, plus ``output`` (the path) and
        ``model`` (the loaded ``keras.Model``).

    Example:
        >>> import os, tempfile, numpy as np, keras
        >>> from keras_deconv.caffe import write_caffemodel, convert_caffemodel
        >>> folder = tempfile.mkdtemp()
        >>> src = os.path.join(folder, "tiny.caffemodel")
        >>> write_caffemodel(src, [("fc", "InnerProduct", [np.ones((2, 3)), np.zeros(2)])])
        >>> build = lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])
        >>> report = convert_caffemodel(src, build, os.path.join(folder, "tiny.weights.h5"))
        >>> os.path.exists(report["output"]), report["loaded"]
        (True, ['fc'])
    """
    output_path = os.fspath(output_path)
    if not output_path.endswith(".weights.h5"):
        raise ValueError(f"Expected `output_path` to end in '.weights.h5' (Keras weights file). Received: output_path={output_path!r}")
    model = _build(model)
    report = load_caffemodel(model, path, expected_sha256=expected_sha256, strict=strict)
    with atomic_path(output_path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)
    report.update(output=output_path, model=model)
    return report
