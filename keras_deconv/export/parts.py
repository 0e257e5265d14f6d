"""Two-part TFLite export of DecoupledNet / TransferNet: an encoder file, a per-class decoder file and a manifest."""

import os

from keras_deconv.export._files import _write_directory_atomically
from keras_deconv.export.calibration import CALIBRATION_COUNT, _calibration_images
from keras_deconv.export.kinds import _TUNABLE_SETTINGS, _tflite_name, model_kind, split_model
from keras_deconv.export.tflite import to_tflite


def _part_functions(model, input_size):
    """``(encoder_fn, encoder_spec, decoder_fn, decoder_spec, manifest)`` for builtin-only TFLite.

    The encoder maps ``images`` float32 ``[1, S, S, 3]`` (RGB 0-255) to the
    tensors the decoder needs (TFLite names: ``-`` becomes ``_``). The
    decoder takes ``query`` float32 ``[1, num_classes]`` (one pass) and those
    tensors, and returns ``seg_score`` float32 ``[1, S, S, 2]`` (TransferNet:
    also ``attention`` ``[1, h, w, 1]``, its attention over the conv5_3
    positions, which it computes anyway). All shapes
    are static (XNNPACK delegates every op); the caller runs the decoder once
    per pass on the same encoder outputs. The unpoolings' size references
    are static zeros (only their shapes are used; the converter folds them).
    """
    import tensorflow as tf

    kind = model_kind(model)
    encoder, decoder, cut = split_model(model)
    if kind == "transfernet":  # the pipeline's decoder, which also returns the attention map: predict draws it
        from keras_deconv.pipelines import split_transfernet

        _, decoder, _ = split_transfernet(model)
    size = tuple(model.inputs[0].shape[1:3])
    if input_size is not None and tuple(input_size) != size:
        raise ValueError(f"A {kind} model has a fixed input size {size}; rebuild it with input_shape=(H, W, 3) to change it. "
                         f"Received: input_size={tuple(input_size)}")
    num_classes = model.inputs[1].shape[-1]
    passed = [name for name in cut if not name.endswith("_input")]
    extra = ["cls-score-avg-sigmoid"] if kind == "decouplednet" else []
    shapes = {name: tuple(tensor.shape[1:]) for name, tensor in zip(cut, decoder.inputs[1:])}
    dtypes = {name: tensor.dtype for name, tensor in zip(cut, decoder.inputs[1:])}

    def encode(images):
        encoded = encoder(images, training=False)
        # Switches leave the encoder in their declared dtype (int8) whatever the formulation.
        return {_tflite_name(name): tf.cast(encoded[name], dtypes.get(name, tf.float32)) for name in extra + passed}

    def decode(query, *tensors):
        given = dict(zip(passed, tensors))
        # The unpoolings use their size references' shapes only: static zeros, folded away.
        inputs = [tf.zeros((1,) + shapes[name], dtypes[name]) if name.endswith("_input") else given[name] for name in cut]
        outputs = decoder([query, *inputs], training=False)
        if kind == "transfernet":
            return {"seg_score": outputs["seg-score"], "attention": outputs["att"]}
        return {"seg_score": outputs}

    encoder_spec = [tf.TensorSpec((1,) + size + (3,), tf.float32, name="images")]
    decoder_spec = [tf.TensorSpec([1, num_classes], tf.float32, name="query")] + [
        tf.TensorSpec((1,) + shapes[name], dtypes[name], name=_tflite_name(name)) for name in passed
    ]
    manifest = {
        "kind": kind,
        "input_size": list(size),
        "num_classes": int(num_classes),
        "encoder": {
            "file": "encoder.tflite",
            "inputs": {"images": {"shape": [1, *size, 3], "dtype": "float32", "meaning": "RGB 0-255, padded to a square and resized"}},
            "outputs": {
                _tflite_name(name): {"shape": [1, *shapes.get(name, (num_classes,))], "dtype": str(dtypes.get(name, "float32"))}
                for name in extra + passed
            },
            # TFLite names outputs Identity, Identity_1, ...: in the sorted order of these names.
            "output_order": sorted(_tflite_name(name) for name in extra + passed),
        },
        "decoder": {
            "file": "decoder.tflite",
            "inputs": {
                "query": {"shape": [1, int(num_classes)], "dtype": "float32",
                          "meaning": "one pass: cls-score-masked (DecoupledNet) or one-hot cls-label (TransferNet)"},
                **{_tflite_name(name): {"shape": [1, *shapes[name]], "dtype": str(dtypes[name])} for name in passed},
            },
            "outputs": {"seg_score": {"shape": [1, *size, 2], "dtype": "float32", "meaning": "raw background/foreground scores"}},
        },
    }
    if kind == "transfernet":
        attention_shape = [1, *model.get_layer("att-reshape").output.shape[1:]]
        manifest["decoder"]["outputs"]["attention"] = {
            "shape": attention_shape, "dtype": "float32", "meaning": "attention over the conv5_3 positions (sums to 1)"}
    # As for the encoder: TFLite names outputs Identity, Identity_1, ... in the sorted order of these names.
    manifest["decoder"]["output_order"] = sorted(manifest["decoder"]["outputs"])
    return (tf.function(encode, input_signature=encoder_spec, autograph=False),
            tf.function(decode, input_signature=decoder_spec, autograph=False), manifest, passed, extra, encoder)


