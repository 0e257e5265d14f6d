"""Verification of an exported artifact against the Keras model it came from, on sample images.

The bounds and tolerances are module constants (:data:`LABEL_AGREEMENT`,
:data:`SCORE_TOLERANCE`, :data:`TIE_TOLERANCE`, :data:`SWITCH_TIE_TOLERANCE`);
:func:`verify_export` runs the checks and :func:`describe_check` words one.
"""

from keras_deconv.export.kinds import _TUNABLE_SETTINGS, _default_settings, keras_pipeline, model_kind
from keras_deconv.lite import litert_interpreter, run_tflite

#: Agreement bounds of ``verify``: share of pixels with the Keras label.
LABEL_AGREEMENT = {"none": 0.999, "float16": 0.995, "int8": 0.98}
#: ``max|a - b| / max|b|`` bound on float32 scores.
SCORE_TOLERANCE = 1e-4
#: A pixel whose reference gives the exported label a score within this
#: (relative to ``max(1, |top score|)``) of its top score is a tie that
#: rounding decides: either label agrees. Exact ties are common (two classes
#: both at probability 1.0 in float32); 1e-6 is far below any quantization error.
TIE_TOLERANCE = 1e-6
#: A float32 export's pooling switch may differ from Keras's only where the
#: window's two largest Keras values are within this of each other, relative
#: to the largest value of the pooled map: a tie that a different summation
#: order decides (the same rule as the Caffe conversion tests). See
#: :mod:`keras_deconv.export.switch_agreement`.
SWITCH_TIE_TOLERANCE = 1e-5
#: Number of sample images ``verify`` uses by default.
VERIFY_IMAGES = 16


def describe_check(check):
    """One line for a check of :func:`verify_export`: agreement, bounds (and what each is for), and the switch
    comparison when one ran.

    A raw score error over :data:`SCORE_TOLERANCE` is never reported as
    within it: when the check passed through the switch rule, the line says
    that the bound was met with Keras run on the export's own pooling
    switches, and that the switches that differ are ties.

    >>> check = {"runtime": "litert (xnnpack)", "label_agreement": 1.0, "strict_label_agreement": 1.0,
    ...          "label_bound": 0.999, "score_error": 0.064, "score_bound": 1e-4, "passed": True,
    ...          "switches": {"switches": 499712, "switch_flips": 11, "flips_are_ties": True, "max_flip_gap": 1.7e-7,
    ...                       "pinned_score_error": 5.09e-7, "copy_error": 0.0}}
    >>> print(describe_check(check))  # doctest: +NORMALIZE_WHITESPACE
    litert (xnnpack): labels agree on 100.000% of pixels (identical on 100.000%; bound 99.9%, the share of pixels with
    Keras's label), score error 6.40e-02 over the bound 1e-04 (max|export - Keras| / max|Keras| on the scores) where 11
    of 499,712 pooling switches differ from Keras's, all ties (largest gap 1.7e-07 of the pooled map's largest value,
    tie bound 1e-05); Keras run with the export's own switches: score error 5.09e-07, within the bound: OK
    """
    bound = check["score_bound"]
    text = (f"{check['runtime']}: labels agree on {100 * check['label_agreement']:.3f}% of pixels "
            f"(identical on {100 * check['strict_label_agreement']:.3f}%; bound {100 * check['label_bound']:.1f}%, "
            f"the share of pixels with Keras's label), score error {check['score_error']:.2e}")
    scores = "(max|export - Keras| / max|Keras| on the scores)"
    switches = check.get("switches")
    if bound is not None:
        text += (f" {'within' if check['score_error'] <= bound else 'over'} the bound {bound:.0e} {scores}"
                 if switches else f" (bound {bound:.0e}, {scores[1:-1]})")
    if not switches:
        return text + f": {'OK' if check['passed'] else 'FAILED'}"
    ties = ("all ties" if switches["flips_are_ties"] else "NOT all ties") + (
        f" (largest gap {switches['max_flip_gap']:.1e} of the {{map}}'s largest value, tie bound {SWITCH_TIE_TOLERANCE:.0e})")

    def within(error):
        return "within" if bound is not None and error <= bound else "OVER"

    if "encoder_error" in switches:  # an encoder / decoder folder or file: compared part by part
        text += (f"; part by part: the encoder's values {switches['encoder_error']:.2e} ({within(switches['encoder_error'])} "
                 f"the bound), {switches['switch_flips']:,} of {switches['switches']:,} switches and ReLU mask bits "
                 "differ from Keras's, " + ties.format(map="map")
                 + f"; the decoder given the encoder file's outputs: score error {switches['pinned_score_error']:.2e}, "
                 f"{within(switches['pinned_score_error'])} the bound")
    else:
        if switches["switch_flips"]:
            text += (f" where {switches['switch_flips']:,} of {switches['switches']:,} pooling switches differ from "
                     "Keras's, " + ties.format(map="pooled map"))
        else:
            text += f", with all {switches['switches']:,} pooling switches equal to Keras's"
        text += (f"; Keras run with the export's own switches: score error {switches['pinned_score_error']:.2e}, "
                 f"{within(switches['pinned_score_error'])} the bound")
        if switches["copy_error"] > 0:
            text += f"; the copy with switch outputs differs from the file by {switches['copy_error']:.1e}"
    return text + f": {'OK' if check['passed'] else 'FAILED'}"


