"""Run exported TFLite models (LiteRT, Python): one file, or a whole inference pipeline.

* The runtime: :func:`litert_interpreter`, :func:`run_tflite` (quantized
  inputs and outputs handled), :func:`tflite_metadata` (the keras-deconv
  entry of a file).
* The pipelines, :func:`load` and the classes below.

:func:`keras_deconv.export.export_model` with ``format="tflite"`` writes

* DeconvNet / FCN-8s: one ``.tflite`` file, ``images`` float32
  ``[1, S, S, 3]`` (RGB 0-255) -> raw ``scores`` ``[1, S, S, C]``
  (with ``any_size``: ``[1, H, W, 3]`` -> ``[1, H, W, C]`` for any ``H, W``);
* DecoupledNet / TransferNet: a folder with ``encoder.tflite`` (run once per
  image; for DecoupledNet it is the classification network and outputs
  ``cls_score_avg_sigmoid``), ``decoder.tflite`` (the per-class network: the
  class ``query`` ``[1, num_classes]`` plus the encoder tensors ->
  ``seg_score`` ``[1, S, S, 2]``) and ``manifest.json`` (every input and
  output: name, shape, dtype); or, for a path ending in ``.tflite``, one file
  with the two parts as its ``classify`` and ``segment`` signatures and the
  manifest as its metadata (:mod:`keras_deconv.export.signatures`).

The classes here run those files with the same pre- and post-processing as
:mod:`keras_deconv.pipelines` (classification -> per-class passes ->
combination) and return the same :class:`~keras_deconv.pipelines.Segmentation`
results. They need ``ai-edge-litert`` (and TensorFlow for the exact resize
the Keras pipelines use).

Example:

>>> import os, tempfile, numpy as np
>>> from keras_deconv.models import TransferNet
>>> from keras_deconv import export, lite
>>> model = TransferNet(num_classes=5, input_shape=(64, 64, 3), width=1 / 16)
>>> folder = export.to_tflite_parts(model, os.path.join(tempfile.mkdtemp(), "transfernet"))
>>> result = lite.load(folder)([np.zeros((30, 40, 3), "uint8")], labels=[[2]])[0]
>>> result.labels.shape
(30, 40)
"""

import json
import os

import numpy as np

from keras_deconv._atomic import give_default_mode

_EXPORT_HINT = "Export one with `keras-deconv export NAME --format tflite --out PATH`."
_PART_FILES = "encoder.tflite, decoder.tflite and manifest.json"


# ----------------------------------------------------------------------------- LiteRT runtime
def litert_interpreter(flatbuffer, xnnpack=True, num_threads=None):
    """A LiteRT interpreter for ``flatbuffer`` (bytes, or a path to a ``.tflite`` file), XNNPACK on or off.

    A path is memory-mapped by LiteRT rather than read into Python bytes:
    loading is faster and the file's pages stay file-backed (reclaimable),
    so the weights are not held twice in anonymous memory next to XNNPACK's
    packed copy (``python bench/lite_load.py``).
    """
    from ai_edge_litert import interpreter as litert

    resolver = litert.OpResolverType.AUTO if xnnpack else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    source = {"model_path": os.fspath(flatbuffer)} if isinstance(flatbuffer, (str, os.PathLike)) else {"model_content": flatbuffer}
    return litert.Interpreter(**source, experimental_op_resolver_type=resolver, num_threads=num_threads)


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
        interpreter.set_tensor(detail["index"], quantize_input(array, detail))
    interpreter.invoke()
    return [dequantize_output(interpreter.get_tensor(detail["index"]), detail)
            for detail in interpreter.get_output_details()]


def quantize_input(array, detail):
    """``array`` as a LiteRT input of ``detail`` (an input detail): quantized when the input is.

    Integer-only exports take uint8 images: pixel values 0-255 when their
    quantization is scale 1, zero point 0 (as calibration on images gives).
    """
    import numpy as np

    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale and np.issubdtype(np.asarray(array).dtype, np.floating):
        info = np.iinfo(dtype)
        array = np.clip(np.round(np.asarray(array) / scale) + zero_point, info.min, info.max)
    return np.asarray(array).astype(dtype, copy=False)


