"""The keras-deconv metadata entry of a ``.tflite`` file: written here, read by :func:`keras_deconv.lite.tflite_metadata`.

The entry's name and reader live in :mod:`keras_deconv.lite` (which runs and
reads exported files); this module adds or replaces the entry.
"""

from keras_deconv.lite import TFLITE_METADATA_NAME, _text, tflite_metadata  # noqa: F401 - re-exported


def with_tflite_metadata(flatbuffer, entry):
    """``flatbuffer`` with ``entry`` (a JSON-serialisable dict) as its :data:`~keras_deconv.lite.TFLITE_METADATA_NAME` metadata.

    An earlier entry of that name is replaced; the model itself is unchanged.

    Example:

    >>> import keras
    >>> from keras_deconv.export import to_tflite
    >>> inputs = keras.Input((4, 4, 3))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> flatbuffer = with_tflite_metadata(to_tflite(model), {"class_names": ["background", "cat"]})
    >>> tflite_metadata(flatbuffer)["class_names"]
    ['background', 'cat']
    """
    import json

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(entry, sort_keys=True).encode("utf-8"))
    model.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name, metadata.buffer = TFLITE_METADATA_NAME, len(model.buffers) - 1
    # The replaced entry's buffer stays, unreferenced: renumbering buffers is not worth its risk.
    model.metadata = [m for m in (model.metadata or []) if _text(m.name) != TFLITE_METADATA_NAME] + [metadata]
    return flatbuffer_utils.convert_object_to_bytearray(model)
