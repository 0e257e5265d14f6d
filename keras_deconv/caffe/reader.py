"""Read ``.caffemodel`` weight files without protobuf or Caffe.

The file is a serialized ``caffe.NetParameter``. This module walks the
protobuf wire format directly on a read-only ``mmap`` of the file: only the
handful of fields needed for weight conversion are decoded (layer name,
type, bottoms, tops, blobs with their shapes); everything else is skipped by
its length prefix.

Field numbers (checked against ``caffe.proto`` of BVLC/caffe and of the
HyeonwooNoh/caffe fork):

* ``NetParameter``: ``name = 1``, ``layers = 2`` (V1LayerParameter),
  ``layer = 100`` (LayerParameter).
* ``V1LayerParameter``: ``bottom = 2``, ``top = 3``, ``name = 4``,
  ``type = 5`` (enum), ``blobs = 6``.
* ``LayerParameter``: ``name = 1``, ``type = 2`` (string), ``bottom = 3``,
  ``top = 4``, ``blobs = 7``.
* ``BlobProto``: ``num = 1``, ``channels = 2``, ``height = 3``, ``width = 4``,
  ``data = 5`` (packed float), ``diff = 6``, ``shape = 7`` (``BlobShape``,
  ``dim = 1`` packed int64), ``double_data = 8``, ``double_diff = 9``.

Memory: every blob is copied exactly once, from the mapping into its own
float32 array, and the mapped pages already consumed are released with
``madvise(MADV_DONTNEED)``. Peak RSS is therefore about the size of the
loaded blobs plus one blob, not twice the file.

Hostile input: every size field is checked against the bytes that remain
before anything is sliced or allocated, varints are at most 10 bytes, the
message nesting is fixed (net > layer > blob > shape, no recursion), and the
number of decoded fields is bounded, so parsing is linear in the file size
and any malformed file raises :class:`CaffeModelError` with the byte offset
and a hint.
"""

import dataclasses
import hashlib
import mmap
import os

import numpy as np

from keras_deconv.caffe import spec as _spec

# Caffe's kMaxBlobAxes.
MAX_BLOB_AXES = 32
# Real files hold a few thousand fields outside the float payloads (which are
# decoded in bulk); the cap keeps a crafted file of millions of tiny fields
# from keeping the pure-Python loop busy for minutes.
MAX_FIELDS = 2_000_000
# Layer/blob names and type strings are short; a megabyte-long "name" means
# the bytes are not what we think they are.
MAX_STRING_BYTES = 1 << 16
# Release consumed pages of the mapping in steps of at least this much.
_RELEASE_STEP = 64 << 20

_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32 = 0, 1, 2, 5

_HINT_REEXPORT = "re-download or re-export it"

# (magic prefix, description, advice) for files that are clearly not
# binary protobuf, so the error can say what the file is.
_KNOWN_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "pass the .caffemodel weights file"),
    (b"\xff\xd8\xff", "a JPEG image", "pass the .caffemodel weights file"),
    (
        b"\x89HDF\r\n\x1a\n",
        "an HDF5 file (e.g. a Keras .h5 or a Caffe .caffemodel.h5 snapshot)",
        "this reader reads binary-protobuf .caffemodel files; re-export the "
        "Caffe net with snapshot_format: BINARYPROTO",
    ),
    (b"PK\x03\x04", "a ZIP archive (.zip/.npz/.keras)", "extract the .caffemodel first"),
    (b"\x1f\x8b", "a gzip archive", "decompress it first (gunzip / tar xzf)"),
    (b"\x93NUMPY", "a NumPy .npy file", "pass the .caffemodel weights file"),
    (b"BZh", "a bzip2 archive", "decompress it first"),
    (b"\xfd7zXZ\x00", "an xz archive", "decompress it first"),
)


class CaffeModelError(ValueError):
    """A file is not a readable ``.caffemodel`` (corrupt, truncated, other format)."""


