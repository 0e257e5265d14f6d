"""Separating an export's arithmetic from its pooling tie decisions (used by ``--verify``).

Argmax pooling makes a network discontinuous: when the two largest values of
a pooling window are within rounding of each other, a runtime whose
convolutions sum in another order (XNNPACK against oneDNN, or TensorFlow with
oneDNN off) can pick the other one, and unpooling then moves that value to a
neighbouring pixel. On trained DeconvNet weights a handful of such flips
changes scores by percent, not by rounding (``python bench/xnnpack_scores.py``),
so a float32 score bound only holds once the switches are the same.

For a float32 TFLite file with argmax pooling this module:

1. lists the switch tensors of the file itself as extra outputs
   (:func:`with_switch_outputs`; the ops and weights are untouched) and checks
   that this copy still gives the file's scores;
2. compares those switches with Keras's: every switch that differs must be a
   tie, a window whose two largest Keras values are within
   ``export.SWITCH_TIE_TOLERANCE`` (1e-5) of the pooled map's largest value;
3. runs Keras with the export's switches (:func:`keras_deconv.layers.argmax_pooling.pinned_switches`)
   and measures the score error against that.

:func:`onnx_pinned_comparison` does the same for an ONNX file, and
:func:`two_part_comparison` for a DecoupledNet / TransferNet folder, whose
encoder file already outputs the switches its decoder file reads.

Example:

>>> import keras, numpy as np
>>> from keras_deconv import export
>>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
>>> inputs = keras.Input((8, 8, 3))
>>> pooled, switches = MaxPoolingWithArgmax2D(name="pool1")(inputs)
>>> model = keras.Model(inputs, MaxUnpooling2D()([pooled, switches, inputs]))
>>> batch = np.random.default_rng(0).random((2, 8, 8, 3), dtype="float32")
>>> flatbuffer = export.to_tflite(model)
>>> outputs = np.concatenate([export.run_tflite(flatbuffer, [image[None]])[0] for image in batch])
>>> report = pinned_comparison(model, flatbuffer, batch, outputs)
>>> report["switch_flips"], report["pinned_score_error"] <= 1e-6
(0, True)
"""

import re

import numpy as np

from keras_deconv.export.kinds import _tflite_name, model_kind
from keras_deconv.layers.argmax_pooling import SWITCH_TENSOR_NAME, MaxPoolingWithArgmax2D, pinned_switches, window_slices
from keras_deconv.layers.relu_mask import ReLUWithMask

#: How closely the copy with switch outputs must reproduce the file's own
#: scores (relative to the largest score) for its switches to be the file's.
SAME_OUTPUT_TOLERANCE = 1e-6


def pooling_layers(model):
    """The model's argmax pooling layers whose switches an export computes in its graph (window format)."""
    return [layer for layer in model.layers if isinstance(layer, MaxPoolingWithArgmax2D) and layer.index_format == "window"]


def _switch_pattern(layer_name, suffix=""):
    """A layer's switch tensor name: ``<scope>/<layer>[_N]/switches`` (tracing appends ``_N`` to scopes)."""
    return re.compile(rf"(^|/){re.escape(layer_name)}(_\d+)?/{SWITCH_TENSOR_NAME}{re.escape(suffix)}$")


