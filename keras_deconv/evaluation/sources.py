"""Data to evaluate on: the built-in ``shapes`` splits, PASCAL VOC 2012 and folder datasets (:func:`open_dataset`)."""

import dataclasses
import os

import numpy as np

from keras_deconv import viz
from keras_deconv.images import read_image


class DataError(ValueError):
    """A dataset, split or prediction folder is missing, incomplete or inconsistent."""


@dataclasses.dataclass
class Example:
    """One evaluation example.

    Attributes:
        id: Image id (the name of its label PNG without ``.png``).
        image: ``(H, W, 3)`` uint8 RGB image, or None when only labels are needed.
        label: ``(H, W)`` uint8 ground truth (255 = void).
        image_labels: Sorted 1-based class ids present in the image.
    """

    id: str
    image: np.ndarray
    label: np.ndarray
    image_labels: list


class DataSource:
    """A split of a dataset to evaluate on (see :func:`open_dataset`).

    Attributes:
        name: ``"shapes"``, ``"shapes-hard"``, ``"voc2012"`` or a folder dataset's folder name.
        split: The split name.
        class_names: Names of the ``num_classes`` labels (background first).
        ids: Ids of the selected examples, in order.
        all_ids: Ids of the whole split (to tell extra prediction files).
        description: One line saying which data and list this is.
        image_labels_source: Where image-level labels come from.
    """

    name = split = description = image_labels_source = ""
    class_names = ()
    ids = all_ids = ()

    @property
    def num_classes(self):
        return len(self.class_names)

    def __len__(self):
        return len(self.ids)

    def examples(self, with_images=True):
        """Yields :class:`Example` objects in order."""
        raise NotImplementedError


class _ShapesSource(DataSource):
    def __init__(self, split, limit=None, image_size=64, config="standard"):
        from keras_deconv.datasets import shapes

        splits = shapes.CONFIG_SPLITS[config]
        if split not in splits:
            raise DataError(f"shapes has no split {split!r}. Splits: {', '.join(splits)}.")
        self._shapes, self._config = shapes, config
        self.name = "shapes" if config == "standard" else f"shapes-{config}"
        self.split, self.image_size = split, int(image_size)
        self.class_names = tuple(shapes.CLASS_NAMES)
        self._total = total = splits[split]
        count = total if limit is None else min(int(limit), total)
        self._indices = list(range(count))
        self.ids = [self._id(i) for i in self._indices]
        self.description = (f"shapes (built-in synthetic, {shapes.NUM_CLASSES} classes, config {config!r} "
                            f"version {shapes.VERSIONS[config]}), split {split!r}: "
                            f"{count} of {total} images, {self.image_size}x{self.image_size}")
        self.image_labels_source = "the dataset's image-level labels (objects present in the image)"

    @property
    def all_ids(self):
        # Built on demand: the standard train split has a million ids.
        return [self._id(i) for i in range(self._total)]

    def _id(self, index):
        return f"{self.split}_{index:05d}"

    def examples(self, with_images=True):
        for index in self._indices:
            ex = self._shapes.generate_example(self.split, index, self.image_size, config=self._config)
            ids = (np.flatnonzero(ex["image_labels"]) + 1).tolist()
            yield Example(self._id(index), ex["image"] if with_images else None, ex["label"], ids)


_VOC_LAYOUTS = [("VOCdevkit", "VOC2012"), ("VOC2012",), ("VOCtrainval_11-May-2012", "VOCdevkit", "VOC2012")]


