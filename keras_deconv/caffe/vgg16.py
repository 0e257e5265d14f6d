"""ImageNet VGG-16 weights (keras.applications ``.h5`` or Caffe ``.caffemodel``) into a model's encoder.

:func:`load_vgg16_weights` initializes conv1_1 ... conv5_3 and, where the
model has them, fc6/fc7, with the same slab assignment and error reporting as
:func:`keras_deconv.caffe.convert.load_caffemodel`.
"""

import os

import numpy as np

from keras_deconv.caffe.convert import BRIDGING_COPIES, CaffeConversionError, _assign, _fmt, _model_targets, _Slabs
from keras_deconv.caffe.reader import CaffeModelError, iter_caffemodel

#: VGG-16 convolutions, in order: conv1_1 ... conv5_3.
VGG16_CONVS = tuple(
    f"conv{block}_{index}" for block, count in enumerate((2, 2, 3, 3, 3), start=1) for index in range(1, count + 1)
)

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _keras_vgg16_arrays(path, include_fc):
    """VGG-16 weights of a keras.applications .h5 as ``{caffe name: [kernel, bias]}`` (Keras layout)."""
    import h5py

    def legacy_layer(group):
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", ())]
        return [np.asarray(group[n], np.float32) for n in names]

    weights = {}
    with h5py.File(path, "r") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" in root.attrs:
            # Keras 2 / legacy HDF5 (the released vgg16_weights_tf_*.h5): by layer name.
            for raw in root.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                if name.startswith("block") and "_conv" in name:
                    block, index = name[5:].split("_conv")
                    weights[f"conv{block}_{index}"] = legacy_layer(root[name])
                elif include_fc and name in ("fc1", "fc2", "fc6", "fc7"):
                    weights[{"fc1": "fc6", "fc2": "fc7"}.get(name, name)] = legacy_layer(root[name])
        elif "layers" in handle:
            # Keras 3 .weights.h5: layers are keyed by class ("conv2d", "conv2d_1", ...) in model order.
            def ordered(prefix):
                keys = [k for k in handle["layers"] if k == prefix or (k.startswith(prefix + "_") and k[len(prefix) + 1:].isdigit())]
                return sorted(keys, key=lambda k: int(k[len(prefix) + 1:] or 0) if k != prefix else -1)

            def layer_vars(key):
                group = handle["layers"][key]["vars"]
                return [np.asarray(group[str(i)], np.float32) for i in range(len(group))]

            convs = ordered("conv2d")
            if len(convs) != len(VGG16_CONVS):
                raise CaffeModelError(f"{path}: a Keras weights file with {len(convs)} Conv2D layers is not VGG-16 (13).")
            weights.update({name: layer_vars(key) for name, key in zip(VGG16_CONVS, convs)})
            if include_fc:
                weights.update({name: layer_vars(key) for name, key in zip(("fc6", "fc7"), ordered("dense"))})
        else:
            raise CaffeModelError(f"{path}: an HDF5 file without Keras weights (no 'layer_names' attribute, no 'layers' group).")
    return weights


def _fc_to_conv(kernel, target_shape, caffe_order):
    """An fc kernel (Keras (K, O) or Caffe (O, K)) -> a conv kernel (kh, kw, C, O)."""
    kh, kw, channels, outputs = target_shape
    if caffe_order:  # Caffe InnerProduct (O, C*kh*kw) flattens in (C, H, W) order
        return kernel.reshape(outputs, channels, kh, kw).transpose(2, 3, 1, 0)
    # Keras VGG16 flattens channels-last pool5: row index (h*kw + w)*C + c.
    return kernel.reshape(kh, kw, channels, outputs)


def _caffe_vgg16_arrays(path, include_fc):
    """VGG-16 weights of a Caffe .caffemodel, Keras-layout convs, fc kept in Caffe layout."""
    wanted = set(VGG16_CONVS) | ({"fc6", "fc7"} if include_fc else set())
    weights = {}
    for record in iter_caffemodel(path, layers=wanted):
        if record.name in wanted and record.blobs:
            blobs = record.canonical_blobs()
            if record.type == "Convolution":
                weights[record.name] = [np.ascontiguousarray(blobs[0].transpose(2, 3, 1, 0))] + blobs[1:]
            else:  # InnerProduct fc6/fc7, converted once the target shape is known
                weights[record.name] = [("caffe_ip", blobs[0])] + blobs[1:]
    return weights


