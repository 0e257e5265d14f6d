"""One ``.tflite`` file with a named signature per part: DecoupledNet / TransferNet for phone apps.

:func:`keras_deconv.export.to_tflite_parts` writes a folder (``encoder.tflite``,
``decoder.tflite``, ``manifest.json``); an app bundles one model file.
:func:`to_tflite_signatures` writes the same two converted parts into one
file, each as a subgraph with its own signature:

* ``classify``: the encoder part, ``images`` float32 ``[1, S, S, 3]`` (RGB
  0-255, padded to a square and resized) -> the tensors ``segment`` reads
  (DecoupledNet: also ``cls_score_avg_sigmoid``, the class scores);
* ``segment``: the per-class decoder part, ``query`` float32
  ``[1, num_classes]`` plus those tensors -> ``seg_score`` ``[1, S, S, 2]``
  (TransferNet: also ``attention``).

The parts are converted exactly as for the folder (same ops, same weights,
builtin only) and then joined (:func:`merge_signatures`), so the file gives
the folder's results. The manifest is the file's ``keras_deconv`` metadata
entry (:func:`keras_deconv.lite.tflite_metadata`), with each part's
``signature`` in place of its ``file``.

Example:

>>> import os, tempfile, numpy as np
>>> from ai_edge_litert.interpreter import Interpreter
>>> from keras_deconv.models import TransferNet
>>> model = TransferNet(num_classes=5, input_shape=(64, 64, 3), width=1 / 16)
>>> path = to_tflite_signatures(model, os.path.join(tempfile.mkdtemp(), "transfernet.tflite"))
>>> sorted(Interpreter(model_path=path).get_signature_list())
['classify', 'segment']
"""

from keras_deconv._atomic import write_atomically
from keras_deconv.export.calibration import CALIBRATION_COUNT
from keras_deconv.export.metadata import with_tflite_metadata

#: The signature of each part in a single-file DecoupledNet / TransferNet export.
SIGNATURES = {"encoder": "classify", "decoder": "segment"}


def merge_signatures(flatbuffers):
    """One flatbuffer with a signature per ``{key: flatbuffer}`` entry (each a one-subgraph model).

    Each model's subgraph, buffers and operators are appended unchanged
    (buffer and operator-code indices renumbered); its signature lists the
    subgraph's inputs and outputs under their tensor names. Metadata of the
    first model is kept, the others' dropped.

    Raises:
        ValueError: a model with more than one subgraph (control flow), which
            this join does not renumber.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    merged, codes = None, {}
    signatures = []
    for key, flatbuffer in flatbuffers.items():
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
        if len(model.subgraphs) != 1:
            raise ValueError(f"The {key!r} part has {len(model.subgraphs)} subgraphs; only one-subgraph parts can be joined.")
        subgraph = model.subgraphs[0]
        if merged is None:
            merged = model
            merged.subgraphs, merged.signatureDefs = [], []
            codes = {_code_key(code): index for index, code in enumerate(merged.operatorCodes)}
        else:
            # Buffer 0 is every model's empty sentinel: keep it; the rest move behind the merged buffers.
            offset = len(merged.buffers) - 1
            merged.buffers.extend(model.buffers[1:])
            for tensor in subgraph.tensors:
                tensor.buffer = tensor.buffer + offset if tensor.buffer else 0
            remap = []
            for code in model.operatorCodes:
                if _code_key(code) not in codes:
                    codes[_code_key(code)] = len(merged.operatorCodes)
                    merged.operatorCodes.append(code)
                remap.append(codes[_code_key(code)])
            for operator in subgraph.operators:
                operator.opcodeIndex = remap[operator.opcodeIndex]
        subgraph.name = key
        merged.subgraphs.append(subgraph)
        signature = schema.SignatureDefT()
        signature.signatureKey, signature.subgraphIndex = key, len(merged.subgraphs) - 1
        signature.inputs = [_tensor_map(subgraph, index) for index in subgraph.inputs]
        signature.outputs = [_tensor_map(subgraph, index) for index in subgraph.outputs]
        signatures.append(signature)
    merged.signatureDefs = signatures
    return bytes(flatbuffer_utils.convert_object_to_bytearray(merged))


def _code_key(code):
    return code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version


def _tensor_map(subgraph, index):
    from tensorflow.lite.python import schema_py_generated as schema

    entry = schema.TensorMapT()
    name = subgraph.tensors[index].name
    entry.name, entry.tensorIndex = name.decode("utf-8") if isinstance(name, bytes) else name, index
    return entry


def _rename_outputs(flatbuffer, names):
    """``flatbuffer`` with its subgraph's output tensors named ``names`` (in output order)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    subgraph = model.subgraphs[0]
    if len(subgraph.outputs) != len(names):
        raise ValueError(f"Expected {len(names)} outputs ({names}); the converted part has {len(subgraph.outputs)}.")
    for index, name in zip(subgraph.outputs, names):
        subgraph.tensors[index].name = name
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def to_tflite_signatures(model, path, quantize="none", calibration_data=None, class_names=None, pipeline_settings=None,
                         calibration_count=CALIBRATION_COUNT, data_dir=None):
    """Export a DecoupledNet / TransferNet as one ``.tflite`` file with ``classify`` and ``segment`` signatures.

    Takes the arguments of :func:`keras_deconv.export.to_tflite_parts`;
    the parts are the same. :func:`keras_deconv.lite.load` runs the file.

    Returns:
        ``path`` (written atomically).
    """
    from keras_deconv.export.parts import _converted_parts

    encoder, decoder, manifest = _converted_parts(model, quantize, calibration_data, class_names, pipeline_settings,
                                                  calibration_count, data_dir)
    parts = {}
    for part, flatbuffer in (("encoder", encoder), ("decoder", decoder)):
        entry = manifest[part]
        # The converter names outputs Identity, Identity_1, ...; the signature names them as the manifest does.
        parts[SIGNATURES[part]] = _rename_outputs(flatbuffer, entry.pop("output_order"))
        del entry["file"]
        entry["signature"] = SIGNATURES[part]
    write_atomically(path, with_tflite_metadata(merge_signatures(parts), manifest))
    return path
