"""Your own segmentation data: a folder of images with class-index masks.

Layout (``DIR`` is any folder)::

    DIR/classes.txt                  one class name a line; line 1 = background (index 0)
    DIR/images/<split>/NAME.jpg      or .jpeg / .png, any size (split: train, val, ...)
    DIR/masks/<split>/NAME.png       8-bit class index per pixel, 255 = void (ignored)

An image and its mask are matched by file stem (``NAME``) and must have the
same size. Masks are single-channel PNGs (mode ``L``) or palette PNGs
(mode ``P``, as PASCAL VOC ``SegmentationClass``): palette masks are read by
index, never by colour. A pixel value must be a class index
(``0 .. len(classes) - 1``) or 255.

* :func:`scan` lists and validates one split; every problem raises one
  :class:`FolderDatasetError` naming the first few files, the count, and
  what to do.
* :func:`check` scans every split: image counts and per-class pixel shares.
* :func:`examples` yields ``(name, image, label)`` NumPy pairs (for
  evaluation or your own loops); training streams the files with
  :mod:`keras_deconv.training.folder_data`.

Example:

>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> root = tempfile.mkdtemp()
>>> for sub in ("images/train", "masks/train"):
...     os.makedirs(os.path.join(root, sub))
>>> _ = open(os.path.join(root, "classes.txt"), "w").write("background\\ncat\\n")
>>> Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(os.path.join(root, "images/train/a.png"))
>>> Image.fromarray(np.eye(6, 8, dtype=np.uint8)).save(os.path.join(root, "masks/train/a.png"))
>>> report = check(root)
>>> report["splits"]["train"]["images"], report["splits"]["train"]["class_shares"]["cat"]
(1, 0.125)
"""

import dataclasses
import os

import numpy as np

from keras_deconv.images import IMAGE_EXTENSIONS, ImageError, read_image

__all__ = ["CLASSES_FILE", "IGNORE_LABEL", "FilePairs", "FolderDatasetError", "FolderSplit", "PairDataset", "check",
           "examples", "open_folder", "read_classes", "read_mask", "scan", "split_names"]

CLASSES_FILE = "classes.txt"
IGNORE_LABEL = 255
#: Files listed by name in an error message before "and N more".
SHOWN_FILES = 3


class FolderDatasetError(ValueError):
    """A folder dataset is broken; the message is one line: what, which files, what to do."""


@dataclasses.dataclass
class FilePairs:
    """One split of a dataset as (image file, mask file) pairs: what training streams and evaluation reads.

    A folder split (:class:`FolderSplit`) is one; so is a PASCAL VOC list
    (:func:`keras_deconv.datasets.voc_files.voc_split`). Masks hold class
    indices (palette PNGs by index), 255 = void.

    Attributes:
        root: the dataset folder (for messages).
        split: the split name.
        class_names: index 0 = background.
        names: one id per pair.
        image_paths, mask_paths: the files, in ``names`` order.
    """

    root: str
    split: str
    class_names: tuple
    names: list
    image_paths: list
    mask_paths: list

    @property
    def num_classes(self):
        return len(self.class_names)

    def __len__(self):
        return len(self.names)

    def examples(self):
        """Yields ``(name, image (H, W, 3) uint8, label (H, W) uint8)`` in order."""
        for name, image_path, mask_path in zip(self.names, self.image_paths, self.mask_paths):
            yield name, read_image(image_path), read_mask(mask_path).astype(np.uint8)


@dataclasses.dataclass
class FolderSplit(FilePairs):
    """One validated split of a folder dataset (:class:`FilePairs` plus pixel counts).

    Attributes:
        root: the dataset folder.
        split: the split name (a folder under ``images/``).
        class_names: from ``classes.txt`` (index 0 = background).
        names: file stems, sorted.
        image_paths, mask_paths: the matching files, in ``names`` order.
        pixel_counts: pixels per class over the split's masks (int64).
        void_pixels: pixels marked 255.
    """

    pixel_counts: np.ndarray
    void_pixels: int


@dataclasses.dataclass
class PairDataset:
    """A dataset to train on: its train pairs, optional held-out pairs and class names.

    Attributes:
        kind: ``"folder"`` or ``"voc2012"`` (the weights tag of a run trained on it).
        root: the folder given (``--data-dir``).
        class_names: index 0 = background.
        train: the :class:`FilePairs` to train on.
        val: the :class:`FilePairs` scored after training, or None.
    """

    kind: str
    root: str
    class_names: tuple
    train: FilePairs
    val: FilePairs = None


def open_folder(root):
    """A folder dataset as a :class:`PairDataset`: ``train`` and (when present) ``val``, headers-only scans.

    Masks are read and checked in full, images decode while training.
    """
    root = os.path.abspath(os.fspath(root))
    class_names = read_classes(root)
    train = scan(root, "train", decode_images=False)
    val = scan(root, "val", decode_images=False) if "val" in split_names(root) else None
    return PairDataset("folder", root, class_names, train, val)