@dataclasses.dataclass
class LayerRecord:
    """One layer of a ``.caffemodel``.

    Attributes:
        name: layer name (not unique: e.g. TransferNet has two ``soft-att``).
        type: new-dialect type string (V1 enum numbers are translated, e.g.
            ``43 -> "BN"``).
        bottom: names of the input blobs.
        top: names of the output blobs.
        blob_shapes: stored shape of every parameter blob (V1: 4-D legacy).
        blobs: float32 arrays with the stored shapes; empty when the layer was
            filtered out with ``layers=``.
        index: position of the layer in the file.
        offset: byte offset of the layer message in the file.
    """

    name: str
    type: str
    bottom: tuple
    top: tuple
    blob_shapes: list
    blobs: list
    index: int
    offset: int

    @property
    def loaded(self):
        """Whether the blob data was read (``len(blobs) == len(blob_shapes)``)."""
        return len(self.blobs) == len(self.blob_shapes)

    def canonical_blobs(self):
        """Return the blobs reshaped to their new-dialect shapes (views).

        See :func:`keras_deconv.caffe.spec.canonical_shape` for the rules.
        """
        return _spec.squeeze_legacy(self.type, self.blobs)


class CaffeModel:
    """The parsed content of a ``.caffemodel`` file.

    Attributes:
        path: the file that was read.
        dialect: ``"v1"`` (``layers``, enum types, 4-D blobs) or ``"v2"``
            (``layer``, string types, real shapes).
        name: the ``NetParameter.name`` stored in the file ("" if none).
        size: file size in bytes.
        sha256: hex digest of the file, or ``None`` when not computed.
        layers: every layer record in file order, duplicates included.

    Indexing by layer name returns the record **with blobs**; when several
    layers of that name have blobs, the last one wins, as in Caffe's
    ``CopyTrainedLayersFrom``. Layers without blobs are not indexed (they
    carry nothing to convert) but stay in ``layers``.
    """

    def __init__(self, path, dialect, name, size, layers, sha256=None):
        self.path = path
        self.dialect = dialect
        self.name = name
        self.size = size
        self.sha256 = sha256
        self.layers = list(layers)
        self._index = {}
        for record in self.layers:
            if record.blob_shapes:
                self._index.setdefault(record.name, []).append(record)

    def __getitem__(self, name):
        return self._index[name][-1]

    def __contains__(self, name):
        return name in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self):
        return len(self._index)

    def keys(self):
        """Names of the layers that have blobs, in file order."""
        return list(self._index)

    def get(self, name, default=None):
        """Return the record with blobs named ``name``, or ``default``."""
        records = self._index.get(name)
        return records[-1] if records else default

    def records(self, name):
        """All records named ``name``, with or without blobs, in file order."""
        return [record for record in self.layers if record.name == name]

    def blobs(self, name, canonical=False):
        """The blobs of layer ``name``; ``canonical=True`` squeezes V1 shapes."""
        record = self[name]
        return record.canonical_blobs() if canonical else list(record.blobs)

    @property
    def parameter_count(self):
        """Total number of stored parameters (all layers, loaded or not)."""
        return sum(int(np.prod(s, dtype=np.int64)) for r in self.layers for s in r.blob_shapes)

    def __repr__(self):
        return (
            f"CaffeModel(path={self.path!r}, dialect={self.dialect!r}, "
            f"name={self.name!r}, layers={len(self.layers)}, "
            f"with_blobs={len(self._index)}, parameters={self.parameter_count})"
        )


