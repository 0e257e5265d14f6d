"""A NumPy implementation of Caffe forward semantics, for tests only.

It runs a network given as the JSON layer list of ``keras_deconv/caffe/nets/*.json``
(``name``, ``type``, ``bottom``, ``top``, ``params``) with weights given as
``{layer_name: [canonical blobs]}`` and inputs as NCHW float32 arrays, and
returns every blob. It follows the C++ code of the two Caffe forks (see
``networks.md`` §1.2-§1.7), not Keras, so it is an independent oracle for the
Keras models:

* Convolution / Deconvolution: cross-correlation, blob ``(O, I, kh, kw)`` /
  ``(I, O, kh, kw)``; deconvolution is the exact transpose of convolution
  (no flip), output ``stride*(H-1) + k - 2*pad``.
* Pooling: Caffe ceil-mode output size, windows clipped to the image, MAX
  mask = per-plane flat index ``h*W + w``, first maximum in raster order.
* Unpooling MAX: zero-filled top, ``top[n, c, mask] = bottom``.
* BN INFERENCE: ``scale * x + shift``; LEARN: batch statistics, eps 1e-9.
* Crop (old FCN layer): offsets from coordinate maps (5, 9, 31 for FCN-8s).
* TransferNet's Scale (``scale_factor``), LinearSum and FilterSum.

Convolutions use one im2col (``sliding_window_view``) and one ``tensordot``
per layer in float32, so the full DeconvNet at 224x224 runs in seconds.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(params, name, default):
    """Caffe's kernel_size / kernel_h+kernel_w style parameters."""
    h = params.get(f"{name}_h", params.get(name, default))
    w = params.get(f"{name}_w", params.get(name, default))
    if isinstance(h, (list, tuple)):
        h = h[0] if h else default
    if isinstance(w, (list, tuple)):
        w = w[-1] if w else default
    return int(h), int(w)


# --------------------------------------------------------------------------
# Convolution and deconvolution
# --------------------------------------------------------------------------
def conv2d(x, weight, bias=None, stride=(1, 1), pad=(0, 0)):
    """Caffe Convolution (group 1): x (N,C,H,W), weight (O,C,kh,kw)."""
    x = np.asarray(x, np.float32)
    weight = np.asarray(weight, np.float32)
    sh, sw = stride
    ph, pw = pad
    _, kh, kw = weight.shape[1:]
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    # windows: (N, C, Ho, Wo, kh, kw); contract C, kh, kw in one GEMM.
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))
    out = out.transpose(0, 3, 1, 2)
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def deconv2d(x, weight, bias=None, stride=(1, 1), pad=(0, 0)):
    """Caffe Deconvolution (group 1): x (N,I,H,W), weight (I,O,kh,kw).

    The transpose of :func:`conv2d` with the same blob: every input pixel
    scatters ``x[n,i,h,w] * weight[i,:,:,:]`` to ``(s*h + a, s*w + b)``, then
    ``pad`` rows/columns are cropped from each border.
    """
    x = np.asarray(x, np.float32)
    weight = np.asarray(weight, np.float32)
    n, _, height, width = x.shape
    _, outputs, kh, kw = weight.shape
    sh, sw = stride
    ph, pw = pad
    full_h = sh * (height - 1) + kh
    full_w = sw * (width - 1) + kw
    # cols: (O, kh, kw, N, H, W) from a single GEMM over the input channels.
    cols = np.tensordot(weight, x, axes=([0], [1]))
    full = np.zeros((outputs, n, full_h, full_w), np.float32)
    for a in range(kh):
        for b in range(kw):
            full[:, :, a:a + sh * (height - 1) + 1:sh, b:b + sw * (width - 1) + 1:sw] += cols[:, a, b]
    out = full[:, :, ph:full_h - ph, pw:full_w - pw].transpose(1, 0, 2, 3)
    if bias is not None:
        out = out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------
