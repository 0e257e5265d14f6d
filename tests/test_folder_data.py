"""Folder datasets: validation, `keras-deconv data check`, the streaming pipeline, training from disk, runs as models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_deconv.datasets import folder
from keras_deconv.training.augmentation import MEAN_RGB

CLASSES = ("background", "disc", "bar")
BLOCK = 8


def _label_map(rng, height, width, num_classes=len(CLASSES), void=True):
    """Blocks of BLOCK x BLOCK pixels, each one class (some void): bilinear resizing is exact inside a block."""
    blocks = rng.integers(0, num_classes, (-(-height // BLOCK), -(-width // BLOCK)))
    if void:
        blocks[0, 0] = 255
    return np.kron(blocks, np.ones((BLOCK, BLOCK), np.int64))[:height, :width].astype(np.uint8)


def image_for(label):
    """An RGB image the label map can be read back from: red = 60 * class, void red = 250, green = 7."""
    red = np.where(label == 255, 250, label.astype(np.int64) * 60)
    return np.stack([red, np.full_like(red, 7), np.zeros_like(red)], -1).astype(np.uint8)


def make_dataset(root, splits=(("train", 4), ("val", 2)), size=(24, 32), classes=CLASSES, palette=False, seed=0):
    rng = np.random.default_rng(seed)
    root = str(root)
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("\n".join(classes) + "\n")
    for split, count in splits:
        os.makedirs(os.path.join(root, "images", split))
        os.makedirs(os.path.join(root, "masks", split))
        for i in range(count):
            label = _label_map(rng, *size, num_classes=len(classes))
            Image.fromarray(image_for(label)).save(os.path.join(root, "images", split, f"img{i}.png"))
            mask = Image.fromarray(label)
            if palette:
                mask = mask.convert("P")
                mask.putpalette([v for c in range(256) for v in ((c * 37) % 256, (c * 91) % 256, (c * 13) % 256)])
            mask.save(os.path.join(root, "masks", split, f"img{i}.png"))
    return root


# ---------------------------------------------------------------- scan / check
def test_check_counts_images_and_class_pixel_shares(tmp_path):
    root = make_dataset(tmp_path)
    report = folder.check(root)
    assert report["classes"] == list(CLASSES)
    assert {s: v["images"] for s, v in report["splits"].items()} == {"train": 4, "val": 2}
    # independent count over the mask files
    masks = [np.array(Image.open(os.path.join(root, "masks", "train", f"img{i}.png"))) for i in range(4)]
    values = np.concatenate([m.ravel() for m in masks])
    labelled = values[values != 255]
    for index, name in enumerate(CLASSES):
        assert report["splits"]["train"]["class_shares"][name] == pytest.approx(np.mean(labelled == index))
    assert report["splits"]["train"]["void_share"] == pytest.approx(np.mean(values == 255))
    assert sum(report["splits"]["val"]["class_shares"].values()) == pytest.approx(1.0)


def test_palette_masks_are_read_by_index_not_colour(tmp_path):
    root = make_dataset(tmp_path, splits=(("train", 2),), palette=True)
    path = os.path.join(root, "masks", "train", "img0.png")
    assert Image.open(path).mode == "P"
    label = folder.read_mask(path)
    image = np.array(Image.open(os.path.join(root, "images", "train", "img0.png")))
    np.testing.assert_array_equal(np.where(label == 255, 250, label.astype(int) * 60), image[..., 0])
    name, image_read, label_read = next(folder.examples(root, "train"))
    assert name == "img0" and image_read.dtype == np.uint8 and label_read.dtype == np.uint8
    np.testing.assert_array_equal(label_read, label)


def _break(root, kind):
    train = os.path.join(root, "images", "train")
    masks = os.path.join(root, "masks", "train")
    if kind == "missing mask":
        os.remove(os.path.join(masks, "img2.png"))
        return "img2.png", "without a mask"
    if kind == "bad value":
        label = np.array(Image.open(os.path.join(masks, "img1.png")))
        label[3, 3] = 7
        Image.fromarray(label).save(os.path.join(masks, "img1.png"))
        return "img1.png", "mask values 7"
    if kind == "size mismatch":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(os.path.join(masks, "img3.png"))
        return "img3.png", "sizes differ"
    if kind == "unreadable image":
        with open(os.path.join(train, "img0.png"), "wb") as f:
            f.write(b"not an image at all")
        return "img0.png", "unreadable"
    if kind == "colour mask":
        Image.new("RGB", (32, 24)).save(os.path.join(masks, "img1.png"))
        return "img1.png", "RGB"
    if kind == "empty split":
        for name in os.listdir(train):
            os.remove(os.path.join(train, name))
        return "images/train", "empty split"
    if kind == "missing classes":
        os.remove(os.path.join(root, "classes.txt"))
        return "classes.txt", "missing"
    raise AssertionError(kind)


BROKEN = ["missing mask", "bad value", "size mismatch", "unreadable image", "colour mask", "empty split",
          "missing classes"]


@pytest.mark.parametrize("kind", BROKEN)
def test_scan_names_the_broken_file(tmp_path, kind):
    root = make_dataset(tmp_path)
    file_name, words = _break(root, kind)
    with pytest.raises(folder.FolderDatasetError) as info:
        folder.scan(root, "train")
    message = str(info.value)
    assert file_name in message and words in message and "\n" not in message, message
    assert isinstance(info.value, ValueError)


def test_error_lists_the_first_files_then_a_count(tmp_path):
    root = make_dataset(tmp_path, splits=(("train", 6),))
    for i in range(5):
        os.remove(os.path.join(root, "masks", "train", f"img{i}.png"))
    with pytest.raises(folder.FolderDatasetError, match=r"\(5 files\): masks/train/img0.png, masks/train/img1.png, "
                                                        r"masks/train/img2.png and 2 more\."):
        folder.scan(root + os.sep, "train")  # paths relative to the dataset, also given with a trailing slash


def test_missing_split_names_the_splits_found(tmp_path):
    root = make_dataset(tmp_path, splits=(("train", 1),))
    with pytest.raises(folder.FolderDatasetError, match="splits found: train"):
        folder.scan(root, "val")


# ---------------------------------------------------------------- keras-deconv data check
def test_data_check_cli_prints_counts_and_shares(tmp_path):
    from keras_deconv.cli.main import cli

    root = make_dataset(tmp_path)
    result = CliRunner().invoke(cli, ["data", "check", root])
    assert result.exit_code == 0, result.output
    report = folder.check(root)
    lines = result.output.splitlines()
    assert any(line.split() == ["images", "4", "2"] for line in lines), result.output
    disc = next(line for line in lines if line.startswith("disc"))
    assert disc.split()[1] == f"{100 * report['splits']['train']['class_shares']['disc']:.2f}%"


def test_data_check_cli_broken_dataset_is_one_line_and_exit_1(tmp_path, capfd):
    from keras_deconv.cli.main import main

    root = make_dataset(tmp_path)
    _break(root, "bad value")
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", root])
    assert exit_info.value.code == 1
    out, err = capfd.readouterr()
    assert out == "" and err.startswith("Error: ") and len(err.strip().splitlines()) == 1
    assert "masks/train/img1.png" in err and "Traceback" not in err


def test_data_check_console_entry_point(tmp_path):
    executable = os.path.join(os.path.dirname(sys.executable), "keras-deconv")
    if not os.path.exists(executable):
        pytest.skip("the keras-deconv console script is not installed next to this Python")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    root = make_dataset(tmp_path)
    good = subprocess.run([executable, "data", "check", root], capture_output=True, text=True, env=env, timeout=120)
    assert good.returncode == 0 and "images" in good.stdout, good.stderr
    _break(root, "missing mask")
    bad = subprocess.run([executable, "data", "check", root], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: ") and "img2.png" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


# ---------------------------------------------------------------- streaming pipeline
MEAN_RED = MEAN_RGB[0]  # the mean colour pads images where labels get 255


def _decode_labels(image):
    """The label each pixel's red value encodes (void: 250 or the mean padding), -1 if none."""
    red = image[..., 0]
    out = np.full(red.shape, -1, np.int64)
    for index in range(len(CLASSES)):
        out[np.abs(red - 60 * index) < 1e-3] = index
    out[(np.abs(red - 250) < 1e-3) | (np.abs(red - MEAN_RED) < 1e-2)] = 255
    return out


