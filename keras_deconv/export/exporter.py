"""One call from a Keras model to a verified artifact: :func:`export_model`.

A zoo model is exported by name with :func:`keras_deconv.zoo.export_model`,
which builds it and hands it here with its card's settings, label names and
input size.
"""

import os

from keras_deconv.export._files import _size
from keras_deconv.export.calibration import CALIBRATION_COUNT, _read_rgb, _voc_files
from keras_deconv.export.errors import ExportError
from keras_deconv.export.kinds import _TUNABLE_SETTINGS, export_settings, model_kind
from keras_deconv.export.onnx import to_onnx
from keras_deconv.export.parts import to_tflite_parts
from keras_deconv.export.saved_model import to_saved_model
from keras_deconv.export.signatures import to_tflite_signatures
from keras_deconv.export.tflite import QUANTIZATIONS, _dense_tflite
from keras_deconv.export.verify import VERIFY_IMAGES, describe_check, verify_export

FORMATS = ("saved_model", "tflite", "onnx")


def _official_input_size(model):
    """The model's static input size, else the official one of its kind (DeconvNet 224, FCN-8s 500)."""
    static = tuple(model.inputs[0].shape[1:3])
    if None not in static:
        return static
    return (224, 224) if model_kind(model) == "deconvnet" else (500, 500)


def check_export_options(format, quantize="none", integer_only=False):
    """Raise ValueError for a combination :func:`export_model` refuses (cheap: checked before building a model).

    >>> check_export_options("tflite", "int8", integer_only=True)
    >>> check_export_options("onnx", "int8")
    Traceback (most recent call last):
    ...
    ValueError: Quantization applies to TFLite only. Received: format='onnx', quantize='int8'
    """
    if format not in FORMATS:
        raise ValueError(f"Expected `format` to be one of {FORMATS}. Received: format={format!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Expected `quantize` to be one of {QUANTIZATIONS}. Received: quantize={quantize!r}")
    if quantize != "none" and format != "tflite":
        raise ValueError(f"Quantization applies to TFLite only. Received: format={format!r}, quantize={quantize!r}")
    if integer_only and quantize != "int8":
        raise ValueError(f"An integer-only export is an int8 TFLite export: pass quantize='int8'. Received: quantize={quantize!r}")


