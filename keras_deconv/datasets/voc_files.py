"""PASCAL VOC 2012 segmentation as (image, mask) file pairs, for training (``train ... --data voc2012``).

``DATA_DIR`` is the folder ``evaluate --data voc2012`` takes: it holds
``VOCdevkit/VOC2012/`` (extracted from ``VOCtrainval_11-May-2012.tar``; or
``VOC2012/``). A split is the list ``ImageSets/Segmentation/<split>.txt``;
its pairs are ``JPEGImages/ID.jpg`` and ``SegmentationClass/ID.png``
(palette PNGs, read by index: 0-20, 255 = void). Training streams them
through :mod:`keras_deconv.training.folder_data` like a folder dataset.

Unlike :mod:`keras_deconv.datasets.voc` (the TFDS builder), this module
needs neither ``tensorflow_datasets`` nor a prepared dataset.

Example:

>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> root = tempfile.mkdtemp()
>>> voc = os.path.join(root, "VOCdevkit", "VOC2012")
>>> for sub in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClass"):
...     os.makedirs(os.path.join(voc, sub))
>>> _ = open(os.path.join(voc, "ImageSets/Segmentation/train.txt"), "w").write("2007_000032\\n")
>>> Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(os.path.join(voc, "JPEGImages/2007_000032.jpg"))
>>> mask = Image.fromarray(np.zeros((6, 8), np.uint8)).convert("P")  # VOC masks are palette PNGs
>>> mask.save(os.path.join(voc, "SegmentationClass/2007_000032.png"))
>>> dataset = voc_dataset(root)
>>> dataset.kind, len(dataset.train), dataset.val, dataset.class_names[15]
('voc2012', 1, None, 'person')
"""

import os

from keras_deconv.datasets.folder import FilePairs, FolderDatasetError, PairDataset

__all__ = ["CLASS_NAMES", "VOC_LAYOUTS", "VocDataError", "find_voc_root", "voc_dataset", "voc_split"]

#: The 21 VOC labels (index 0 = background); the same as :data:`keras_deconv.datasets.voc.CLASS_NAMES`.
CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus",
    "car", "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike",
    "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
#: Where VOC 2012 may sit inside the data directory, in the order they are tried.
VOC_LAYOUTS = (("VOCdevkit", "VOC2012"), ("VOC2012",), ("VOCtrainval_11-May-2012", "VOCdevkit", "VOC2012"))
VOC_TAR = "VOCtrainval_11-May-2012.tar"
#: Missing files named in an error message before "and N more".
SHOWN_FILES = 3


class VocDataError(FolderDatasetError):
    """The VOC directory, a list or a listed file is missing; the message names the path and what to do."""


def find_voc_root(data_dir):
    """The ``VOC2012`` folder inside ``data_dir`` (see :data:`VOC_LAYOUTS`).

    Raises:
        VocDataError: ``data_dir`` missing, or no VOC 2012 folder in it.
    """
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(data_dir):
        raise VocDataError(f"{data_dir}: no such directory. --data voc2012 --data-dir DIR takes the folder holding "
                           f"VOCdevkit/VOC2012/ (extracted from {VOC_TAR}).")
    for layout in VOC_LAYOUTS:
        root = os.path.join(data_dir, *layout)
        if os.path.isdir(root):
            return root
    if os.path.isfile(os.path.join(data_dir, VOC_TAR)):
        raise VocDataError(f"{data_dir}: holds {VOC_TAR} but not its extracted VOCdevkit/VOC2012/; extract it "
                           f"first (tar xf {os.path.join(data_dir, VOC_TAR)} -C {data_dir}).")
    raise VocDataError(f"{data_dir}: no VOCdevkit/VOC2012/ (or VOC2012/) folder in it. Extract {VOC_TAR} there.")


def voc_split(data_dir, split):
    """The pairs of ``ImageSets/Segmentation/<split>.txt`` as :class:`~keras_deconv.datasets.folder.FilePairs`.

    Raises:
        VocDataError: no VOC folder, no such list, an empty list, or listed
            images/masks missing (the first few named, then a count).
    """
    root = find_voc_root(data_dir)
    list_file = os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(list_file):
        raise VocDataError(f"{list_file}: missing; the {split} split of VOC 2012 segmentation lists its image ids "
                           f"there (one a line). Re-extract {VOC_TAR}.")
    with open(list_file, encoding="utf-8") as f:
        names = [line.split()[0] for line in f if line.strip()]
    if not names:
        raise VocDataError(f"{list_file}: empty; list one image id a line.")
    image_paths = [os.path.join(root, "JPEGImages", f"{name}.jpg") for name in names]
    mask_paths = [os.path.join(root, "SegmentationClass", f"{name}.png") for name in names]
    missing = [p for pair in zip(image_paths, mask_paths) for p in pair if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(os.path.relpath(p, root) for p in missing[:SHOWN_FILES])
        more = f" and {len(missing) - SHOWN_FILES} more" if len(missing) > SHOWN_FILES else ""
        raise VocDataError(f"{root}: {len(missing)} file(s) listed in ImageSets/Segmentation/{split}.txt missing: "
                           f"{shown}{more}. Restore them, or remove their ids from the list.")
    return FilePairs(root, split, CLASS_NAMES, names, image_paths, mask_paths)


def voc_dataset(data_dir, train_split="train", val_split="val"):
    """VOC 2012 as a :class:`~keras_deconv.datasets.folder.PairDataset`: train on ``train.txt``, score ``val.txt``.

    ``val`` is None when ``ImageSets/Segmentation/val.txt`` does not exist
    (a listed file missing is still an error).
    """
    train = voc_split(data_dir, train_split)
    has_val = os.path.isfile(os.path.join(train.root, "ImageSets", "Segmentation", f"{val_split}.txt"))
    val = voc_split(data_dir, val_split) if has_val else None
    return PairDataset("voc2012", os.path.abspath(os.path.expanduser(os.fspath(data_dir))), CLASS_NAMES, train, val)