def test_pipeline_moves_image_and_mask_together_and_keeps_void(tmp_path):
    import tensorflow as tf

    from keras_deconv.training import folder_data

    tf.random.set_seed(0)
    root = make_dataset(tmp_path, splits=(("train", 3),), size=(40, 56))
    split = folder.scan(root, "train")
    # no rescaling: pixel exact, crops of 64 > image pad with void
    images, labels = next(iter(folder_data.batches(split, 3, (64, 64), scale_range=(1, 1))))
    images, labels = images.numpy(), labels.numpy()
    np.testing.assert_array_equal(_decode_labels(images), labels)
    assert (labels == 255).mean() > 0.4  # 40x56 in 64x64: the padding is void
    # crops smaller than the image: pixel exact as well, and mirrored sometimes
    for images, labels in folder_data.batches(split, 3, (24, 24), scale_range=(1, 1)).take(3):
        np.testing.assert_array_equal(_decode_labels(images.numpy()), labels.numpy())
    # rescaled and "fit": labels only take mask values (nearest), image agrees away from block edges
    for framing in ("native", "fit"):
        images, labels = next(iter(folder_data.batches(split, 3, (64, 64), framing=framing, scale_range=(1.3, 1.6))))
        images, labels = images.numpy(), labels.numpy()
        assert set(np.unique(labels)) <= {0, 1, 2, 255}
        decoded = _decode_labels(images)
        known = decoded >= 0
        assert known.mean() > 0.5 and (decoded[known] == labels[known]).mean() > 0.97, framing
    # "fit" shows the whole image: every class and void present in the masks survives
    images, labels = next(iter(folder_data.batches(split, 3, (32, 32), framing="fit", scale_range=(1, 1),
                                                   shuffle=False)))
    for k, mask_path in enumerate(split.mask_paths):
        assert set(np.unique(labels[k].numpy())) == set(np.unique(folder.read_mask(mask_path)))