class _VocSource(DataSource):
    def __init__(self, split, data_dir, limit=None):
        if not data_dir:
            raise DataError(
                "--data voc2012 needs --data-dir DIR: the folder holding VOCdevkit/VOC2012/ (extracted from "
                "VOCtrainval_11-May-2012.tar; add benchmark_RELEASE/ from SBD's benchmark.tgz for train_aug)."
            )
        data_dir = os.path.expanduser(os.fspath(data_dir))
        if not os.path.isdir(data_dir):
            raise DataError(f"VOC data directory not found: {data_dir}")
        from keras_deconv.datasets import voc

        root = voc._find_dir(data_dir, _VOC_LAYOUTS)
        if root is None:
            if os.path.isfile(os.path.join(data_dir, voc.VOC_TAR)):
                raise DataError(
                    f"{data_dir} holds {voc.VOC_TAR} but not its extracted VOCdevkit/VOC2012/; "
                    f"extract it first (tar xf {os.path.join(data_dir, voc.VOC_TAR)} -C {data_dir})."
                )
            raise DataError(f"PASCAL VOC 2012 not found in {data_dir}: expected VOCdevkit/VOC2012/ "
                            f"(from {voc.VOC_TAR}) or VOC2012/.")
        seg_sets = os.path.join(root, "ImageSets", "Segmentation")
        self.name, self.split, self.root = "voc2012", split, root
        self.class_names = tuple(voc.CLASS_NAMES)
        self._sbd = None
        if split in ("train", "val"):
            list_file = os.path.join(seg_sets, f"{split}.txt")
            if not os.path.isfile(list_file):
                raise DataError(f"VOC split list missing: {list_file}")
            ids = voc._read_ids(list_file)
            listing = f"ImageSets/Segmentation/{split}.txt"
        elif split == "train_aug":
            sbd = voc._find_dir(data_dir, [("benchmark_RELEASE", "dataset"), ("dataset",)])
            if sbd is None:
                raise DataError(f"train_aug needs SBD: benchmark_RELEASE/dataset/ (from {voc.SBD_TGZ}) not found in {data_dir}.")
            lists = [os.path.join(seg_sets, "train.txt"), os.path.join(seg_sets, "val.txt"),
                     os.path.join(sbd, "train.txt"), os.path.join(sbd, "val.txt")]
            missing = [p for p in lists if not os.path.isfile(p)]
            if missing:
                raise DataError(f"Split list(s) missing: {', '.join(missing)}")
            train, val, sbd_train, sbd_val = (voc._read_ids(p) for p in lists)
            ids = sorted((set(sbd_train) | set(sbd_val) | set(train)) - set(val))
            self._sbd = sbd
            listing = "train_aug = SBD train + SBD val + VOC train - VOC val"
        elif split == "test":
            raise DataError("VOC 2012 test has no public labels; evaluate on 'val' (or submit test results to the VOC server).")
        else:
            raise DataError(f"voc2012 has no split {split!r}. Splits: train, val, train_aug.")
        self.all_ids = list(ids)
        self.ids = ids if limit is None else ids[: int(limit)]
        missing = []
        for image_id in self.ids:
            image, label = self._files(image_id)
            if image is None:
                missing.append(f"JPEGImages/{image_id}.jpg")
            if label is None:
                missing.append(f"SegmentationClass/{image_id}.png")
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DataError(f"{len(missing)} file(s) of VOC {split} missing under {root}: {shown}")
        self.description = (f"PASCAL VOC 2012 {split} ({listing}): {len(self.ids)} of {len(ids)} images "
                            f"from {root}")
        self.image_labels_source = "the classes present in each ground-truth mask (255 excluded)"

    def _files(self, image_id):
        image = os.path.join(self.root, "JPEGImages", f"{image_id}.jpg")
        label = os.path.join(self.root, "SegmentationClass", f"{image_id}.png")
        if self._sbd is not None:
            if not os.path.isfile(image):
                image = os.path.join(self._sbd, "img", f"{image_id}.jpg")
            if not os.path.isfile(label):
                label = os.path.join(self._sbd, "cls", f"{image_id}.mat")
        return (image if os.path.isfile(image) else None), (label if os.path.isfile(label) else None)

    def examples(self, with_images=True):
        from keras_deconv.datasets import voc

        for image_id in self.ids:
            image_path, label_path = self._files(image_id)
            label = voc.read_sbd_mat(label_path) if label_path.endswith(".mat") else viz.read_label_png(label_path)
            label = np.asarray(label, dtype=np.uint8)
            image = read_image(image_path, max_pixels=0) if with_images else None
            if image is not None and image.shape[:2] != label.shape:
                raise DataError(f"{image_id}: image {image.shape[:2]} and label {label.shape} sizes differ.")
            present = np.unique(label)
            ids = [int(c) for c in present if 0 < c < len(self.class_names)]
            yield Example(image_id, image, label, ids)