def _listing(paths, root, limit=SHOWN_FILES):
    """``a, b, c and 4 more`` with paths relative to the dataset folder."""
    shown = [os.path.relpath(p, root) if p.startswith(root + os.sep) else p for p in paths[:limit]]
    text = ", ".join(shown)
    return f"{text} and {len(paths) - limit} more" if len(paths) > limit else text


def _fail(root, what, items, advice):
    count = f"{len(items)} file{'s' if len(items) != 1 else ''}"
    raise FolderDatasetError(f"{root}: {what} ({count}): {_listing(items, root)}. {advice}")


def read_classes(root):
    """The class names of ``root/classes.txt`` (blank lines and surrounding spaces ignored).

    Raises:
        FolderDatasetError: no such file, fewer than 2 names, more than 255,
            or a name listed twice.
    """
    root = os.fspath(root)
    path = os.path.join(root, CLASSES_FILE)
    if not os.path.isdir(root):
        raise FolderDatasetError(f"{root}: no such dataset folder. Expected {CLASSES_FILE}, images/<split>/ and "
                                 "masks/<split>/ inside it (see docs/your-data.md).")
    if not os.path.isfile(path):
        raise FolderDatasetError(f"{path}: missing. Write one class name a line, the background class first "
                                 "(line 1 = mask value 0, line 2 = value 1, ...).")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) < 2:
        raise FolderDatasetError(f"{path}: {len(names)} class name(s); list the background and at least one class, "
                                 "one a line.")
    if len(names) > IGNORE_LABEL:
        raise FolderDatasetError(f"{path}: {len(names)} classes; at most 255 fit in 8-bit masks (255 = void).")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FolderDatasetError(f"{path}: class name(s) listed twice: {', '.join(duplicates)}. Each line names "
                                 "one class; remove the repeats.")
    return tuple(names)


def split_names(root):
    """The splits of a dataset: the sub-folders of ``root/images`` (sorted)."""
    images = os.path.join(os.fspath(root), "images")
    if not os.path.isdir(images):
        raise FolderDatasetError(f"{images}: missing. Put the images in {images}/<split>/ (e.g. train/, val/).")
    return sorted(d for d in os.listdir(images) if not d.startswith(".") and os.path.isdir(os.path.join(images, d)))


def read_mask(path):
    """A mask PNG as ``(H, W)`` class indices (uint8 values, returned as int64 when wider).

    Mode ``L`` and ``1`` give their values, palette (``P``) masks their palette
    indices (the colours are ignored), 16-bit masks their values.

    Raises:
        FolderDatasetError: unreadable, or a colour (RGB/RGBA/LA) image.
    """
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode not in ("L", "P", "1", "I", "I;16", "I;16L", "I;16B"):
                raise FolderDatasetError(
                    f"{path}: a {mode} image; masks hold one class index per pixel (8-bit grayscale 'L' or palette "
                    "'P' PNG). Convert colour masks to class indices first.")
            values = np.array(im)
    except FolderDatasetError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise FolderDatasetError(f"{path}: unreadable mask ({error}). Re-save it as a PNG.") from None
    return values.astype(np.uint8) if values.dtype == bool else values


def _image_files(folder):
    found = {}
    for entry in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(entry)
        if entry.startswith(".") or ext.lower() not in IMAGE_EXTENSIONS:
            continue
        found.setdefault(stem, []).append(os.path.join(folder, entry))
    return found