# Pooling and unpooling
# --------------------------------------------------------------------------
def pooled_size(size, kernel, stride, pad):
    """Caffe's ceil-mode pooled size, clipped so the last window starts inside."""
    pooled = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def max_pool(x, kernel, stride, pad=(0, 0)):
    """Caffe MAX pooling. Returns (top, mask) with mask = float(h*W + w)."""
    x = np.asarray(x, np.float32)
    n, c, height, width = x.shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = pad
    out_h = pooled_size(height, kh, sh, ph)
    out_w = pooled_size(width, kw, sw, pw)
    # Pad with -inf so clipped-away positions never win; covers every window.
    need_h = (out_h - 1) * sh + kh
    need_w = (out_w - 1) * sw + kw
    padded = np.full((n, c, need_h, need_w), -np.inf, np.float32)
    src_h = min(height, need_h - ph)
    src_w = min(width, need_w - pw)
    padded[:, :, ph:ph + src_h, pw:pw + src_w] = x[:, :, :src_h, :src_w]
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    flat = windows.reshape(n, c, out_h, out_w, kh * kw)
    # np.argmax returns the first maximum: Caffe's strict '>' in raster order.
    local = flat.argmax(axis=-1)
    top = np.take_along_axis(flat, local[..., None], axis=-1)[..., 0]
    rows = np.arange(out_h).reshape(-1, 1) * sh - ph + local // kw
    cols = np.arange(out_w).reshape(1, -1) * sw - pw + local % kw
    mask = (rows * width + cols).astype(np.float32)
    return np.ascontiguousarray(top), mask


def ave_pool(x, kernel, stride, pad=(0, 0)):
    """Caffe AVE pooling: the divisor counts padding inside [−p, H+p)."""
    x = np.asarray(x, np.float32)
    n, c, height, width = x.shape
    kh, kw = kernel
    sh, sw = stride
    ph, pw = pad
    out_h = pooled_size(height, kh, sh, ph)
    out_w = pooled_size(width, kw, sw, pw)
    need_h = (out_h - 1) * sh + kh
    need_w = (out_w - 1) * sw + kw
    padded = np.zeros((n, c, need_h, need_w), np.float64)
    src_h = min(height, need_h - ph)
    src_w = min(width, need_w - pw)
    padded[:, :, ph:ph + src_h, pw:pw + src_w] = x[:, :, :src_h, :src_w]
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    sums = windows.sum(axis=(-1, -2))
    starts_h = np.arange(out_h) * sh - ph
    starts_w = np.arange(out_w) * sw - pw
    size_h = np.minimum(starts_h + kh, height + ph) - starts_h
    size_w = np.minimum(starts_w + kw, width + pw) - starts_w
    return (sums / np.outer(size_h, size_w)).astype(np.float32)


def unpool(x, mask=None, kernel=(2, 2), stride=(2, 2), out_size=None, mode="MAX"):
    """The fork's Unpooling layer (pad must be 0)."""
    x = np.asarray(x, np.float32)
    n, c, height, width = x.shape
    kh, kw = kernel
    sh, sw = stride
    if out_size is None:
        out_size = (
            max((height - 1) * sh + kh, height * sh + 1),
            max((width - 1) * sw + kw, width * sw + 1),
        )
    out_h, out_w = out_size
    top = np.zeros((n, c, out_h * out_w), np.float32)
    if mode == "MAX" and mask is not None:
        index = np.asarray(mask).reshape(n, c, -1).astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= out_h * out_w):
            raise ValueError("unpooling mask index outside the output plane")
        np.put_along_axis(top, index, x.reshape(n, c, -1), axis=2)
        return top.reshape(n, c, out_h, out_w)
    top = top.reshape(n, c, out_h, out_w)
    # MAX without a mask puts each value at the window's top-left corner.
    offsets = [(0, 0)] if mode == "MAX" else [(a, b) for a in range(kh) for b in range(kw)]
    if mode not in ("MAX", "AVE", "TILE"):
        raise ValueError(f"unknown unpool mode {mode!r}")
    for a, b in offsets:
        rows = np.arange(height) * sh + a
        cols = np.arange(width) * sw + b
        keep_r = rows < out_h
        keep_c = cols < out_w
        part = x[:, :, keep_r][:, :, :, keep_c]
        if mode == "AVE":
            part = part / (kh * kw)
        top[:, :, rows[keep_r][:, None], cols[keep_c][None, :]] += part
    return top


