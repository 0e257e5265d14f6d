"""``voc2012_seg``: a TFDS builder for PASCAL VOC 2012 segmentation + SBD.

TFDS ships no VOC *segmentation* and no SBD builder (its ``voc`` is detection
only), so this module adds one. It reads from a manual directory (nothing is
downloaded) holding any of:

* ``VOCtrainval_11-May-2012.tar`` or an extracted ``VOCdevkit/VOC2012`` (or
  ``VOC2012``) folder: required.
* ``benchmark.tgz`` or an extracted ``benchmark_RELEASE`` folder (SBD,
  Hariharan et al. 2011): optional; needed for ``train_aug``.
* ``VOC2012test.tar`` or its extracted folder: optional; gives ``test``.

Splits:

* ``train`` (1,464) and ``val`` (1,449): VOC ``ImageSets/Segmentation``.
* ``train_aug`` (10,582 with the official files): SBD train + SBD val + VOC
  train, minus VOC val. Where VOC has a PNG annotation it is used (it keeps
  the 255 boundary band); otherwise the SBD ``cls/*.mat`` one.
* ``test`` (1,456 images, no public labels): masks are all 255.

Labels are class indices 0..20 with 255 (void) kept: VOC palette PNGs are
read as indices (never as colours), and SBD ``GTcls.Segmentation`` is read
from the MATLAB v5 files with a small built-in reader (SciPy is not needed).
Archives are extracted to ``<download_dir>/extracted/voc2012_seg`` after
every member has been checked (no absolute paths, no ``..``, no links or
devices).

``tensorflow_datasets`` is imported by this module only; importing
``keras_deconv`` or ``keras_deconv.datasets`` does not load it.

Example (needs the files, so not run here)::

    import tensorflow_datasets as tfds
    from keras_deconv.datasets import voc  # registers "voc2012_seg"

    builder = voc.Voc2012Seg(data_dir="~/tensorflow_datasets")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="~/data/voc"))
    ds = builder.as_dataset(split="val", as_supervised=True)
"""

import os
import struct
import tarfile
import zlib

import numpy as np
import tensorflow_datasets as tfds

from keras_deconv.datasets.voc_files import CLASS_NAMES, VOC_TAR

__all__ = ["Voc2012Seg", "CLASS_NAMES", "read_sbd_mat", "read_mat_v5",
           "safe_extract"]

VOC_TEST_TAR = "VOC2012test.tar"
SBD_TGZ = "benchmark.tgz"

_CITATION = """\
@article{Everingham10,
  author = {Everingham, M. and Van~Gool, L. and Williams, C. K. I. and Winn, J. and Zisserman, A.},
  title = {The Pascal Visual Object Classes (VOC) Challenge},
  journal = {International Journal of Computer Vision},
  volume = {88}, number = {2}, pages = {303--338}, year = {2010}}
@inproceedings{BharathICCV2011,
  author = {Bharath Hariharan and Pablo Arbelaez and Lubomir Bourdev and Subhransu Maji and Jitendra Malik},
  title = {Semantic Contours from Inverse Detectors},
  booktitle = {International Conference on Computer Vision (ICCV)}, year = {2011}}
"""


# --- MATLAB v5 reader (SBD .mat files) -------------------------------------

_MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4",
              9: "f8", 12: "i8", 13: "u8", 16: "u1"}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MX_CELL, _MX_STRUCT, _MX_OBJECT, _MX_CHAR, _MX_SPARSE = 1, 2, 3, 4, 5