class _WireReader:
    """Bounds-checked protobuf wire-format primitives over a byte buffer."""

    def __init__(self, buffer, size, path):
        self.buf = buffer
        self.size = size
        self.path = path
        self.fields_seen = 0
        self.context = "the file"
        # Called with a byte offset once everything before it was consumed.
        self.release = lambda offset: None

    # -- errors -----------------------------------------------------------
    def fail(self, problem, offset, hint=None):
        hint = hint or (
            f"the file is corrupt or not a .caffemodel; {_HINT_REEXPORT}"
        )
        raise CaffeModelError(
            f"{self.path}: {problem} at byte {offset} (in {self.context}; "
            f"file is {self.size} bytes). Not a valid .caffemodel: {hint}."
        )

    def truncated(self, what, offset, needed_end):
        raise CaffeModelError(
            f"{self.path}: truncated: the {what} at byte {offset} in "
            f"{self.context} needs bytes up to {needed_end}, but the file ends "
            f"at byte {self.size} ({needed_end - self.size} bytes missing). "
            f"The download or export was cut short; {_HINT_REEXPORT}."
        )

    def check_extent(self, what, offset, start, length, end):
        """Ensure [start, start+length) fits inside the enclosing message."""
        stop = start + length
        if stop > end:
            if stop > self.size:
                self.truncated(what, offset, stop)
            self.fail(
                f"{what} of {length} bytes overruns its enclosing message "
                f"(which ends at byte {end})",
                offset,
            )
        return stop

    # -- primitives -------------------------------------------------------
    def varint(self, pos, end):
        buf = self.buf
        start = pos
        result = 0
        shift = 0
        while True:
            if pos >= end:
                if end >= self.size:
                    self.truncated("varint", start, pos + 1)
                self.fail("varint runs past the end of its message", start)
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                self.fail("varint longer than 10 bytes", start)

    def tag(self, pos, end):
        """Decode a field key; returns (field_number, wire_type, new_pos)."""
        self.fields_seen += 1
        if self.fields_seen > MAX_FIELDS:
            self.fail(
                f"more than {MAX_FIELDS} protobuf fields outside blob data "
                "(real Caffe models have a few thousand)",
                pos,
            )
        key, new_pos = self.varint(pos, end)
        field, wire = key >> 3, key & 7
        if field == 0 or field > 0x1FFFFFFF:
            self.fail(f"invalid protobuf field number {field}", pos)
        if wire not in (_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32):
            self.fail(
                f"unsupported protobuf wire type {wire} (field {field})", pos
            )
        return field, wire, new_pos

    def skip(self, field, wire, pos, end, tag_offset):
        """Skip one field value; returns the position after it."""
        if wire == _WIRE_VARINT:
            return self.varint(pos, end)[1]
        if wire == _WIRE_FIXED64:
            return self.check_extent(f"fixed64 field {field}", tag_offset, pos, 8, end)
        if wire == _WIRE_FIXED32:
            return self.check_extent(f"fixed32 field {field}", tag_offset, pos, 4, end)
        length, pos = self.varint(pos, end)
        return self.check_extent(f"field {field}", tag_offset, pos, length, end)

    def length_delimited(self, what, pos, end, tag_offset):
        """Read a length prefix; returns (start, stop) of the payload."""
        length, pos = self.varint(pos, end)
        return pos, self.check_extent(what, tag_offset, pos, length, end)

    def string(self, what, pos, end, tag_offset):
        start, stop = self.length_delimited(what, pos, end, tag_offset)
        if stop - start > MAX_STRING_BYTES:
            self.fail(f"{what} of {stop - start} bytes is implausibly long", tag_offset)
        return bytes(self.buf[start:stop]).decode("utf-8", "replace"), stop

    def expect_wire(self, field, wire, expected, what, offset):
        if wire != expected:
            self.fail(
                f"{what} (field {field}) has wire type {wire}, expected {expected}",
                offset,
            )


class _BlobPlan:
    """Where a blob's values live in the file, decided before allocating."""

    __slots__ = ("shape", "segments", "count", "is_double")

    def __init__(self, shape, segments, count, is_double):
        self.shape = shape
        self.segments = segments  # (kind, offset, n): kind in packed/strided
        self.count = count
        self.is_double = is_double


def _run_length(reader, pos, end, tag_byte, record_size):
    """Count consecutive unpacked records ``tag_byte + value`` from ``pos``.

    Checks in doubling chunks so a long run costs O(run) vectorized work and
    a short run costs O(1), keeping pathological alternations linear.
    """
    available = (end - pos) // record_size
    count = 0
    chunk = 64
    while count < available:
        n = min(chunk, available - count)
        window = np.frombuffer(
            reader.buf, np.uint8, n * record_size, pos + count * record_size
        )[::record_size]
        mismatches = np.flatnonzero(window != tag_byte)
        if mismatches.size:
            return count + int(mismatches[0])
        count += n
        chunk *= 2
    return count