class _FolderSource(DataSource):
    """A split of a folder dataset (:mod:`keras_deconv.datasets.folder`): classes from ``classes.txt``."""

    def __init__(self, split, data_dir, limit=None):
        from keras_deconv.datasets import folder

        if not data_dir:
            raise DataError("--data folder needs --data-dir DIR: the folder holding classes.txt, images/<split>/ and "
                            "masks/<split>/ (see `keras-deconv data check DIR`).")
        try:  # every mask is read and checked; images decode as they are evaluated
            self._split = folder.scan(os.path.expanduser(os.fspath(data_dir)), split, decode_images=False)
        except folder.FolderDatasetError as error:
            raise DataError(str(error)) from None
        root = self._split.root
        self.name, self.split, self.root = os.path.basename(root) or root, split, root
        self.class_names = tuple(self._split.class_names)
        self.all_ids = list(self._split.names)
        self.ids = self.all_ids if limit is None else self.all_ids[: int(limit)]
        self.description = (f"folder dataset {root} ({len(self.class_names)} classes from classes.txt), split "
                            f"{split!r}: {len(self.ids)} of {len(self.all_ids)} images")
        self.image_labels_source = "the classes present in each ground-truth mask (255 excluded)"

    def examples(self, with_images=True):
        from keras_deconv.datasets import folder

        for name, image_path, mask_path in zip(self.ids, self._split.image_paths, self._split.mask_paths):
            label = folder.read_mask(mask_path).astype(np.uint8)
            image = read_image(image_path) if with_images else None
            if image is not None and image.shape[:2] != label.shape:
                raise DataError(f"{mask_path}: mask {label.shape} and image {image.shape[:2]} sizes differ. Run "
                                f"`keras-deconv data check {self.root}`.")
            present = np.unique(label)
            yield Example(name, image, label, [int(c) for c in present if 0 < c < len(self.class_names)])

    def check_label_names(self, model_name, num_labels, model_names):
        """Raises ValueError unless the model's labels are this dataset's classes, by name and in order.

        A folder dataset's classes are its own, so equal counts are not
        enough: ``background, cat, dog`` against ``background, dog, cat``
        would score every cat as a dog. A model with more labels is accepted
        when its first ones are the dataset's (as for the other datasets).
        """
        names = [str(n) for n in self.class_names]
        given = [str(n) for n in (model_names or [])][: len(names)]
        if num_labels >= len(names) and [n.lower() for n in given] == [n.lower() for n in names]:
            return
        shown = lambda items: ", ".join(items[:6]) + (", ..." if len(items) > 6 else "")  # noqa: E731
        if num_labels != len(names):
            what = f"outputs {num_labels} classes but {self.root} has {len(names)} ({shown(names)})"
        else:
            index = next(i for i, (a, b) in enumerate(zip(given, names)) if a.lower() != b.lower())
            what = (f"names its {num_labels} classes {shown(given)} but {self.root}/classes.txt lists "
                    f"{shown(names)} (line {index + 1}: {given[index]!r} vs {names[index]!r})")
        raise ValueError(f"{model_name} {what}; the label spaces do not match. Evaluate a model trained on this "
                         f"dataset's classes.txt, or fine-tune one on it (`keras-deconv train deconvnet|fcn8s --data "
                         f"folder --data-dir {self.root} --init MODEL`).")


def open_dataset(data, split, data_dir=None, limit=None, image_size=64):
    """Opens a split for evaluation.

    Args:
        data: ``"shapes"`` (built in, no files; the standard config),
            ``"shapes-hard"`` (its hard config, version 1, on which the
            shipped small models were trained), ``"voc2012"`` or
            ``"folder"`` (your own: :mod:`keras_deconv.datasets.folder`).
        split: shapes: ``train``/``val``/``test``; voc2012: ``train``,
            ``val`` (1,449 images, the standard evaluation list) or
            ``train_aug`` (needs SBD); folder: a folder under ``images/``.
        data_dir: voc2012: the manual directory of the ``voc2012_seg``
            builder, i.e. the folder holding ``VOCdevkit/VOC2012/`` (and
            ``benchmark_RELEASE/`` for ``train_aug``); folder: the dataset
            (``classes.txt``, ``images/``, ``masks/``).
        limit: Use only the first ``limit`` images of the list.
        image_size: shapes only: image side (multiple of 32, >= 64).

    Returns:
        A :class:`DataSource`.

    Raises:
        DataError: Unknown data/split, or missing directory/files (one line
            naming what is missing).

    Example:

    >>> src = open_dataset("shapes", "val", limit=3)
    >>> len(src), src.num_classes, src.ids[0]
    (3, 13, 'val_00000')
    """
    if limit is not None and int(limit) < 1:
        raise DataError(f"Expected limit >= 1. Received: limit={limit}")
    if data == "shapes":
        return _ShapesSource(split, limit, image_size)
    if data == "shapes-hard":
        return _ShapesSource(split, limit, image_size, config="hard")
    if data in ("voc2012", "voc"):
        return _VocSource(split, data_dir, limit)
    if data == "folder":
        return _FolderSource(split, data_dir, limit)
    raise DataError(f"Unknown dataset {data!r}: expected 'shapes', 'shapes-hard', 'voc2012' or 'folder'.")
