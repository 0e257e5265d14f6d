"""TransferNet's source domain from COCO files the user has: the 60 COCO classes that are not in VOC.

TransferNet learns segmentation from COCO masks of the 60 categories that
PASCAL VOC does not have, and applies it to the 20 VOC classes (``networks.md``
§4.4). This module reads a COCO *instances* annotation file
(``instances_train2017.json`` or ``instances_train2014.json``) and its image
folder, nothing is downloaded, and yields TransferNet's training examples:

* **Label space** (``TRANSFERNET_CLASS_NAMES``): 0 background, 1-20 the VOC
  classes, 21-80 the 60 non-VOC COCO categories in COCO category order (the
  official data README assigns COCO to 21-80; the order is not documented,
  COCO's is assumed, as in the ``transfernet`` card).
* **Images** (``exclusive=True``, the default): those whose annotations are all
  non-VOC categories ("images containing categories exclusive to PASCAL VOC",
  official data README), so no VOC object is silently labelled background.
* **Masks**: polygons rasterised with PIL, RLE (compressed or not) decoded
  here (pycocotools is not needed); crowd regions (``iscrowd: 1``) become void
  (255), as VOC's unlabelled regions. Later annotations are drawn over earlier
  ones.

Example (with a tiny annotation file written on the spot):

>>> import json, os, tempfile
>>> from PIL import Image
>>> folder = tempfile.mkdtemp()
>>> Image.new("RGB", (8, 6)).save(os.path.join(folder, "a.jpg"))
>>> spec = {"images": [{"id": 1, "file_name": "a.jpg", "height": 6, "width": 8}],
...         "categories": [{"id": 34, "name": "frisbee"}],
...         "annotations": [{"id": 1, "image_id": 1, "category_id": 34, "iscrowd": 0,
...                          "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]}]}
>>> with open(os.path.join(folder, "instances.json"), "w") as f:
...     json.dump(spec, f)
>>> source = CocoTransferSource(os.path.join(folder, "instances.json"), folder)
>>> ex = source.example(1)
>>> ex["label"].shape, int(ex["label"].max()), TRANSFERNET_CLASS_NAMES[int(ex["label"].max())]
((6, 8), 36, 'frisbee')
"""

import json
import os

import numpy as np

from keras_deconv.datasets import categories

__all__ = ["CocoTransferSource", "COCO_CLASS_NAMES", "SOURCE_CLASS_NAMES", "TRANSFERNET_CLASS_NAMES", "find_coco",
           "mask_pairs", "polygons_to_mask", "rle_decode", "rle_string_to_counts", "transfer_dataset"]

#: The 80 COCO instance categories (COCO category-id order) and the 60 not in VOC (TransferNet's
#: source classes): one definition, shared with the model cards.
COCO_CLASS_NAMES = categories.COCO_CLASSES
SOURCE_CLASS_NAMES = categories.COCO_EXCLUSIVE_CLASSES

#: TransferNet's 81 labels: background, VOC 1-20, the 60 source classes 21-80.
TRANSFERNET_CLASS_NAMES = ("background",) + categories.TRANSFERNET_LABELS

VOID_LABEL = 255


def rle_string_to_counts(text):
    """COCO's compressed RLE string -> run lengths (the LEB128-like code of ``maskApi.c``)."""
    counts, position = [], 0
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            c = data[position] - 48
            if c < 0 or c > 63:
                raise ValueError(f"Corrupt COCO RLE string: byte {data[position]!r} at {position}.")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            position, shift = position + 1, shift + 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
            if more and position >= len(data):
                raise ValueError("Corrupt COCO RLE string: it ends inside a number.")
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def rle_decode(rle, height, width):
    """``{"counts": list or str, "size": [h, w]}`` -> ``(h, w)`` uint8 mask (runs are column-major, 0s first)."""
    size = tuple(int(v) for v in rle.get("size", (height, width)))
    if size != (height, width):
        raise ValueError(f"RLE size {list(size)} differs from the image size {[height, width]}.")
    counts = rle["counts"]
    counts = rle_string_to_counts(counts) if isinstance(counts, (str, bytes)) else [int(c) for c in counts]
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        raise ValueError(f"Corrupt COCO RLE: runs sum to {sum(counts)}, expected {height * width} pixels.")
    values = np.zeros(len(counts), np.uint8)
    values[1::2] = 1
    return np.repeat(values, counts).reshape(width, height).T.copy()