def _plan_blob(reader, start, end, blob_offset):
    """Parse one BlobProto's fields; validate its shape against its data."""
    legacy = {}
    shape_dims = None
    float_segments, float_count = [], 0
    double_segments, double_count = [], 0
    pos = start
    while pos < end:
        tag_offset = pos
        field, wire, pos = reader.tag(pos, end)
        if 1 <= field <= 4:
            reader.expect_wire(field, wire, _WIRE_VARINT, "blob dimension", tag_offset)
            value, pos = reader.varint(pos, end)
            if value >= 1 << 63:
                value -= 1 << 64
            legacy[field] = value
        elif field == 7:
            reader.expect_wire(field, wire, _WIRE_BYTES, "blob shape", tag_offset)
            s_start, pos = reader.length_delimited("blob shape", pos, end, tag_offset)
            shape_dims = _parse_blob_shape(reader, s_start, pos, tag_offset)
        elif field in (5, 8):
            itemsize = 4 if field == 5 else 8
            segments = float_segments if field == 5 else double_segments
            name = "data" if field == 5 else "double_data"
            packed_wire = _WIRE_BYTES
            single_wire = _WIRE_FIXED32 if field == 5 else _WIRE_FIXED64
            if wire == packed_wire:
                d_start, pos = reader.length_delimited(
                    f"blob {name}", pos, end, tag_offset
                )
                nbytes = pos - d_start
                if nbytes % itemsize:
                    reader.fail(
                        f"packed blob {name} of {nbytes} bytes is not a multiple "
                        f"of {itemsize}",
                        tag_offset,
                    )
                n = nbytes // itemsize
                if n:
                    segments.append(("packed", d_start, n))
            elif wire == single_wire:
                record = 1 + itemsize
                n = _run_length(reader, tag_offset, end, reader.buf[tag_offset], record)
                if n == 0 or reader.buf[tag_offset] != (field << 3 | wire):
                    # Non-canonical (multi-byte) tag: take this one value.
                    reader.check_extent(f"blob {name} value", tag_offset, pos, itemsize, end)
                    segments.append(("strided", pos, 1, itemsize))
                    pos += itemsize
                    n = 1
                else:
                    reader.check_extent(
                        f"blob {name} values", tag_offset, tag_offset, n * record, end
                    )
                    segments.append(("strided", tag_offset + 1, n, record))
                    pos = tag_offset + n * record
            else:
                reader.expect_wire(field, wire, packed_wire, f"blob {name}", tag_offset)
            if field == 5:
                float_count += n
            else:
                double_count += n
        else:
            # diff / double_diff (snapshots with diffs) and unknown fields.
            pos = reader.skip(field, wire, pos, end, tag_offset)

    if legacy:
        # Caffe's Blob::FromProto: any legacy dimension wins over `shape`.
        shape = tuple(legacy.get(f, 0) for f in (1, 2, 3, 4))
    elif shape_dims is not None:
        shape = shape_dims
    else:
        shape = ()
    for dim in shape:
        if dim < 0:
            reader.fail(f"blob has a negative dimension in shape {shape}", blob_offset)
    expected = 1
    for dim in shape:
        expected *= dim
    # Caffe uses double_data when it is present.
    is_double = bool(double_segments)
    segments, count = (
        (double_segments, double_count) if is_double else (float_segments, float_count)
    )
    if expected != count:
        reader.fail(
            f"blob with shape {shape} needs {expected} values but stores {count}",
            blob_offset,
        )
    return _BlobPlan(shape, segments, count, is_double)


def _parse_blob_shape(reader, start, end, tag_offset):
    dims = []
    pos = start
    while pos < end:
        field_offset = pos
        field, wire, pos = reader.tag(pos, end)
        if field != 1:
            pos = reader.skip(field, wire, pos, end, field_offset)
            continue
        if wire == _WIRE_BYTES:
            p_start, p_end = reader.length_delimited("blob shape dims", pos, end, field_offset)
            pos = p_start
            while pos < p_end:
                value, pos = reader.varint(pos, p_end)
                dims.append(value)
                if len(dims) > MAX_BLOB_AXES:
                    break
        elif wire == _WIRE_VARINT:
            value, pos = reader.varint(pos, end)
            dims.append(value)
        else:
            reader.expect_wire(field, wire, _WIRE_BYTES, "blob shape dim", field_offset)
        if len(dims) > MAX_BLOB_AXES:
            reader.fail(f"blob shape has more than {MAX_BLOB_AXES} axes", tag_offset)
    return tuple(d - (1 << 64) if d >= 1 << 63 else d for d in dims)


