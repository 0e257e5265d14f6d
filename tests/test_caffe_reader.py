"""Round trips and hostile-input tests for keras_deconv.caffe (reader/writer)."""

import atexit
import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import caffe_reference as ref
from keras_deconv import caffe
from keras_deconv.caffe import CaffeModelError, read_caffemodel, write_caffemodel
from keras_deconv.caffe import reader as reader_module

from official_nets import SPEC_DIR  # noqa: E402
_SCRATCH = tempfile.mkdtemp(prefix="caffe_reader_test_")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


# ------------------------------------------------------------ an independent encoder
def varint(value):
    value &= (1 << 64) - 1
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def key(field, wire):
    return varint(field << 3 | wire)


def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def v1_blob(shape4, values, packed=True):
    body = b"".join(key(f, 0) + varint(d) for f, d in zip((1, 2, 3, 4), shape4))
    if packed:
        body += ld(5, struct.pack(f"<{len(values)}f", *values))
    else:
        body += b"".join(key(5, 5) + struct.pack("<f", v) for v in values)
    return body


def v1_layer(name, type_number, blobs, bottom=(), top=()):
    body = b"".join(ld(2, b.encode()) for b in bottom) + b"".join(ld(3, t.encode()) for t in top)
    body += ld(4, name.encode()) + key(5, 0) + varint(type_number)
    return ld(2, body + b"".join(ld(6, b) for b in blobs))


def _path(name):
    return os.path.join(_SCRATCH, name)