def _elements(buf, endian):
    """Yields (type, payload) for each data element in ``buf``."""
    off = 0
    while off + 8 <= len(buf):
        mtype, nbytes = struct.unpack_from(endian + "II", buf, off)
        if mtype >> 16:  # small element: data packed into the tag
            nbytes, mtype = mtype >> 16, mtype & 0xFFFF
            yield mtype, buf[off + 4 : off + 4 + nbytes]
            off += 8
            continue
        payload = buf[off + 8 : off + 8 + nbytes]
        if len(payload) < nbytes:
            raise ValueError("Truncated MAT-file element.")
        yield mtype, payload
        # Compressed elements are not padded; all others are to 8 bytes.
        off += 8 + (nbytes if mtype == _MI_COMPRESSED else (nbytes + 7) // 8 * 8)


def _numeric(mtype, payload, endian):
    if mtype not in _MI_DTYPES:
        raise ValueError(f"Unsupported MAT data type {mtype}.")
    return np.frombuffer(payload, dtype=np.dtype(_MI_DTYPES[mtype]).newbyteorder(endian))


def _parse_matrix(payload, endian):
    """Parses a miMATRIX payload: numeric, char, struct and cell arrays."""
    if not payload:
        return np.zeros((0, 0))
    parts = _elements(payload, endian)
    _, flags = next(parts)
    mx_class = int(_numeric(6, flags[:4], endian)[0]) & 0xFF
    dims = tuple(int(d) for d in _numeric(*next(parts), endian))
    next(parts)  # array name (empty inside structs and cells)
    count = int(np.prod(dims))
    if mx_class in (_MX_SPARSE, _MX_OBJECT):
        return None  # not needed for SBD's Segmentation field
    if mx_class == _MX_STRUCT:
        name_len = int(_numeric(*next(parts), endian)[0])
        raw = next(parts)[1]
        names = [raw[i : i + name_len].split(b"\0", 1)[0].decode("ascii")
                 for i in range(0, len(raw), name_len)]
        records = []
        for _ in range(count):
            records.append({n: _parse_matrix(next(parts)[1], endian) for n in names})
        return records[0] if count == 1 else records
    if mx_class == _MX_CELL:
        return [_parse_matrix(next(parts)[1], endian) for _ in range(count)]
    data = _numeric(*next(parts), endian)
    if mx_class == _MX_CHAR:
        return "".join(map(chr, data))
    return data.reshape(dims, order="F")  # MATLAB is column-major


def read_mat_v5(path):
    """Reads the variables of a MATLAB v5 MAT-file (numeric, char, struct, cell).

    Sparse and object arrays come back as None. v7.3 (HDF5) files are not
    supported (SBD uses v5).

    Args:
        path: File name.

    Returns:
        A dict ``{variable name: value}``; structs become dicts.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 128 or data[:6] == b"\x89HDF\r\n":
        raise ValueError(f"{os.fspath(path)!r} is not a MATLAB v5 MAT-file.")
    endian = "<" if data[126:128] == b"IM" else ">"
    out = {}

    def walk(buf):
        for mtype, payload in _elements(buf, endian):
            if mtype == _MI_COMPRESSED:
                walk(zlib.decompress(payload))
            elif mtype == _MI_MATRIX:
                parts = _elements(payload, endian)
                next(parts), next(parts)
                name = bytes(next(parts)[1]).decode("ascii")
                out[name] = _parse_matrix(payload, endian)

    walk(data[128:])
    return out


def read_sbd_mat(path, key="GTcls"):
    """Reads an SBD ``cls/*.mat`` (or ``inst/*.mat``) segmentation as uint8.

    Args:
        path: The ``.mat`` file.
        key: ``"GTcls"`` (class segmentation) or ``"GTinst"``.

    Returns:
        ``(H, W)`` uint8 class indices (SBD has no 255 band).
    """
    variables = read_mat_v5(path)
    if key not in variables or "Segmentation" not in (variables[key] or {}):
        raise ValueError(f"{os.fspath(path)!r} has no {key}.Segmentation.")
    return np.asarray(variables[key]["Segmentation"]).astype(np.uint8)


# --- Safe extraction -------------------------------------------------------


def safe_extract(archive, destination):
    """Extracts a tar archive after checking every member stays inside.

    Absolute names, ``..`` components, symbolic/hard links and device files
    are refused (``ValueError``), so a crafted archive cannot write outside
    ``destination``.

    Args:
        archive: Path of a ``.tar`` / ``.tgz`` / ``.tar.gz`` file.
        destination: Folder to extract into (created if needed).

    Returns:
        ``destination``.
    """
    destination = os.path.realpath(destination)
    os.makedirs(destination, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            target = os.path.realpath(os.path.join(destination, m.name))
            if (os.path.isabs(m.name) or ".." in m.name.replace("\\", "/").split("/")
                    or not (target == destination or target.startswith(destination + os.sep))):
                raise ValueError(f"Unsafe path in {archive}: {m.name!r}")
            if not (m.isfile() or m.isdir()):
                raise ValueError(f"Refusing link or special file in {archive}: {m.name!r}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4; members already checked
            tar.extractall(destination, members=members)
    return destination


# --- The builder -----------------------------------------------------------


def _find_dir(root, candidates):
    for c in candidates:
        p = os.path.join(root, *c)
        if os.path.isdir(p):
            return p
    return None


def _read_ids(path):
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


class Voc2012Seg(tfds.core.GeneratorBasedBuilder):
    """PASCAL VOC 2012 semantic segmentation with the SBD augmentation."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: train, val, train_aug, test."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Place in the manual directory (`tfds build --manual_dir=DIR`, or
tfds.download.DownloadConfig(manual_dir=DIR)) either the archives or their
extracted folders:
  * {VOC_TAR} (http://host.robots.ox.ac.uk/pascal/VOC/voc2012/)
    or VOCdevkit/VOC2012/   -- required (train, val)
  * {SBD_TGZ} (http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz)
    or benchmark_RELEASE/   -- optional (train_aug)
  * {VOC_TEST_TAR} (needs a VOC evaluation server account)
    or its VOCdevkit/VOC2012 with ImageSets/Segmentation/test.txt -- optional (test)
"""

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "PASCAL VOC 2012 semantic segmentation (21 classes, 255 = void) "
                "with the SBD train_aug split."
            ),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "segmentation": tfds.features.Image(
                    shape=(None, None, 1), dtype=np.uint8, use_colormap=True),
                "image_id": tfds.features.Text(),
                "label_source": tfds.features.Text(),  # "voc", "sbd" or "none"
            }),
            supervised_keys=("image", "segmentation"),
            homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
            citation=_CITATION,
        )

    def _extracted(self, dl_manager, archive):
        root = os.path.join(dl_manager.download_dir, "extracted", "voc2012_seg",
                            os.path.basename(archive).split(".")[0])
        if not os.path.isdir(root):
            tmp = root + ".partial"
            safe_extract(archive, tmp)
            os.replace(tmp, root)
        return root

    def _locate(self, dl_manager):
        try:
            manual = os.fspath(dl_manager.manual_dir)
        except AssertionError as e:
            # TFDS raises AssertionError for a missing/empty manual dir.
            raise FileNotFoundError(
                f"{e}\nExpected {VOC_TAR} or VOCdevkit/VOC2012/ there.") from None
        voc_candidates = [("VOCdevkit", "VOC2012"), ("VOC2012",),
                          ("VOCtrainval_11-May-2012", "VOCdevkit", "VOC2012")]
        voc = _find_dir(manual, voc_candidates)
        if voc is None and os.path.isfile(os.path.join(manual, VOC_TAR)):
            voc = _find_dir(self._extracted(dl_manager, os.path.join(manual, VOC_TAR)),
                            voc_candidates)
        if voc is None:
            raise FileNotFoundError(
                f"PASCAL VOC 2012 not found in the manual directory {manual!r}: "
                f"expected {VOC_TAR} or VOCdevkit/VOC2012/.\n"
                + self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        sbd = _find_dir(manual, [("benchmark_RELEASE", "dataset"), ("dataset",)])
        if sbd is None and os.path.isfile(os.path.join(manual, SBD_TGZ)):
            sbd = _find_dir(self._extracted(dl_manager, os.path.join(manual, SBD_TGZ)),
                            [("benchmark_RELEASE", "dataset")])
        test = None
        test_list = os.path.join("ImageSets", "Segmentation", "test.txt")
        if os.path.isfile(os.path.join(voc, test_list)):
            test = voc
        elif os.path.isfile(os.path.join(manual, VOC_TEST_TAR)):
            test = _find_dir(self._extracted(dl_manager, os.path.join(manual, VOC_TEST_TAR)),
                             voc_candidates)
        return voc, sbd, test

    def _split_generators(self, dl_manager):
        voc, sbd, test = self._locate(dl_manager)
        seg_sets = os.path.join(voc, "ImageSets", "Segmentation")
        required = [os.path.join(seg_sets, f"{s}.txt") for s in ("train", "val")]
        missing = [p for p in required if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f"Missing VOC split files {missing} (manual directory "
                f"{os.fspath(dl_manager.manual_dir)!r}).")
        train, val = (_read_ids(p) for p in required)
        splits = {
            "train": self._generate_examples(voc, sbd, train),
            "val": self._generate_examples(voc, sbd, val),
        }
        if sbd is not None:
            val_set = set(val)
            aug = []
            for name in ("train.txt", "val.txt"):
                path = os.path.join(sbd, name)
                if not os.path.isfile(path):
                    raise FileNotFoundError(
                        f"SBD split file {path!r} is missing (manual directory "
                        f"{os.fspath(dl_manager.manual_dir)!r}).")
                aug += _read_ids(path)
            aug = sorted((set(aug) | set(train)) - val_set)
            splits["train_aug"] = self._generate_examples(voc, sbd, aug)
        if test is not None:
            ids = _read_ids(os.path.join(test, "ImageSets", "Segmentation", "test.txt"))
            splits["test"] = self._generate_examples(test, None, ids, labelled=False)
        return splits

    def _generate_examples(self, voc, sbd, ids, labelled=True):
        from PIL import Image

        for image_id in ids:
            voc_img = os.path.join(voc, "JPEGImages", f"{image_id}.jpg")
            voc_png = os.path.join(voc, "SegmentationClass", f"{image_id}.png")
            sbd_img = sbd and os.path.join(sbd, "img", f"{image_id}.jpg")
            sbd_mat = sbd and os.path.join(sbd, "cls", f"{image_id}.mat")
            image = voc_img if os.path.isfile(voc_img) else sbd_img
            if not image or not os.path.isfile(image):
                raise FileNotFoundError(f"Image for {image_id!r} not found: {voc_img}")
            if not labelled:
                with Image.open(image) as im:
                    w, h = im.size
                seg, source = np.full((h, w), 255, np.uint8), "none"
            elif os.path.isfile(voc_png):
                # VOC PNGs are palettized: the pixel values are the class ids.
                with Image.open(voc_png) as im:
                    if im.mode not in ("P", "L"):
                        raise ValueError(f"{voc_png} is {im.mode}, not a palette PNG.")
                    seg, source = np.array(im, dtype=np.uint8), "voc"
            elif sbd_mat and os.path.isfile(sbd_mat):
                seg, source = read_sbd_mat(sbd_mat), "sbd"
            else:
                raise FileNotFoundError(
                    f"No segmentation for {image_id!r}: looked for {voc_png}"
                    + (f" and {sbd_mat}" if sbd_mat else ""))
            yield image_id, {
                "image": image,
                "segmentation": seg[..., None],
                "image_id": image_id,
                "label_source": source,
            }
