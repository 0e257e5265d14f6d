"""Export to TFLite (builtin ops only) and run exported models in LiteRT.

Keras's own ``model.export(format="litert")`` silently allows Select-TF
("Flex") ops, which neither Python runtime nor the standard mobile runtimes
can execute. Everything here converts with ``TFLITE_BUILTINS`` (or
``TFLITE_BUILTINS_INT8``) only, and fails with the offending ops named.

>>> import keras, numpy as np
>>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
>>> inputs = keras.Input((None, None, 4))
>>> pooled, switches = MaxPoolingWithArgmax2D()(inputs)
>>> model = keras.Model(inputs, MaxUnpooling2D()([pooled, switches, inputs]))
>>> flatbuffer = to_tflite(model)
>>> x = np.random.rand(1, 6, 6, 4).astype("float32")
>>> bool(np.array_equal(run_tflite(flatbuffer, [x])[0], model(x)))
True
"""

import os
import re
import tempfile

QUANTIZATIONS = ("none", "float16", "int8")


class ExportError(RuntimeError):
    """A model cannot be exported as asked (e.g. it would need Select-TF ops)."""


def _flex_ops(message):
    return sorted(set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither", message)))


def to_tflite(model, path=None, quantize="none", representative_data=None, input_signature=None):
    """Convert a Keras model (or ``tf.function``) to a builtin-only TFLite flatbuffer.

    Args:
        model: a Keras model, or a ``tf.function`` with ``input_signature``.
        path: if given, the flatbuffer is also written there (atomically).
        quantize: ``"none"`` (float32), ``"float16"`` (float16 weights) or
            ``"int8"`` (full-integer: weights and activations; float inputs and
            outputs are kept so callers need not quantize).
        representative_data: for ``"int8"``, an iterable of input lists (each
            a list of arrays, one per model input) used to calibrate ranges.
        input_signature: list of ``tf.TensorSpec``; defaults to the model's
            inputs with dynamic batch and spatial dims.

    Returns:
        The flatbuffer as bytes.

    Raises:
        ExportError: naming the ops that are not TFLite builtins.
    """
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Expected `quantize` to be one of {QUANTIZATIONS}. Received: quantize={quantize!r}")
    if quantize == "int8" and representative_data is None:
        raise ValueError("int8 quantization needs `representative_data` (a few typical inputs) to calibrate ranges.")

    function, trackable = model, None
    if not isinstance(model, tf.types.experimental.GenericFunction):
        trackable = model  # keeps the variables alive during conversion
        if input_signature is None:
            input_signature = [tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name) for tensor in model.inputs]
        keras_model = model

        @tf.autograph.experimental.do_not_convert
        def serve(*args):
            return keras_model(list(args) if len(args) > 1 else args[0])

        function = tf.function(serve, input_signature=input_signature)
    concrete = function.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

        def calibration():
            for sample in representative_data:
                yield [tf.convert_to_tensor(array) for array in sample]

        converter.representative_dataset = calibration
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # the converter raises several private types
        ops = _flex_ops(str(error))
        detail = f" Ops that are not TFLite builtins: {', '.join(ops)}." if ops else ""
        raise ExportError(f"TFLite conversion with builtin ops only failed.{detail} ({type(error).__name__})") from error
    if path is not None:
        write_atomically(path, flatbuffer)
    return flatbuffer


def write_atomically(path, data):
    """Write bytes to ``path`` via a temporary file in the same folder + rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def litert_interpreter(flatbuffer, xnnpack=True, num_threads=None):
    """A LiteRT interpreter for ``flatbuffer``, with XNNPACK on or off."""
    from ai_edge_litert import interpreter as litert

    resolver = litert.OpResolverType.AUTO if xnnpack else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return litert.Interpreter(model_content=flatbuffer, experimental_op_resolver_type=resolver, num_threads=num_threads)


def run_tflite(flatbuffer, inputs, xnnpack=True, num_threads=None, interpreter=None):
    """Run a flatbuffer on a list of input arrays; returns the list of outputs.

    Dynamic dims (batch, height, width) are resized to the given arrays.
    Outputs come in the order of the model's output details.
    """
    interpreter = interpreter or litert_interpreter(flatbuffer, xnnpack, num_threads)
    details = interpreter.get_input_details()
    if len(details) != len(inputs):
        raise ValueError(f"The TFLite model has {len(details)} inputs; received {len(inputs)} arrays.")
    for detail, array in zip(details, inputs):
        if tuple(detail["shape"]) != tuple(array.shape):
            interpreter.resize_tensor_input(detail["index"], array.shape, strict=False)
    interpreter.allocate_tensors()
    for detail, array in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], array.astype(detail["dtype"], copy=False))
    interpreter.invoke()
    return [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]


def tflite_ops(flatbuffer):
    """Names of the operators used in a flatbuffer (e.g. ``{"ARG_MAX", ...}``)."""
    from ai_edge_litert import interpreter as litert

    interpreter = litert.Interpreter(model_content=flatbuffer)
    return sorted({detail["op_name"] for detail in interpreter._get_ops_details()})