# --------------------------------------------------------------------------
# FCN crop offsets from coordinate maps
# --------------------------------------------------------------------------
def _coord_map(layer):
    """(scale, shift) with top_coord = scale * bottom_coord + shift."""
    params = layer.get("params", {})
    layer_type = layer["type"]
    if layer_type in ("Convolution", "Pooling"):
        k, s, p = params.get("kernel_size", 1), params.get("stride", 1), params.get("pad", 0)
        return 1.0 / s, (p - (k - 1) / 2.0) / s
    if layer_type == "Deconvolution":
        k, s, p = params.get("kernel_size", 1), params.get("stride", 1), params.get("pad", 0)
        return float(s), (k - 1) / 2.0 - p
    return 1.0, 0.0


def crop_offsets(layers, input_name="data"):
    """Offsets of every Crop layer, by coordinate-map arithmetic.

    Each blob gets the affine map from ``input_name`` coordinates; a Crop of
    A to the size of B starts at ``shift_A - shift_B`` (both maps must have
    the same scale). For FCN-8s this gives 5, 9 and 31.

    Returns:
        A list with one offset per Crop layer, in layer order.
    """
    maps = {input_name: (1.0, 0.0)}
    offsets = []
    for layer in layers:
        if layer["type"] == "Crop":
            (scale_a, shift_a), (scale_b, shift_b) = (maps[b] for b in layer["bottom"][:2])
            if not math.isclose(scale_a, scale_b):
                raise ValueError(f"crop {layer['name']}: blobs have different scales")
            offset = shift_a - shift_b
            if offset < 0 or not float(offset).is_integer():
                raise ValueError(f"crop {layer['name']}: offset {offset} is not a natural number")
            offsets.append(int(offset))
            maps[layer["top"][0]] = maps[layer["bottom"][1]]
            continue
        bottom = layer["bottom"][0] if layer["bottom"] else None
        if bottom not in maps:
            continue
        scale, shift = maps[bottom]
        layer_scale, layer_shift = _coord_map(layer)
        mapped = (scale * layer_scale, shift * layer_scale + layer_shift)
        for top in layer["top"]:
            maps[top] = mapped
    return offsets


# --------------------------------------------------------------------------
# The network runner
# --------------------------------------------------------------------------
def _softmax(x, axis=1):
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def _reshape(x, shape):
    dims = list(shape)
    out = []
    for i, d in enumerate(dims):
        out.append(x.shape[i] if d == 0 else d)
    return x.reshape(out)


