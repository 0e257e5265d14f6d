"""Proof that Caffe -> Keras weight conversion is exact, and that bad files fail cleanly.

Method: write a synthetic ``.caffemodel`` with random weights and exactly the
layer names and blob shapes of the official deploy nets (``spec/nets/*.json``;
V1 dialect for DeconvNet, DecoupledNet and FCN-8s, the new dialect for
TransferNet), load it with :func:`keras_deconv.caffe.load_caffemodel`, and
compare the Keras model's output with the independent NumPy Caffe oracle
``caffe_reference.py`` run on the same blobs and the same image.

* The Keras models take RGB 0-255 and preprocess internally; the oracle gets
  the Caffe input (BGR minus the mean, NCHW) computed here in NumPy.
* Relative error := ``max|keras - caffe| / max|caffe|`` over the whole output
  tensor; the bound is 1e-4 (float32, different summation orders).
* Weights use ``scale="fan_in"`` (He-style, BN near identity), so activations
  neither die in the ReLUs nor blow up, and a wrong layout changes the output
  by O(1).
* The networks run at full layer structure and official input size with all
  channel widths divided by 16 (``caffe_reference.shrink_spec``, which equals
  the builders' ``width=1/16``); DeconvNet also at full size (``slow``).
"""

import gc
import json
import os

import h5py
import keras
import numpy as np
import pytest

import caffe_reference as ref
from keras_deconv.caffe import (
    CaffeConversionError,
    CaffeModelError,
    convert_caffemodel,
    load_caffemodel,
    load_vgg16_weights,
    read_caffemodel,
    synthetic_layers_from_spec,
    write_caffemodel,
)
from keras_deconv.models import DeconvNet, DecoupledNet, FCN8s, TransferNet, caffe_to_keras_weights
from keras_deconv.preprocessing import CAFFE_MEAN_BGR

from official_nets import SPEC_DIR  # noqa: E402
SMALL = 1 / 16
TOLERANCE = 1e-4

# The oracle's sigmoid overflows harmlessly (to 0) on DecoupledNet's large class scores.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")

SPECS = {
    "DeconvNet": "DeconvNet_inference_deploy",
    "DecoupledNet": "DecoupledNet_Full_anno_inference_deploy",
    "TransferNet": "TransferNet_deploy",
    "FCN8s": "fcn-8s-pascal-deploy",
}
DIALECTS = {"DeconvNet": "v1", "DecoupledNet": "v1", "TransferNet": "v2", "FCN8s": "v1"}


