"""The COCO source-domain reader (keras_deconv.datasets.coco), on annotation files made here."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_deconv.datasets import coco


def _encode(mask):
    """Reference compressed RLE encoder, written from COCO's maskApi.c (rleEncode + rleToString)."""
    flat = np.asarray(mask, np.uint8).T.ravel()
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    out = []
    for i, x in enumerate(counts):
        x = x - counts[i - 2] if i > 2 else x
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out), counts


def test_rle_strings_decode_as_hand_computed():
    assert coco.rle_string_to_counts("121") == [1, 2, 1]
    assert coco.rle_string_to_counts("1211") == [1, 2, 1, 3]  # 4th run stored as a delta to the 2nd
    assert coco.rle_string_to_counts("151M") == [1, 5, 1, 2]  # negative delta (-3 -> 'M')
    np.testing.assert_array_equal(coco.rle_decode({"counts": "121", "size": [2, 2]}, 2, 2), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(coco.rle_decode({"counts": [1, 2, 1, 3], "size": [7, 1]}, 7, 1)[:, 0],
                                  [0, 1, 1, 0, 1, 1, 1])


def test_rle_round_trips_random_masks_through_the_reference_encoder():
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (31, 17), (64, 48)]:
        mask = (rng.uniform(size=shape) < rng.uniform(0.05, 0.95)).astype(np.uint8)
        text, counts = _encode(mask)
        assert coco.rle_string_to_counts(text) == counts
        np.testing.assert_array_equal(coco.rle_decode({"counts": text, "size": list(shape)}, *shape), mask)
        np.testing.assert_array_equal(coco.rle_decode({"counts": counts, "size": list(shape)}, *shape), mask)


def test_corrupt_rle_is_refused():
    with pytest.raises(ValueError, match="runs sum to"):
        coco.rle_decode({"counts": [1, 2], "size": [2, 2]}, 2, 2)
    with pytest.raises(ValueError, match="ends inside a number"):
        coco.rle_string_to_counts("1\x60")
    with pytest.raises(ValueError, match="differs from the image size"):
        coco.rle_decode({"counts": [4], "size": [2, 2]}, 4, 1)


def test_polygon_rectangle_fills_its_pixels():
    mask = coco.polygons_to_mask([[1, 1, 4, 1, 4, 3, 1, 3]], 6, 8)
    expected = np.zeros((6, 8), np.uint8)
    expected[1:4, 1:5] = 1
    np.testing.assert_array_equal(mask, expected)


def test_label_space_is_transfernets():
    assert len(coco.SOURCE_CLASS_NAMES) == 60 and len(coco.TRANSFERNET_CLASS_NAMES) == 81
    assert len(coco.COCO_CLASS_NAMES) == 80 and not set(coco.SOURCE_CLASS_NAMES) & {"person", "couch", "tv"}
    assert coco.TRANSFERNET_CLASS_NAMES[21] == "truck"  # the first non-VOC COCO category


@pytest.fixture()
def dummy_coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (8, 6), (10, 20, 30)).save(images / name)
    giraffe = np.zeros((6, 8), np.uint8)
    giraffe[2:5, 5:8] = 1
    crowd = np.zeros((6, 8), np.uint8)
    crowd[0, :] = 1
    cats = [{"id": 1, "name": "person"}, {"id": 25, "name": "giraffe"}, {"id": 34, "name": "frisbee"},
            {"id": 38, "name": "kite"}]
    spec = {
        "images": [{"id": i, "file_name": n, "height": 6, "width": 8} for i, n in enumerate(("a.png", "b.png", "c.png"), 1)],
        "categories": cats,
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 34, "iscrowd": 0, "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
            {"id": 2, "image_id": 1, "category_id": 38, "iscrowd": 1,
             "segmentation": {"counts": _encode(crowd)[1], "size": [6, 8]}},
            {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": [[0, 0, 3, 0, 3, 3]]},
            {"id": 4, "image_id": 2, "category_id": 34, "iscrowd": 0, "segmentation": [[5, 0, 7, 0, 7, 2]]},
            {"id": 5, "image_id": 3, "category_id": 25, "iscrowd": 0,
             "segmentation": {"counts": _encode(giraffe)[0], "size": [6, 8]}},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(spec))
    return path, images, giraffe


def test_source_examples_from_a_dummy_instances_file(dummy_coco):
    path, images, giraffe = dummy_coco
    source = coco.CocoTransferSource(str(path), str(images))
    assert source.image_ids == [1, 3]  # image 2 has a person (a VOC class): not exclusive
    frisbee, kite, giraffe_id = (coco.TRANSFERNET_CLASS_NAMES.index(n) for n in ("frisbee", "kite", "giraffe"))
    first = source.example(1)
    assert first["image"].shape == (6, 8, 3) and first["image"].dtype == np.uint8
    assert (first["label"][0] == 255).all()  # crowd region -> void, drawn after the frisbee
    assert (first["label"][1:4, 1:5] == frisbee).all() and first["label"][4:].max() == 0
    assert np.flatnonzero(first["image_labels"]).tolist() == [frisbee - 1]  # crowd is not a label
    assert kite not in np.unique(first["label"])
    third = source.example(3)
    np.testing.assert_array_equal(third["label"], giraffe * giraffe_id)
    assert len(list(source)) == 2
    everything = coco.CocoTransferSource(str(path), str(images), exclusive=False)
    assert everything.image_ids == [1, 2, 3]


def test_bad_coco_files_give_one_clear_error(dummy_coco, tmp_path):
    path, images, _ = dummy_coco
    with pytest.raises(FileNotFoundError, match="COCO annotation file not found"):
        coco.CocoTransferSource(str(tmp_path / "nope.json"), str(images))
    broken = tmp_path / "broken.json"
    broken.write_text(path.read_text()[:50])
    with pytest.raises(ValueError, match="not valid JSON"):
        coco.CocoTransferSource(str(broken), str(images))
    broken.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO instances file"):
        coco.CocoTransferSource(str(broken), str(images))
    (images / "c.png").unlink()
    source = coco.CocoTransferSource(str(path), str(images))
    with pytest.raises(FileNotFoundError, match="is missing"):
        source.example(3)
    (images / "c.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot be read"):
        source.example(3)