def sample_images(size=(64, 64), count=VERIFY_IMAGES, seed=0):
    """Deterministic test images: synthetic ``shapes`` scenes resized to ``size``, the last two non-square.

    ``seed`` picks the set: val scenes ``seed * count`` to ``seed * count + count - 1``
    (modulo the 500 val scenes), so the default ``seed=0`` always gives the first ``count``.

    The last one is smaller than ``size`` (``3/4`` of its height); the one
    before it larger (``3/2`` of the height, twice the width less 10 px): it
    checks what an export does with an image larger than its input size.
    """
    import numpy as np
    import tensorflow as tf

    from keras_deconv.datasets import shapes

    images = []
    scenes = shapes.CONFIG_SPLITS["standard"]["val"]
    for index in range(count):
        image = shapes.generate_example("val", (seed * count + index) % scenes, image_size=64)["image"]
        images.append(tf.cast(tf.image.resize(image[None], size), tf.uint8).numpy()[0])
    if count > 1:  # one non-square image, smaller than the network input
        images[-1] = images[-1][: max(1, size[0] * 3 // 4), :]
    if count > 2:  # and one larger than it, also non-square
        larger = (size[0] * 3 // 2, max(1, size[1] * 2 - 10))
        images[-2] = tf.cast(tf.image.resize(images[-2][None], larger), tf.uint8).numpy()[0]
    return [np.ascontiguousarray(image) for image in images]


def _agreement_counts(labels, reference_labels, probabilities, reference_probabilities):
    """(pixels, identical labels, agreeing labels incl. ties, max|a-b|, max|b|) for one array pair."""
    import numpy as np

    identical = labels == reference_labels
    channels = reference_probabilities.shape[-1]
    chosen = np.take_along_axis(reference_probabilities, np.clip(labels, 0, channels - 1)[..., None].astype(np.int64), -1)[..., 0]
    top = np.max(reference_probabilities, axis=-1)
    tied = (labels >= 0) & (labels < channels) & (chosen >= top - TIE_TOLERANCE * np.maximum(1.0, np.abs(top)))
    return (identical.size, int(identical.sum()), int((identical | tied).sum()),
            float(np.max(np.abs(probabilities - reference_probabilities), initial=0.0)),
            float(np.max(np.abs(reference_probabilities), initial=0.0)))


def _agreement(labels, reference_labels, probabilities, reference_probabilities):
    """``(agreement incl. ties, relative score error, identical-label share)``."""
    return _combine([_agreement_counts(labels, reference_labels, probabilities, reference_probabilities)])


def _combine(counts):
    pixels = sum(c[0] for c in counts)
    error = max(c[3] for c in counts) / max(max(c[4] for c in counts), 1e-30)
    return sum(c[2] for c in counts) / pixels, error, sum(c[1] for c in counts) / pixels


def verify_export(model, path, format, quantize="none", *, input_size=None, images=None, **settings):
    """Compare an exported artifact with Keras on sample images.

    * SavedModel: the serving signature against the Keras pipeline (labels,
      probabilities).
    * TFLite, single file (DeconvNet / FCN-8s): raw scores and their argmax
      against the Keras model at the static input size, with XNNPACK on and off.
    * TFLite folder (DecoupledNet / TransferNet): the LiteRT pipeline of
      :mod:`keras_deconv.lite` against the Keras pipeline, XNNPACK on and off.
    * ONNX: onnxruntime against the Keras model.

    Bounds: labels agree on >= 99.9% of pixels (float16 99.5%, int8
    98%); float32 scores within ``1e-4`` relative (``max|a-b| / max|b|``).
    A float32 TFLite or ONNX artifact that misses the score bound passes it
    when its argmax pooling switches differ from Keras's only at ties
    (:data:`SWITCH_TIE_TOLERANCE`) and its scores are within the bound of
    Keras run with its own switches (:mod:`keras_deconv.export.switch_agreement`);
    the check then carries a ``switches`` dict with those figures.
    A label agrees when it is the Keras label, or when Keras scores it
    within :data:`TIE_TOLERANCE` of its top score (an exact tie, decided by
    rounding); the share of identical labels is reported too. Images: the
    given ones, else :data:`VERIFY_IMAGES` deterministic ``shapes`` val
    scenes (one of them non-square).

    Returns:
        A list of dicts: ``runtime``, ``label_agreement`` (ties count as
        agreeing), ``strict_label_agreement`` (identical labels), ``score_error``,
        ``label_bound``, ``score_bound`` (None when not checked), ``passed``.
    """
    import numpy as np

    kind = model_kind(model)
    settings = {**_default_settings(kind, model), **settings}
    label_bound = LABEL_AGREEMENT[quantize]
    score_bound = SCORE_TOLERANCE if quantize == "none" else None
    checks = []

    def add(runtime, agree, error, identical, switches=None):
        scores_ok = score_bound is None or error <= score_bound or _pinned_scores_pass(switches, score_bound)
        checks.append({"runtime": runtime, "label_agreement": agree, "strict_label_agreement": identical,
                       "score_error": error, "label_bound": label_bound, "score_bound": score_bound,
                       "passed": agree >= label_bound and scores_ok, **({"switches": switches} if switches else {})})

    if format == "tflite" and kind in ("deconvnet", "fcn8s"):
        from keras_deconv.export import switch_agreement

        flatbuffer = open(path, "rb").read()
        size = tuple(input_size) if input_size is not None else tuple(model.inputs[0].shape[1:3])
        batch = np.stack([np.asarray(_resize_image(image, size), "float32") for image in (images or sample_images(size))])
        reference = np.asarray(model(batch, training=False))
        for xnnpack in (True, False):
            interpreter = litert_interpreter(flatbuffer, xnnpack=xnnpack)
            outputs = np.concatenate([run_tflite(flatbuffer, [image[None]], interpreter=interpreter)[0] for image in batch])
            agreement = _agreement(outputs.argmax(-1), reference.argmax(-1), outputs, reference)
            switches = None
            if score_bound is not None and agreement[1] > score_bound:  # a tie decided the other way, or wrong arithmetic?
                switches = switch_agreement.pinned_comparison(model, flatbuffer, batch, outputs, xnnpack, SWITCH_TIE_TOLERANCE)
            add(f"litert ({'xnnpack' if xnnpack else 'no xnnpack'})", *agreement, switches=switches)
        if _dynamic_size(flatbuffer):  # an --any-size file: also at the padded size of each image larger than the export's
            _verify_other_sizes(model, flatbuffer, images or sample_images(size), size, settings, score_bound, add)
        return checks
    if format == "onnx":
        return _verify_onnx(model, path, input_size, images, add, checks)

    size = tuple(model.inputs[0].shape[1:3])
    if None in size:
        size = (settings["min_size"], settings["min_size"])
    images = images or sample_images(size)
    pipeline = keras_pipeline(model, **settings)
    given = [[1, 2]] * len(images)
    # TransferNet needs class ids. DecoupledNet runs with its classifier's detections and, so that
    # the per-class decoder is checked even when the classifier detects nothing, with given ids.
    label_sets = {"transfernet": [("", given)], "decouplednet": [("", None), (", class ids 1,2", given)]}.get(kind, [("", None)])
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serving_default"]
        results = []
        for image in images:
            kwargs = {"images": tf.constant(image[None])}
            if kind == "transfernet":
                kwargs["class_ids"] = tf.constant([1, 2], tf.int32)
            out = serve(**kwargs)
            results.append((out["labels"].numpy()[0], out["probabilities"].numpy()[0]))
        labels = label_sets[0][1]
        add("saved_model", *_pooled_agreement(results, pipeline(images, labels=labels) if labels else pipeline(images)))
        return checks
    from keras_deconv import lite

    lite_settings = {key: settings[key] for key in _TUNABLE_SETTINGS if key in settings}
    for suffix, labels in label_sets:
        reference = pipeline(images, labels=labels) if labels else pipeline(images)
        for xnnpack in (True, False):
            lite_pipeline = lite.load(path, xnnpack=xnnpack, **lite_settings)
            outputs = lite_pipeline(images, labels=labels) if labels else lite_pipeline(images)
            agreement = _pooled_agreement([(o.labels, o.probabilities) for o in outputs], reference)
            switches = None
            if score_bound is not None and agreement[1] > score_bound:  # a tie decided the other way, or wrong arithmetic?
                from keras_deconv.export import switch_agreement

                switches = switch_agreement.two_part_comparison(model, path, images, labels, settings["threshold"], xnnpack,
                                                                SWITCH_TIE_TOLERANCE)
            add(f"litert ({'xnnpack' if xnnpack else 'no xnnpack'}){suffix}", *agreement, switches=switches)
    return checks


def _dynamic_size(flatbuffer):
    interpreter = litert_interpreter(flatbuffer, xnnpack=False)
    return any(int(v) < 0 for v in interpreter.get_input_details()[0]["shape_signature"][1:3])


def _verify_other_sizes(model, flatbuffer, images, size, settings, score_bound, add):
    """One check per XNNPACK setting: the file at the Keras pipeline's padded size of each image that does not fit ``size``."""
    import numpy as np

    from keras_deconv import pipelines
    from keras_deconv.export import switch_agreement

    from keras_deconv.lite import tflite_metadata

    # The padding the file records is what lite.load applies; the settings for files without one.
    padding = (tflite_metadata(flatbuffer) or {}).get("padding") or settings
    min_size, multiple = int(padding.get("min_size", max(size))), int(padding.get("multiple", 1))
    canvases = []
    for image in images:
        padded = tuple(max(-(-side // multiple) * multiple, min_size) for side in image.shape[:2])
        if padded[0] > size[0] or padded[1] > size[1]:
            canvas = np.empty(padded + (3,), "float32")
            canvas[:] = pipelines.CAFFE_MEAN_RGB
            canvas[: image.shape[0], : image.shape[1]] = image
            canvases.append(canvas[None])
    if not canvases:
        return
    shapes = ", ".join(f"{c.shape[1]}x{c.shape[2]}" for c in canvases)
    for xnnpack in (True, False):
        counts, pinned = [], []
        interpreter = litert_interpreter(flatbuffer, xnnpack=xnnpack)
        for canvas in canvases:
            reference = np.asarray(model(canvas, training=False))
            output = run_tflite(flatbuffer, [canvas], interpreter=interpreter)[0]
            counts.append(_agreement_counts(output.argmax(-1), reference.argmax(-1), output, reference))
            if score_bound is not None and counts[-1][3] > score_bound * counts[-1][4]:
                pinned.append(switch_agreement.pinned_comparison(model, flatbuffer, canvas, output, xnnpack,
                                                                 SWITCH_TIE_TOLERANCE))
        switches = _merge_switch_reports(pinned) if pinned else None
        add(f"litert ({'xnnpack' if xnnpack else 'no xnnpack'}), at {shapes}", *_combine(counts), switches=switches)


def _merge_switch_reports(reports):
    """One switch report for several images (None if any image had none)."""
    if any(report is None for report in reports):
        return None
    return {"switches": sum(r["switches"] for r in reports), "switch_flips": sum(r["switch_flips"] for r in reports),
            "max_flip_gap": max(r["max_flip_gap"] for r in reports), "flips_are_ties": all(r["flips_are_ties"] for r in reports),
            "pinned_score_error": max(r["pinned_score_error"] for r in reports), "copy_error": max(r["copy_error"] for r in reports)}


def _pinned_scores_pass(switches, score_bound):
    """The score bound holds with the export's own switches, and those differ from Keras's only at ties."""
    from keras_deconv.export.switch_agreement import SAME_OUTPUT_TOLERANCE

    return bool(switches and switches["copy_error"] <= SAME_OUTPUT_TOLERANCE and switches["flips_are_ties"]
                and switches["pinned_score_error"] <= score_bound and switches.get("encoder_error", 0.0) <= score_bound)


def _pooled_agreement(results, reference):
    return _combine([_agreement_counts(labels, ref.labels, probabilities, ref.probabilities)
                     for (labels, probabilities), ref in zip(results, reference)])


def _resize_image(image, size):
    import tensorflow as tf

    if tuple(image.shape[:2]) == tuple(size):
        return image
    return tf.image.resize(image.astype("float32"), size).numpy()


def _verify_onnx(model, path, input_size, images, add, checks):
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    kind = model_kind(model)
    size = tuple(model.inputs[0].shape[1:3])
    if None in size:
        size = tuple(input_size or (64, 64))
    batch = np.stack([np.asarray(_resize_image(image, size), "float32") for image in (images or sample_images(size))])
    feeds = [batch]
    if kind in ("decouplednet", "transfernet"):
        query = np.zeros((len(batch), model.inputs[1].shape[-1]), "float32")
        query[:, 0] = 1.0
        feeds.append(query)
    reference = model(feeds if len(feeds) > 1 else feeds[0], training=False)
    score_output = "seg-score" if isinstance(reference, dict) else None
    reference = np.asarray(reference[score_output] if score_output else reference)
    names = [i.name for i in session.get_inputs()]
    outputs = session.run(None, dict(zip(names, feeds)))
    output = next(o for o in outputs if o.shape == reference.shape)
    agreement = _agreement(output.argmax(-1), reference.argmax(-1), output, reference)
    switches = None
    if agreement[1] > SCORE_TOLERANCE:  # a tie decided the other way, or wrong arithmetic?
        from keras_deconv.export import switch_agreement

        switches = switch_agreement.onnx_pinned_comparison(model, path, feeds, output, SWITCH_TIE_TOLERANCE, score_output)
    add("onnxruntime", *agreement, switches=switches)
    return checks