def _write_bytes(name, data):
    path = _path(name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _random_net(rng, n_layers=4):
    types = ["Convolution", "Deconvolution", "InnerProduct", "BN", "ReLU", "Pooling"]
    layers = []
    for i in range(n_layers):
        t = types[rng.integers(len(types))]
        if t in ("Convolution", "Deconvolution"):
            o, c, k = rng.integers(1, 5, 3)
            blobs = [rng.standard_normal((o, c, k, k)).astype(np.float32), rng.standard_normal(o).astype(np.float32)]
        elif t == "InnerProduct":
            o, c = rng.integers(1, 7, 2)
            blobs = [rng.standard_normal((o, c)).astype(np.float32), rng.standard_normal(o).astype(np.float32)]
        elif t == "BN":
            c = rng.integers(1, 6)
            blobs = [rng.standard_normal((1, c, 1, 1)).astype(np.float32) for _ in range(2)]
        else:
            blobs = []
        layers.append((f"layer{i}", t, blobs, (f"in{i}",), (f"out{i}",)))
    return layers


def _small_file(dialect="v1"):
    layers = _random_net(np.random.default_rng(0), 6)
    path = _path(f"small_{dialect}.caffemodel")
    write_caffemodel(path, layers, dialect=dialect, name="small")
    return path, layers


# ------------------------------------------------------------ round trips
@pytest.mark.parametrize("dialect", ["v1", "v2"])
def test_round_trip_random_nets_is_exact(dialect):
    rng = np.random.default_rng(1)
    layers = _random_net(rng, 12) + [("layer0", "ReLU", [], (), ())]  # duplicate name, no blobs
    path = _path(f"rt_{dialect}.caffemodel")
    write_caffemodel(path, layers, dialect=dialect, name="net")
    model = read_caffemodel(path)
    assert model.dialect == dialect and model.name == "net"
    assert model.sha256 == hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert [(r.name, r.type, r.bottom, r.top) for r in model.layers] == [
        (n, t, b, tp) for n, t, _, b, tp in layers]
    for (name, t, blobs, _, _), record in zip(layers, model.layers):
        assert record.loaded and len(record.blobs) == len(blobs)
        for want, got, canon in zip(blobs, record.blobs, record.canonical_blobs()):
            assert got.dtype == np.float32
            expected_stored = caffe.legacy_shape(want.shape) if dialect == "v1" else want.shape
            assert got.shape == expected_stored
            np.testing.assert_array_equal(canon, want)
            assert canon.shape == want.shape
    assert model["layer0"].blob_shapes == model.records("layer0")[0].blob_shapes
    assert len(model.records("layer0")) == 2


def test_v1_legacy_shapes_and_canonical_rules():
    path = _path("legacy.caffemodel")
    write_caffemodel(path, [
        ("conv", "Convolution", [np.ones((8, 3, 3, 3)), np.arange(8)]),
        ("fc", "InnerProduct", [np.ones((4, 10)), np.arange(4)]),
        ("bn", "BN", [np.ones((1, 8, 1, 1)), np.zeros((1, 8, 1, 1))]),
    ])
    model = read_caffemodel(path)
    assert model["conv"].blob_shapes == [(8, 3, 3, 3), (1, 1, 1, 8)]
    assert model["fc"].blob_shapes == [(1, 1, 4, 10), (1, 1, 1, 4)]
    assert model["bn"].blob_shapes == [(1, 8, 1, 1), (1, 8, 1, 1)]
    assert [b.shape for b in model.blobs("fc", canonical=True)] == [(4, 10), (4,)]
    assert caffe.canonical_shape("Deconvolution", (1, 1, 1, 21)) == (21,)
    assert caffe.canonical_shape("Deconvolution", (4096, 512, 7, 7), 0) == (4096, 512, 7, 7)
    assert caffe.canonical_shape("InnerProduct", (1, 1, 1, 80), 0) == (1, 80)
    assert caffe.canonical_shape("InnerProduct", (1024, 80), 0) == (1024, 80)  # idempotent


def test_hand_encoded_variants_unpacked_double_and_field_order():
    values = [1.5, -2.0, 3.25, 0.0, 7.0, 8.0]
    unpacked = v1_blob((1, 1, 2, 3), values, packed=False)
    # v2 layer with blobs before the name; legacy dims inside a v2 blob.
    v2_blob = ld(5, struct.pack("<2f", 1, 2)) + ld(7, ld(1, varint(2)))
    # Dims after the data in the second blob.
    late_dims = ld(5, struct.pack("<2f", 5, 6)) + b"".join(key(f, 0) + varint(d) for f, d in zip((4, 3, 2, 1), (2, 1, 1, 1)))
    data = ld(1, b"hand") + v1_layer("a", 4, [unpacked, late_dims])
    path = _write_bytes("hand_v1.caffemodel", data)
    model = read_caffemodel(path)
    np.testing.assert_array_equal(model["a"].blobs[0].ravel(), values)
    assert model["a"].blob_shapes == [(1, 1, 2, 3), (1, 1, 1, 2)]
    np.testing.assert_array_equal(model["a"].canonical_blobs()[1], [5, 6])
    v2 = ld(100, ld(7, v2_blob) + ld(2, b"InnerProduct") + ld(1, b"ip"))
    v2 += ld(100, ld(1, b"bn") + ld(2, b"BN") + ld(7, key(1, 0) + varint(1) + key(2, 0) + varint(2)
                                                   + key(3, 0) + varint(1) + key(4, 0) + varint(1)
                                                   + ld(5, struct.pack("<2f", 3, 4))))
    model2 = read_caffemodel(_write_bytes("hand_v2.caffemodel", v2))
    assert model2.dialect == "v2" and model2["ip"].type == "InnerProduct"
    np.testing.assert_array_equal(model2["ip"].blobs[0], [1, 2])
    assert model2["bn"].blob_shapes == [(1, 2, 1, 1)]


def test_double_data_is_used_when_present():
    doubles = key(1, 0) + varint(1) + key(2, 0) + varint(1) + key(3, 0) + varint(1) + key(4, 0) + varint(3)
    doubles += ld(8, struct.pack("<3d", 0.5, 0.25, 0.125))
    model = read_caffemodel(_write_bytes("double.caffemodel", v1_layer("d", 14, [doubles])))
    np.testing.assert_array_equal(model["d"].blobs[0].ravel(), [0.5, 0.25, 0.125])
    assert model["d"].blobs[0].dtype == np.float32


def test_layer_filter_iterator_and_require():
    path, layers = _small_file()
    names_with_blobs = [n for n, _, b, _, _ in layers if b]
    model = read_caffemodel(path, layers=names_with_blobs[:1], sha256=False)
    assert model.sha256 is None
    assert model[names_with_blobs[0]].loaded
    for name in names_with_blobs[1:]:
        assert not model[name].blobs and model[name].blob_shapes
    streamed = list(caffe.iter_caffemodel(path))
    assert [r.name for r in streamed] == [n for n, *_ in layers]
    with pytest.raises(CaffeModelError, match="missing layer"):
        read_caffemodel(path, require=["no-such-layer"])
    with pytest.raises(CaffeModelError, match="SHA-256 mismatch"):
        read_caffemodel(path, expected_sha256="0" * 64)


@pytest.mark.parametrize("name,dialect", [("TransferNet_deploy", "v2"), ("DeconvNet_inference_deploy", "v1"),
                                          ("DecoupledNet_Full_anno_inference_deploy", "v1")])
def test_round_trip_real_layer_structure_tiny_widths(name, dialect):
    spec_path = os.path.join(SPEC_DIR, name + ".json")
    spec = ref.shrink_spec(caffe.load_net_spec(spec_path), factor=64)
    path = _path(f"{name}.caffemodel")
    write_caffemodel(path, caffe.synthetic_layers_from_spec(spec, seed=3, dialect=dialect, lazy=True),
                     dialect=dialect)
    model = read_caffemodel(path)
    expected = caffe.synthetic_layers_from_spec(spec, seed=3, dialect="v2")
    assert [r.name for r in model.layers] == [n for n, _, _ in expected]
    for (lname, ltype, blobs), record in zip(expected, model.layers):
        assert record.type == ltype
        for want, got in zip(blobs, record.canonical_blobs()):
            np.testing.assert_array_equal(got, want)


def test_load_net_spec_finds_the_vendored_networks_and_names_unknown_ones(monkeypatch):
    monkeypatch.delenv(caffe.spec.SPEC_DIR_ENV, raising=False)
    for name in caffe.spec.OFFICIAL_NETS:
        spec = caffe.load_net_spec(name)
        assert spec["layers"] and spec["parameter_count"] > 100_000_000
    with pytest.raises(FileNotFoundError, match="spec_dir") as error:
        caffe.load_net_spec("NoSuchNet_deploy")
    assert "DeconvNet_inference_deploy" in str(error.value)


def test_writer_rejects_bad_input_and_leaves_no_partial_file():
    path = _path("bad.caffemodel")
    with pytest.raises(ValueError, match="v2"):
        write_caffemodel(path, [("x", "LinearSum", [np.ones(2)])], dialect="v1")
    with pytest.raises(ValueError, match="4-D"):
        write_caffemodel(path, [("x", "Convolution", [np.ones((1, 1, 1, 1, 2))])])
    assert not os.path.exists(path)
    assert not [f for f in os.listdir(_SCRATCH) if f.startswith(".bad.caffemodel")]


# ------------------------------------------------------------ hostile input
def test_truncation_at_every_offset_is_reported_or_a_layer_prefix():
    path, layers = _small_file()
    data = open(path, "rb").read()
    boundaries = {r.offset for r in read_caffemodel(path).layers} | {len(data)}
    truncated_path = _path("truncated.caffemodel")
    for cut in range(len(data)):
        with open(truncated_path, "wb") as handle:
            handle.write(data[:cut])
        try:
            model = read_caffemodel(truncated_path, sha256=False)
        except CaffeModelError as error:
            message = str(error)
            assert ("truncated" in message) or ("empty" in message) or ("no 'layers'" in message), message
            assert "re-download or re-export" in message or "not a .caffemodel" in message
        else:
            # Only a cut exactly between two layers leaves valid protobuf;
            # require= turns the missing tail into an error.
            assert cut in boundaries
            assert [r.name for r in model.layers] == [n for n, *_ in layers][: len(model.layers)]
            needed = [n for n, _, b, _, _ in layers if b]
            if any(n not in model for n in needed):
                with pytest.raises(CaffeModelError, match="missing layer"):
                    read_caffemodel(truncated_path, require=needed, sha256=False)


def test_truncation_message_names_offset_and_sizes():
    path, _ = _small_file()
    data = open(path, "rb").read()
    cut = len(data) - 7
    with pytest.raises(CaffeModelError) as info:
        read_caffemodel(_write_bytes("cut.caffemodel", data[:cut]))
    message = str(info.value)
    assert f"file ends at byte {cut}" in message and "re-download or re-export" in message
    assert "layer" in message


def test_bit_flips_return_or_raise_caffemodelerror():
    path, _ = _small_file("v2")
    data = bytearray(open(path, "rb").read())
    rng = np.random.default_rng(5)
    flipped = _path("flipped.caffemodel")
    for _ in range(400):
        mutated = bytearray(data)
        position = int(rng.integers(len(data)))
        mutated[position] ^= 1 << int(rng.integers(8))
        with open(flipped, "wb") as handle:
            handle.write(mutated)
        try:
            read_caffemodel(flipped, sha256=False)
        except CaffeModelError:
            pass


@pytest.mark.parametrize("content,words", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG"),
    (b"\x89HDF\r\n\x1a\n" + b"\x00" * 64, "HDF5"),
    (b'name: "DeconvNet"\ninput: "data"\nlayers {\n  name: "conv1_1"\n  type: CONVOLUTION\n}\n', "prototxt"),
    (b'\nname: "x"\nlayer {\n name: "conv1_1"\n type: "Convolution"\n}\n', "prototxt"),
    (json.dumps({"layers": []}).encode(), "not a .caffemodel"),
    (b"\x1f\x8b\x08\x00" + b"\x00" * 30, "gzip"),
    (b"\x48\x01", "no 'layers'"),
])
def test_foreign_files_are_named(content, words):
    with pytest.raises(CaffeModelError, match=words):
        read_caffemodel(_write_bytes("foreign.bin", content))