def _forward_layer(layer, blobs_in, weights, crop_offset):
    """Compute the tops of one layer from its bottoms."""
    params = layer.get("params", {})
    layer_type = layer["type"]
    x = blobs_in[0] if blobs_in else None
    w = weights

    if layer_type in ("Convolution", "Deconvolution"):
        if int(params.get("group", 1)) != 1:
            raise NotImplementedError("group != 1")
        stride = _pair(params, "stride", 1)
        pad = _pair(params, "pad", 0)
        bias = w[1] if len(w) > 1 and params.get("bias_term", True) else None
        fn = conv2d if layer_type == "Convolution" else deconv2d
        return [fn(x, w[0], bias, stride, pad)]
    if layer_type == "Pooling":
        kernel = _pair(params, "kernel_size", 1)
        stride = _pair(params, "stride", 1)
        pad = _pair(params, "pad", 0)
        if params.get("global_pooling"):
            kernel, stride, pad = x.shape[2:], (1, 1), (0, 0)
        mode = params.get("pool", "MAX")
        if mode == "MAX":
            top, mask = max_pool(x, kernel, stride, pad)
            return [top, mask][: len(layer["top"])]
        if mode == "AVE":
            return [ave_pool(x, kernel, stride, pad)]
        raise NotImplementedError(f"pool {mode}")
    if layer_type == "Unpooling":
        kernel = _pair(params, "kernel_size", 1)
        stride = _pair(params, "stride", 1)
        if _pair(params, "pad", 0) != (0, 0):
            raise ValueError("Unpooling supports pad 0 only (CHECK_EQ in the fork)")
        size = None
        if "unpool_h" in params:
            size = (int(params["unpool_h"]), int(params["unpool_w"]))
        elif "unpool_size" in params:
            size = (int(params["unpool_size"]),) * 2
        mask = blobs_in[1] if len(blobs_in) > 1 else None
        return [unpool(x, mask, kernel, stride, size, params.get("unpool", "MAX"))]
    if layer_type == "BN":
        scale = np.asarray(w[0], np.float32).reshape(1, -1, 1, 1)
        shift = np.asarray(w[1], np.float32).reshape(1, -1, 1, 1)
        if params.get("bn_mode", "LEARN") == "INFERENCE":
            return [x * scale + shift]
        mean = x.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
        var = (x.astype(np.float64) ** 2).mean(axis=(0, 2, 3), keepdims=True) - mean**2
        y = scale * ((x - mean) / np.sqrt(var + 1e-9)) + shift
        return [y.astype(np.float32), mean.astype(np.float32), var.astype(np.float32)][: len(layer["top"])]
    if layer_type == "ReLU":
        slope = float(params.get("negative_slope", 0.0))
        y = np.where(x > 0, x, x * slope).astype(np.float32)
        return [y, (x > 0).astype(np.float32)][: len(layer["top"])]
    if layer_type == "Sigmoid":
        return [(1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)]
    if layer_type == "Softmax":
        return [_softmax(x, int(params.get("axis", 1)))]
    if layer_type == "Concat":
        axis = int(params.get("axis", params.get("concat_dim", 1)))
        return [np.concatenate(blobs_in, axis=axis)]
    if layer_type == "Eltwise":
        op = params.get("operation", "SUM")
        if op == "PROD":
            out = blobs_in[0].copy()
            for other in blobs_in[1:]:
                out = out * other
        elif op == "SUM":
            coeff = params.get("coeff") or [1.0] * len(blobs_in)
            out = sum(c * b for c, b in zip(coeff, blobs_in))
        elif op == "MAX":
            out = np.maximum.reduce(blobs_in)
        else:
            raise NotImplementedError(f"Eltwise {op}")
        return [np.asarray(out, np.float32)]
    if layer_type == "InnerProduct":
        flat = x.reshape(x.shape[0], -1)
        out = flat @ np.asarray(w[0], np.float32).reshape(w[0].shape[0], -1).T
        if len(w) > 1 and params.get("bias_term", True):
            out = out + np.asarray(w[1], np.float32).reshape(1, -1)
        return [out.astype(np.float32)]
    if layer_type == "Reshape":
        return [_reshape(x, params["shape"])]
    if layer_type == "Dropout":
        return [x]
    if layer_type == "Split":
        return [x] * len(layer["top"])
    if layer_type == "Flatten":
        return [x.reshape(x.shape[0], -1)]
    if layer_type == "Crop":
        target = blobs_in[1]
        h, wd = target.shape[2:]
        off_h, off_w = (crop_offset, crop_offset) if np.isscalar(crop_offset) else crop_offset
        if off_h + h > x.shape[2] or off_w + wd > x.shape[3]:
            raise ValueError(f"crop {layer['name']}: offset {crop_offset} too large")
        return [np.ascontiguousarray(x[:, :, off_h:off_h + h, off_w:off_w + wd])]
    if layer_type == "Scale":
        if "scale_factor" in params:
            return [(x * np.float32(params["scale_factor"])).astype(np.float32)]
        return [x * blobs_in[1]]
    if layer_type == "LinearSum":
        alpha = blobs_in[1]
        return [np.einsum("nchw,nhw->nc", x, alpha[:, 0], dtype=np.float32)]
    if layer_type == "FilterSum":
        z = blobs_in[1].reshape(x.shape[0], x.shape[1])
        return [np.einsum("nchw,nc->nhw", x, z, dtype=np.float32)[:, None]]
    raise NotImplementedError(f"layer type {layer_type!r} ({layer['name']})")