def test_pipeline_streams_one_pass_of_every_file(tmp_path):
    from keras_deconv.training import folder_data

    root = make_dataset(tmp_path, splits=(("train", 5),))
    split = folder.scan(root, "train")
    ds = folder_data.batches(split, 1, (24, 32), scale_range=(1, 1), flip=False, shuffle=True, repeat=False)
    seen = sorted(int(labels.numpy().sum()) for _, labels in ds)
    expected = sorted(int(folder.read_mask(p).astype(np.int64).sum()) for p in split.mask_paths)
    assert seen == expected


# ---------------------------------------------------------------- training from disk, runs as models, fine-tuning
# As tests/test_training.py: batch 2-4, a 2-step run, no XLA (compiling costs more than the steps).
FAST = ["--steps", "2", "--epochs", "1", "--hparam", "batch_size=2", "--no-jit", "--quiet"]


def _train(args):
    from keras_deconv.cli.main import cli

    result = CliRunner().invoke(cli, ["train", *args, *FAST])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_train_deconvnet_on_a_folder_then_load_the_run(tmp_path):
    from keras_deconv import training, zoo
    from keras_deconv.training.folder_recipes import folder_recipe
    from keras_deconv.metrics import ConfusionMatrix

    os.makedirs(tmp_path / "data")
    root = make_dataset(tmp_path / "data", size=(48, 64))
    run_dir = str(tmp_path / "run")
    recipe = folder_recipe("deconvnet", root, hparams={"batch_size": 2, "calibration_batches": 1})
    recipe.set_steps(2)
    run = training.train(recipe, run_dir, epochs=1, verbose=0, run_eagerly=True)
    assert run == json.loads(open(os.path.join(run_dir, "run.json")).read())
    assert run["data"]["classes"] == list(CLASSES) and run["data"]["train_images"] == 4
    assert {name: stage["steps"] for name, stage in run["stages"].items()} == {"stage1": 2, "stage2": 2}
    assert open(os.path.join(run_dir, "classes.txt")).read().split() == list(CLASSES)
    card = json.loads(open(os.path.join(run_dir, "card.json")).read())
    assert card["architecture"]["config"]["num_classes"] == 3
    metric = card["weights"]["folder"]["metrics"][0]
    assert metric["split"] == "val" and metric["images"] == 2 and set(metric["class_iou"]) == set(CLASSES)
    assert run["val_metrics"] == [metric]

    pipeline = zoo.load(run_dir)
    assert type(pipeline).__name__ == "DeconvNetPipeline" and pipeline.class_names == list(CLASSES)
    assert pipeline.predict([np.zeros((37, 53, 3), np.uint8)])[0].shape == (37, 53)
    # the loaded run reproduces the metric written at the end of training
    matrix = ConfusionMatrix(3)
    for _, image, label in folder.examples(root, "val"):
        prediction = pipeline.predict([image])[0]
        assert prediction.shape == label.shape and prediction.max() < 3
        matrix.update(label, prediction)
    assert abs(100 * matrix.mean_iou - metric["value"]) < 0.01