def switch_tensor_indices(flatbuffer, layer_names):
    """``{layer name: tensor index}`` of each layer's switches in a TFLite flatbuffer's main subgraph.

    The tensors are found by name: ``<scope>/<layer>[_N]/switches`` (the
    converter may join fused names with ``;``). A layer with no such tensor,
    or more than one, is left out.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    subgraph = model.Subgraphs(0)
    found = {}
    patterns = {name: _switch_pattern(name) for name in layer_names}
    for index in range(subgraph.TensorsLength()):
        for part in subgraph.Tensors(index).Name().decode("utf-8", "replace").split(";"):
            for name, pattern in patterns.items():
                if pattern.search(part):
                    found.setdefault(name, []).append(index)
    return {name: indices[0] for name, indices in found.items() if len(set(indices)) == 1}


def with_switch_outputs(flatbuffer, tensor_indices):
    """``flatbuffer`` with the given tensors appended to its main subgraph's outputs; nothing else changes."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    subgraph = model.subgraphs[0]
    subgraph.outputs = list(subgraph.outputs) + [int(index) for index in tensor_indices]
    # A signature lists its own outputs; without one the interpreter would keep serving the old list.
    model.signatureDefs = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _window_values(x, pool_size, strides, pooled_hw):
    """``x``'s values per window position: ``[B, h, w, C, kh * kw]``, -inf past the border (Caffe ceil mode)."""
    out_h, out_w = pooled_hw
    pad_h = max((out_h - 1) * strides[0] + pool_size[0] - x.shape[1], 0)
    pad_w = max((out_w - 1) * strides[1] + pool_size[1] - x.shape[2], 0)
    x = np.pad(x, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)], constant_values=-np.inf)
    return np.stack(window_slices(x, pool_size, strides, pooled_hw), axis=-1)  # the layer's own geometry


def keras_switches(model, inputs, layers):
    """Keras's pooled-from tensors and switches of ``layers`` on ``inputs``: two lists of arrays."""
    import keras

    probe = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs,
                        [layer.input for layer in layers] + [layer.output[1] for layer in layers])
    outputs = [np.asarray(t) for t in probe(inputs, training=False)]
    return outputs[: len(layers)], outputs[len(layers) :]


def flip_gaps(layer, pooled_from, keras_window, export_window):
    """Relative gaps ``(x[keras switch] - x[export switch]) / max|x|`` at the windows where the switches differ."""
    values = _window_values(pooled_from, layer.pool_size, layer.strides, keras_window.shape[1:3])
    flipped = keras_window != export_window
    chosen = np.take_along_axis(values, keras_window[..., None].astype(np.int64), -1)[..., 0]
    theirs = np.take_along_axis(values, np.clip(export_window, 0, values.shape[-1] - 1)[..., None].astype(np.int64), -1)[..., 0]
    scale = max(float(np.max(np.abs(pooled_from[np.isfinite(pooled_from)]), initial=0.0)), 1e-30)
    return (chosen[flipped] - theirs[flipped]) / scale


def _relative(a, b):
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-30)


def compare_with_switches(model, inputs, outputs, export_windows, copy_outputs, tie_tolerance=1e-5, score_output=None):
    """The comparison behind :func:`pinned_comparison`, given an export's switches.

    Args:
        model: the Keras model the export came from.
        inputs: what the export was given (an array, or a list for two inputs).
        outputs: the export's scores on ``inputs``.
        export_windows: one array of window switches per :func:`pooling_layers` layer.
        copy_outputs: the scores of the copy that gave the switches (must match ``outputs``).
        tie_tolerance: see :func:`pinned_comparison`.
        score_output: key of the scores when the model returns a dict.

    Returns:
        The dict :func:`pinned_comparison` describes.
    """
    layers = pooling_layers(model)
    pooled_from, keras_windows = keras_switches(model, inputs, layers)
    gaps = np.concatenate([flip_gaps(layer, x, np.asarray(ours, np.int64), theirs)
                           for layer, x, ours, theirs in zip(layers, pooled_from, keras_windows, export_windows)])
    with pinned_switches({layer.name: window for layer, window in zip(layers, export_windows)}):
        reference = model(inputs, training=False)
    reference = np.asarray(reference[score_output] if score_output else reference)
    max_gap = float(np.max(gaps, initial=0.0))
    return {"switches": int(sum(w.size for w in export_windows)), "switch_flips": int(gaps.size),
            "max_flip_gap": max_gap, "flips_are_ties": bool(max_gap <= tie_tolerance),
            "pinned_score_error": _relative(outputs, reference), "copy_error": _relative(copy_outputs, outputs)}