def export_model(model, path, format="saved_model", *, quantize="none", input_size=None, calibration_data="auto",
                 calibration_count=CALIBRATION_COUNT, data_dir=None, verify=False, pipeline_options=None, log=None,
                 integer_only=False, class_names=None, metadata=None, any_size=False):
    """Export a Keras model, optionally verifying the artifact.

    A zoo model is exported by name with :func:`keras_deconv.zoo.export_model`
    (``keras-deconv export NAME``): it builds the model with its weights and
    passes its card's settings, label names and input size here.

    Args:
        model: a model built by :mod:`keras_deconv.models` (or loaded from the zoo).
        path: output path. SavedModel: a folder. TFLite: a ``.tflite`` file
            for DeconvNet / FCN-8s; for DecoupledNet / TransferNet, a path
            ending in ``.tflite`` gives one file with ``classify`` and
            ``segment`` signatures (:func:`to_tflite_signatures`), any other
            path a folder (``encoder.tflite``, ``decoder.tflite``,
            ``manifest.json``). ONNX: a ``.onnx`` file. Written atomically.
        format: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        quantize: TFLite only: ``"none"``, ``"float16"`` or ``"int8"``.
        input_size: ``(H, W)`` of the static TFLite/ONNX input (default: the
            model's static size, else the official size: DeconvNet 224,
            FCN-8s 500; DecoupledNet and TransferNet have a fixed size from
            the model); for the SavedModel of DeconvNet / FCN-8s the smallest
            padded size.
        calibration_data: int8 only: ``"shapes"`` (also what ``"auto"``
            means here: the zoo picks the weights' training data instead,
            :func:`keras_deconv.zoo.exporting.calibration_dataset`),
            ``"voc2012"`` (needs ``data_dir``), a folder of images, or a list
            of ``(H, W, 3)`` arrays.
        calibration_count: int8 only: how many calibration images (default
            :data:`CALIBRATION_COUNT`).
        data_dir: the folder holding ``VOCdevkit/VOC2012``: calibration
            images for ``"voc2012"``, and with ``verify`` the sample images
            (16 VOC 2012 val images instead of synthetic scenes).
        verify: run the artifact on sample images and compare with Keras
            (see :func:`verify_export`); raises :class:`ExportError` if below
            the bounds.
        pipeline_options: pipeline settings (``threshold``, ``background_weight``).
        log: ``callable(str)`` for progress messages (default: none).
        integer_only: int8 TFLite of DeconvNet / FCN-8s only: no float op or
            tensor (uint8 image in, int8 scores out), for integer-only
            accelerators; see :func:`to_tflite`.
        class_names: TFLite only: the names of the model's labels
            (background first), recorded in the file or the manifest.
        metadata: single-file TFLite only: more facts for the file's
            metadata entry (the zoo records ``model`` and ``weights``).
        any_size: TFLite of DeconvNet / FCN-8s: trace the file with dynamic
            height and width, so that LiteRT runs it on an image of any size
            padded as the Keras pipeline pads it (recorded in the metadata:
            ``padding``). It costs speed: XNNPACK delegates the graph in many
            pieces (deconvnet-small at 64x64: 21 ms instead of 6.4 ms per
            image). Without it the file runs images up to ``input_size``.

    Returns:
        A dict: ``path``, ``format``, ``quantize``, ``kind``, ``size_bytes``
        and, with ``verify``, ``verification`` (see :func:`verify_export`).

    Example:

    >>> import os, tempfile
    >>> from keras_deconv.models import DeconvNet
    >>> model = DeconvNet(num_classes=3, width=1 / 16, fc_units=32, fc_kernel_size=2)
    >>> out = os.path.join(tempfile.mkdtemp(), "deconvnet.tflite")
    >>> export_model(model, out, "tflite", input_size=(64, 64))["kind"]
    'deconvnet'
    """
    if isinstance(model, str):
        raise TypeError(f"export_model takes a Keras model; export the zoo model {model!r} with "
                        "keras_deconv.zoo.export_model(name, path, ...) (or `keras-deconv export NAME`).")
    log = log or (lambda message: None)
    check_export_options(format, quantize, integer_only)
    if quantize == "int8" and isinstance(calibration_data, str) and calibration_data == "auto":
        calibration_data = "shapes"
        log(f"int8 calibration: {calibration_count} shapes images (a Keras model: pass calibration_data "
            "with images like the model's own data).")
    if quantize == "int8" and isinstance(calibration_data, str) and calibration_data == "voc2012":
        _voc_files(data_dir, calibration_count)  # fail now, before converting
    if any_size and format != "tflite":
        raise ValueError(f"any_size applies to TFLite exports (the others take any size already). Received: format={format!r}")
    name = (metadata or {}).get("model")
    kind = model_kind(model)
    if integer_only and kind not in ("deconvnet", "fcn8s"):
        raise ValueError(f"Integer-only export is for the single-file models (DeconvNet, FCN-8s); {kind} exports an "
                         "encoder and a decoder file. Export it with int8 alone.")
    settings = export_settings(model, None, pipeline_options)
    if input_size is not None:
        input_size = tuple(int(v) for v in input_size)
        if kind in ("deconvnet", "fcn8s"):
            settings["min_size"] = max(input_size)
    elif kind in ("deconvnet", "fcn8s"):
        input_size = _official_input_size(model)
    path = os.fspath(path)
    what = kind if name is None or name == kind else f"{name} ({kind} architecture)"
    log(f"Exporting {what} as {format}{'' if quantize == 'none' else ' (' + quantize + ')'} to {path}...")
    if format == "saved_model":
        to_saved_model(model, path, **settings)
    elif format == "tflite":
        if kind in ("deconvnet", "fcn8s"):
            about = dict(metadata or {})
            if class_names is not None:
                about["class_names"] = [str(label) for label in class_names]
            _dense_tflite(model, path, quantize, calibration_data, input_size, calibration_count, data_dir, about,
                          integer_only, padding={key: settings[key] for key in ("min_size", "multiple")},
                          any_size=any_size)
        else:
            if any_size:
                raise ValueError(f"any_size is for DeconvNet / FCN-8s; a {kind} export takes images of any size "
                                 "already (padded to a square and resized to the model's input, as its pipeline does).")
            if input_size is not None and tuple(input_size) != tuple(model.inputs[0].shape[1:3]):
                raise ValueError(f"A {kind} model has a fixed input size {tuple(model.inputs[0].shape[1:3])}; "
                                 f"pass --config input_shape=H,W,3 to build another. Received: input_size={input_size}")
            # An --out ending in .tflite: one file with classify / segment signatures; else the folder.
            write = to_tflite_signatures if path.lower().endswith(".tflite") else to_tflite_parts
            write(model, path, quantize, calibration_data, class_names=class_names,
                  pipeline_settings={key: settings[key] for key in _TUNABLE_SETTINGS if key in settings},
                  calibration_count=calibration_count, data_dir=data_dir)
    else:
        to_onnx(model, path, input_size)
    result = {"path": path, "format": format, "quantize": quantize, "kind": kind, "size_bytes": _size(path)}
    if verify:
        images, result["verification_images"] = None, f"{VERIFY_IMAGES} synthetic shapes val scenes"
        if data_dir is not None:  # real photos: VOC 2012 val
            images = [_read_rgb(path) for path in _voc_files(data_dir, VERIFY_IMAGES, split="val")]
            result["verification_images"] = f"{len(images)} VOC 2012 val images"
        log(f"Verifying against Keras on {result['verification_images']}...")
        result["verification"] = verify_export(model, path, format, quantize, input_size=input_size, images=images,
                                               **settings)
        failed = [check for check in result["verification"] if not check["passed"]]
        if failed:
            raise ExportError("Verification failed: " + "; ".join(describe_check(check) for check in failed)
                              + f". The artifact is at {path}.", verification=result["verification"])
    return result