def test_fine_tune_from_zoo_weights_reinitialises_the_classifier_and_freezes_the_encoder(tmp_path):
    from keras_deconv import zoo

    os.makedirs(tmp_path / "data")
    root = make_dataset(tmp_path / "data", size=(48, 64))
    run_dir = str(tmp_path / "run")
    result = _train(["fcn8s", "-o", run_dir, "--data", "folder", "--data-dir", root, "--init", "fcn8s-small",
                     "--freeze-encoder"])
    classifier = ["score-fr", "score2", "score-pool4", "score4", "score-pool3", "upsample"]
    assert "re-initialised" in result.output and "score-fr" in result.output
    run = json.loads(open(os.path.join(run_dir, "run.json")).read())
    assert run["init"] == {"source": "zoo:fcn8s-small", "reinitialised": classifier, "freeze_encoder": True}
    start = zoo.create_model("fcn8s-small")
    tuned = zoo.create_model(run_dir)
    assert tuned.get_layer("score-fr").get_weights()[0].shape[-1] == 3
    for name in ("conv1_1", "conv3_2", "conv5_3"):  # frozen: exactly the start's weights
        for a, b in zip(start.get_layer(name).get_weights(), tuned.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    moved = [not np.array_equal(a, b) for a, b in zip(start.get_layer("fc7").get_weights(),
                                                        tuned.get_layer("fc7").get_weights())]
    assert any(moved)  # the rest trains


def test_start_model_from_a_weights_file_reports_the_layers_that_do_not_fit():
    from keras_deconv.zoo import registry

    path = registry.weights_file("fcn8s-small", "shapes")
    card = registry.card("fcn8s-small")["architecture"]["config"]
    trained = {"width": card["width"], "fc_units": card["fc_units"]}  # the shipped file's own configuration
    model, config = registry.start_model(path, "FCN8s", 3, trained)
    assert model.init_skipped == ["score-fr", "score2", "score-pool4", "score4", "score-pool3", "upsample"]
    reference = registry.create_model("fcn8s-small")
    np.testing.assert_array_equal(model.get_layer("conv2_1").get_weights()[0],
                                  reference.get_layer("conv2_1").get_weights()[0])
    same, _ = registry.start_model(path, "FCN8s", 13, trained)
    assert same.init_skipped == []  # even "upsample", whose fixed bilinear kernel equals a fresh one
    for layer in reference.layers:
        for a, b in zip(layer.get_weights(), same.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="fits no layer"):
        registry.start_model(path, "FCN8s", 3, {"width": card["width"] / 2, "fc_units": 32})
    with pytest.raises(ValueError, match="is a FCN8s"):
        registry.start_model("fcn8s-small", "DeconvNet", 3)
    with pytest.raises(ValueError, match="neither a zoo name"):
        registry.start_model("no-such-model-or-file", "DeconvNet", 3)


def test_train_folder_usage_and_dataset_errors(tmp_path):
    from keras_deconv.cli.main import cli

    runner = CliRunner()
    root = make_dataset(tmp_path)
    out = str(tmp_path / "run")
    result = runner.invoke(cli, ["train", "deconvnet", "-o", out, "--data", "folder"])
    assert result.exit_code == 2 and "--data-dir" in result.output
    result = runner.invoke(cli, ["train", "deconvnet", "-o", out, "--data", "folder", "--data-dir", root,
                                 "--source-classes", "disc"])
    assert result.exit_code == 2 and "apply to transfernet --data folder only" in result.output
    _break(root, "missing mask")
    result = runner.invoke(cli, ["train", "fcn8s", "-o", out, "--data", "folder", "--data-dir", root])
    assert result.exit_code == 1 and "img2.png" in result.output
    assert not os.path.exists(out)