def _spec(name):
    path = os.path.join(SPEC_DIR, SPECS[name] + ".json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def relative_error(got, want):
    """``max|got - want| / max|want|``: the error relative to the output's scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


def caffe_image(rgb):
    """RGB 0-255 NHWC -> what Caffe gets: BGR minus the mean, NCHW (as CaffePreprocessing, in float32)."""
    bgr = rgb.astype(np.float32)[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)
    return np.ascontiguousarray(bgr.transpose(0, 3, 1, 2))


def to_keras_layout(blob, shape):
    return blob.transpose(0, 2, 3, 1) if blob.ndim == 4 and len(shape) == 4 else blob.reshape(shape)


def synthetic(spec, dialect, seed=0, extra=()):
    """(layers for write_caffemodel in ``dialect``, {name: canonical blobs} for the oracle)."""
    layers = synthetic_layers_from_spec(spec, seed=seed, dialect=dialect) + list(extra)
    canonical = synthetic_layers_from_spec(spec, seed=seed, dialect="v2") + list(extra)
    return layers, {name: blobs for name, _, blobs in canonical}


def weights_of(model):
    return [v.numpy().copy() for v in model.weights]


def assert_unchanged(model, before):
    for variable, value in zip(model.weights, before):
        np.testing.assert_array_equal(np.asarray(variable), value, err_msg=variable.path)


# ----------------------------------------------------------------- small networks vs the oracle
def _inputs(name, spec, seed=3):
    rng = np.random.default_rng(seed)
    height, width = spec["inputs"]["data"][2:] if name != "FCN8s" else (64, 80)
    rgb = rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32)
    caffe_inputs = {"data": caffe_image(rgb)}
    keras_inputs = rgb
    if name == "DecoupledNet":
        query = np.zeros((1, 20), np.float32)
        query[0, [2, 9, 15]] = [0.9, 0.5, 0.7]
        caffe_inputs["cls-score-masked"] = query.reshape(1, 20, 1, 1)
        keras_inputs = [rgb, query]
    elif name == "TransferNet":
        label = np.eye(80, dtype=np.float32)[[14]]
        caffe_inputs["cls-label"] = label.reshape(1, 80, 1, 1)
        keras_inputs = [rgb, label]
    return keras_inputs, caffe_inputs


def _probe_inputs(model):
    return model.inputs if len(model.inputs) > 1 else model.inputs[0]


def oracle_with_float_ties_resolved(model, spec, weights, caffe_inputs, keras_inputs):
    """Run the oracle; where a 2x2 pooling switch differs from Keras's only by a float tie, follow Keras.

    Keras and NumPy sum convolutions in different orders, so values agree to
    ~1e-6 relative; when the two largest values of a pooling window are that
    close, the argmax can differ and the unpooling puts a value one pixel off.
    At full width (~1e6 windows per image) this happens about once per image.
    Each differing switch is checked to be such a tie (the two candidates
    differ by <= 1e-5 of the map's maximum), then the oracle is re-run with
    Keras's choice there; any other difference fails.

    Returns:
        ``(oracle blobs, number of tied switches followed)``.
    """
    blobs = ref.run_net(spec["layers"], weights, caffe_inputs)
    pools = [
        layer for layer in spec["layers"]
        if layer["type"] == "Pooling" and len(layer["top"]) == 2 and layer["params"].get("kernel_size") == 2 and layer["params"].get("stride") == 2
    ]
    if not pools:
        return blobs, 0
    probe = keras.Model(_probe_inputs(model), [model.get_layer(layer["name"]).output[1] for layer in pools])
    overrides, ties = {}, 0
    for layer, switch in zip(pools, probe(keras_inputs)):
        x = blobs[layer["bottom"][0]]  # the pooled map (nothing writes it in place afterwards)
        mask = blobs[layer["top"][1]].astype(np.int64)  # Caffe: y * W + x within the plane
        width = x.shape[3]
        rows, cols = np.arange(mask.shape[2])[:, None], np.arange(mask.shape[3])[None, :]
        caffe_window = (mask // width - 2 * rows) * 2 + (mask % width - 2 * cols)
        keras_window = np.asarray(switch).astype(np.int64).transpose(0, 3, 1, 2)  # "window" format: dy * 2 + dx
        differing = np.argwhere(caffe_window != keras_window)
        if not len(differing):
            continue
        scale = float(np.abs(x).max())
        new_mask = mask.copy()
        for n, c, i, j in differing:
            k = keras_window[n, c, i, j]
            y, xx = 2 * i + k // 2, 2 * j + k % 2
            gap = abs(float(x[n, c].flat[mask[n, c, i, j]]) - float(x[n, c, y, xx]))
            assert gap <= 1e-5 * scale, f"{layer['name']}: switch at {(n, c, i, j)} differs by {gap} (not a float tie)"
            new_mask[n, c, i, j] = y * width + xx
        overrides[x.shape] = new_mask
        ties += len(differing)
    if not overrides:
        return blobs, 0
    original = ref.max_pool

    def max_pool_following_keras(x, kernel, stride, pad=(0, 0)):
        top, mask = original(x, kernel, stride, pad)
        if tuple(kernel) == (2, 2) and x.shape in overrides:
            mask = overrides[x.shape]
            flat = x.reshape(x.shape[0], x.shape[1], -1)
            top = np.take_along_axis(flat, mask.reshape(flat.shape[0], flat.shape[1], -1), axis=2).reshape(mask.shape)
            mask = mask.astype(np.float32)
        return top, mask

    ref.max_pool = max_pool_following_keras
    try:
        return ref.run_net(spec["layers"], weights, caffe_inputs), ties
    finally:
        ref.max_pool = original


def _compare(model, name, spec, weights, keras_inputs, caffe_inputs, blob_names=()):
    """Run the oracle and the model; ``blob_names``: extra (Keras layer, Caffe blob) pairs to compare."""
    blobs, ties = oracle_with_float_ties_resolved(model, spec, weights, caffe_inputs, keras_inputs)
    outputs = model(keras_inputs)
    if not isinstance(outputs, dict):
        outputs = {"upscore" if name == "FCN8s" else "seg-score": outputs}
    errors = {}
    for key, value in outputs.items():
        got = np.asarray(value)
        errors[key] = relative_error(got, to_keras_layout(blobs[key], got.shape))
    if blob_names:  # intermediate blobs, read through a probe model
        probe = keras.Model(_probe_inputs(model), [model.get_layer(layer).output for layer, _ in blob_names])
        for (_, blob_name), value in zip(blob_names, probe(keras_inputs)):
            got = np.asarray(value)
            errors[blob_name] = relative_error(got, to_keras_layout(blobs[blob_name], got.shape))
    print(name, {k: f"{v:.2e}" for k, v in errors.items()}, f"float ties followed: {ties}")
    assert max(errors.values()) <= TOLERANCE, errors
    return errors


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """One synthetic width-1/16 .caffemodel per network (official names, shrunk shapes)."""
    folder = tmp_path_factory.mktemp("caffe_small")
    files = {}
    for name in SPECS:
        spec = ref.shrink_spec(_spec(name), factor=16)
        extra = ()
        if name == "TransferNet":  # the released file also holds the training-only head
            rng = np.random.default_rng(5)
            extra = (
                ("ip1", "InnerProduct", [rng.normal(0, 0.25, (32, 32)).astype(np.float32), np.zeros(32, np.float32)]),
                ("cls-score-voc-att", "InnerProduct", [rng.normal(0, 0.2, (80, 32)).astype(np.float32), np.full(80, 0.1, np.float32)]),
            )
        layers, weights = synthetic(spec, DIALECTS[name], extra=extra)
        path = str(folder / f"{name}.caffemodel")
        write_caffemodel(path, layers, dialect=DIALECTS[name], name=name)
        files[name] = (path, spec, weights)
    return files


def test_small_deconvnet_v1_matches_caffe(small_files):
    path, spec, weights = small_files["DeconvNet"]
    model = DeconvNet(width=SMALL)
    report = load_caffemodel(model, path)
    assert report["dialect"] == "v1" and report["network"] == "DeconvNet"
    assert len(report["loaded"]) == len(weights) == 59 and not report["skipped"]
    assert report["parameters"] == sum(b.size for blobs in weights.values() for b in blobs)
    assert report["sha256"] == read_caffemodel(path).sha256
    _compare(model, "DeconvNet", spec, weights, *_inputs("DeconvNet", spec))


def test_small_deconvnet_trainable_batch_norm_is_exactly_the_folded_affine(small_files):
    path, spec, weights = small_files["DeconvNet"]
    model = DeconvNet(width=SMALL, batch_norm="trainable")
    load_caffemodel(model, path)
    gamma, beta, mean, variance = model.get_layer("debn3_2").get_weights()
    np.testing.assert_array_equal(gamma, weights["debn3_2"][0].reshape(-1))
    np.testing.assert_array_equal(beta, weights["debn3_2"][1].reshape(-1))
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(variance, np.float32(1 - model.get_layer("debn3_2").epsilon))
    _compare(model, "DeconvNet", spec, weights, *_inputs("DeconvNet", spec))


def test_small_fcn8s_v1_matches_caffe_including_bias_free_deconvolutions(small_files):
    path, spec, weights = small_files["FCN8s"]
    model = FCN8s(width=SMALL)
    report = load_caffemodel(model, path)
    assert {"score2", "score4", "upsample"} <= set(report["loaded"])
    # Caffe's fixed bilinear `upsample` comes from the file, not from the initializer.
    np.testing.assert_array_equal(model.get_layer("upsample").kernel.numpy(), weights["upsample"][0].transpose(2, 3, 1, 0))
    _compare(model, "FCN8s", spec, weights, *_inputs("FCN8s", spec))


def test_small_transfernet_v2_matches_caffe_and_feat_embed_is_exact(small_files):
    path, spec, weights = small_files["TransferNet"]
    model = TransferNet(width=SMALL, return_attention=True)
    report = load_caffemodel(model, path)
    assert report["dialect"] == "v2" and report["network"] == "TransferNet"
    assert set(report["skipped"]) == {"ip1", "cls-score-voc-att"}
    assert "training-only" in report["skipped"]["ip1"]
    errors = _compare(
        model, "TransferNet", spec, weights, *_inputs("TransferNet", spec), blob_names=(("feat_embed", "feat_embed"), ("att-w", "att-w"), ("filter_sum", "filter_sum_map"))
    )
    assert errors["feat_embed"] <= TOLERANCE


def test_transfernet_training_head_loads_when_the_model_has_it(small_files):
    path, _, weights = small_files["TransferNet"]
    model = TransferNet(width=SMALL, include_classifier=True)
    report = load_caffemodel(model, path)
    assert not report["skipped"] and {"ip1", "cls-score-voc-att"} <= set(report["loaded"])
    kernel, bias = model.get_layer("cls-score-voc-att").get_weights()
    np.testing.assert_array_equal(kernel, weights["cls-score-voc-att"][0].T)
    np.testing.assert_array_equal(bias, weights["cls-score-voc-att"][1])


def test_dense_rows_follow_the_keras_flatten_order_whatever_it_is(tmp_path):
    # A Dense on a channels-last Flatten (no Permute) must get its rows permuted
    # from Caffe's C,H,W order; the permutation is read from the graph.
    rng = np.random.default_rng(0)
    inputs = keras.Input((3, 4, 5))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(6, name="ip")(flat))
    weight = rng.standard_normal((6, 60)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    path = str(tmp_path / "ip.caffemodel")
    write_caffemodel(path, [("ip", "InnerProduct", [weight, bias])], dialect="v2")
    load_caffemodel(model, path)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    want = ref.run_net([{"name": "ip", "type": "InnerProduct", "bottom": ["x"], "top": ["y"]}], {"ip": [weight, bias]}, {"x": x.transpose(0, 3, 1, 2)})["y"]
    assert relative_error(model(x), want) <= TOLERANCE


# The sigmoid outputs saturate for 0-255 images, so also compare the raw class
# scores and the bridged pool5 gradient (Keras layer, Caffe blob).
DECOUPLED_BLOBS = (("cls-score-voc", "cls-score"), ("pool5-bp-bn", "pool5-bp-bn"))


@pytest.fixture(scope="module")
def decoupled_files(tmp_path_factory, small_files):
    """DecoupledNet files: independent random bridging copies, and consistent ones (as released)."""
    path, spec, weights = small_files["DecoupledNet"]
    consistent = dict(weights)
    for copy, (forward, axes) in {"cls-score-voc-bp": ("cls-score-voc", (1, 0, 2, 3)), "fc7-bp": ("fc7", None), "fc6-bp": ("fc6", None)}.items():
        kernel = weights[forward][0]
        kernel = np.ascontiguousarray(kernel.transpose(axes)) if axes else kernel
        consistent[copy] = [kernel, np.zeros(weights[copy][1].shape, np.float32)]
    order = [(layer["name"], layer["type"]) for layer in spec["layers"] if layer["blobs"]]
    consistent_path = str(tmp_path_factory.mktemp("decoupled") / "consistent.caffemodel")
    write_caffemodel(consistent_path, [(n, t, consistent[n]) for n, t in order], dialect="v1")
    return path, consistent_path, spec, weights, consistent


def test_small_decouplednet_copy_mode_loads_the_stored_bridging_copies(decoupled_files):
    path, _, spec, weights, _ = decoupled_files
    model = DecoupledNet(width=SMALL)
    report = load_caffemodel(model, path)
    assert {"cls-score-voc-bp", "fc7-bp", "fc6-bp"} <= set(report["loaded"])
    # The copies are independent random blobs here, so matching Caffe proves each one loads.
    _compare(model, "DecoupledNet", spec, weights, *_inputs("DecoupledNet", spec), blob_names=DECOUPLED_BLOBS)


def test_small_decouplednet_gradient_mode_checks_and_skips_the_copies(decoupled_files):
    _, consistent_path, spec, _, consistent = decoupled_files
    model = DecoupledNet(width=SMALL, bridging="gradient")
    report = load_caffemodel(model, consistent_path)
    assert set(report["skipped"]) == {"cls-score-voc-bp", "fc7-bp", "fc6-bp"}
    _compare(model, "DecoupledNet", spec, consistent, *_inputs("DecoupledNet", spec), blob_names=DECOUPLED_BLOBS)


def test_decouplednet_gradient_mode_rejects_copies_that_differ(decoupled_files):
    path = decoupled_files[0]
    model = DecoupledNet(width=SMALL, bridging="gradient")
    before = weights_of(model)
    with pytest.raises(CaffeConversionError, match="differ from the transposed forward weights") as info:
        load_caffemodel(model, path)
    assert len(info.value.bridging) == 3
    assert_unchanged(model, before)
    with pytest.warns(UserWarning, match="bridging copies"):
        report = load_caffemodel(model, path, strict=False)
    assert "fc6" in report["loaded"]


def test_copy_mode_recreates_missing_bridging_copies_from_the_forward_layers(tmp_path, decoupled_files):
    _, _, spec, _, consistent = decoupled_files
    path = str(tmp_path / "no_copies.caffemodel")
    layers = [(layer["name"], layer["type"], consistent[layer["name"]]) for layer in spec["layers"] if layer["blobs"] and not layer["name"].endswith("-bp")]
    write_caffemodel(path, layers, dialect="v1")
    model = DecoupledNet(width=SMALL)
    report = load_caffemodel(model, path)
    assert report["synced"] == ["cls-score-voc-bp", "fc7-bp", "fc6-bp"]
    np.testing.assert_array_equal(model.get_layer("fc6-bp").kernel.numpy(), consistent["fc6"][0].transpose(2, 3, 1, 0))
    _compare(model, "DecoupledNet", spec, consistent, *_inputs("DecoupledNet", spec), blob_names=DECOUPLED_BLOBS)


def test_every_loaded_weight_equals_the_shared_caffe_layout_helper(small_files):
    # The converter's lazy slab conversion must agree with models.caffe_layout.
    for name, build in (("DeconvNet", lambda: DeconvNet(width=SMALL)), ("TransferNet", lambda: TransferNet(width=SMALL))):
        path, spec, weights = small_files[name]
        model = build()
        load_caffemodel(model, path)
        for layer in spec["layers"]:
            if layer["blobs"]:
                want = caffe_to_keras_weights(layer["type"], weights[layer["name"]])
                for got, expected in zip(model.get_layer(layer["name"]).get_weights(), want):
                    np.testing.assert_array_equal(got, expected, err_msg=layer["name"])


def test_large_kernels_are_assigned_in_slabs(small_files, monkeypatch):
    from keras_deconv.caffe import convert

    monkeypatch.setattr(convert, "ASSIGN_CHUNK_BYTES", 4096)  # forces many slabs per kernel
    path, _, weights = small_files["TransferNet"]
    model = TransferNet(width=SMALL)
    load_caffemodel(model, path)
    np.testing.assert_array_equal(model.get_layer("feat_embed").kernel.numpy(), weights["feat_embed"][0].T)
    np.testing.assert_array_equal(model.get_layer("deconv4_1").kernel.numpy(), weights["deconv4_1"][0].transpose(2, 3, 1, 0))


# ----------------------------------------------------------------- bad files: one error, model unchanged
@pytest.fixture(scope="module")
def deconvnet_small():
    return DeconvNet(width=SMALL)


def _expect_failure(model, path, match, error=CaffeModelError, **kwargs):
    before = weights_of(model)
    with pytest.raises(error, match=match) as info:
        load_caffemodel(model, path, **kwargs)
    assert_unchanged(model, before)
    return info.value


def test_truncated_file_fails_and_leaves_the_model_unchanged(tmp_path, small_files, deconvnet_small):
    path = small_files["DeconvNet"][0]
    data = open(path, "rb").read()
    cut = str(tmp_path / "cut.caffemodel")
    with open(cut, "wb") as handle:
        handle.write(data[: int(len(data) * 0.9)])  # inside a late deconvolution blob
    _expect_failure(deconvnet_small, cut, "truncated")


def test_file_cut_between_layers_reports_every_missing_layer(tmp_path, small_files, deconvnet_small):
    path, spec, weights = small_files["DeconvNet"]
    layers = [(layer["name"], layer["type"], weights[layer["name"]]) for layer in spec["layers"] if layer["blobs"]][:-5]
    cut = str(tmp_path / "short.caffemodel")
    write_caffemodel(cut, layers, dialect="v1")
    error = _expect_failure(deconvnet_small, cut, "5 model layer\\(s\\) missing", CaffeConversionError)
    assert error.missing == ["deconv1_1", "debn1_1", "deconv1_2", "debn1_2", "seg-score-voc"]


def test_file_of_another_network_names_both_networks(small_files, deconvnet_small):
    error = _expect_failure(
        deconvnet_small, small_files["TransferNet"][0], "the file is a TransferNet model but the target is DeconvNet", CaffeConversionError
    )
    assert "feat_embed" in error.unexpected and "bn1_1" in error.missing
    error = _expect_failure(
        deconvnet_small, small_files["DecoupledNet"][0], "the file is a DecoupledNet model but the target is DeconvNet", CaffeConversionError
    )
    assert {"fc6-bp", "fc7-bp", "cls-score-voc-bp"} <= set(error.unexpected) and not error.bridging


def test_wrong_blob_shapes_are_all_listed_in_one_error(tmp_path, small_files, deconvnet_small):
    path, spec, weights = small_files["DeconvNet"]
    bad = dict(weights)
    bad["conv3_2"] = [np.zeros((16, 8, 3, 3), np.float32), weights["conv3_2"][1]]
    bad["seg-score-voc"] = [np.zeros((5, 4, 1, 1), np.float32), np.zeros(5, np.float32)]
    bad["debn2_1"] = bad["debn2_1"][:1]
    out = str(tmp_path / "bad_shapes.caffemodel")
    write_caffemodel(out, [(layer["name"], layer["type"], bad[layer["name"]]) for layer in spec["layers"] if layer["blobs"]], dialect="v1")
    error = _expect_failure(deconvnet_small, out, "3 layer\\(s\\) that do not fit", CaffeConversionError)
    assert set(error.mismatched) == {"conv3_2", "seg-score-voc", "debn2_1"}
    assert "16x8x3x3" in str(error) and "21x4x1x1" in str(error)


def test_non_caffe_files_fail_clearly(tmp_path, deconvnet_small):
    png = tmp_path / "image.caffemodel"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    _expect_failure(deconvnet_small, str(png), "not a .caffemodel file: it is a PNG image")
    text = tmp_path / "deploy.prototxt"
    text.write_text('name: "DeconvNet"\nlayers { name: "conv1_1" type: CONVOLUTION }\n')
    _expect_failure(deconvnet_small, str(text), "prototxt")


def test_checksum_mismatch_fails_before_anything_is_read(small_files, deconvnet_small):
    _expect_failure(deconvnet_small, small_files["DeconvNet"][0], "SHA-256 mismatch", expected_sha256="0" * 64)
    digest = read_caffemodel(small_files["DeconvNet"][0]).sha256
    assert load_caffemodel(deconvnet_small, small_files["DeconvNet"][0], expected_sha256=digest)["sha256"] == digest


def test_duplicate_layer_names_last_wins_like_caffe(tmp_path):
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="score")(inputs))
    first = [np.ones((3, 2, 1, 1), np.float32), np.zeros(3, np.float32)]
    last = [np.full((3, 2, 1, 1), 2.0, np.float32), np.ones(3, np.float32)]
    path = str(tmp_path / "dup.caffemodel")
    write_caffemodel(path, [("score", "Convolution", first), ("relu", "ReLU", []), ("score", "Convolution", last)], dialect="v1")
    report = load_caffemodel(model, path)
    assert report["duplicates"] == ["score"]
    np.testing.assert_array_equal(model.get_layer("score").kernel.numpy(), 2.0)


def test_non_strict_skips_what_does_not_fit(small_files):
    # A 21-class DeconvNet file into a 5-class model: everything but the classifier loads.
    model = DeconvNet(num_classes=5, width=SMALL)
    with pytest.raises(CaffeConversionError, match="seg-score-voc"):
        load_caffemodel(model, small_files["DeconvNet"][0])
    calls = []
    with pytest.warns(UserWarning, match="seg-score-voc"):
        report = load_caffemodel(model, small_files["DeconvNet"][0], strict=False, progress=lambda *a: calls.append(a))
    assert list(report["skipped"]) == ["seg-score-voc"] and len(report["loaded"]) == 58
    assert calls[-1][1:] == (58, 58)


def test_convert_caffemodel_writes_a_weights_file_atomically(tmp_path, small_files):
    path, _, weights = small_files["FCN8s"]
    out = tmp_path / "fcn8s.weights.h5"
    report = convert_caffemodel(path, lambda: FCN8s(width=SMALL), str(out))
    assert report["output"] == str(out) and sorted(os.listdir(tmp_path)) == ["fcn8s.weights.h5"]
    fresh = FCN8s(width=SMALL, weights=str(out))
    np.testing.assert_array_equal(fresh.get_layer("fc6").kernel.numpy(), weights["fc6"][0].transpose(2, 3, 1, 0))
    with pytest.raises(ValueError, match=".weights.h5"):
        convert_caffemodel(path, lambda: FCN8s(width=SMALL), str(tmp_path / "x.h5"))
    with pytest.raises(CaffeModelError):  # failed load: no output file, no temporary left behind
        convert_caffemodel(path, lambda: DeconvNet(width=SMALL), str(tmp_path / "bad.weights.h5"))
    assert sorted(os.listdir(tmp_path)) == ["fcn8s.weights.h5"]


# ----------------------------------------------------------------- VGG-16 ImageNet weights
@pytest.fixture(scope="module")
def fcn_full_width():
    # Full-width VGG-16 encoder (the only thing VGG weights fit), tiny fc6/fc7.
    return FCN8s(num_classes=3, fc_units=16)


def test_vgg16_from_keras_applications_files(tmp_path, fcn_full_width):
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    expected = {f"conv{b}_{i}": vgg.get_layer(f"block{b}_conv{i}").get_weights() for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)}
    keras3 = str(tmp_path / "vgg16_notop.weights.h5")
    vgg.save_weights(keras3)  # Keras 3 layout: layers keyed by class, matched by order
    legacy = str(tmp_path / "vgg16_notop.h5")
    vgg.save(legacy)  # legacy HDF5 layout with block1_conv1 ... names, as the released files
    for source in (keras3, legacy):
        fcn_full_width.get_layer("conv4_2").kernel.assign(np.zeros((3, 3, 512, 512), np.float32))
        report = load_vgg16_weights(fcn_full_width, source)
        assert len(report["loaded"]) == 13 and set(report["skipped"]) == {"fc6", "fc7"}
        for name, arrays in expected.items():
            for got, want in zip(fcn_full_width.get_layer(name).get_weights(), arrays):
                np.testing.assert_array_equal(got, want, err_msg=name)


def _pool5_check(model, fc6_apply):
    """fc6 as a 7x7 conv on a random pool5 must equal the source's fully connected fc6."""
    pool5 = np.random.default_rng(1).standard_normal((1, 7, 7, 512)).astype(np.float32)
    kernel, bias = model.get_layer("fc6").get_weights()
    conv = np.tensordot(pool5[0], kernel, axes=([0, 1, 2], [0, 1, 2])) + bias
    assert relative_error(conv, fc6_apply(pool5)) <= TOLERANCE


def test_vgg16_fc_layers_become_convolutions(tmp_path, fcn_full_width):
    rng = np.random.default_rng(2)
    fc1 = rng.standard_normal((7 * 7 * 512, 16)).astype(np.float32)
    fc2 = rng.standard_normal((16, 16)).astype(np.float32)
    path = str(tmp_path / "vgg16_fc.h5")
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    with h5py.File(path, "w") as handle:  # keras.applications layout, tiny fc layers
        names = [layer.name for layer in vgg.layers if layer.weights] + ["fc1", "fc2"]
        handle.attrs["layer_names"] = [n.encode() for n in names]
        for layer in vgg.layers:
            if layer.weights:
                group = handle.create_group(layer.name)
                group.attrs["weight_names"] = [f"{layer.name}/kernel".encode(), f"{layer.name}/bias".encode()]
                group[f"{layer.name}/kernel"], group[f"{layer.name}/bias"] = layer.get_weights()
        for name, kernel in (("fc1", fc1), ("fc2", fc2)):
            group = handle.create_group(name)
            group.attrs["weight_names"] = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
            group[f"{name}_W_1:0"], group[f"{name}_b_1:0"] = kernel, np.arange(16, dtype=np.float32)
    report = load_vgg16_weights(fcn_full_width, path)
    assert report["format"] == "keras-h5" and {"fc6", "fc7"} <= set(report["loaded"])
    # keras.applications flattens pool5 channels-last: Dense(fc1) on flatten(pool5).
    _pool5_check(fcn_full_width, lambda p: p.reshape(1, -1) @ fc1 + np.arange(16))
    np.testing.assert_array_equal(fcn_full_width.get_layer("fc7").kernel.numpy()[0, 0], fc2)


def test_vgg16_from_a_caffe_caffemodel_with_inner_product_fc6(tmp_path, fcn_full_width):
    rng = np.random.default_rng(3)
    layers = []
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    for index, name in enumerate(("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3")):
        cin, cout = channels[index], channels[index + 1]
        layers.append((name, "Convolution", [rng.standard_normal((cout, cin, 3, 3)).astype(np.float32), rng.standard_normal(cout).astype(np.float32)]))
        layers.append((name.replace("conv", "relu"), "ReLU", []))
    fc6 = rng.standard_normal((16, 512 * 7 * 7)).astype(np.float32)
    layers += [
        ("fc6", "InnerProduct", [fc6, np.zeros(16, np.float32)]),
        ("fc7", "InnerProduct", [rng.standard_normal((16, 16)).astype(np.float32), np.zeros(16, np.float32)]),
        ("fc8", "InnerProduct", [rng.standard_normal((10, 16)).astype(np.float32), np.zeros(10, np.float32)]),
    ]
    path = str(tmp_path / "VGG_ILSVRC_16_layers.caffemodel")
    write_caffemodel(path, layers, dialect="v1")
    report = load_vgg16_weights(fcn_full_width, path)
    assert report["format"] == "caffemodel" and len(report["loaded"]) == 15
    np.testing.assert_array_equal(fcn_full_width.get_layer("conv3_1").kernel.numpy(), layers[8][2][0].transpose(2, 3, 1, 0))
    # Caffe's InnerProduct flattens pool5 in C,H,W order.
    _pool5_check(fcn_full_width, lambda p: p.transpose(0, 3, 1, 2).reshape(1, -1) @ fc6.T)
    # load_caffemodel itself refuses a VGG file and points to load_vgg16_weights.
    with pytest.raises(CaffeConversionError, match="load_vgg16_weights"):
        load_caffemodel(fcn_full_width, path)


def test_vgg16_needs_a_full_width_encoder(tmp_path):
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = str(tmp_path / "vgg.weights.h5")
    vgg.save_weights(path)
    model = FCN8s(width=SMALL)
    before = weights_of(model)
    with pytest.raises(CaffeConversionError, match="full-width"):
        load_vgg16_weights(model, path)
    assert_unchanged(model, before)


# ----------------------------------------------------------------- full-size DeconvNet (the 1 GB case)
@pytest.fixture(scope="module")
def full_deconvnet(tmp_path_factory):
    """A 1 GB synthetic V1 DeconvNet file loaded into DeconvNet(); the file is deleted afterwards."""
    spec = _spec("DeconvNet")
    path = str(tmp_path_factory.mktemp("caffe_full") / "DeconvNet_synthetic.caffemodel")
    write_caffemodel(path, synthetic_layers_from_spec(spec, seed=11, dialect="v1", lazy=True), dialect="v1")
    keras.backend.clear_session()
    model = DeconvNet()
    report = load_caffemodel(model, path)
    yield spec, path, model, report
    del model
    os.remove(path)
    keras.backend.clear_session()
    gc.collect()


@pytest.mark.slow
def test_full_size_deconvnet_matches_caffe(full_deconvnet):
    spec, path, model, report = full_deconvnet
    assert os.path.getsize(path) > 1_000_000_000 and report["parameters"] == 251_805_653
    assert len(report["loaded"]) == 59 and not report["skipped"]
    file = read_caffemodel(path, sha256=False)  # 1 GB of blobs for the oracle, freed below
    weights = {name: file[name].canonical_blobs() for name in file}
    del file
    try:
        errors = _compare(model, "DeconvNet", spec, weights, *_inputs("DeconvNet", spec, seed=4))
    finally:
        del weights
        gc.collect()
    print(f"full-size DeconvNet: load {report['seconds']:.1f} s, relative error {errors['seg-score']:.2e}")
