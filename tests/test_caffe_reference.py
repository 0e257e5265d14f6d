"""Checks of the NumPy Caffe reference against independent, obvious facts."""

import json
import os

import numpy as np
import pytest

import caffe_reference as ref
from keras_deconv.caffe import synthetic_layers_from_spec

from official_nets import SPEC_DIR  # noqa: E402


def _spec(name):
    path = os.path.join(SPEC_DIR, name + ".json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- naive loops
def naive_conv(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0],) * 2, (pad[1],) * 2))
    out_h = (h + 2 * pad[0] - kh) // stride[0] + 1
    out_w = (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((n, o, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + b.reshape(1, -1, 1, 1)


def naive_deconv(x, w, stride, pad):
    n, ci, h, wd = x.shape
    _, co, kh, kw = w.shape
    full = np.zeros((n, co, stride[0] * (h - 1) + kh, stride[1] * (wd - 1) + kw))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for b in range(kw):
                    full[:, :, i * stride[0] + a, j * stride[1] + b] += x[:, :, i, j] @ w[:, :, a, b]
    return full[:, :, pad[0]:full.shape[2] - pad[0], pad[1]:full.shape[3] - pad[1]]


def naive_max_pool(x, k, s, p):
    """Caffe pooling_layer.cpp, MAX branch, transcribed loop by loop."""
    n, c, h, w = x.shape
    out_h, out_w = ref.pooled_size(h, k, s, p), ref.pooled_size(w, k, s, p)
    top = np.full((n, c, out_h, out_w), -np.finfo(np.float32).max, np.float32)
    mask = np.full((n, c, out_h, out_w), -1.0, np.float32)
    for nn in range(n):
        for cc in range(c):
            for ph in range(out_h):
                for pw in range(out_w):
                    hstart, wstart = ph * s - p, pw * s - p
                    hend, wend = min(hstart + k, h), min(wstart + k, w)
                    hstart, wstart = max(hstart, 0), max(wstart, 0)
                    for hh in range(hstart, hend):
                        for ww in range(wstart, wend):
                            if x[nn, cc, hh, ww] > top[nn, cc, ph, pw]:
                                top[nn, cc, ph, pw] = x[nn, cc, hh, ww]
                                mask[nn, cc, ph, pw] = hh * w + ww
    return top, mask


def naive_ave_pool(x, k, s, p):
    n, c, h, w = x.shape
    out_h, out_w = ref.pooled_size(h, k, s, p), ref.pooled_size(w, k, s, p)
    top = np.zeros((n, c, out_h, out_w))
    for ph in range(out_h):
        for pw in range(out_w):
            hstart, wstart = ph * s - p, pw * s - p
            hend, wend = min(hstart + k, h + p), min(wstart + k, w + p)
            size = (hend - hstart) * (wend - wstart)
            hstart, wstart = max(hstart, 0), max(wstart, 0)
            hend, wend = min(hend, h), min(wend, w)
            top[:, :, ph, pw] = x[:, :, hstart:hend, wstart:wend].sum(axis=(2, 3)) / size
    return top


# ---------------------------------------------------------------- conv/deconv
@pytest.mark.parametrize("stride,pad,kernel", [((1, 1), (1, 1), (3, 3)), ((2, 2), (0, 0), (3, 3)),
                                               ((2, 1), (2, 0), (4, 2)), ((1, 1), (0, 0), (1, 1))])
def test_conv_matches_naive_loop(stride, pad, kernel):
    rng = _rng(1)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3) + kernel).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    got = ref.conv2d(x, w, b, stride, pad)
    np.testing.assert_allclose(got, naive_conv(x, w, b, stride, pad), rtol=1e-5, atol=1e-5)
    assert got.dtype == np.float32


@pytest.mark.parametrize("stride,pad,kernel", [((1, 1), (1, 1), (3, 3)), ((2, 2), (0, 0), (4, 4)),
                                               ((1, 1), (0, 0), (7, 7)), ((8, 8), (0, 0), (16, 16))])
def test_deconv_matches_naive_scatter_and_size_formula(stride, pad, kernel):
    rng = _rng(2)
    x = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2) + kernel).astype(np.float32)
    got = ref.deconv2d(x, w, None, stride, pad)
    assert got.shape == (1, 2, stride[0] * 3 + kernel[0] - 2 * pad[0], stride[1] * 4 + kernel[1] - 2 * pad[1])
    np.testing.assert_allclose(got, naive_deconv(x, w, stride, pad), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("stride,pad,kernel,size", [(1, 1, 3, 7), (2, 0, 4, 10), (2, 1, 3, 9), (1, 0, 7, 9)])
def test_deconv_is_the_adjoint_of_conv(stride, pad, kernel, size):
    # <conv(x), y> == <x, deconv(y)> with the same blob: deconvolution is the
    # exact transpose of convolution, no kernel flip and no channel swap.
    rng = _rng(3)
    x = rng.standard_normal((2, 4, size, size))
    w = rng.standard_normal((3, 4, kernel, kernel))
    conv_x = ref.conv2d(x, w, None, (stride,) * 2, (pad,) * 2).astype(np.float64)
    y = rng.standard_normal(conv_x.shape)
    deconv_y = ref.deconv2d(y, w, None, (stride,) * 2, (pad,) * 2).astype(np.float64)
    assert deconv_y.shape == x.shape
    lhs, rhs = np.vdot(conv_x, y), np.vdot(x, deconv_y)
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


# ---------------------------------------------------------------- pooling
@pytest.mark.parametrize("size,k,s,p", [(8, 2, 2, 0), (7, 2, 2, 0), (5, 3, 2, 1), (4, 4, 1, 0), (6, 3, 3, 0)])
def test_max_pool_and_mask_match_caffe_loop_with_ties(size, k, s, p):
    rng = _rng(4)
    # Small integers force ties; zeros emulate post-ReLU all-zero windows.
    x = rng.integers(-1, 2, (2, 3, size, size + 1)).astype(np.float32)
    x[0, 0] = 0.0
    top, mask = ref.max_pool(x, (k, k), (s, s), (p, p))
    want_top, want_mask = naive_max_pool(x, k, s, p)
    np.testing.assert_array_equal(top, want_top)
    np.testing.assert_array_equal(mask, want_mask)
    assert mask.dtype == np.float32


def test_max_pool_all_zero_window_picks_top_left():
    x = np.zeros((1, 1, 4, 4), np.float32)
    _, mask = ref.max_pool(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(mask[0, 0], [[0, 2], [8, 10]])


def test_pooled_size_is_ceil_mode():
    assert ref.pooled_size(7, 2, 2, 0) == 4  # floor mode would give 3
    assert ref.pooled_size(175, 2, 2, 0) == 88  # FCN-8s pool2 -> 88 (JSON)
    assert ref.pooled_size(5, 3, 2, 1) == 3


@pytest.mark.parametrize("size,k,s,p", [(8, 2, 2, 0), (7, 3, 2, 1), (4, 4, 1, 0)])
def test_ave_pool_matches_caffe_loop(size, k, s, p):
    x = _rng(5).standard_normal((1, 2, size, size)).astype(np.float32)
    np.testing.assert_allclose(ref.ave_pool(x, (k, k), (s, s), (p, p)), naive_ave_pool(x, k, s, p), rtol=1e-5, atol=1e-6)


def test_unpool_of_pool_puts_maxima_back():
    x = _rng(6).standard_normal((2, 3, 8, 8)).astype(np.float32)
    top, mask = ref.max_pool(x, (2, 2), (2, 2))
    up = ref.unpool(top, mask, (2, 2), (2, 2), (8, 8))
    nonzero = up != 0
    np.testing.assert_array_equal(up[nonzero], x[nonzero])
    assert nonzero.reshape(2, 3, 4, 2, 4, 2).sum(axis=(3, 5)).max() == 1
    repooled, remask = ref.max_pool(np.where(nonzero, up, -np.inf), (2, 2), (2, 2))
    np.testing.assert_array_equal(repooled, top)
    np.testing.assert_array_equal(remask, mask)


def test_unpool_global_4x4_switch_like_decouplednet():
    scores = _rng(7).standard_normal((1, 20, 4, 4)).astype(np.float32)
    pooled, mask = ref.max_pool(scores, (4, 4), (1, 1))
    value = np.arange(20, dtype=np.float32).reshape(1, 20, 1, 1)
    up = ref.unpool(value, mask, (4, 4), (1, 1), (4, 4))
    flat = up.reshape(20, 16)
    assert (np.count_nonzero(flat[1:], axis=1) == 1).all()
    np.testing.assert_array_equal(flat.argmax(axis=1)[1:], scores.reshape(20, 16).argmax(axis=1)[1:])


# ---------------------------------------------------------------- crop, attention
def test_fcn8s_crop_offsets_are_5_9_31():
    assert ref.crop_offsets(_spec("fcn-8s-pascal-deploy")["layers"]) == [5, 9, 31]


def test_transfernet_attention_layers_match_einsum():
    rng = _rng(8)
    a = rng.standard_normal((2, 6, 4, 4)).astype(np.float32)
    logits = rng.standard_normal((2, 16)).astype(np.float32)
    layers = [
        {"name": "scale", "type": "Scale", "bottom": ["x"], "top": ["xs"], "params": {"scale_factor": 0.004}},
        {"name": "soft", "type": "Softmax", "bottom": ["l"], "top": ["p"], "params": {}},
        {"name": "rs", "type": "Reshape", "bottom": ["p"], "top": ["att"], "params": {"shape": [0, 1, 4, 4]}},
        {"name": "soft-att", "type": "LinearSum", "bottom": ["xs", "att"], "top": ["z"], "params": {}},
        {"name": "fs", "type": "FilterSum", "bottom": ["xs", "z"], "top": ["s"], "params": {}},
    ]
    out = ref.run_net(layers, {}, {"x": a, "l": logits})
    xs = a.astype(np.float64) * np.float32(0.004)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    alpha = p.reshape(2, 4, 4)
    z = np.einsum("nchw,nhw->nc", xs, alpha)
    np.testing.assert_allclose(out["z"], z, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["s"], np.einsum("nchw,nc->nhw", xs, z)[:, None], rtol=1e-4, atol=1e-8)
    assert out["s"].shape == (2, 1, 4, 4)


def test_in_place_layers_and_masks():
    x = np.array([[[[-1.0, 2.0], [0.0, 3.0]]]], np.float32)
    layers = [
        {"name": "bn", "type": "BN", "bottom": ["x"], "top": ["x"], "params": {"bn_mode": "INFERENCE"}},
        {"name": "relu", "type": "ReLU", "bottom": ["x"], "top": ["x", "m"], "params": {}},
        {"name": "prod", "type": "Eltwise", "bottom": ["x", "m"], "top": ["x"], "params": {"operation": "PROD"}},
        {"name": "drop", "type": "Dropout", "bottom": ["x"], "top": ["x"], "params": {}},
    ]
    weights = {"bn": [np.full((1, 1, 1, 1), 2.0), np.full((1, 1, 1, 1), -1.0)]}
    out, per_layer = ref.run_net(layers, weights, {"x": x}, keep_layer_outputs=True)
    np.testing.assert_array_equal(per_layer[0][1][0], 2 * x - 1)
    np.testing.assert_array_equal(out["m"], (2 * x - 1 > 0).astype(np.float32))
    np.testing.assert_array_equal(out["x"], np.maximum(2 * x - 1, 0))


def test_inner_product_flattens_in_chw_order():
    x = _rng(9).standard_normal((2, 3, 2, 2)).astype(np.float32)
    w = _rng(10).standard_normal((5, 12)).astype(np.float32)
    layers = [{"name": "ip", "type": "InnerProduct", "bottom": ["x"], "top": ["y"], "params": {}}]
    out = ref.run_net(layers, {"ip": [w, np.ones(5, np.float32)]}, {"x": x})
    want = np.einsum("nchw,ochw->no", x, w.reshape(5, 3, 2, 2)) + 1
    np.testing.assert_allclose(out["y"], want, rtol=1e-5)


# ---------------------------------------------------------------- whole networks
@pytest.mark.parametrize("name", ["DeconvNet_inference_deploy", "DecoupledNet_Full_anno_inference_deploy",
                                  "TransferNet_deploy"])
def test_tiny_width_networks_reproduce_every_spec_shape(name):
    spec = ref.shrink_spec(_spec(name))
    weights = {n: b for n, _, b in synthetic_layers_from_spec(spec, seed=0)}
    rng = _rng(11)
    inputs = {k: rng.standard_normal(v).astype(np.float32) for k, v in spec["inputs"].items()}
    _, per_layer = ref.run_net(spec["layers"], weights, inputs, keep_layer_outputs=True)
    for layer, (_, tops) in zip(spec["layers"], per_layer):
        assert [list(t.shape) for t in tops] == layer["output_shapes"], layer["name"]
        assert all(np.isfinite(t).all() for t in tops), layer["name"]


def test_tiny_width_fcn8s_output_is_aligned_with_input():
    spec = ref.shrink_spec(_spec("fcn-8s-pascal-deploy"))
    weights = {n: b for n, _, b in synthetic_layers_from_spec(spec, seed=0)}
    x = _rng(12).standard_normal((1, 3, 64, 64)).astype(np.float32)
    out = ref.run_net(spec["layers"], weights, {"data": x})
    assert out["score-pool4c"].shape == out["score2"].shape
    assert out["upscore"].shape == (1, 21, 64, 64)


def test_decouplednet_bridge_is_the_gradient_of_the_class_score():
    # fc6-bp(relu6-mask * fc7-bp(relu7-mask * cls-bp(unpool(e_j)))) must equal
    # d cls-score[j, argmax] / d pool5, checked on a tiny random bridge.
    rng = _rng(13)
    pool5 = rng.standard_normal((1, 4, 6, 6))
    w6, w7, wc = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal((6, 5, 1, 1)), rng.standard_normal((2, 6, 1, 1))

    def score(p):
        f6 = np.maximum(ref.conv2d(p, w6).astype(np.float64), 0)
        f7 = np.maximum(ref.conv2d(f6, w7).astype(np.float64), 0)
        return ref.conv2d(f7, wc).astype(np.float64), f6, f7

    cls, f6, f7 = score(pool5)
    _, mask = ref.max_pool(cls, (4, 4), (1, 1))
    picked = np.zeros((1, 2, 1, 1))
    picked[0, 1] = 1.0
    g = ref.unpool(picked, mask, (4, 4), (1, 1), (4, 4))
    g = ref.conv2d(g, wc.transpose(1, 0, 2, 3)) * (f7 > 0)
    g = ref.deconv2d(g, w7) * (f6 > 0)
    g = ref.deconv2d(g, w6)
    j = int(mask[0, 1, 0, 0])
    eps = 1e-3
    numeric = np.zeros_like(pool5)
    for idx in np.ndindex(pool5.shape):
        bumped = pool5.copy()
        bumped[idx] += eps
        lowered = pool5.copy()
        lowered[idx] -= eps
        numeric[idx] = (score(bumped)[0][0, 1].flat[j] - score(lowered)[0][0, 1].flat[j]) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=2e-2, atol=2e-2)
