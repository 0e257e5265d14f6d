"""Training on PASCAL VOC 2012 (`train ... --data voc2012`) on a tiny VOCdevkit: file pairs, the run, errors."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_deconv.datasets import folder, voc_files

# As tests/test_folder_data.py: batch 2, a 2-step run, no XLA (compiling costs more than the steps).
FAST = ["--steps", "2", "--epochs", "1", "--hparam", "batch_size=2", "--no-jit", "--quiet"]
TRAIN_IDS = ["2007_000032", "2007_000039", "2007_000063", "2007_000068"]
VAL_IDS = ["2007_000033", "2007_000042"]


def _voc_palette():
    """The VOC colour map (bit-interleaved), so the masks look like the real SegmentationClass files."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def make_vocdevkit(root, train=TRAIN_IDS, val=VAL_IDS, size=(48, 64), seed=0):
    """``root/VOCdevkit/VOC2012`` with JPEG images, palette masks (classes 0-20, a 255 border) and both lists."""
    rng = np.random.default_rng(seed)
    voc = os.path.join(str(root), "VOCdevkit", "VOC2012")
    for sub in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClass"):
        os.makedirs(os.path.join(voc, sub), exist_ok=True)
    labels = {}
    for split, ids in (("train", train), ("val", val)):
        with open(os.path.join(voc, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
        for image_id in ids:
            label = np.kron(rng.integers(0, 21, (size[0] // 8, size[1] // 8)), np.ones((8, 8), np.int64))
            label[:, :2] = 255
            label = label.astype(np.uint8)
            mask = Image.fromarray(label, mode="L").convert("P")
            mask.putpalette(_voc_palette())
            mask.save(os.path.join(voc, "SegmentationClass", f"{image_id}.png"))
            image = rng.integers(0, 255, (*size, 3)).astype(np.uint8)
            Image.fromarray(image).save(os.path.join(voc, "JPEGImages", f"{image_id}.jpg"), quality=95)
            labels[image_id] = label
    return voc, labels


def test_voc_dataset_lists_train_and_val_pairs_and_reads_palette_masks_by_index(tmp_path):
    voc, labels = make_vocdevkit(tmp_path)
    dataset = voc_files.voc_dataset(tmp_path)
    assert dataset.kind == "voc2012" and len(dataset.class_names) == 21 and dataset.class_names[20] == "tvmonitor"
    assert dataset.train.names == TRAIN_IDS and dataset.val.names == VAL_IDS
    assert dataset.train.image_paths[1] == os.path.join(voc, "JPEGImages", "2007_000039.jpg")
    name, image, label = next(dataset.val.examples())
    assert Image.open(dataset.val.mask_paths[0]).mode == "P"
    assert name == "2007_000033" and image.shape == (48, 64, 3)
    np.testing.assert_array_equal(label, labels["2007_000033"])  # indices, not colours


def test_voc_pairs_stream_through_the_folder_pipeline_with_void_kept(tmp_path):
    from keras_deconv.training import folder_data

    _, labels = make_vocdevkit(tmp_path)
    split = voc_files.voc_split(tmp_path, "train")
    ds = folder_data.batches(split, 4, (48, 64), scale_range=(1, 1), flip=False, shuffle=False, repeat=False)
    images, batch_labels = next(iter(ds))
    assert tuple(images.shape) == (4, 48, 64, 3)
    for i, image_id in enumerate(TRAIN_IDS):  # no jitter: the crop is the whole image
        np.testing.assert_array_equal(batch_labels[i].numpy(), labels[image_id])


def _train_on_voc(tmp_path, recipe, *options):
    """``keras-deconv train RECIPE --data voc2012`` on a made-up devkit, a few steps; (run dir, run.json)."""
    from keras_deconv.cli.main import cli

    make_vocdevkit(tmp_path / "data")
    run_dir = str(tmp_path / recipe)
    result = CliRunner().invoke(cli, ["train", recipe, "-o", run_dir, "--data", "voc2012", "--data-dir",
                                      str(tmp_path / "data"), *options, *FAST])
    assert result.exit_code == 0, (result.output, result.exception)
    run = json.loads(open(os.path.join(run_dir, "run.json")).read())
    assert run["data"]["kind"] == "voc2012"
    return run_dir, run


def test_train_deconvnet_on_voc_then_load_the_run(tmp_path):
    from keras_deconv import zoo

    run_dir, run = _train_on_voc(tmp_path, "deconvnet", "--hparam", "calibration_batches=1")
    assert run["data"]["train_images"] == 4 and run["data"]["val_images"] == 2
    assert {name: stage["steps"] for name, stage in run["stages"].items()} == {"stage1": 2, "stage2": 2}
    card = json.loads(open(os.path.join(run_dir, "card.json")).read())
    assert card["default_weights"] == "voc2012" and card["architecture"]["config"]["num_classes"] == 21
    metric = card["weights"]["voc2012"]["metrics"][0]
    assert metric["images"] == 2 and set(metric["class_iou"]) == set(voc_files.CLASS_NAMES)
    assert os.path.isfile(os.path.join(run_dir, "export", "voc2012.weights.h5"))

    pipeline = zoo.load(run_dir)
    assert type(pipeline).__name__ == "DeconvNetPipeline" and pipeline.class_names == list(voc_files.CLASS_NAMES)
    prediction = pipeline.predict([np.zeros((37, 53, 3), np.uint8)])[0]
    assert prediction.shape == (37, 53) and prediction.max() < 21


@pytest.mark.parametrize("breakage, named", [
    ("no dir", "no such directory"),
    ("no devkit", "no VOCdevkit/VOC2012/"),
    ("no list", "train.txt: missing"),
    ("missing mask", "SegmentationClass/2007_000063.png"),
])
def test_train_voc_broken_data_is_one_error_line(tmp_path, breakage, named):
    from keras_deconv.cli.main import cli

    data = tmp_path / "data"
    if breakage != "no dir":
        voc, _ = make_vocdevkit(data, size=(16, 16))
        if breakage == "no devkit":
            os.rename(os.path.join(data, "VOCdevkit"), os.path.join(data, "elsewhere"))
        elif breakage == "no list":
            os.remove(os.path.join(voc, "ImageSets", "Segmentation", "train.txt"))
        else:
            os.remove(os.path.join(voc, "SegmentationClass", "2007_000063.png"))
    out = str(tmp_path / "run")
    result = CliRunner().invoke(cli, ["train", "fcn8s", "-o", out, "--data", "voc2012", "--data-dir", str(data)])
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.output
    assert not os.path.exists(out)


def test_train_decouplednet_on_voc_with_a_budget_then_load_the_run(tmp_path):
    from keras_deconv import zoo

    run_dir, run = _train_on_voc(tmp_path, "decouplednet", "--budget", "1")
    assert list(run["stages"]) == ["classification", "segmentation-1"]
    segmenter = zoo.load_segmenter(run_dir)
    assert segmenter.family == "DecoupledNet" and segmenter.class_names == list(voc_files.CLASS_NAMES)


def test_train_voc_usage_errors(tmp_path):
    from keras_deconv.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["train", "deconvnet", "-o", str(tmp_path / "r"), "--data", "voc2012"])
    assert result.exit_code == 2 and "--data voc2012 needs --data-dir" in result.output
    make_vocdevkit(tmp_path, size=(16, 16))
    result = runner.invoke(cli, ["train", "transfernet", "-o", str(tmp_path / "r"), "--data", "voc2012",
                                 "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "deconvnet, fcn8s and decouplednet" in result.output


def test_folder_dataset_is_a_pair_dataset(tmp_path):
    from test_folder_data import make_dataset

    root = make_dataset(tmp_path)
    dataset = folder.open_folder(root)
    assert dataset.kind == "folder" and len(dataset.train) == 4 and len(dataset.val) == 2
    assert isinstance(dataset.train, folder.FilePairs) and dataset.class_names == ("background", "disc", "bar")


# ---------------------------------------------------------------- transfernet: COCO source domain, VOC target domain
def make_coco(root, size=(48, 64)):
    """``root/annotations/instances_train2017.json`` and ``root/train2017/``: 3 source images (frisbee, kite: not
    VOC classes) drawn as polygons, one holding a crowd region, and 1 image with a dog (VOC: left out)."""
    os.makedirs(os.path.join(root, "annotations"))
    os.makedirs(os.path.join(root, "train2017"))
    height, width = size
    images, annotations = [], []
    objects = {1: [(34, [8, 8, 30, 8, 30, 30, 8, 30], 0)], 2: [(38, [20, 10, 60, 10, 60, 40], 0)],
               3: [(34, [0, 0, 16, 0, 16, 16, 0, 16], 0), (38, [30, 20, 50, 20, 50, 40, 30, 40], 1)],
               4: [(18, [4, 4, 40, 4, 40, 40, 4, 40], 0)]}
    rng = np.random.default_rng(1)
    for image_id, anns in objects.items():
        name = f"{image_id:012d}.jpg"
        Image.fromarray(rng.integers(0, 255, (height, width, 3)).astype(np.uint8)).save(
            os.path.join(root, "train2017", name))
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        for category, polygon, crowd in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "iscrowd": crowd, "segmentation": [polygon]})
    categories = [{"id": 18, "name": "dog"}, {"id": 34, "name": "frisbee"}, {"id": 38, "name": "kite"}]
    with open(os.path.join(root, "annotations", "instances_train2017.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return str(root)


def test_transfer_dataset_joins_coco_masks_and_voc_images_in_transfernets_label_space(tmp_path):
    from keras_deconv.datasets import coco

    make_vocdevkit(tmp_path / "voc")
    coco_dir = make_coco(tmp_path / "coco")
    dataset = coco.transfer_dataset(coco_dir, tmp_path / "voc", tmp_path / "cache")
    assert dataset.class_names == coco.TRANSFERNET_CLASS_NAMES and len(dataset.class_names) == 81
    assert dataset.train.names == ["1", "2", "3", *TRAIN_IDS] and dataset.val.names == VAL_IDS  # the dog image out
    masks = [folder.read_mask(path) for path in dataset.train.mask_paths[:3]]
    source = coco.CocoTransferSource(os.path.join(coco_dir, "annotations", "instances_train2017.json"),
                                     os.path.join(coco_dir, "train2017"))
    for image_id, mask in zip((1, 2, 3), masks):  # the cached masks are the source's rasterisation
        np.testing.assert_array_equal(mask, source.example(image_id)["label"])
    frisbee, kite = coco.TRANSFERNET_CLASS_NAMES.index("frisbee"), coco.TRANSFERNET_CLASS_NAMES.index("kite")
    assert set(np.unique(masks[2]).tolist()) == {0, frisbee, 255}  # the crowd kite is void
    assert kite in masks[1] and 21 <= frisbee <= 80
    cached = os.path.getmtime(dataset.train.mask_paths[0])
    again = coco.transfer_dataset(coco_dir, tmp_path / "voc", tmp_path / "cache")
    assert again.train.mask_paths == dataset.train.mask_paths and os.path.getmtime(again.train.mask_paths[0]) == cached


def test_train_transfernet_coco_to_voc_then_load_the_run(tmp_path, monkeypatch):
    from keras_deconv import zoo
    from keras_deconv.cli.main import cli

    monkeypatch.setenv("KERAS_DECONV_HOME", str(tmp_path / "home"))  # the mask cache
    make_vocdevkit(tmp_path / "voc")
    coco_dir = make_coco(tmp_path / "coco")
    run_dir = str(tmp_path / "tn")
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "transfernet", "-o", run_dir, "--data", "coco", "--data-dir", coco_dir])
    assert result.exit_code == 2 and "--target-data voc2012 --target-dir" in result.output
    result = runner.invoke(cli, ["train", "transfernet", "-o", run_dir, "--data", "coco", "--data-dir",
                                 str(tmp_path / "nothing"), "--target-data", "voc2012", "--target-dir",
                                 str(tmp_path / "voc")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "no such directory" in result.output
    result = runner.invoke(cli, ["train", "transfernet", "-o", run_dir, "--data", "coco", "--data-dir", coco_dir,
                                 "--target-data", "voc2012", "--target-dir", str(tmp_path / "voc"), *FAST])
    assert result.exit_code == 0, (result.output, result.exception)
    run = json.loads(open(os.path.join(run_dir, "run.json")).read())
    assert run["data"]["kind"] == "coco-voc2012"
    assert run["data"]["domains"]["source"]["images"] == 3 and run["data"]["domains"]["target"]["images"] == 4
    assert run["data"]["domains"]["target"]["classes"] == list(voc_files.CLASS_NAMES[1:])
    card = json.loads(open(os.path.join(run_dir, "card.json")).read())
    assert card["default_weights"] == "coco-voc2012" and card["weights"]["coco-voc2012"]["metrics"][0]["images"] == 2
    seg = zoo.load_segmenter(run_dir)
    assert seg.family == "TransferNet" and len(seg.class_names) == 81
