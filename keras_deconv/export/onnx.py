"""ONNX export through Keras's exporter (tf2onnx), written atomically."""

import os
import tempfile

from keras_deconv._atomic import give_default_mode
from keras_deconv.export._files import _quiet_stdout
from keras_deconv.export.errors import ExportError


def onnx_available():
    """``None`` if ONNX export and checking work here, else the reason (missing packages)."""
    import importlib.util

    missing = [package for package in ("tf2onnx", "onnx", "onnxruntime") if importlib.util.find_spec(package) is None]
    if missing:
        return (f"ONNX export needs {', '.join(missing)} (Keras exports ONNX through tf2onnx on the TensorFlow backend): "
                "pip install tf2onnx onnx onnxruntime")
    return None


def to_onnx(model, path, input_size=None):
    """ONNX through Keras's exporter (``model.export(format="onnx")``), written atomically.

    DecoupledNet / TransferNet export their whole two-input network (image and
    class query); the multi-pass pipeline is left to the caller.
    """
    reason = onnx_available()
    if reason:
        raise ExportError(reason)
    import tensorflow as tf

    specs = []
    for index, tensor in enumerate(model.inputs):
        shape = tuple(tensor.shape)
        if index == 0 and input_size is not None and None in shape[1:3]:
            shape = (None, *input_size, 3)
        specs.append(tf.TensorSpec(shape, tf.float32, name=tensor.name.replace("-", "_")))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".onnx")
    os.close(handle)
    try:
        with _quiet_stdout():
            model.export(temporary, format="onnx", input_signature=[specs] if len(specs) > 1 else specs, verbose=False)
        give_default_mode(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, Exception) and not isinstance(error, ExportError):
            raise ExportError(f"ONNX export failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error
        raise
    return path
