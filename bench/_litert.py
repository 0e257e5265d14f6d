"""A LiteRT interpreter (XNNPACK on) ready to time: the benchmark scripts' one way to set it up."""


def invoke_function(flatbuffer, inputs, threads):
    """``interpreter.invoke`` for ``flatbuffer`` with ``inputs`` (arrays, in input order) already set."""
    from keras_deconv import export

    interpreter = export.litert_interpreter(flatbuffer, xnnpack=True, num_threads=threads)
    interpreter.allocate_tensors()
    for detail, array in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], array.astype(detail["dtype"], copy=False))
    return interpreter.invoke  # the bound method keeps the interpreter alive
