"""Tests for the voc2012_seg TFDS builder on a tiny fake VOCdevkit + SBD tree."""

import io
import struct
import tarfile
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_deconv import viz

tfds = pytest.importorskip("tensorflow_datasets")
voc = pytest.importorskip("keras_deconv.datasets.voc")


# --- A minimal MATLAB v5 writer (the layout SBD's cls/*.mat files use) ---


def _element(mtype, payload):
    pad = (-len(payload)) % 8
    return struct.pack("<II", mtype, len(payload)) + payload + b"\0" * pad


def _matrix(name, value):
    if isinstance(value, dict):
        names = list(value)
        width = 32
        body = (
            _element(6, struct.pack("<II", 2, 0))  # mxSTRUCT_CLASS
            + _element(5, struct.pack("<ii", 1, 1))
            + _element(1, name.encode())
            + struct.pack("<HHi", 5, 4, width)  # small element: field name length
            + _element(1, b"".join(n.encode().ljust(width, b"\0") for n in names))
            + b"".join(_matrix("", value[n]) for n in names)
        )
    elif isinstance(value, list):  # cell array
        body = (
            _element(6, struct.pack("<II", 1, 0))
            + _element(5, struct.pack("<ii", 1, len(value)))
            + _element(1, name.encode())
            + b"".join(_matrix("", v) for v in value)
        )
    else:
        arr = np.asarray(value)
        cls, mtype = {np.dtype("uint8"): (9, 2), np.dtype("float64"): (6, 9)}[arr.dtype]
        body = (
            _element(6, struct.pack("<II", cls, 0))
            + _element(5, struct.pack(f"<{arr.ndim}i", *arr.shape))
            + _element(1, name.encode())
            + _element(mtype, arr.tobytes(order="F"))
        )
    return _element(14, body)


def _write_mat(path, variables, compressed):
    header = b"MATLAB 5.0 MAT-file, test".ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    data = b"".join(_matrix(k, v) for k, v in variables.items())
    if compressed:
        z = zlib.compress(data)
        data = struct.pack("<II", 15, len(z)) + z
    with open(path, "wb") as f:
        f.write(header + data)


def test_mat_reader(tmp_path):
    seg = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for compressed in (False, True):
        path = tmp_path / f"x{compressed}.mat"
        _write_mat(path, {"GTcls": {"Boundaries": [np.ones((2, 2))],
                                    "Segmentation": seg,
                                    "CategoriesPresent": np.array([[1.0, 5.0]])}}, compressed)
        np.testing.assert_array_equal(voc.read_sbd_mat(path), seg)
        got = voc.read_mat_v5(path)["GTcls"]
        np.testing.assert_array_equal(got["CategoriesPresent"], [[1.0, 5.0]])


def _fake_tree(root, rng):
    devkit = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (devkit / sub).mkdir(parents=True)
    sbd = root / "benchmark_RELEASE" / "dataset"
    (sbd / "img").mkdir(parents=True)
    (sbd / "cls").mkdir(parents=True)
    labels = {}
    for i, image_id in enumerate(["2007_000032", "2007_000033", "2008_000001", "2008_000002"]):
        h, w = 10 + i, 12
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            devkit / "JPEGImages" / f"{image_id}.jpg")
        lab = rng.integers(0, 21, (h, w)).astype(np.uint8)
        lab[0] = 255
        labels[image_id] = lab
        if i < 3:  # 2008_000002 is SBD-only
            viz.save_label_png(devkit / "SegmentationClass" / f"{image_id}.png", lab)
        else:
            Image.open(devkit / "JPEGImages" / f"{image_id}.jpg").save(sbd / "img" / f"{image_id}.jpg")
            (devkit / "JPEGImages" / f"{image_id}.jpg").unlink()
            lab = lab.copy()
            lab[0] = 0  # SBD has no void band
            labels[image_id] = lab
            _write_mat(sbd / "cls" / f"{image_id}.mat", {"GTcls": {"Segmentation": lab}}, True)
    sets = devkit / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("2007_000032\n2007_000033\n")
    (sets / "val.txt").write_text("2008_000001\n")
    (sbd / "train.txt").write_text("2008_000002\n2008_000001\n")  # val id is dropped
    (sbd / "val.txt").write_text("2007_000033\n")
    return labels


def test_builder_on_dummy_tree(tmp_path):
    rng = np.random.default_rng(0)
    manual = tmp_path / "manual"
    labels = _fake_tree(manual, rng)
    sets = manual / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    (sets / "test.txt").write_text("2007_000032\n")
    builder = voc.Voc2012Seg(data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(
        download_dir=str(tmp_path / "dl"),
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    splits = builder.info.splits
    assert {k: splits[k].num_examples for k in ("train", "val", "train_aug")} == {
        "train": 2, "val": 1, "train_aug": 3}
    (test,) = tfds.as_numpy(builder.as_dataset(split="test"))
    assert (test["segmentation"] == 255).all() and test["label_source"] == b"none"
    seen = {}
    for ex in tfds.as_numpy(builder.as_dataset(split="train_aug")):
        image_id = ex["image_id"].decode()
        seen[image_id] = ex["label_source"].decode()
        np.testing.assert_array_equal(ex["segmentation"][..., 0], labels[image_id])
        assert ex["image"].shape[:2] == labels[image_id].shape
    assert seen == {"2007_000032": "voc", "2007_000033": "voc", "2008_000002": "sbd"}


def test_missing_files_and_unsafe_archives(tmp_path):
    builder = voc.Voc2012Seg(data_dir=str(tmp_path / "data"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="VOCtrainval_11-May-2012.tar"):
        builder.download_and_prepare(
            download_dir=str(tmp_path / "dl"),
            download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "empty")))
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="Unsafe"):
        voc.safe_extract(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tar:
        info = tarfile.TarInfo("VOCdevkit/x")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="link"):
        voc.safe_extract(link, tmp_path / "out2")


def test_extracts_voc_tar(tmp_path):
    rng = np.random.default_rng(1)
    tree = tmp_path / "tree"
    _fake_tree(tree, rng)
    manual = tmp_path / "manual"
    manual.mkdir()
    with tarfile.open(manual / voc.VOC_TAR, "w") as tar:
        tar.add(tree / "VOCdevkit", arcname="VOCdevkit")
    builder = voc.Voc2012Seg(data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(
        download_dir=str(tmp_path / "dl"),
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    assert builder.info.splits["val"].num_examples == 1
    assert "train_aug" not in builder.info.splits  # no SBD given
