"""Conversion to TFLite with builtin ops only, and what a converted file contains.

Keras's own ``model.export(format="litert")`` silently allows Select-TF
("Flex") ops, which neither Python runtime nor the standard mobile runtimes
can execute. Everything here converts with ``TFLITE_BUILTINS`` (or
``TFLITE_BUILTINS_INT8``) only, and fails with the offending ops named.

>>> import keras, numpy as np
>>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
>>> from keras_deconv.lite import run_tflite
>>> inputs = keras.Input((None, None, 4))
>>> pooled, switches = MaxPoolingWithArgmax2D()(inputs)
>>> model = keras.Model(inputs, MaxUnpooling2D()([pooled, switches, inputs]))
>>> flatbuffer = to_tflite(model)
>>> x = np.random.rand(1, 6, 6, 4).astype("float32")
>>> bool(np.array_equal(run_tflite(flatbuffer, [x])[0], model(x)))
True
"""

import re

from keras_deconv.progress import progress_bar
from keras_deconv._atomic import write_atomically
from keras_deconv.export.calibration import CALIBRATION_COUNT, _calibration_images
from keras_deconv.export.errors import ExportError
from keras_deconv.export.kinds import model_kind
from keras_deconv.export.metadata import with_tflite_metadata
from keras_deconv.export.quantize import INT8_FLOAT_OPS, repair_int8_quantization

QUANTIZATIONS = ("none", "float16", "int8")


def _flex_ops(message):
    return sorted(set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither", message)))


POOLING_FORMULATIONS = ("auto", "litert", "default")


def to_tflite(model, path=None, quantize="none", representative_data=None, input_signature=None, pooling="auto",
              metadata=None, integer_only=False):
    """Convert a Keras model (or ``tf.function``) to a builtin-only TFLite flatbuffer.

    Args:
        model: a Keras model, or a ``tf.function`` with ``input_signature``.
        path: if given, the flatbuffer is also written there (atomically).
        quantize: ``"none"`` (float32), ``"float16"`` (float16 weights) or
            ``"int8"`` (int8 weights and activations, except the argmax
            pooling's switch arithmetic, see :data:`~keras_deconv.export.quantize.INT8_FLOAT_OPS`; float
            inputs and outputs are kept so callers need not quantize).
        representative_data: for ``"int8"``, an iterable of input lists (each
            a list of arrays, one per model input) used to calibrate ranges.
        input_signature: list of ``tf.TensorSpec``; defaults to the model's
            inputs with dynamic batch and spatial dims.
        pooling: ops for the argmax pooling and unpooling layers:
            ``"litert"`` (XNNPACK-delegated, about 4x faster in LiteRT, exact
            for finite inputs; in int8 exports its arithmetic stays float32,
            see :data:`~keras_deconv.export.quantize.INT8_FLOAT_OPS`), ``"default"`` (the Keras ops: exact
            for +-inf too, not delegated; in int8 exports quantized wherever
            TFLite has int8 kernels) or ``"auto"`` (``"litert"``). See
            :mod:`keras_deconv.layers.formulation`.
        metadata: a JSON-serialisable dict stored in the file as its
            :data:`~keras_deconv.lite.TFLITE_METADATA_NAME` entry (:func:`~keras_deconv.lite.tflite_metadata`).
        integer_only: with ``quantize="int8"``, no float op or tensor at all:
            uint8 inputs, int8 outputs (both quantized; see the input and
            output details' ``quantization``), int8 ops throughout, the
            argmax pooling as comparisons and selects on the int8 values
            (:func:`keras_deconv.layers.formulation.integer_formulation`).
            For NPUs and accelerators that run integer ops only; on CPUs the
            default int8 export is faster (XNNPACK delegates its pooling).

    Returns:
        The flatbuffer as bytes.

    Raises:
        ExportError: naming the ops that are not TFLite builtins, or (with
            ``integer_only``) the ops left with float tensors.
    """
    import contextlib

    import tensorflow as tf

    from keras_deconv.layers.formulation import integer_formulation, litert_formulation

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Expected `quantize` to be one of {QUANTIZATIONS}. Received: quantize={quantize!r}")
    if pooling not in POOLING_FORMULATIONS:
        raise ValueError(f"Expected `pooling` to be one of {POOLING_FORMULATIONS}. Received: pooling={pooling!r}")
    if quantize == "int8" and representative_data is None:
        raise ValueError("int8 quantization needs `representative_data` (a few typical inputs) to calibrate ranges.")
    if integer_only and quantize != "int8":
        raise ValueError(f"An integer-only export is an int8 export: pass quantize='int8'. Received: quantize={quantize!r}")

    function = model
    if not isinstance(model, tf.types.experimental.GenericFunction):
        if input_signature is None:
            input_signature = [tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name) for tensor in model.inputs]
        keras_model = model

        @tf.autograph.experimental.do_not_convert
        def serve(*args):
            outputs = keras_model(list(args) if len(args) > 1 else args[0])
            # The LiteRT formulation carries switches as floats inside the graph.
            return tf.nest.map_structure(lambda out, declared: tf.cast(out, declared.dtype), outputs, keras_model.output)

        function = tf.function(serve, input_signature=input_signature)
    # The pooling layers trace XNNPACK-delegated ops unless told otherwise.
    with litert_formulation(pooling != "default") as traced, (
            integer_formulation() if integer_only else contextlib.nullcontext()):
        concrete = function.get_concrete_function()
    # int8 with that formulation keeps its arithmetic in float32 (INT8_FLOAT_OPS).
    selective_int8 = quantize == "int8" and traced.used and not integer_only
    # No trackable: the converter then freezes the captured variables into
    # constants (with one it keeps READ_VARIABLE ops that LiteRT cannot run).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if selective_int8:
            # Calibrate only; mlir_quantize below quantizes all but INT8_FLOAT_OPS
            # (what tf.lite.experimental.QuantizationDebugger does, without its
            # extra float and debug conversions).
            converter._experimental_calibrate_only = True
        else:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if integer_only:
            converter.inference_input_type, converter.inference_output_type = tf.uint8, tf.int8

        def calibration():
            total = len(representative_data) if hasattr(representative_data, "__len__") else None
            for sample in progress_bar(representative_data, total=total, desc="int8 calibration", unit="img"):
                yield [tf.convert_to_tensor(array) for array in sample]

        converter.representative_dataset = calibration
    try:
        flatbuffer = converter.convert()
        if selective_int8:
            from tensorflow.lite.python import convert as lite_convert

            flatbuffer = lite_convert.mlir_quantize(flatbuffer, denylisted_ops=list(INT8_FLOAT_OPS))
    except Exception as error:  # the converter raises several private types
        ops = _flex_ops(str(error))
        detail = f" Ops that are not TFLite builtins: {', '.join(ops)}." if ops else ""
        raise ExportError(f"TFLite conversion with builtin ops only failed.{detail} ({type(error).__name__})") from error
    if quantize == "int8":
        flatbuffer, repairs = repair_int8_quantization(flatbuffer)
        if repairs:
            import logging

            logging.getLogger(__name__).warning("int8: repaired the converter's quantization: %s", "; ".join(repairs))
    if integer_only:
        floating = float_ops(flatbuffer)
        if floating:
            raise ExportError(f"The integer-only export still has float tensors in: {', '.join(floating)}. "
                              "Export with quantize='int8' alone (float switch arithmetic), or report the model.")
    if metadata is not None:
        flatbuffer = with_tflite_metadata(flatbuffer, metadata)
    if path is not None:
        write_atomically(path, flatbuffer)
    return flatbuffer