def dequantize_output(array, detail):
    """A LiteRT output as float32 when it is quantized (integer-only exports), else unchanged."""
    import numpy as np

    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale and np.issubdtype(array.dtype, np.integer):
        return ((array.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return array


#: Name of the metadata entry in the ``.tflite`` file of a DeconvNet / FCN-8s
#: export: a UTF-8 JSON object with ``kind``, ``quantize``, ``integer_only``, ``input_size`` and,
#: for zoo models, ``model``, ``weights`` and ``class_names`` (background
#: first). LiteRT ignores it; :func:`tflite_metadata` reads it, as can any
#: flatbuffer reader (the schema's ``Model.metadata``). Export folders keep the
#: same facts in ``manifest.json``.
TFLITE_METADATA_NAME = "keras_deconv"


_REEXPORT = "Export it again: keras-deconv export NAME --format tflite --out FILE.tflite."


def _text(name):
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def tflite_metadata(model):
    """The keras-deconv metadata of a ``.tflite`` file (a path) or flatbuffer (bytes), or None without one.

    Reads only the metadata (the file is memory-mapped, not loaded).

    Raises:
        ValueError: not a TFLite flatbuffer, or its keras-deconv entry is not a JSON object.
    """
    import json
    import mmap

    from tensorflow.lite.python import schema_py_generated as schema

    def not_tflite():
        return ValueError(f"{label} is not a TFLite flatbuffer (no TFL3 identifier). {_REEXPORT}")

    def read(data):
        if len(data) < 8 or bytes(data[4:8]) != b"TFL3":
            raise not_tflite()
        root = schema.Model.GetRootAs(data, 0)
        for index in range(root.MetadataLength()):
            entry = root.Metadata(index)
            if _text(entry.Name()) != TFLITE_METADATA_NAME:
                continue
            buffer = root.Buffers(entry.Buffer())
            if buffer.DataLength():
                return buffer.DataAsNumpy().tobytes()
            return bytes(data[buffer.Offset():buffer.Offset() + buffer.Size()])  # files over 2 GB
        return None

    if isinstance(model, (bytes, bytearray, memoryview)):
        label, raw = "The flatbuffer", read(model)
    else:
        label = repr(os.fspath(model))
        with open(model, "rb") as stream:
            if os.fstat(stream.fileno()).st_size < 8:  # also: mmap refuses empty files
                raise not_tflite()
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
                raw = read(data)
    if raw is None:
        return None
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{label} has an unreadable {TFLITE_METADATA_NAME!r} metadata entry ({error}). {_REEXPORT}") from None
    if not isinstance(entry, dict):
        raise ValueError(f"{label} has a {TFLITE_METADATA_NAME!r} metadata entry that is not a JSON object. {_REEXPORT}")
    return entry


# ----------------------------------------------------------------------------- pipelines over exported files


class LiteModel:
    """One flatbuffer in LiteRT, called with and returning dicts of arrays.

    Args:
        flatbuffer: bytes, or a path to a ``.tflite`` file (LiteRT
            memory-maps a path; the weights are not copied into Python).
        output_names: names of the outputs in the file's output order
            (default: the tensor names the file stores).
        xnnpack: use the XNNPACK delegate (default) or the builtin kernels.
        num_threads: interpreter threads (default: LiteRT's choice).
        weight_cache: a folder for XNNPACK weight caches (created if
            missing), or None. The first load of a file packs the weights
            into a cache file there; later loads map it instead of packing
            again: faster, and the file's own weights are never read (full
            DeconvNet float32: 0.14 s and 84 MB of anonymous memory instead of
            0.52 s and 1043 MB; ``python bench/lite_load.py``). Each cache is
            keyed by the model file's path, size, modification time, inode
            and sampled contents, because XNNPACK itself would silently reuse
            a cache built for different weights of the same architecture.
            Needs a file path and ``xnnpack=True``; runs through LiteRT's
            ``CompiledModel`` API.
    """

    def __init__(self, flatbuffer, output_names=None, xnnpack=True, num_threads=None, weight_cache=None):
        source = "The flatbuffer"
        if isinstance(flatbuffer, (str, os.PathLike)):
            source = repr(os.fspath(flatbuffer))
            if not os.path.isfile(flatbuffer):
                raise FileNotFoundError(f"No TFLite file at {source}. {_EXPORT_HINT}")
            flatbuffer = os.fspath(flatbuffer)  # LiteRT memory-maps it (see litert_interpreter)
        if weight_cache is not None and not isinstance(flatbuffer, str):
            raise ValueError("weight_cache needs the model as a file path, not bytes: the cache is keyed by the file.")
        if weight_cache is not None and not xnnpack:
            raise ValueError("weight_cache caches XNNPACK's packed weights: it needs xnnpack=True.")
        self.interpreter = None
        try:
            if weight_cache is not None:
                self._compiled = _CachedXnnpackModel(flatbuffer, weight_cache, num_threads)
                inputs, details = _with_quantization(flatbuffer, self._compiled.inputs, self._compiled.outputs)
            else:
                self.interpreter = litert_interpreter(flatbuffer, xnnpack=xnnpack, num_threads=num_threads)
                inputs, details = self.interpreter.get_input_details(), self.interpreter.get_output_details()
                if not any(-1 in detail["shape_signature"] for detail in inputs):
                    # A file with dynamic dims is allocated at the first call's shapes: its placeholder
                    # size 1 may be too small for its ops.
                    self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:  # LiteRT's own: "not a valid Flatbuffer buffer", ...
            raise ValueError(f"{source} is not a loadable TFLite model (truncated or corrupt?): {error}. "
                             f"{_EXPORT_HINT}") from error
        self.inputs = {detail["name"]: detail for detail in inputs}
        #: Per input, the dims a call may choose (-1 in the file's shape signature).
        self.dynamic = {detail["name"]: [int(v) < 0 for v in detail.get("shape_signature", detail["shape"])]
                        for detail in inputs}
        if weight_cache is not None and any(any(flags) for flags in self.dynamic.values()):
            raise ValueError(f"{source} has a dynamic input size; weight_cache needs a static one "
                             "(export without --any-size).")
        self.output_count = len(details)
        names = output_names or [detail["name"] for detail in details]
        self.outputs = dict(zip(names, details))

    def __call__(self, **arrays):
        checked = {}
        for name, detail in self.inputs.items():
            if name not in arrays:
                raise ValueError(f"Missing input {name!r}; the model takes {sorted(self.inputs)}.")
            array = quantize_input(arrays[name], detail)  # integer-only files take quantized inputs
            if tuple(array.shape) != tuple(detail["shape"]):
                fixed = [(want, got) for want, got, free in zip(detail["shape"], array.shape, self.dynamic[name]) if not free]
                if array.ndim != len(detail["shape"]) or any(want != got for want, got in fixed):
                    shape = tuple(-1 if free else int(v) for v, free in zip(detail["shape"], self.dynamic[name]))
                    raise ValueError(f"Input {name!r} must have shape {shape} (-1: any). Received {array.shape}.")
                self._resize(name, array.shape)
                detail = self.inputs[name]
            checked[name] = array
        if self.interpreter is None:
            results = self._compiled(checked)
            return {name: dequantize_output(results[detail["name"]], detail) for name, detail in self.outputs.items()}
        for name, array in checked.items():
            self.interpreter.set_tensor(self.inputs[name]["index"], array)
        self.interpreter.invoke()
        return {name: dequantize_output(self.interpreter.get_tensor(detail["index"]), detail)
                for name, detail in self.outputs.items()}


    def _resize(self, name, shape):
        """Reallocate the interpreter for ``shape`` of input ``name`` (a dynamic-size file)."""
        self.interpreter.resize_tensor_input(self.inputs[name]["index"], list(shape), strict=True)
        self.interpreter.allocate_tensors()
        self.inputs = {detail["name"]: detail for detail in self.interpreter.get_input_details()}
        names = list(self.outputs)
        self.outputs = dict(zip(names, self.interpreter.get_output_details()))


def _with_quantization(flatbuffer, inputs, outputs):
    """``CompiledModel`` tensor details with the quantization an ``Interpreter`` reports (by tensor index).

    ``CompiledModel`` omits it, and integer-only files need it to quantize
    images and dequantize scores. The interpreter only reads the mapped file.
    """
    interpreter = litert_interpreter(flatbuffer, xnnpack=False)
    known = {d["index"]: d["quantization"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    return ([{**d, "quantization": known.get(d["index"], (0.0, 0))} for d in inputs],
            [{**d, "quantization": known.get(d["index"], (0.0, 0))} for d in outputs])


_CACHE_SUFFIX = ".xnnpack_cache"


def weight_cache_file(folder, model_path):
    """Where :class:`LiteModel` keeps ``model_path``'s XNNPACK weight cache in ``folder``.

    ``NAME-PATH-CONTENT.xnnpack_cache``: ``PATH`` is a digest of the file's
    real path (two ``encoder.tflite`` files from different exports get
    different caches), ``CONTENT`` one of its size, modification time (ns),
    inode and 17 sampled 64 KiB blocks: re-exporting or replacing the file
    gives a new name, so a stale cache is never used.
    """
    import hashlib

    model_path = os.path.realpath(model_path)
    stat = os.stat(model_path)
    content = hashlib.sha256(f"{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}".encode())
    with open(model_path, "rb") as stream:
        for offset in [stat.st_size * i // 16 for i in range(16)] + [max(stat.st_size - 65536, 0)]:
            stream.seek(offset)
            content.update(stream.read(65536))
    stem = os.path.splitext(os.path.basename(model_path))[0]
    where = hashlib.sha256(model_path.encode()).hexdigest()[:8]
    return os.path.join(os.fspath(folder), f"{stem}-{where}-{content.hexdigest()[:16]}{_CACHE_SUFFIX}")


_environment = None


def _litert_environment():
    """One LiteRT environment per process, without vendor plugin discovery (CPU only, no warnings)."""
    global _environment
    if _environment is None:
        import ai_edge_litert
        from ai_edge_litert.environment import Environment

        # An empty search path: the wheel's vendor plugins (OpenVINO, ...) would be probed and fail noisily.
        no_plugins = os.path.dirname(os.path.abspath(__file__))
        _environment = Environment.create(runtime_path=os.path.dirname(ai_edge_litert.__file__),
                                          compiler_plugin_path=no_plugins, dispatch_library_path=no_plugins)
    return _environment


class _CachedXnnpackModel:
    """A ``.tflite`` file in LiteRT's ``CompiledModel`` (CPU, XNNPACK) with a weight cache file."""

    def __init__(self, path, folder, num_threads):
        import re
        import tempfile

        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.options import Options

        folder = os.path.expanduser(os.fspath(folder))
        os.makedirs(folder, exist_ok=True)
        final = weight_cache_file(folder, path)
        building = not os.path.isfile(final)
        cache = final
        if building:  # XNNPACK writes the cache while loading; publish it whole, under its final name
            handle, cache = tempfile.mkstemp(dir=folder, prefix=os.path.basename(final) + ".", suffix=".partial")
            os.close(handle)
        cpu = CpuOptions(xnnpack_weight_cache_path=cache, **({"num_threads": num_threads} if num_threads else {}))
        try:
            self.model = CompiledModel.from_file(path, environment=_litert_environment(), options=Options(cpu_options=cpu))
            if building:
                give_default_mode(cache)
                os.replace(cache, final)
        finally:
            if building and os.path.exists(cache):
                os.remove(cache)
        if building:  # older caches of this file (it was re-exported or replaced) are stale
            same_file = re.compile(re.escape(os.path.basename(final).rsplit("-", 1)[0]) + "-[0-9a-f]{16}" + re.escape(_CACHE_SUFFIX))
            for name in os.listdir(folder):
                if same_file.fullmatch(name) and name != os.path.basename(final):
                    os.remove(os.path.join(folder, name))
        self.signature = next(iter(self.model.get_signature_list()))
        self.inputs = list(self.model.get_input_tensor_details(self.signature).values())
        self.outputs = list(self.model.get_output_tensor_details(self.signature).values())
        self._input_buffers = {d["name"]: self.model.create_input_buffer_by_name(self.signature, d["name"]) for d in self.inputs}
        self._output_buffers = {d["name"]: self.model.create_output_buffer_by_name(self.signature, d["name"]) for d in self.outputs}

    def __call__(self, arrays):
        for name, array in arrays.items():
            self._input_buffers[name].write(np.ascontiguousarray(array))
        self.model.run_by_name(self.signature, self._input_buffers, self._output_buffers)
        return {d["name"]: self._output_buffers[d["name"]].read(int(np.prod(d["shape"])), np.dtype(d["dtype"])).reshape(d["shape"])
                for d in self.outputs}


def load(path, *, xnnpack=True, num_threads=None, weight_cache=None, **settings):
    """The LiteRT pipeline for an exported ``.tflite`` file or folder.

    Args:
        path: a DeconvNet / FCN-8s ``.tflite`` file, or a DecoupledNet /
            TransferNet export: a folder (with ``manifest.json``) or one
            ``.tflite`` file with ``classify`` and ``segment`` signatures.
        xnnpack: XNNPACK delegate on (default) or off.
        num_threads: interpreter threads.
        weight_cache: a folder for XNNPACK weight caches: later loads of the
            same files map the packed weights instead of packing them again
            (see :class:`LiteModel`).
        **settings: pipeline settings: ``threshold`` (DecoupledNet 0.5,
            TransferNet 0.6), ``background_weight`` (TransferNet 0.5),
            ``tta`` (every pipeline: test-time augmentation, "none"). An
            export of a zoo model records its card's settings in
            ``manifest.json`` or metadata (``pipeline``); they replace these defaults,
            and the settings given here replace them. A DeconvNet / FCN-8s
            file takes only ``tta``.

    Returns:
        A :class:`LiteDenseSegmenter`, :class:`LiteDecoupledNet` or
        :class:`LiteTransferNet`.

    Example (a weight cache: the first load writes it, the second maps it):

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> from keras_deconv import export, lite
    >>> from keras_deconv.models import DeconvNet
    >>> model = DeconvNet(num_classes=3, width=1 / 16, fc_units=32, fc_kernel_size=2, input_shape=(64, 64, 3))
    >>> path, caches = os.path.join(tempfile.mkdtemp(), "deconvnet.tflite"), tempfile.mkdtemp()
    >>> _ = export.to_tflite(model, path, input_signature=[tf.TensorSpec((1, 64, 64, 3), tf.float32, name="images")])
    >>> first = lite.load(path, weight_cache=caches)
    >>> second = lite.load(path, weight_cache=caches)
    >>> second([np.zeros((30, 40, 3), "uint8")])[0].labels.shape, len(os.listdir(caches))
    ((30, 40), 1)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        manifest = _read_manifest(path)
        kind = manifest.get("kind")
        classes = {"decouplednet": LiteDecoupledNet, "transfernet": LiteTransferNet}
        if kind not in classes:
            raise ValueError(f"{os.path.join(path, 'manifest.json')!r} names kind {kind!r}; expected one of "
                             f"{sorted(classes)}. {_EXPORT_HINT}")
        settings = {**manifest.get("pipeline", {}), **settings}  # the export's, then the caller's
        return classes[kind](path, xnnpack=xnnpack, num_threads=num_threads, weight_cache=weight_cache, **settings)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No TFLite file or export folder at {path!r}. {_EXPORT_HINT}")
    manifest = _signature_manifest(path)
    if manifest is not None:  # DecoupledNet / TransferNet in one file: `classify` and `segment` signatures
        classes = {"decouplednet": LiteDecoupledNet, "transfernet": LiteTransferNet}
        settings = {**manifest.get("pipeline", {}), **settings}
        return classes[manifest["kind"]](path, xnnpack=xnnpack, num_threads=num_threads, weight_cache=weight_cache,
                                         **settings)
    if set(settings) - {"tta"}:
        raise ValueError(f"{path} is a DeconvNet / FCN-8s export: its only pipeline option is tta "
                         f"(received {sorted(settings)}).")
    return LiteDenseSegmenter(path, xnnpack=xnnpack, num_threads=num_threads, weight_cache=weight_cache, **settings)


def _signature_manifest(path):
    """The metadata of a single-file DecoupledNet / TransferNet export (its parts as signatures), else None."""
    try:
        entry = tflite_metadata(path)
    except Exception:  # not a TFLite file, or truncated (struct.error, ...): LiteDenseSegmenter words the error
        return None
    parts = entry and (entry.get("encoder"), entry.get("decoder"))
    if not parts or not all(isinstance(part, dict) and "signature" in part for part in parts):
        return None
    if entry.get("kind") not in ("decouplednet", "transfernet"):
        raise ValueError(f"{path!r} has signatures for kind {entry.get('kind')!r}; expected decouplednet or "
                         f"transfernet. {_EXPORT_HINT}")
    return entry


def _read_manifest(folder):
    """The export folder's ``manifest.json``, with one clear error when it is missing or unreadable."""
    manifest_path = os.path.join(folder, "manifest.json")
    if not os.path.isfile(manifest_path):
        raise ValueError(f"{folder!r} is not a DecoupledNet / TransferNet TFLite export: it has no manifest.json "
                         f"(an export folder holds {_PART_FILES}). {_EXPORT_HINT}")
    try:
        with open(manifest_path) as stream:
            manifest = json.load(stream)
    except (OSError, ValueError) as error:
        raise ValueError(f"{manifest_path!r} is not a readable export manifest ({error}). {_EXPORT_HINT}") from error
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_path!r} is not an export manifest (expected a JSON object). {_EXPORT_HINT}")
    return manifest


class LiteDenseSegmenter:
    """DeconvNet / FCN-8s whole-image inference on a ``.tflite`` file.

    Each image is padded (bottom/right, with the Caffe mean colour, i.e. zeros
    after preprocessing) as the Keras pipeline pads it, run once and cropped
    back; ``probabilities`` are the softmax of the scores. The padding rule
    is the file's metadata ``padding``: each side to a multiple of
    ``multiple``, at least ``min_size`` (DeconvNet: 32 and the export size;
    FCN-8s: 1 and 500). A file exported with ``--any-size`` (dynamic height
    and width) runs at that padded size, whatever the image's size. A
    static file (``S x S``) runs images whose padded size fits in it, padded
    to ``S x S``; a larger image is resized to fit, segmented, and its
    probabilities resized back to its size (an approximation of the Keras
    model, which runs at the full size; ``downscaled`` counts them): export
    with ``--any-size`` or a larger ``--input-size`` for the exact result.

    ``metadata`` is what the export recorded in the file
    (:func:`tflite_metadata`, e.g. ``class_names``), or
    ``{}``; ``class_names`` is its label names, or None.

    ``tta``: ``"none"``, ``"flip"`` or ``"dihedral"``, the Keras pipelines'
    test-time augmentation (:func:`keras_deconv.pipelines.average_over_views`).
    """

    def __init__(self, path, xnnpack=True, num_threads=None, weight_cache=None, tta="none"):
        from keras_deconv.pipelines import _check_tta

        _check_tta(tta)
        self.tta = tta
        self.model = LiteModel(path, output_names=["scores"], xnnpack=xnnpack, num_threads=num_threads,
                               weight_cache=weight_cache)
        outputs = self.model.output_count
        if list(self.model.inputs) != ["images"] or outputs != 1:
            raise ValueError(f"{os.fspath(path)!r} is not a DeconvNet / FCN-8s export (inputs {list(self.model.inputs)}, "
                             f"{outputs} outputs; expected `images` -> `scores`). For DecoupledNet / "
                             f"TransferNet, load the export folder ({_PART_FILES}).")
        self.metadata = tflite_metadata(path) or {}
        self.any_size = any(self.model.dynamic["images"][1:3])
        recorded = self.metadata.get("input_size")
        self.size = tuple(int(v) for v in (recorded if self.any_size and recorded else self.model.inputs["images"]["shape"][1:3]))
        padding = self.metadata.get("padding") or {}
        #: The Keras pipeline's padding: ``(min_size, multiple)`` (files without it: the file's size, 1).
        self.padding = (int(padding.get("min_size", max(self.size))), int(padding.get("multiple", 1)))
        names = self.metadata.get("class_names")
        num_labels = int(self.model.outputs["scores"]["shape"][-1])
        self.class_names = list(names) if isinstance(names, list) and len(names) == num_labels else None
        #: Images larger than a static file, segmented downscaled (see :meth:`_downscaled`).
        self.downscaled = 0

    def __call__(self, images):
        from keras_deconv import pipelines

        results = []
        for image in pipelines._as_images(images):
            probabilities = pipelines._softmax(pipelines.average_over_views(image, self._scores, self.tta))
            results.append(pipelines.Segmentation(probabilities.argmax(-1).astype("int32"),
                                                  probabilities.reshape(-1, probabilities.shape[-1]).max(0),
                                                  probabilities.astype("float32")))
        return results

    def _scores(self, image):
        """Per-pixel scores of one image (log-probabilities when it is :meth:`_downscaled`)."""
        from keras_deconv import pipelines

        height, width = image.shape[:2]
        padded = self.padded_size(height, width)
        if not self.any_size and (padded[0] > self.size[0] or padded[1] > self.size[1]):
            return np.log(np.maximum(self._downscaled(image), 1e-30))
        canvas = np.empty((padded if self.any_size else self.size) + (3,), "float32")
        canvas[:] = pipelines.CAFFE_MEAN_RGB
        canvas[:height, :width] = image
        return self.model(images=canvas[None])["scores"][0, :height, :width]

    def _downscaled(self, image):
        """A static file and an image larger than it: resize the image to fit, segment, resize the probabilities back.

        The Keras model would run at the full size; this approximates it at
        the file's resolution (``--any-size`` exports run at the full size).
        """
        import tensorflow as tf

        from keras_deconv import pipelines

        height, width = image.shape[:2]
        scale = min(self.size[0] / height, self.size[1] / width)
        small = (max(1, int(height * scale)), max(1, int(width * scale)))
        resized = tf.image.resize(image[None].astype("float32"), small, "bilinear", antialias=True)[0].numpy()
        probabilities = pipelines._softmax(self._scores(np.clip(np.round(resized), 0, 255).astype("uint8")))
        self.downscaled += 1
        return tf.image.resize(probabilities[None], (height, width), "bilinear")[0].numpy()

    def padded_size(self, height, width):
        """``(H, W)``: the size the Keras pipeline pads a ``height x width`` image to (see :attr:`padding`)."""
        min_size, multiple = self.padding
        return tuple(max(-(-side // multiple) * multiple, min_size) for side in (height, width))


class LiteSignature:
    """One signature of a multi-signature ``.tflite`` file, called like :class:`LiteModel` (dicts of arrays).

    ``inputs`` and ``outputs`` map the signature's names to their tensor
    details. The signatures of one file share ``interpreter``.
    """

    def __init__(self, interpreter, key):
        self.key = key
        self.runner = interpreter.get_signature_runner(key)
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()

    def __call__(self, **arrays):
        checked = {}
        for name, detail in self.inputs.items():
            if name not in arrays:
                raise ValueError(f"Missing input {name!r} of signature {self.key!r}; it takes {sorted(self.inputs)}.")
            array = quantize_input(arrays[name], detail)
            if tuple(array.shape) != tuple(detail["shape"]):
                raise ValueError(f"Input {name!r} of signature {self.key!r} must have shape {tuple(detail['shape'])}. "
                                 f"Received {array.shape}.")
            checked[name] = array
        results = self.runner(**checked)
        return {name: dequantize_output(results[name], detail) for name, detail in self.outputs.items()}


class _LiteTwoPart:
    """The encoder and decoder of an export folder, or the ``classify`` and ``segment`` signatures of one file."""

    def __init__(self, path, xnnpack=True, num_threads=None, weight_cache=None):
        if not os.path.isdir(path):
            self._from_signatures(os.fspath(path), xnnpack, num_threads, weight_cache)
            return
        folder = path
        self.manifest = _read_manifest(folder)
        missing = [key for key in ("encoder", "decoder", "input_size", "num_classes") if key not in self.manifest]
        if missing:
            raise ValueError(f"{os.path.join(folder, 'manifest.json')!r} lacks {missing}. {_EXPORT_HINT}")
        encoder = self.manifest["encoder"]
        self.encoder = LiteModel(os.path.join(folder, encoder["file"]), encoder["output_order"], xnnpack, num_threads,
                                 weight_cache)
        decoder = self.manifest["decoder"]
        # Exports before attention was an output have one output and no output_order.
        self.decoder = LiteModel(os.path.join(folder, decoder["file"]), decoder.get("output_order", ["seg_score"]), xnnpack,
                                 num_threads, weight_cache)
        self.size = tuple(self.manifest["input_size"])
        self.num_classes = self.manifest["num_classes"]

    def _from_signatures(self, path, xnnpack, num_threads, weight_cache):
        if weight_cache is not None:
            raise ValueError(f"{path!r} holds its parts as signatures of one file; weight_cache works on the "
                             "folder export (encoder.tflite, decoder.tflite): export with an --out without .tflite.")
        self.manifest = _signature_manifest(path)
        if self.manifest is None:
            raise ValueError(f"{path!r} is not a DecoupledNet / TransferNet export with classify and segment "
                             f"signatures. {_EXPORT_HINT}")
        missing = [key for key in ("input_size", "num_classes") if key not in self.manifest]
        if missing:
            raise ValueError(f"The metadata of {path!r} lacks {missing}. {_EXPORT_HINT}")
        try:
            interpreter = litert_interpreter(path, xnnpack=xnnpack, num_threads=num_threads)
            self.encoder = LiteSignature(interpreter, self.manifest["encoder"]["signature"])
            self.decoder = LiteSignature(interpreter, self.manifest["decoder"]["signature"])
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{path!r} is not a loadable TFLite model (truncated or corrupt?): {error}. "
                             f"{_EXPORT_HINT}") from error
        self.size = tuple(self.manifest["input_size"])
        self.num_classes = self.manifest["num_classes"]

    def _encode(self, image):
        from keras_deconv import pipelines

        return self.encoder(images=pipelines._pad_square_and_resize(image, self.size)[None])

    def _decode(self, encoded, queries):
        """The decoder's outputs for one pass per query row, stacked: ``seg_score`` ``[K, S, S, 2]`` (and
        TransferNet's ``attention``)."""
        tensors = {name: encoded[name] for name in self.decoder.inputs if name != "query"}
        passes = [self.decoder(query=query[None], **tensors) for query in queries]
        return {name: np.concatenate([outputs[name] for outputs in passes]) for name in self.decoder.outputs}


class LiteDecoupledNet(_LiteTwoPart):
    """DecoupledNet's §3.4 inference on the exported encoder (classification) and decoder.

    Encoder once -> scores ``s``; background pass with query
    ``s * [s > threshold]`` and one pass per detected class ``j`` with
    ``e_j * s_j``; softmax; stack, fix empty pixels, normalise, resize back
    (bicubic), argmax. Same results as
    :class:`~keras_deconv.pipelines.DecoupledNetPipeline`, ``tta`` included.
    """

    def __init__(self, folder, *, threshold=0.5, xnnpack=True, num_threads=None, weight_cache=None, tta="none"):
        from keras_deconv.pipelines import _check_tta

        _check_tta(tta)
        super().__init__(folder, xnnpack, num_threads, weight_cache)
        self.threshold, self.tta = threshold, tta

    def __call__(self, images, labels=None):
        """Segment ``images``; ``labels`` (1-based class ids per image) replace the classifier's detection."""
        from keras_deconv import pipelines

        images = pipelines._as_images(images)
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"Expected one label list per image. Received {len(labels)} for {len(images)} images.")
        return [self._one(image, None if labels is None else labels[i]) for i, image in enumerate(images)]

    def _one(self, image, ids=None):
        from keras_deconv import pipelines

        return pipelines._average_runs(image, lambda view: self._single(view, ids), self.tta)

    def _single(self, image, ids=None):
        from keras_deconv import pipelines

        height, width = image.shape[:2]
        encoded = self._encode(image)
        scores = encoded["cls_score_avg_sigmoid"][0]
        detected, queries = pipelines.decouplednet_queries(scores, self.threshold, ids)
        seg = pipelines._softmax(self._decode(encoded, queries)["seg_score"])
        return pipelines.combine_decouplednet(seg, scores, detected, height, width)


class LiteTransferNet(_LiteTwoPart):
    """TransferNet's §4.5 inference (no CRF) on the exported encoder and per-class decoder.

    Class ids (1-based) come from ``labels`` per image, or from
    ``class_scores`` per image (ids with a score >= ``threshold``, else the
    best one). One decoder pass per id; background probability times
    ``background_weight``; resized back (bicubic); argmax over classes,
    background where no class is foreground. ``tta``: the passes' maps
    averaged over the views before the foreground test, as
    :class:`~keras_deconv.pipelines.TransferNetPipeline`.
    """

    def __init__(self, folder, *, threshold=0.6, background_weight=0.5, xnnpack=True, num_threads=None,
                 weight_cache=None, tta="none"):
        from keras_deconv.pipelines import _check_tta

        _check_tta(tta)
        super().__init__(folder, xnnpack, num_threads, weight_cache)
        self.threshold, self.background_weight, self.tta = threshold, background_weight, tta

    def __call__(self, images, labels=None, class_scores=None):
        from keras_deconv import pipelines

        images = pipelines._as_images(images)
        if labels is None and class_scores is None:
            raise ValueError("LiteTransferNet needs class ids (`labels=` per image) or `class_scores=` per image.")
        results = []
        for index, image in enumerate(images):
            if labels is not None:
                ids, scores = pipelines.transfernet_class_ids(self.num_classes, self.threshold, ids=labels[index])
            else:
                ids, scores = pipelines.transfernet_class_ids(self.num_classes, self.threshold, scores=class_scores[index])
            results.append(self._one(image, ids, scores))
        return results

    def _one(self, image, ids, scores):
        from keras_deconv import pipelines

        height, width = image.shape[:2]
        class_maps = np.zeros((height, width, self.num_classes), "float32")
        attention = {} if "attention" in self.decoder.outputs else None
        if ids.size:
            maps = pipelines.average_over_views(image, lambda view: self._pass_maps(view, ids), self.tta)
            for k, class_id in enumerate(ids):
                binary = maps[..., 2 * k : 2 * k + 2]
                foreground = binary.argmax(-1) == 1
                class_maps[..., class_id - 1] = np.where(foreground, binary[..., 1], 0.0)
                if attention is not None:
                    attention[int(class_id)] = maps[..., 2 * len(ids) + k]
        return pipelines.combine_transfernet(class_maps, scores, attention)

    def _pass_maps(self, image, ids):
        """``(H, W, 2K [+ K])``: ``[p_bg, p_fg]`` per class pass, then the attention maps if exported."""
        from keras_deconv import pipelines

        height, width = image.shape[:2]
        decoded = self._decode(self._encode(image), np.eye(self.num_classes, dtype="float32")[ids - 1])
        p = pipelines.transfernet_pass_probabilities(decoded["seg_score"], self.background_weight)
        maps = [pipelines._back_to_image(p[k], height, width) for k in range(len(ids))]
        if "attention" in self.decoder.outputs:
            maps += [pipelines._back_to_image(decoded["attention"][k], height, width) for k in range(len(ids))]
        return np.concatenate(maps, axis=-1)