def test_random_bytes_raise_caffemodelerror():
    rng = np.random.default_rng(6)
    for size in (1, 2, 3, 17, 100, 4096, 65536):
        for _ in range(5):
            path = _write_bytes("random.bin", rng.bytes(size))
            with pytest.raises(CaffeModelError):
                read_caffemodel(path)


def test_huge_claimed_blob_is_rejected_fast_without_allocation():
    claims = [
        # 10**12 floats claimed by the dims and by the packed length prefix.
        v1_layer("big", 4, [key(1, 0) + varint(10**6) + key(2, 0) + varint(10**6) + key(3, 0) + varint(1)
                            + key(4, 0) + varint(1) + key(5, 2) + varint(4 * 10**12)]),
        # Dims claim 10**12 values, data holds 2.
        v1_layer("big", 4, [key(1, 0) + varint(10**6) + key(2, 0) + varint(10**6) + key(3, 0) + varint(1)
                            + key(4, 0) + varint(1) + ld(5, struct.pack("<2f", 1, 2))]),
        # A layer length prefix of ~2**62 bytes.
        key(2, 2) + varint(1 << 62) + b"\x00" * 16,
        # v2 shape with an absurd product and a negative dim.
        ld(100, ld(1, b"x") + ld(7, ld(7, ld(1, varint(10**9) + varint(10**9) + varint(10**9))))),
        ld(100, ld(1, b"x") + ld(7, ld(7, ld(1, varint(-5))) + ld(5, b""))),
    ]
    for index, data in enumerate(claims):
        path = _write_bytes(f"huge{index}.caffemodel", data)
        tracemalloc.start()
        start = time.perf_counter()
        with pytest.raises(CaffeModelError) as info:
            read_caffemodel(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < 0.5 and peak < 1 << 20, (index, elapsed, peak)
        assert "byte" in str(info.value)


@pytest.mark.parametrize("data,words", [
    (key(9, 0) + b"\xff" * 11 + b"\x01", "varint longer than 10 bytes"),
    (bytes([2 << 3 | 3]) + b"\x00", "wire type 3"),
    (bytes([2 << 3 | 7]) + b"\x00", "wire type 7"),
    (b"\x00\x00", "field number 0"),
    (ld(2, ld(6, key(5, 2) + varint(3) + b"abc")), "not a multiple of 4"),
    (ld(2, ld(4, b"a")) + ld(100, ld(1, b"b")), "mixes"),
    (ld(2, key(4, 0) + varint(1)), "layer name"),
])
def test_malformed_structures(data, words):
    with pytest.raises(CaffeModelError, match=words):
        read_caffemodel(_write_bytes("malformed.caffemodel", data))


def test_field_count_is_bounded(monkeypatch):
    monkeypatch.setattr(reader_module, "MAX_FIELDS", 1000)
    data = (key(9, 0) + varint(1)) * 2000
    with pytest.raises(CaffeModelError, match="more than 1000 protobuf fields"):
        read_caffemodel(_write_bytes("manyfields.caffemodel", data))


def test_unknown_fields_and_nested_garbage_are_skipped():
    blob = v1_blob((1, 1, 1, 2), [1.0, 2.0])
    # An unknown submessage full of deeply "nested" length-delimited bytes.
    garbage = b"\x00"
    for _ in range(200):
        garbage = ld(7, garbage)
    layer = ld(2, ld(4, b"c") + key(5, 0) + varint(4) + ld(10, garbage) + ld(6, blob) + key(7, 5) + b"\0\0\0\0")
    model = read_caffemodel(_write_bytes("garbage.caffemodel", ld(1, b"n") + ld(6, b"state") + layer))
    np.testing.assert_array_equal(model["c"].blobs[0].ravel(), [1, 2])


# ------------------------------------------------------------ property tests
def _classify(path):
    try:
        read_caffemodel(path, sha256=False)
        return "ok"
    except CaffeModelError:
        return "error"


_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@_PROPERTY
@given(st.binary(max_size=600))
def test_property_arbitrary_bytes_never_crash_differently(data):
    assert _classify(_write_bytes("prop_any.bin", data)) in ("ok", "error")


_VALID = None


def _valid_bytes():
    global _VALID
    if _VALID is None:
        path, _ = _small_file("v1")
        _VALID = open(path, "rb").read()
    return _VALID


@_PROPERTY
@given(st.data())
def test_property_mutated_valid_files_never_crash_differently(data):
    valid = _valid_bytes()
    mutated = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        action = data.draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        value = data.draw(st.integers(0, 255))
        if action == "set":
            mutated[position] = value
        elif action == "insert":
            mutated.insert(position, value)
        elif action == "delete" and len(mutated) > 1:
            del mutated[position]
        else:
            mutated = mutated[:position]
        if not mutated:
            break
    assert _classify(_write_bytes("prop_mut.bin", bytes(mutated))) in ("ok", "error")


_shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)


@_PROPERTY
@given(
    dialect=st.sampled_from(["v1", "v2"]),
    blobs=st.lists(st.tuples(_shapes, st.integers(0, 2**32 - 1)), max_size=3),
    name=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
)
def test_property_round_trip(dialect, blobs, name):
    arrays = [np.random.default_rng(seed).standard_normal(shape).astype(np.float32) for shape, seed in blobs]
    path = _path("prop_rt.caffemodel")
    write_caffemodel(path, [(name, "Convolution", arrays)], dialect=dialect)
    record = read_caffemodel(path, sha256=False).layers[0]
    assert record.name == name and record.type == "Convolution"
    for want, got in zip(arrays, record.blobs):
        expected_shape = caffe.legacy_shape(want.shape) if dialect == "v1" else want.shape
        assert got.shape == expected_shape
        np.testing.assert_array_equal(got.reshape(want.shape), want)