_PARAM_TYPES = ("Convolution", "Deconvolution", "BN", "InnerProduct")


def run_net(layers, weights, inputs, crop_offsets_override=None, keep_layer_outputs=False):
    """Run a Caffe network forward in NumPy.

    Args:
        layers: the JSON layer list (dicts with name, type, bottom, top,
            params).
        weights: ``{layer_name: [canonical blobs]}``. Duplicate names with
            weights are not supported (none of these nets has them).
        inputs: ``{blob_name: NCHW float32 array}``.
        crop_offsets_override: offsets for the Crop layers in order; by default
            derived with :func:`crop_offsets`.
        keep_layer_outputs: also return ``[(layer_name, [tops])]`` per layer,
            which keeps values that in-place layers later overwrite.

    Returns:
        ``{blob_name: array}`` with the final value of every blob (in-place
        layers overwrite their bottom), plus the per-layer list if requested.
    """
    blobs = {name: np.asarray(value, np.float32) for name, value in inputs.items()}
    input_name = next(iter(inputs)) if "data" not in inputs else "data"
    offsets = list(crop_offsets_override) if crop_offsets_override is not None else None
    if offsets is None and any(layer["type"] == "Crop" for layer in layers):
        offsets = crop_offsets(layers, input_name)
    crop_index = 0
    per_layer = []
    for layer in layers:
        missing = [b for b in layer["bottom"] if b not in blobs]
        if missing:
            raise KeyError(f"layer {layer['name']!r} needs blobs {missing} that no layer produced")
        layer_weights = ()
        if layer["type"] in _PARAM_TYPES:
            if layer["name"] not in weights:
                raise KeyError(f"no weights for layer {layer['name']!r}")
            layer_weights = weights[layer["name"]]
        offset = None
        if layer["type"] == "Crop":
            offset = offsets[crop_index]
            crop_index += 1
        tops = _forward_layer(layer, [blobs[b] for b in layer["bottom"]], layer_weights, offset)
        for name, value in zip(layer["top"], tops):
            blobs[name] = value
        if keep_layer_outputs:
            per_layer.append((layer["name"], tops))
    return (blobs, per_layer) if keep_layer_outputs else blobs


# --------------------------------------------------------------------------
# Tiny versions of the real networks (tests only)
# --------------------------------------------------------------------------
_WIDE = (64, 128, 256, 512, 1024, 2048, 4096)


def shrink_spec(spec, factor=16):
    """Divide the channel widths of a spec (64..4096, and 512*20*20) by ``factor``.

    Spatial sizes, kernel sizes, class counts (2, 20, 21, 80) and the 400
    attention positions stay, so the topology, the unpool sizes and every
    layer type are exercised exactly, at a small fraction of the cost.
    """
    def dim(d):
        if d in _WIDE or d == 512 * 400:
            return d // factor
        return d

    def shape(s, channel_axes):
        return [dim(d) if i in channel_axes else d for i, d in enumerate(s)]

    layers = []
    for layer in spec["layers"]:
        layer = dict(layer)
        layer["blobs"] = [
            shape(b, (0, 1) if len(b) != 4 or layer["type"] != "BN" else (1,)) for b in layer["blobs"]
        ]
        layer["output_shapes"] = [shape(s, (1,)) for s in layer.get("output_shapes", [])]
        params = dict(layer.get("params", {}))
        if "num_output" in params:
            params["num_output"] = dim(params["num_output"])
        layer["params"] = params
        layers.append(layer)
    out = dict(spec)
    out["layers"] = layers
    return out