def load_vgg16_weights(model, source, *, include_fc=True, strict=True):
    """Initialize a model's VGG-16 encoder from ImageNet-trained VGG-16 weights.

    Every recipe starts from VGG-16: this loads ``conv1_1`` ... ``conv5_3``
    and, when the model has them (DeconvNet, DecoupledNet, FCN-8s), the
    ``fc6`` (7x7) and ``fc7`` (1x1) convolutions. BN, decoder and classifier
    layers are left as they are. For DecoupledNet ``bridging="copy"`` the
    bridging copies are re-synced from the new fc6/fc7.

    Both sources use Caffe's input convention (BGR, mean-subtracted 0-255),
    which the models' own preprocessing produces, so kernels load unchanged.

    Args:
        model: a model built by :mod:`keras_deconv.models` at full width.
        source: either a keras.applications VGG16 weights file
            (``vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5``, the
            legacy HDF5 layout with names ``block1_conv1`` ... ``fc1``,
            ``fc2``; or a Keras 3 ``VGG16(...).save_weights`` file, matched by
            layer order), or a Caffe VGG-16 ``.caffemodel``
            (``VGG_ILSVRC_16_layers`` with fc6 InnerProduct (4096, 25088),
            flattened C,H,W; or DeconvNet's ``VGG_conv`` variant with fc6/fc7
            as convolutions).
        include_fc: also load fc6/fc7 where both the source and the model
            have them.
        strict: raise when the model lacks a VGG-16 conv layer or a shape
            does not fit; ``False`` skips such layers (listed in the report).

    Returns:
        A report dict: ``loaded``, ``skipped`` (``{name: reason}``),
        ``parameters``, ``source`` and ``format`` (``"keras-h5"`` or
        ``"caffemodel"``).

    Raises:
        CaffeModelError: unreadable source.
        CaffeConversionError: layers missing or misfitting (nothing assigned).

    Example:
        >>> import os, tempfile, keras
        >>> from keras_deconv.models import FCN8s
        >>> vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "vgg16.weights.h5")
        >>> vgg.save_weights(path)
        >>> model = FCN8s(num_classes=2, fc_units=8)
        >>> report = load_vgg16_weights(model, path)
        >>> len(report["loaded"]), sorted(report["skipped"])
        (13, ['fc6', 'fc7'])
    """
    source = os.fspath(source)
    with open(source, "rb") as handle:
        is_hdf5 = handle.read(8) == _HDF5_MAGIC
    weights = _keras_vgg16_arrays(source, include_fc) if is_hdf5 else _caffe_vgg16_arrays(source, include_fc)
    targets = _model_targets(model)

    staged, skipped, problems = {}, {}, {}
    for name in VGG16_CONVS + (("fc6", "fc7") if include_fc else ()):
        target = targets.get(name)
        arrays = weights.get(name)
        if arrays is None:
            if name in VGG16_CONVS:
                problems[name] = "not in the VGG-16 source"
            else:
                skipped[name] = "not in the source (e.g. a notop file)"
            continue
        if target is None or target.kind != "conv":
            if name in VGG16_CONVS:
                problems[name] = "the model has no Conv2D of this name"
            else:
                skipped[name] = "the model has no convolution of this name"
            continue
        kernel_shape = tuple(int(d) for d in target.layer.kernel.shape)
        kernel, bias = arrays[0], arrays[1] if len(arrays) > 1 else None
        if isinstance(kernel, tuple):  # Caffe InnerProduct blob
            kernel = kernel[1]
            if kernel.size != int(np.prod(kernel_shape)):
                problems[name] = f"InnerProduct {_fmt([kernel.shape])} does not fit the kernel {_fmt([kernel_shape])}"
                continue
            kernel = _fc_to_conv(kernel, kernel_shape, caffe_order=True)
        elif kernel.ndim == 2 and kernel.size == int(np.prod(kernel_shape)):
            kernel = _fc_to_conv(kernel, kernel_shape, caffe_order=False)
        if tuple(kernel.shape) != kernel_shape or (bias is not None and bias.shape != (kernel_shape[3],)):
            problems[name] = f"source {_fmt([kernel.shape] + ([bias.shape] if bias is not None else []))}, model {_fmt([w.shape for w in target.layer.weights])}"
            continue
        if len(target.layer.weights) != (2 if bias is not None else 1):
            problems[name] = "bias presence differs between the source and the model"
            continue
        staged[name] = [kernel] + ([bias] if bias is not None else [])
    if problems and (strict or not staged):
        message = f"{source}: cannot load VGG-16 weights into model {model.name!r}; nothing was assigned.\n"
        message += "\n".join(f"  {name}: {reason}" for name, reason in problems.items())
        if any("does not fit" in r or "source" in r for r in problems.values()):
            message += "\nHint: VGG-16 weights need a full-width model (width=1.0)."
        raise CaffeConversionError(message, mismatched=problems)
    for name, reason in problems.items():
        skipped[name] = reason
    parameters = 0
    for name, arrays in staged.items():
        for variable, array in zip(targets[name].layer.weights, arrays):
            _assign(variable, _Slabs(np.asarray(array)))
            parameters += int(np.asarray(array).size)
    if {"fc6", "fc7"} & set(staged) and all(n in targets for n in BRIDGING_COPIES):
        from keras_deconv.models.decouplednet import sync_bridging_weights

        sync_bridging_weights(model)
    return {
        "source": source,
        "format": "keras-h5" if is_hdf5 else "caffemodel",
        "loaded": list(staged),
        "skipped": skipped,
        "parameters": parameters,
    }