def pinned_comparison(model, flatbuffer, batch, outputs, xnnpack=True, tie_tolerance=1e-5):
    """Compare a float32 TFLite export with Keras run with the export's own pooling switches.

    Args:
        model: the Keras model the file was exported from.
        flatbuffer: the file's bytes (one input, scores first among the outputs).
        batch: float32 images ``[B, H, W, 3]`` at the file's input size.
        outputs: the file's scores on ``batch`` with the same ``xnnpack`` setting.
        xnnpack: run the copy with switch outputs with XNNPACK on or off.
        tie_tolerance: a differing switch must be a window whose two values
            differ by at most this, relative to the pooled map's largest value.

    Returns:
        A dict: ``switches`` (how many were compared), ``switch_flips`` (how
        many differ from Keras's), ``max_flip_gap`` (the largest relative gap
        at a differing switch, 0 without one), ``flips_are_ties``,
        ``pinned_score_error`` (``max|a - b| / max|b|`` against Keras with the
        export's switches), ``copy_error`` (how far the copy with switch
        outputs is from the file's scores). None when the file has no switch
        tensor for some pooling layer (e.g. exported with ``pooling="default"``).
    """
    from keras_deconv import lite

    layers = pooling_layers(model)
    indices = switch_tensor_indices(flatbuffer, [layer.name for layer in layers])
    if not layers or len(indices) != len(layers):
        return None
    copy = with_switch_outputs(flatbuffer, [indices[layer.name] for layer in layers])
    interpreter = lite.litert_interpreter(copy, xnnpack=xnnpack)
    runs = [lite.run_tflite(copy, [image[None]], interpreter=interpreter) for image in batch]
    count = len(runs[0]) - len(layers)
    export_windows = [np.rint(np.concatenate([run[count + i] for run in runs])).astype(np.int64) for i in range(len(layers))]
    return compare_with_switches(model, batch, outputs, export_windows, np.concatenate([run[0] for run in runs]),
                                 tie_tolerance)


def onnx_pinned_comparison(model, path, feeds, outputs, tie_tolerance=1e-5, score_output=None):
    """:func:`pinned_comparison` for an ONNX file run with onnxruntime.

    The switches come from the file with each pooling layer's switch tensor
    (``.../<layer>[_N]/switches:0``) added to the graph outputs, run in
    memory. ``feeds`` is the list of input arrays (images, and the class
    query for DecoupledNet / TransferNet), ``outputs`` the file's scores.
    """
    import onnx
    import onnxruntime

    layers = pooling_layers(model)
    graph = onnx.load(path)
    produced = [name for node in graph.graph.node for name in node.output]
    names = []
    for layer in layers:
        pattern = _switch_pattern(layer.name, ":0")  # ONNX names a node's outputs NAME:0, NAME:1, ...
        matches = [name for name in produced if pattern.search(name)]
        if len(matches) != 1:
            return None
        names.append(matches[0])
    if not layers:
        return None
    own = [output.name for output in graph.graph.output]
    graph.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in names)
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    results = session.run(own + names, dict(zip(inputs, feeds)))
    copy = next((r for r in results[: len(own)] if r.shape == outputs.shape), None)
    if copy is None:
        return None
    windows = [np.asarray(r, np.int64) for r in results[len(own) :]]
    return compare_with_switches(model, feeds if len(feeds) > 1 else feeds[0], outputs, windows, copy, tie_tolerance,
                                 score_output)