def _materialize(reader, plan):
    """Copy a planned blob out of the buffer into one new float32 array."""
    out = np.empty(plan.count, dtype=np.float32)
    dtype = np.dtype("<f8") if plan.is_double else np.dtype("<f4")
    filled = 0
    for segment in plan.segments:
        kind, offset, n = segment[:3]
        if kind == "packed":
            # Copy in steps and release each consumed step of the mapping, so
            # a 400 MB blob does not sit in RSS twice (mapped + copied).
            step = max(1, _RELEASE_STEP // dtype.itemsize)
            for first in range(0, n, step):
                count = min(step, n - first)
                start = offset + first * dtype.itemsize
                source = np.frombuffer(reader.buf, dtype, count, start)
                out[filled + first:filled + first + count] = source
                del source  # drop the export of the mapping right away
                reader.release(start + count * dtype.itemsize)
        else:
            source = np.ndarray((n,), dtype, reader.buf, offset, (segment[3],))
            out[filled:filled + n] = source
            del source
        filled += n
    return out.reshape(plan.shape)


# Per dialect: (NetParameter field, name, type, bottom, top, blobs) fields.
_DIALECTS = {
    "v1": {"net_field": 2, "name": 4, "type": 5, "bottom": 2, "top": 3, "blobs": 6},
    "v2": {"net_field": 100, "name": 1, "type": 2, "bottom": 3, "top": 4, "blobs": 7},
}


def _parse_layer(reader, dialect, start, end, index, offset, wanted):
    fields = _DIALECTS[dialect]
    name = ""
    type_name = ""
    bottom, top, blob_ranges = [], [], []
    reader.context = f"layer #{index} (starting at byte {offset})"
    pos = start
    while pos < end:
        tag_offset = pos
        field, wire, pos = reader.tag(pos, end)
        if field == fields["name"]:
            reader.expect_wire(field, wire, _WIRE_BYTES, "layer name", tag_offset)
            name, pos = reader.string("layer name", pos, end, tag_offset)
            reader.context = f"layer #{index} {name!r} (starting at byte {offset})"
        elif field == fields["type"]:
            if dialect == "v1":
                reader.expect_wire(field, wire, _WIRE_VARINT, "layer type", tag_offset)
                number, pos = reader.varint(pos, end)
                type_name = _spec.v1_type_name(number)
            else:
                reader.expect_wire(field, wire, _WIRE_BYTES, "layer type", tag_offset)
                type_name, pos = reader.string("layer type", pos, end, tag_offset)
        elif field in (fields["bottom"], fields["top"]):
            reader.expect_wire(field, wire, _WIRE_BYTES, "layer bottom/top", tag_offset)
            value, pos = reader.string("layer bottom/top", pos, end, tag_offset)
            (bottom if field == fields["bottom"] else top).append(value)
        elif field == fields["blobs"]:
            reader.expect_wire(field, wire, _WIRE_BYTES, "layer blob", tag_offset)
            b_start, pos = reader.length_delimited("layer blob", pos, end, tag_offset)
            blob_ranges.append((b_start, pos, tag_offset))
        else:
            pos = reader.skip(field, wire, pos, end, tag_offset)

    plans = []
    for blob_index, (b_start, b_end, b_offset) in enumerate(blob_ranges):
        reader.context = f"layer #{index} {name!r}, blob {blob_index}"
        plans.append(_plan_blob(reader, b_start, b_end, b_offset))
    load = wanted is None or name in wanted
    blobs = [_materialize(reader, plan) for plan in plans] if load else []
    return LayerRecord(
        name=name,
        type=type_name,
        bottom=tuple(bottom),
        top=tuple(top),
        blob_shapes=[plan.shape for plan in plans],
        blobs=blobs,
        index=index,
        offset=offset,
    )


def _describe_foreign(head):
    """Name a non-caffemodel file from its first bytes, or return None."""
    for magic, what, advice in _KNOWN_SIGNATURES:
        if head.startswith(magic):
            return what, advice
    sample = head[:512]
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in sample)
    if sample and printable == len(sample):
        lowered = sample.lower()
        if any(word in lowered for word in (b"layer", b"name:", b"input:", b"type:")):
            return (
                "a text file that looks like a prototxt (network definition)",
                "a .prototxt describes the network; pass the binary .caffemodel "
                "that holds the weights",
            )
        return "a text file", "pass the binary .caffemodel weights file"
    return None