def polygons_to_mask(polygons, height, width):
    """COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` -> ``(h, w)`` uint8 mask (PIL's polygon fill)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        if len(polygon) < 6 or len(polygon) % 2:
            raise ValueError(f"A COCO polygon needs x, y pairs for at least 3 points; got {len(polygon)} numbers.")
        draw.polygon([(float(polygon[i]), float(polygon[i + 1])) for i in range(0, len(polygon), 2)], fill=1)
    return np.asarray(canvas, np.uint8)


class CocoTransferSource:
    """TransferNet's source-domain examples from a COCO instances file and its image folder.

    Args:
        annotation_file: ``instances_*.json``.
        image_dir: folder holding the images named by ``file_name``.
        exclusive: keep only images whose annotations are all non-VOC categories.
    """

    def __init__(self, annotation_file, image_dir, exclusive=True):
        if not os.path.isfile(annotation_file):
            raise FileNotFoundError(f"COCO annotation file not found: {annotation_file!r} (e.g. "
                                    "annotations/instances_train2017.json from cocodataset.org).")
        if not os.path.isdir(image_dir):
            raise FileNotFoundError(f"COCO image folder not found: {image_dir!r}.")
        try:
            with open(annotation_file, encoding="utf-8") as f:
                data = json.load(f)
            images = {int(im["id"]): im for im in data["images"]}
            categories = {int(c["id"]): c["name"] for c in data["categories"]}
            annotations = data["annotations"]
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{annotation_file} is not valid JSON ({error}); re-download the annotations.") from None
        except (KeyError, TypeError) as error:
            raise ValueError(f"{annotation_file} is not a COCO instances file: missing {error}.") from None
        unknown = sorted(set(categories.values()) - set(COCO_CLASS_NAMES))
        if unknown:
            raise ValueError(f"{annotation_file}: categories {unknown} are not COCO's 80 instance categories.")
        self.annotation_file, self.image_dir = annotation_file, image_dir
        self._images = images
        self._label_of = {cid: TRANSFERNET_CLASS_NAMES.index(name) if name in SOURCE_CLASS_NAMES else None
                          for cid, name in categories.items()}
        self._by_image = {}
        for ann in annotations:
            self._by_image.setdefault(int(ann["image_id"]), []).append(ann)
        self.image_ids = sorted(
            i for i in images
            if i in self._by_image and (not exclusive or all(self._label_of[int(a["category_id"])] is not None
                                                             for a in self._by_image[i])))

    def __len__(self):
        return len(self.image_ids)

    def __iter__(self):
        for image_id in self.image_ids:
            yield self.example(image_id)

    def example(self, image_id):
        """``{"image", "label", "image_labels", "image_id"}`` in TransferNet's 81-label space.

        ``image_labels`` is the 80-d multi-hot query vector (index ``label - 1``).
        """
        from PIL import Image

        info = self._images[int(image_id)]
        height, width = int(info["height"]), int(info["width"])
        path = os.path.join(self.image_dir, info["file_name"])
        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
        except FileNotFoundError:
            raise FileNotFoundError(f"COCO image {path!r} (id {image_id}) is missing.") from None
        except OSError as error:
            raise ValueError(f"COCO image {path!r} (id {image_id}) cannot be read: {error}.") from None
        if image.shape[:2] != (height, width):
            raise ValueError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, the annotation says {width}x{height}.")
        label = np.zeros((height, width), np.uint8)
        present = np.zeros(len(TRANSFERNET_CLASS_NAMES) - 1, np.float32)
        for ann in self._by_image.get(int(image_id), []):
            segmentation = ann["segmentation"]
            if isinstance(segmentation, dict):
                mask = rle_decode(segmentation, height, width)
            else:
                mask = polygons_to_mask(segmentation, height, width)
            cls = self._label_of[int(ann["category_id"])]
            if ann.get("iscrowd"):
                label[mask > 0] = VOID_LABEL
            elif cls is not None:
                label[mask > 0] = cls
                present[cls - 1] = 1.0
        return {"image": image, "label": label, "image_labels": present, "image_id": int(image_id)}


# ---------------------------------------------------------------- COCO -> VOC as file pairs (transfernet --data coco)
#: Where the instances file and the images may sit inside a COCO folder, in the order they are tried.
COCO_LAYOUTS = (("annotations/instances_train2017.json", "train2017"),
                ("annotations/instances_train2014.json", "train2014"))


def find_coco(coco_dir):
    """``(instances file, image folder)`` inside ``coco_dir`` (see :data:`COCO_LAYOUTS`).

    Raises:
        keras_deconv.datasets.folder.FolderDatasetError: no such folder, or neither layout in it.
    """
    from keras_deconv.datasets.folder import FolderDatasetError

    coco_dir = os.path.abspath(os.path.expanduser(os.fspath(coco_dir)))
    if not os.path.isdir(coco_dir):
        raise FolderDatasetError(f"{coco_dir}: no such directory. --data coco --data-dir DIR takes the folder "
                                 "holding annotations/instances_train2017.json and train2017/.")
    for annotations, images in COCO_LAYOUTS:
        annotation_file, image_dir = os.path.join(coco_dir, annotations), os.path.join(coco_dir, images)
        if os.path.isfile(annotation_file) and os.path.isdir(image_dir):
            return annotation_file, image_dir
    raise FolderDatasetError(f"{coco_dir}: no annotations/instances_train2017.json with train2017/ (or the 2014 "
                             "pair) in it. Extract COCO's annotations and train images there.")


def mask_pairs(source, cache_dir):
    """The source's images with their masks rasterised once into ``cache_dir/<image id>.png`` (81-label space).

    Masks already there are reused; each is written to a temporary name and
    renamed, so an interrupted run leaves no partial file.

    Returns:
        :class:`keras_deconv.datasets.folder.FilePairs` (split ``"coco"``).
    """
    from PIL import Image

    from keras_deconv.datasets.folder import FilePairs

    os.makedirs(cache_dir, exist_ok=True)
    names, image_paths, mask_paths = [], [], []
    for image_id in source.image_ids:
        mask_path = os.path.join(cache_dir, f"{image_id}.png")
        if not os.path.isfile(mask_path):
            partial = mask_path + ".partial.png"
            Image.fromarray(source.example(image_id)["label"]).save(partial)
            os.replace(partial, mask_path)
        names.append(str(image_id))
        image_paths.append(os.path.join(source.image_dir, source._images[image_id]["file_name"]))
        mask_paths.append(mask_path)
    return FilePairs(source.image_dir, "coco", TRANSFERNET_CLASS_NAMES, names, image_paths, mask_paths)


def transfer_dataset(coco_dir, voc_dir, cache_dir):
    """TransferNet's COCO -> VOC data as one :class:`~keras_deconv.datasets.folder.PairDataset` (81 labels).

    ``train``: the COCO images holding only non-VOC categories, with masks
    (labels 21-80, rasterised into ``cache_dir``), then the VOC 2012
    ``train.txt`` images, whose masks (labels 1-20) only give image-level
    labels in training; ``val``: VOC ``val.txt`` (None without the list).
    """
    import hashlib

    from keras_deconv.datasets import folder, voc_files

    annotation_file, image_dir = find_coco(coco_dir)
    voc = voc_files.voc_dataset(voc_dir)
    try:
        source = CocoTransferSource(annotation_file, image_dir)
    except (OSError, ValueError) as error:
        raise folder.FolderDatasetError(str(error)) from None
    if not len(source):
        raise folder.FolderDatasetError(f"{annotation_file}: no image holds only non-VOC categories (TransferNet's "
                                        "source domain).")
    stat = os.stat(annotation_file)
    key = hashlib.sha1(f"{annotation_file}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    coco = mask_pairs(source, os.path.join(os.fspath(cache_dir), key))
    train = folder.FilePairs(voc.root, "coco+train", TRANSFERNET_CLASS_NAMES, coco.names + voc.train.names,
                             coco.image_paths + voc.train.image_paths, coco.mask_paths + voc.train.mask_paths)
    return folder.PairDataset("coco-voc2012", voc.root, TRANSFERNET_CLASS_NAMES, train, voc.val)