def two_part_comparison(model, folder, images, labels=None, threshold=0.5, xnnpack=True, tie_tolerance=1e-5):
    """The same separation for a DecoupledNet / TransferNet export folder (encoder and decoder files).

    The encoder file's outputs are the switches (and DecoupledNet's ReLU
    masks) that the decoder file consumes, so no copy is needed:

    * each encoder output that is a switch must equal Keras's except at ties
      (``tie_tolerance``); each ReLU mask bit must equal Keras's except
      where the pre-activation is within ``tie_tolerance`` of 0 (relative to
      its largest magnitude); every other encoder output is compared with
      Keras's (``encoder_error``, bound ``export.SCORE_TOLERANCE``);
    * the decoder file and the Keras decoder, both given the encoder file's
      outputs and the pipeline's queries, are compared on ``seg-score``
      (``pinned_score_error``).

    Args:
        model: the Keras DecoupledNet or TransferNet the folder came from.
        folder: the export folder.
        images: uint8 RGB images (any size; padded and resized as the pipelines do).
        labels: per image, 1-based class ids to query (TransferNet needs them;
            DecoupledNet uses its classifier's detections when None).
        threshold: DecoupledNet's detection threshold (with ``labels=None``).
        xnnpack: run the files with XNNPACK on or off.
        tie_tolerance: see :func:`pinned_comparison`.

    Returns:
        The dict :func:`pinned_comparison` describes (ReLU mask bits count as
        switches; ``copy_error`` 0), plus ``encoder_error``.
    """
    import keras

    from keras_deconv import lite, pipelines

    _name = _tflite_name  # the files name tensors with "_" where Keras layer names have "-"
    kind = model_kind(model)
    encoder, decoder, cut = (pipelines.split_decouplednet if kind == "decouplednet" else pipelines.split_transfernet)(model)
    cut_tensors = pipelines.decoder_inputs(model, kind)
    pools = pooling_layers(model)
    discrete = {}  # cut name -> (layer, "switch" | "relu")
    for layer in model.layers:
        what = "switch" if layer in pools else "relu" if isinstance(layer, ReLUWithMask) else None
        for name, tensor in cut_tensors.items():
            if what and tensor is layer.output[1]:
                discrete[name] = (layer, what)
    layers = [layer for layer, _ in discrete.values()]
    probe = keras.Model(model.inputs[0], [layer.input for layer in layers])
    parts = lite.load(folder, xnnpack=xnnpack)
    num_classes = model.inputs[1].shape[-1]
    gaps, count, encoder_error, pairs = [], 0, 0.0, []
    for index, image in enumerate(images):
        x = pipelines._pad_square_and_resize(image, tuple(parts.size))[None].astype("float32")
        theirs = parts.encoder(images=x)
        ours = {name: np.asarray(value) for name, value in encoder(x, training=False).items()}
        before = probe(x, training=False)
        before = dict(zip([id(layer) for layer in layers], [np.asarray(t) for t in (before if len(layers) > 1 else [before])]))
        for name, keras_value in ours.items():
            if _name(name) not in theirs:
                continue  # e.g. pool1_input: the Keras decoder's size reference, static in the files
            export_value = np.asarray(theirs[_name(name)])
            if name not in discrete:
                encoder_error = max(encoder_error, _relative(export_value, keras_value))
                continue
            layer, what = discrete[name]
            pre, count = before[id(layer)], count + export_value.size
            if what == "switch":
                gaps.append(flip_gaps(layer, pre, keras_value.astype(np.int64), np.rint(export_value).astype(np.int64)))
            else:
                differs = (keras_value > 0.5) != (export_value > 0.5)
                gaps.append(np.abs(pre[differs]) / max(float(np.max(np.abs(pre))), 1e-30))
        ids = None if labels is None else labels[index]
        if kind == "decouplednet":
            _, queries = pipelines.decouplednet_queries(ours["cls-score-avg-sigmoid"][0], threshold, ids)
        else:
            queries = np.eye(num_classes, dtype="float32")[pipelines.transfernet_class_ids(num_classes, threshold, ids)[0] - 1]
        tensors = [np.asarray(theirs[_name(name)]) if _name(name) in theirs else ours[name] for name in cut]
        for query in queries:
            query = np.asarray(query, "float32")[None]
            reference = decoder([query, *tensors], training=False)
            reference = np.asarray(reference["seg-score"] if isinstance(reference, dict) else reference)
            given = {_name(name): value for name, value in zip(cut, tensors) if _name(name) in parts.decoder.inputs}
            pairs.append((parts.decoder(query=query, **given)["seg_score"], reference))
    gaps = np.concatenate(gaps) if gaps else np.zeros(0)
    scale = max([float(np.max(np.abs(b))) for _, b in pairs] + [1e-30])
    pinned = max([float(np.max(np.abs(a - b))) for a, b in pairs] + [0.0]) / scale
    max_gap = float(np.max(gaps, initial=0.0))
    return {"switches": count, "switch_flips": int(gaps.size), "max_flip_gap": max_gap,
            "flips_are_ties": bool(max_gap <= tie_tolerance), "pinned_score_error": pinned,
            "encoder_error": encoder_error, "copy_error": 0.0}
