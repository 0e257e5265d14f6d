"""One interface over every pipeline: :class:`Segmenter` and the :class:`Prediction` it returns per image."""

import dataclasses

import numpy as np

RANDOM_WEIGHTS_LABEL = "none (random initialisation)"


@dataclasses.dataclass
class Prediction:
    """One image's result.

    Attributes:
        labels: ``(H, W)`` uint8 label map at the image's size (0 = background).
        scores: Image-level scores as the pipeline defines them (may be None).
        probabilities: ``(H, W, L)`` float32 per-pixel maps (may be None).
        class_ids: Classes the pipeline looked for (TransferNet/DecoupledNet:
            the queried/detected ids; None for dense models).
        attention: TransferNet only: ``{class id: (H, W) float32 map}`` at
            the image's size, rescaled to [0, 1] per class.
    """

    labels: np.ndarray
    scores: np.ndarray = None
    probabilities: np.ndarray = None
    class_ids: list = None
    attention: dict = None


class Segmenter:
    """One interface over every pipeline.

    Build one with :meth:`from_pipeline` (any :mod:`keras_deconv.pipelines`
    object), :func:`~keras_deconv.evaluation.load_exported_segmenter` (a
    TFLite export) or :func:`keras_deconv.zoo.load_segmenter` (a zoo name).

    Attributes:
        name: Model name (the zoo entry's for zoo models).
        family: Builder name (``"DeconvNet"``, ``"DecoupledNet"``, ...).
        pipeline: The underlying :mod:`keras_deconv.pipelines` object.
        num_labels: Labels the segmenter can output, background included.
        class_names: ``num_labels`` names.
        weights_label: Human-readable weights, e.g. ``"voc2012"`` or
            :data:`RANDOM_WEIGHTS_LABEL`.
        weights_info: Dict with tag/path, random flag and re-initialised layers.
        needs_image_labels: True when ``predict`` needs ``image_labels``
            (TransferNet without a classifier).
        crf: Whether a dense CRF is applied.
        notes: Messages about how the pipeline was set up.
    """

    def __init__(self, *, name, family, pipeline, num_labels, class_names, weights_label, weights_info,
                 needs_image_labels=False, crf=False, notes=(), config=None, pipeline_options=None):
        self.name, self.family, self.pipeline = name, family, pipeline
        self.num_labels, self.class_names = int(num_labels), list(class_names)
        self.weights_label, self.weights_info = weights_label, weights_info
        self.needs_image_labels, self.crf = needs_image_labels, crf
        self.notes = list(notes)
        self.config = dict(config or {})
        self.pipeline_options = dict(pipeline_options or {})

    @classmethod
    def from_pipeline(cls, pipeline, class_names, name=None, weights_label="given model", crf=False):
        """A segmenter over a pipeline built by hand (e.g. ``DeconvNetPipeline(model)``).

        Args:
            pipeline: A :mod:`keras_deconv.pipelines` object.
            class_names: The names of its labels, background first.
            name: Shown in reports (default: the family).
            weights_label: Shown in reports.
            crf: Whether the pipeline applies a dense CRF (reported only).

        Example:

        >>> from keras_deconv.models import FCN8s
        >>> from keras_deconv.pipelines import FCN8sPipeline
        >>> seg = Segmenter.from_pipeline(FCN8sPipeline(FCN8s(num_classes=3, width=1 / 16, fc_units=16)), ["bg", "a", "b"])
        >>> seg.family, seg.num_labels, seg.needs_image_labels
        ('FCN8s', 3, False)
        """
        family = type(pipeline).__name__.removesuffix("Pipeline")
        needs_labels = family == "TransferNet" and getattr(pipeline, "classifier", None) is None
        return cls(name=name or family, family=family, pipeline=pipeline, num_labels=len(class_names),
                   class_names=class_names, weights_label=weights_label,
                   weights_info={"tag": None, "path": None, "random": False, "reinitialised": []},
                   needs_image_labels=needs_labels, crf=crf)

    @property
    def accepts_image_labels(self):
        """True when ``predict`` can take known class ids (TransferNet, DecoupledNet: oracle evaluation)."""
        return self.family in ("TransferNet", "DecoupledNet")

    @property
    def is_random(self):
        """True if the weights are a random initialisation."""
        return bool(self.weights_info.get("random"))

    def describe(self):
        """A JSON-serialisable summary of the model and its weights."""
        return {
            "name": self.name,
            "family": self.family,
            "weights": self.weights_label,
            "weights_detail": self.weights_info,
            "num_labels": self.num_labels,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.config.items()},
            "pipeline_options": self.pipeline_options,
            "crf": self.crf,
            "notes": self.notes,
        }

    def predict(self, images, image_labels=None):
        """Segments a list of RGB images of any sizes.

        Args:
            images: List of ``(H, W, 3)`` uint8 RGB arrays.
            image_labels: For class-conditional pipelines, one list of class
                ids (1-based label ids, i.e. values in the label map) per
                image. Required when :attr:`needs_image_labels`.

        Returns:
            A list of :class:`Prediction`, one per image, label maps at each
            image's original size.
        """
        images = [np.asarray(image) for image in images]
        if not images:
            return []
        if image_labels is None and self.needs_image_labels:
            raise ValueError(
                f"{self.name} needs image-level labels (class ids per image): the authors' "
                "classifier was not released."
            )
        if image_labels is not None and not self.accepts_image_labels:
            raise ValueError(f"{self.name} ({self.family}) does not take image-level labels.")
        if image_labels is not None:
            results = self.pipeline(images, labels=[[int(i) for i in ids] for ids in image_labels])
        else:
            results = self.pipeline(images)
        out = []
        for k, result in enumerate(results):
            labels = np.asarray(getattr(result, "labels", result))
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise ValueError(f"{self.name} returned labels outside 0..255 (min {labels.min()}, max {labels.max()}).")
            class_ids = None
            if image_labels is not None:
                class_ids = sorted({int(i) for i in image_labels[k]})
            elif self.family == "DecoupledNet" and getattr(result, "scores", None) is not None:
                threshold = getattr(self.pipeline, "threshold", 0.5)
                class_ids = (np.flatnonzero(np.asarray(result.scores) > threshold) + 1).tolist()
            attention = getattr(result, "attention", None)
            if attention:
                attention = {int(k): _unit_range(v) for k, v in attention.items()}
            out.append(Prediction(
                labels=labels.astype(np.uint8),
                scores=getattr(result, "scores", None),
                probabilities=getattr(result, "probabilities", None),
                class_ids=class_ids,
                attention=attention or None,
            ))
        return out


def _unit_range(values):
    values = np.nan_to_num(np.asarray(values, np.float32))
    values = values - values.min() if values.size else values
    top = values.max() if values.size else 0.0
    return values / top if top > 0 else values