def to_tflite_parts(model, path, quantize="none", calibration_data=None, class_names=None, pipeline_settings=None,
                    calibration_count=CALIBRATION_COUNT, data_dir=None):
    """Export a DecoupledNet/TransferNet as a folder: ``encoder.tflite``, ``decoder.tflite``, ``manifest.json``.

    The encoder runs once per image (DecoupledNet: it is the classification
    network, output ``cls_score_avg_sigmoid``); the decoder is the per-class
    network with the class query as an input, batched over passes. Both are
    builtin-only. :mod:`keras_deconv.lite` runs the whole pipeline on them.
    ``manifest.json`` lists every input and output (name, shape, dtype)
    and, when given, the ``class_names`` of the labels (background first)
    and the ``pipeline_settings`` (``threshold``, ``background_weight``)
    that :func:`keras_deconv.lite.load` then uses by default. int8:
    ``calibration_count`` images from ``calibration_data`` (see
    :func:`_calibration_images`; ``data_dir`` for ``"voc2012"``).

    Returns:
        The folder path (written atomically).
    """
    import json

    encode, decode, manifest, encoder_data, decoder_data = _prepared_parts(
        model, quantize, calibration_data, class_names, pipeline_settings, calibration_count, data_dir)

    def write(folder):
        to_tflite(encode, os.path.join(folder, "encoder.tflite"), quantize, encoder_data)
        to_tflite(decode, os.path.join(folder, "decoder.tflite"), quantize, decoder_data)
        with open(os.path.join(folder, "manifest.json"), "w") as stream:
            json.dump(manifest, stream, indent=1)

    return _write_directory_atomically(path, write)


def _prepared_parts(model, quantize, calibration_data, class_names, pipeline_settings, calibration_count, data_dir):
    """``(encode, decode, manifest, encoder_data, decoder_data)``: the part functions, the manifest with the
    labels and settings, and the int8 calibration inputs of each part (None otherwise)."""
    import numpy as np

    encode, decode, manifest, passed, extra, keras_encoder = _part_functions(model, None)
    size = tuple(manifest["input_size"])
    encoder_data = decoder_data = None
    if quantize == "int8":
        images = _calibration_images(calibration_data, size, calibration_count, data_dir)
        encoder_data = [[image] for image in images]
        rng = np.random.default_rng(0)
        num_classes = manifest["num_classes"]
        decoder_data = []
        for image in images:
            encoded = keras_encoder(image, training=False)
            query = np.zeros((1, num_classes), "float32")
            query[0, rng.integers(num_classes)] = 1.0 if manifest["kind"] == "transfernet" else float(rng.uniform(0.5, 1.0))
            decoder_data.append([query] + [np.asarray(encoded[name]) for name in passed])
    manifest["quantize"] = quantize
    if class_names is not None:
        if len(class_names) != manifest["num_classes"] + 1:
            raise ValueError(f"Expected {manifest['num_classes'] + 1} class names (background first). "
                             f"Received {len(class_names)}.")
        manifest["class_names"] = [str(name) for name in class_names]
    if pipeline_settings:
        unknown = sorted(set(pipeline_settings) - set(_TUNABLE_SETTINGS))
        if unknown:
            raise ValueError(f"Unknown pipeline settings {unknown}; expected some of {list(_TUNABLE_SETTINGS)}.")
        manifest["pipeline"] = {key: float(value) for key, value in pipeline_settings.items()}
    return encode, decode, manifest, encoder_data, decoder_data


def _converted_parts(model, quantize="none", calibration_data=None, class_names=None, pipeline_settings=None,
                     calibration_count=CALIBRATION_COUNT, data_dir=None):
    """``(encoder flatbuffer, decoder flatbuffer, manifest)``: the folder export's files, in memory."""
    encode, decode, manifest, encoder_data, decoder_data = _prepared_parts(
        model, quantize, calibration_data, class_names, pipeline_settings, calibration_count, data_dir)
    return to_tflite(encode, None, quantize, encoder_data), to_tflite(decode, None, quantize, decoder_data), manifest