class _MappedFile:
    """A read-only mmap of a whole file (or an empty buffer for empty files)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = open(self.path, "rb")
        self.size = os.fstat(self._file.fileno()).st_size
        self.map = None
        if self.size:
            self.map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._released = 0

    @property
    def buffer(self):
        return self.map if self.map is not None else b""

    def release_until(self, offset, force=False):
        """Drop mapped pages below ``offset`` from this process's RSS.

        The data stays in the OS page cache; only our mapping forgets it, so
        peak RSS does not grow by the file size on top of the copies.
        """
        if self.map is None or not hasattr(self.map, "madvise"):
            return
        page_end = offset - offset % mmap.PAGESIZE
        if page_end - self._released < (_RELEASE_STEP if not force else 1):
            return
        try:
            self.map.madvise(mmap.MADV_DONTNEED, self._released, page_end - self._released)
        except (OSError, ValueError, AttributeError):
            return
        self._released = page_end

    def sha256(self):
        digest = hashlib.sha256()
        step = _RELEASE_STEP
        for start in range(0, self.size, step):
            digest.update(self.map[start:start + step])
            self.release_until(start + step, force=True)
        self._released = 0
        return digest.hexdigest()

    def close(self):
        if self.map is not None:
            self.map.close()
        self._file.close()


def _walk_layers(mapped, wanted):
    """Yield (dialect, net_name_so_far, LayerRecord) for each layer in order."""
    reader = _WireReader(mapped.buffer, mapped.size, mapped.path)
    reader.release = mapped.release_until
    size = mapped.size
    if size == 0:
        raise CaffeModelError(
            f"{mapped.path}: the file is empty (0 bytes), not a .caffemodel; "
            f"the download or export failed, {_HINT_REEXPORT}."
        )
    head = bytes(mapped.buffer[:512])
    foreign = _describe_foreign(head)
    if foreign and not head.startswith(b"\n"):
        what, advice = foreign
        raise CaffeModelError(
            f"{mapped.path}: not a .caffemodel file: it is {what} "
            f"(first bytes {head[:8]!r}); {advice}."
        )
    dialect = None
    index = 0
    pos = 0
    try:
        while pos < size:
            reader.context = "the NetParameter (top level)"
            tag_offset = pos
            field, wire, pos = reader.tag(pos, size)
            if field in (2, 100):
                this = "v1" if field == 2 else "v2"
                reader.expect_wire(field, wire, _WIRE_BYTES, "layer", tag_offset)
                if dialect not in (None, this):
                    reader.fail(
                        "the file mixes V1 'layers' (field 2) and new 'layer' "
                        "(field 100) entries",
                        tag_offset,
                    )
                dialect = this
                start, pos = reader.length_delimited("layer", pos, size, tag_offset)
                record = _parse_layer(reader, dialect, start, pos, index, tag_offset, wanted)
                index += 1
                mapped.release_until(pos)
                yield dialect, None, record
            elif field == 1:
                reader.expect_wire(field, wire, _WIRE_BYTES, "net name", tag_offset)
                net_name, pos = reader.string("net name", pos, size, tag_offset)
                yield dialect, net_name, None
            else:
                pos = reader.skip(field, wire, pos, size, tag_offset)
    except CaffeModelError as error:
        if foreign and index == 0:
            what, advice = foreign
            raise CaffeModelError(
                f"{mapped.path}: not a .caffemodel file: it looks like {what}; "
                f"{advice}. (Parser detail: {error})"
            ) from None
        raise
    if dialect is None:
        hint = f"it looks like {foreign[0]}; {foreign[1]}" if foreign else (
            "the bytes parse as protobuf but hold no Caffe layers; check that "
            "this is a Caffe weights file"
        )
        raise CaffeModelError(
            f"{mapped.path}: not a .caffemodel file: no 'layers' (field 2) or "
            f"'layer' (field 100) entries in {size} bytes; {hint}."
        )


def iter_caffemodel(path, layers=None):
    """Stream the layers of a ``.caffemodel`` one at a time.

    Only one layer's blobs are alive at a time (unless the caller keeps
    them), which lets a converter assign weights blob by blob with a memory
    peak of the largest layer.

    Args:
        path: the ``.caffemodel`` file.
        layers: optional collection of layer names whose blobs to load; other
            layers are still yielded (with shapes) but without data.

    Yields:
        :class:`LayerRecord` objects, in file order.

    Raises:
        CaffeModelError: the file is malformed, truncated or not a caffemodel
            (raised when the bad part is reached).

    Example:
        >>> import os, tempfile, numpy as np
        >>> from keras_deconv.caffe import write_caffemodel
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.caffemodel")
        >>> write_caffemodel(path, [("fc", "InnerProduct",
        ...                          [np.ones((2, 3)), np.zeros(2)])])
        >>> [(r.name, r.blob_shapes) for r in iter_caffemodel(path)]
        [('fc', [(1, 1, 2, 3), (1, 1, 1, 2)])]
    """
    wanted = None if layers is None else set(layers)
    mapped = _MappedFile(path)
    try:
        for _, _, record in _walk_layers(mapped, wanted):
            if record is not None:
                yield record
    finally:
        mapped.close()


def read_caffemodel(path, layers=None, sha256=True, expected_sha256=None, require=None):
    """Read a ``.caffemodel`` (V1 or new dialect) into a :class:`CaffeModel`.

    Blobs keep their stored shapes (V1 files store 4-D legacy shapes); use
    ``record.canonical_blobs()`` or :func:`canonical_shape` for the
    new-dialect shapes.

    Args:
        path: the ``.caffemodel`` file (1-2 GB files are fine: the file is
            memory-mapped and each blob is copied once).
        layers: optional collection of layer names whose blobs to load. The
            other layers are listed with their blob shapes but no data.
        sha256: compute the file's SHA-256 (about 0.5 s per GB).
        expected_sha256: if given, raise unless the file's digest matches.
        require: optional layer names that must be present with blobs; a
            missing one raises (a file cut exactly between two layers is
            otherwise still well-formed protobuf).

    Returns:
        A :class:`CaffeModel`.

    Raises:
        CaffeModelError: the file is empty, truncated, corrupt, of another
            format, fails the checksum, or lacks a required layer.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from keras_deconv.caffe import write_caffemodel
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.caffemodel")
        >>> write_caffemodel(path, [("conv1", "Convolution",
        ...     [np.ones((4, 3, 3, 3), np.float32), np.zeros(4, np.float32)])])
        >>> model = read_caffemodel(path)
        >>> model.dialect, model["conv1"].type, model["conv1"].blob_shapes
        ('v1', 'Convolution', [(4, 3, 3, 3), (1, 1, 1, 4)])
        >>> [b.shape for b in model["conv1"].canonical_blobs()]
        [(4, 3, 3, 3), (4,)]
    """
    wanted = None if layers is None else set(layers)
    mapped = _MappedFile(path)
    try:
        digest = None
        if (sha256 or expected_sha256) and mapped.size:
            digest = mapped.sha256()
            if expected_sha256 and digest != expected_sha256.lower():
                raise CaffeModelError(
                    f"{mapped.path}: SHA-256 mismatch: expected {expected_sha256}, "
                    f"got {digest}; the file is corrupt or a different release, "
                    f"{_HINT_REEXPORT}."
                )
        records = []
        dialect = None
        net_name = ""
        for walk_dialect, name, record in _walk_layers(mapped, wanted):
            dialect = walk_dialect or dialect
            if name is not None:
                net_name = name
            if record is not None:
                records.append(record)
        model = CaffeModel(
            mapped.path, dialect, net_name, mapped.size, records, sha256=digest
        )
    finally:
        mapped.close()
    missing = [name for name in (require or ()) if name not in model]
    if missing:
        raise CaffeModelError(
            f"{model.path}: missing layer(s) with weights: {missing} "
            f"(the file has {len(model.layers)} layers, last "
            f"{model.layers[-1].name!r}); the file may be truncated or belong "
            f"to another network; {_HINT_REEXPORT}."
        )
    return model
