"""Export to SavedModel, builtin-only TFLite and ONNX, and check the artifact against Keras.

Keras's own ``model.export(format="litert")`` silently allows Select-TF
("Flex") ops, which neither Python runtime nor the standard mobile runtimes
can execute. Everything here converts with ``TFLITE_BUILTINS`` (or
``TFLITE_BUILTINS_INT8``) only, and fails with the offending ops named.

One concept per module; every public name is also available from this package
(``from keras_deconv import export; export.to_tflite(...)``):

* :mod:`~keras_deconv.export.tflite`: :func:`to_tflite`, what a file contains
  (:func:`tflite_ops`, :func:`float_ops`).
* :mod:`~keras_deconv.export.quantize`: int8 (:data:`INT8_FLOAT_OPS`,
  :func:`repair_int8_quantization`).
* :mod:`~keras_deconv.export.calibration`: int8 calibration images.
* :mod:`~keras_deconv.export.metadata`: the keras-deconv entry of a file
  (:func:`with_tflite_metadata`; read with :func:`tflite_metadata`).
* :mod:`~keras_deconv.export.parts`: DecoupledNet / TransferNet as an encoder
  and a per-class decoder file (:func:`to_tflite_parts`).
* :mod:`~keras_deconv.export.signatures`: the same two parts in one file, as
  its ``classify`` and ``segment`` signatures (:func:`to_tflite_signatures`).
* :mod:`~keras_deconv.export.saved_model`: the whole pipeline in a SavedModel.
* :mod:`~keras_deconv.export.onnx`: ONNX through Keras's exporter.
* :mod:`~keras_deconv.export.kinds`: a model's kind, settings and split.
* :mod:`~keras_deconv.export.verify`: the artifact against Keras.
* :mod:`~keras_deconv.export.exporter`: :func:`export_model`, all of it in one call.
* :mod:`~keras_deconv.export.compiled`: fast Keras inference (:func:`compiled_predict`).

Running an exported file (:func:`litert_interpreter`, :func:`run_tflite`,
:func:`tflite_metadata`) is :mod:`keras_deconv.lite`'s; the names are
re-exported here. Exporting a zoo model by name is the zoo's
(:func:`keras_deconv.zoo.export_model`).

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

from keras_deconv._atomic import write_atomically
from keras_deconv.export.calibration import CALIBRATION_COUNT
from keras_deconv.export.compiled import compiled_predict
from keras_deconv.export.errors import ExportError
from keras_deconv.export.exporter import FORMATS, check_export_options, export_model
from keras_deconv.export.kinds import KINDS, export_settings, keras_pipeline, model_kind, split_model
from keras_deconv.export.metadata import with_tflite_metadata
from keras_deconv.export.onnx import onnx_available, to_onnx
from keras_deconv.export.parts import to_tflite_parts
from keras_deconv.export.quantize import EMPTY_RANGE_LIMIT, INT8_FLOAT_OPS, repair_int8_quantization
from keras_deconv.export.signatures import SIGNATURES, merge_signatures, to_tflite_signatures
from keras_deconv.export.saved_model import serving_functions, to_saved_model
from keras_deconv.export.tflite import POOLING_FORMULATIONS, QUANTIZATIONS, float_ops, tflite_ops, to_tflite
from keras_deconv.export.verify import (
    LABEL_AGREEMENT,
    SCORE_TOLERANCE,
    SWITCH_TIE_TOLERANCE,
    TIE_TOLERANCE,
    VERIFY_IMAGES,
    describe_check,
    sample_images,
    verify_export,
)
from keras_deconv.lite import (
    TFLITE_METADATA_NAME,
    dequantize_output,
    litert_interpreter,
    quantize_input,
    run_tflite,
    tflite_metadata,
)

__all__ = [
    "CALIBRATION_COUNT",
    "EMPTY_RANGE_LIMIT",
    "ExportError",
    "FORMATS",
    "INT8_FLOAT_OPS",
    "KINDS",
    "LABEL_AGREEMENT",
    "POOLING_FORMULATIONS",
    "QUANTIZATIONS",
    "SCORE_TOLERANCE",
    "SIGNATURES",
    "SWITCH_TIE_TOLERANCE",
    "TFLITE_METADATA_NAME",
    "TIE_TOLERANCE",
    "VERIFY_IMAGES",
    "check_export_options",
    "compiled_predict",
    "dequantize_output",
    "describe_check",
    "export_model",
    "export_settings",
    "float_ops",
    "keras_pipeline",
    "merge_signatures",
    "litert_interpreter",
    "model_kind",
    "onnx_available",
    "quantize_input",
    "repair_int8_quantization",
    "run_tflite",
    "sample_images",
    "serving_functions",
    "split_model",
    "tflite_metadata",
    "tflite_ops",
    "to_onnx",
    "to_saved_model",
    "to_tflite",
    "to_tflite_parts",
    "to_tflite_signatures",
    "verify_export",
    "with_tflite_metadata",
    "write_atomically",
]