def float_ops(flatbuffer):
    """``["OP (count)", ...]`` for the ops of a flatbuffer that read or write a float tensor (none in an integer-only model)."""
    import collections

    import numpy as np
    from ai_edge_litert import interpreter as litert

    interpreter = litert.Interpreter(model_content=flatbuffer)
    floating = {d["index"] for d in interpreter.get_tensor_details() if np.issubdtype(d["dtype"], np.floating)}
    counts = collections.Counter(op["op_name"] for op in interpreter._get_ops_details()
                                 if floating & {i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0})
    return [f"{name} ({count})" for name, count in sorted(counts.items())]


def tflite_ops(flatbuffer):
    """Names of the operators used in a flatbuffer, in every subgraph (e.g. ``["ARG_MAX", ...]``).

    A custom op (e.g. a Select-TF one) is named by its custom code (``FlexConv2D``).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.Model.GetRootAs(flatbuffer, 0)
    used = set()
    for index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(index)
        used.update(subgraph.Operators(i).OpcodeIndex() for i in range(subgraph.OperatorsLength()))
    ops = set()
    for index in used:
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        ops.add(custom.decode("utf-8", "replace") if builtin == schema.BuiltinOperator.CUSTOM and custom else names[builtin])
    return sorted(ops)


def _dense_tflite(model, path, quantize, calibration_data, input_size, calibration_count=CALIBRATION_COUNT, data_dir=None,
                  metadata=None, integer_only=False, padding=None, any_size=False):
    """One builtin-only file: ``images`` float32 ``[1, S, S, 3]`` (RGB 0-255) -> raw ``scores`` ``[1, S, S, C]``.

    With ``integer_only``: ``images`` uint8 (quantized; scale 1, zero point 0
    when calibration saw both 0 and 255) -> int8 ``scores`` (quantized).
    With ``any_size``: ``images`` ``[1, H, W, 3]`` for any ``H, W`` (the
    graph is traced with dynamic height and width; ``S`` is the size it was
    calibrated and checked at). ``metadata`` (a dict) is stored with
    ``kind``, ``quantize``, ``integer_only``, ``input_size``, ``any_size``
    and the pipeline's ``padding`` (``min_size``, ``multiple``) added.
    """
    import tensorflow as tf

    static = tuple(model.inputs[0].shape[1:3])
    size = tuple(input_size) if input_size is not None else static
    if None in size:
        raise ValueError("TFLite needs a static input size: pass input_size=(H, W) (DeconvNet: 224, FCN-8s: 500).")
    if any_size and integer_only:
        raise ValueError("An integer-only export has a static input size (its pooling formulation needs it); "
                         "export it without any_size.")
    if any_size and None not in static:
        raise ValueError(f"any_size needs a model built with a dynamic input size; this one is fixed at {static}.")
    data = None
    if quantize == "int8":
        data = [[image] for image in _calibration_images(calibration_data, size, calibration_count, data_dir)]
    spec = [tf.TensorSpec((1,) + ((None, None) if any_size else size) + (3,), tf.float32, name="images")]
    metadata = {**(metadata or {}), "kind": model_kind(model), "quantize": quantize, "input_size": list(size),
                "integer_only": bool(integer_only), "any_size": bool(any_size)}
    if padding:  # how the Keras pipeline pads an image: to a multiple of `multiple`, at least `min_size`
        metadata["padding"] = {"min_size": int(padding["min_size"]), "multiple": int(padding["multiple"])}
    # fc6 / fc6-deconv become FULLY_CONNECTED (see layers.fully_connected_conv).
    return to_tflite(model, path, quantize, data, input_signature=spec, metadata=metadata, integer_only=integer_only)
