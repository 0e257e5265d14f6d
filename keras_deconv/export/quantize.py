"""int8 quantization: which ops stay float32, and the repair of two converter outputs that break int8 models.

>>> "CEIL" in INT8_FLOAT_OPS, EMPTY_RANGE_LIMIT
(True, 1.0)
"""


#: Ops an int8 export keeps in float32 when the argmax pooling layers trace the
#: LiteRT formulation: its switch arithmetic (window differences, ceil, min, the
#: position chain, the unpooling masks). They run on the dequantized int8
#: values, so switches are those of the int8 activations exactly, and XNNPACK
#: delegates them, with the QUANTIZE / DEQUANTIZE around them. Quantized,
#: they would lose the one-step differences that decide ties; the default
#: formulation's comparisons and selects instead run outside XNNPACK and split
#: the graph (``python bench/int8_pooling.py``). Other ops of these types in such a
#: model (the mean subtraction, a batch norm that does not fold) stay float32
#: too; they are few and small.
INT8_FLOAT_OPS = ("SUB", "CEIL", "MINIMUM", "MUL", "ADD", "SQUARED_DIFFERENCE")


#: Range given to int8 activations whose calibration range was empty.
EMPTY_RANGE_LIMIT = 1.0
#: Ops whose int8 kernels copy bytes (or compare them): their output must share their input's quantization.
_COPY_OPS = ("REVERSE_V2", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "STRIDED_SLICE", "SLICE", "TRANSPOSE", "GATHER", "PAD",
             "PADV2", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "MAX_POOL_2D", "SPLIT")


def repair_int8_quantization(flatbuffer):
    """Fix two converter outputs that make int8 models wrong or unloadable.

    * **Empty ranges.** An activation that is 0 on every calibration input
      (a dead ReLU, and what follows it) gets scale ~7.8e-9. XNNPACK refuses
      to create a runtime for a convolution with that output scale (the
      requantization ratio is out of its range), so the whole model fails to
      load with XNNPACK, and any non-zero value would saturate. Such tensors
      (activations with a scale below 1e-7, i.e. a calibrated range under
      about 2.5e-5) get scale ``EMPTY_RANGE_LIMIT / 127`` and zero point 0:
      0 stays exact.
    * **Copy ops with two quantizations.** The int8 kernels of reshapes,
      slices, reversals, pads and max pooling copy bytes, so their output must
      have their input's scale and zero point; the converter sometimes gives
      the output another one (seen on ``REVERSE_V2``: the RGB -> BGR flip got
      scale 1.48 on a 1.0 input, which distorted the image). The output takes
      the input's parameters (consumers requantize from them).

    Returns:
        ``(flatbuffer, repairs)``: the repaired model and one line per repair
        (empty, and the input unchanged, when nothing needed repair).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    copy_codes = {getattr(schema.BuiltinOperator, name): name for name in _COPY_OPS}
    repairs = []

    def single(tensor):
        q = tensor.quantization
        ok = tensor.type == schema.TensorType.INT8 and q is not None and q.scale is not None and len(q.scale) == 1
        return q if ok else None

    def label(tensor):
        return tensor.name.decode().split(";")[0]

    for subgraph in model.subgraphs:
        widened = []
        for tensor in subgraph.tensors:
            q = single(tensor)
            if q is not None and model.buffers[tensor.buffer].data is None and q.scale[0] < 1e-7:
                q.scale, q.zeroPoint = [EMPTY_RANGE_LIMIT / 127], [0]
                widened.append(label(tensor))
        if widened:
            repairs.append(f"{len(widened)} activation(s) were 0 on every calibration input (e.g. a dead ReLU), "
                           f"range widened to +-{EMPTY_RANGE_LIMIT:g} so that XNNPACK can run them: {', '.join(widened)}")
        for operator in subgraph.operators:  # execution order: an aligned output can feed the next copy op
            code = model.operatorCodes[operator.opcodeIndex]
            name = copy_codes.get(max(code.builtinCode, code.deprecatedBuiltinCode))
            if name is None or not len(operator.inputs) or not len(operator.outputs):
                continue
            source = subgraph.tensors[operator.inputs[0]]
            q_in = single(source)
            for index in operator.outputs:
                q_out = single(subgraph.tensors[index])
                if q_in is None or q_out is None:
                    continue
                if (list(q_out.scale), list(q_out.zeroPoint)) != (list(q_in.scale), list(q_in.zeroPoint)):
                    repairs.append(f"{name} {label(subgraph.tensors[index])}: output scale {q_out.scale[0]:.4g} / zero point "
                                   f"{q_out.zeroPoint[0]} set to its input's {q_in.scale[0]:.4g} / {q_in.zeroPoint[0]}")
                    q_out.scale, q_out.zeroPoint = list(q_in.scale), list(q_in.zeroPoint)
    if not repairs:
        return flatbuffer, []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), repairs