def _image_size(path):
    """``(height, width)`` of an image from its header, upright as :func:`read_image` returns it."""
    from PIL import Image

    with Image.open(path) as im:
        orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
        width, height = im.size
    # EXIF rotations by 90/270 degrees swap the sides, as read_image does.
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def scan(root, split="train", *, decode_images=True):
    """Lists and validates one split of a folder dataset.

    Every mask is read (its values are checked and counted); every image is
    decoded with :func:`keras_deconv.images.read_image` (``decode_images``;
    ``False`` reads the headers only, which is faster but misses truncated
    files). Problems are reported in this order, each as one
    :class:`FolderDatasetError` naming the files: missing ``classes.txt``,
    missing or empty split, images without a mask, unreadable images,
    unreadable or colour masks, size mismatches, mask values that are
    neither a class nor 255.

    Args:
        root: the dataset folder.
        split: a folder name under ``images/``.
        decode_images: decode every image (default) or read headers only.

    Returns:
        A :class:`FolderSplit`.
    """
    root = os.path.normpath(os.fspath(root))
    class_names = read_classes(root)
    image_dir = os.path.join(root, "images", split)
    mask_dir = os.path.join(root, "masks", split)
    if not os.path.isdir(image_dir):
        available = split_names(root) if os.path.isdir(os.path.join(root, "images")) else []
        found = f"splits found: {', '.join(available)}" if available else "no split folder under images/"
        raise FolderDatasetError(f"{image_dir}: no such split folder ({found}). Put the {split} images there.")
    images = _image_files(image_dir)
    if not images:
        raise FolderDatasetError(f"{image_dir}: empty split, no .jpg/.jpeg/.png image. Add images, or remove the "
                                 "folder.")
    twice = [p for paths in images.values() if len(paths) > 1 for p in paths]
    if twice:
        _fail(root, f"split {split!r}: two images share a name", twice, "Rename them: an image and its mask are "
              "matched by file name without extension.")
    names = sorted(images)
    image_paths = [images[n][0] for n in names]
    mask_paths = [os.path.join(mask_dir, n + ".png") for n in names]
    missing = [m for m in mask_paths if not os.path.isfile(m)]
    if missing:
        jpeg = [m for m in missing if os.path.exists(m[:-4] + ".jpg") or os.path.exists(m[:-4] + ".jpeg")]
        hint = " Masks must be PNG (JPEG compression changes the class indices)." if jpeg else ""
        _fail(root, f"split {split!r}: images without a mask", missing,
              f"Each images/{split}/NAME.jpg|png needs masks/{split}/NAME.png (class index per pixel).{hint}")

    sizes, unreadable, reason = [], [], None
    for path in image_paths:
        try:
            sizes.append(read_image(path).shape[:2] if decode_images else _image_size(path))
        except (ImageError, OSError, ValueError, SyntaxError) as error:
            unreadable.append(path)
            reason = reason or getattr(error, "reason", str(error))
            sizes.append(None)
    if unreadable:
        _fail(root, f"split {split!r}: unreadable images (first: {reason})", unreadable,
              "Re-save or remove them (and their masks).")

    counts = np.zeros(len(class_names), np.int64)
    void = 0
    mismatched, bad_values, bad_value_set = [], [], set()
    for image_path, mask_path, size in zip(image_paths, mask_paths, sizes):
        mask = read_mask(mask_path)
        if mask.shape != tuple(size):
            mismatched.append(f"{os.path.relpath(mask_path, root)} ({mask.shape[1]}x{mask.shape[0]}, image "
                              f"{size[1]}x{size[0]})")
            continue
        values, value_counts = np.unique(mask, return_counts=True)
        wrong = [int(v) for v in values if v >= len(class_names) and v != IGNORE_LABEL]
        if wrong:
            bad_values.append(mask_path)
            bad_value_set.update(wrong)
            continue
        for value, count in zip(values, value_counts):
            if value == IGNORE_LABEL:
                void += int(count)
            else:
                counts[value] += int(count)
    if mismatched:
        _fail(root, f"split {split!r}: mask and image sizes differ", mismatched,
              "A mask must have its image's width and height (resize masks with nearest-neighbour only).")
    if bad_values:
        shown = sorted(bad_value_set)
        values = ", ".join(map(str, shown[:8])) + (", ..." if len(shown) > 8 else "")
        _fail(root, f"split {split!r}: mask values {values} are neither a class of {CLASSES_FILE} "
              f"(0-{len(class_names) - 1}) nor 255 (void)", bad_values,
              f"Fix those masks, or add the missing classes to {CLASSES_FILE}.")
    return FolderSplit(root, split, class_names, names, image_paths, mask_paths, counts, void)


def check(root, splits=None, *, decode_images=True):
    """Scans every split (or ``splits``): image counts and per-class pixel shares.

    Returns:
        ``{"root", "classes": [...], "splits": {split: {"images", "pixels",
        "void_share", "class_shares": {name: share of the labelled pixels}}}}``.

    Raises:
        FolderDatasetError: the first problem found (see :func:`scan`), or a
            dataset without any split.
    """
    root = os.path.normpath(os.fspath(root))
    classes = read_classes(root)
    splits = list(splits) if splits else split_names(root)
    if not splits:
        raise FolderDatasetError(f"{os.path.join(root, 'images')}: no split folder. Put images in "
                                 "images/train/ (and optionally images/val/).")
    report = {"root": root, "classes": list(classes), "splits": {}}
    for split in splits:
        info = scan(root, split, decode_images=decode_images)
        labelled = int(info.pixel_counts.sum())
        total = labelled + info.void_pixels
        report["splits"][split] = {
            "images": len(info),
            "pixels": total,
            "void_share": info.void_pixels / total if total else 0.0,
            "class_shares": {name: (int(c) / labelled if labelled else 0.0)
                             for name, c in zip(classes, info.pixel_counts)},
        }
    return report


def examples(root, split="val"):
    """Yields ``(name, image (H, W, 3) uint8, label (H, W) uint8)`` of a validated split, in name order.

    The data source for evaluating a model on your own data.
    """
    yield from scan(root, split, decode_images=False).examples()
