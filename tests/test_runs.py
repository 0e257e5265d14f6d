"""A training run is a model everywhere: `predict`, `evaluate` and `export` take RUN_DIR like a zoo name."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from test_folder_data import CLASSES, make_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(dataset, run directory)``: a 2-step DeconvNet run on a tiny 3-class folder dataset."""
    from keras_deconv import training
    from keras_deconv.training.folder_recipes import folder_recipe

    base = tmp_path_factory.mktemp("runs")
    os.makedirs(base / "data")
    root = make_dataset(base / "data", size=(48, 64))
    run_dir = str(base / "mine")
    recipe = folder_recipe("deconvnet", root, hparams={"batch_size": 2, "calibration_batches": 1})
    recipe.set_steps(2)
    training.train(recipe, run_dir, epochs=1, verbose=0, run_eagerly=True)
    return root, run_dir


def _cli(args):
    from keras_deconv.cli.main import cli

    return CliRunner().invoke(cli, args)


def test_zoo_resolves_a_run_like_a_name(trained):
    from keras_deconv import zoo
    from keras_deconv.zoo import registry

    _, run_dir = trained
    info = zoo.info(run_dir)
    assert info["name"] == run_dir and info["category_names"] == list(CLASSES)
    assert info["weights"]["folder"]["status"] == "in the run"
    assert registry.resolve_tag(run_dir) == (run_dir, "folder")
    assert str(zoo.weights_file(run_dir, "folder")) == os.path.join(run_dir, "export", "folder.weights.h5")
    seg = zoo.load_segmenter(run_dir)
    assert seg.class_names == list(CLASSES) and seg.family == "DeconvNet" and not seg.is_random
    assert seg.weights_info["path"] == os.path.abspath(os.path.join(run_dir, "export", "folder.weights.h5"))
    result = _cli(["info", run_dir])
    assert result.exit_code == 0, result.output
    assert "3 (background, disc, bar)" in result.output and "export/folder.weights.h5" in result.output


def test_predict_run_dir_writes_the_run_pipelines_labels_and_its_class_names(trained, tmp_path):
    from keras_deconv import viz, zoo

    root, run_dir = trained
    image_path = os.path.join(root, "images", "val", "img0.png")
    result = _cli(["predict", run_dir, image_path, "--out", str(tmp_path / "seg"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"] == run_dir and document["random_weights"] is False
    record, = document["images"]
    expected = zoo.load(run_dir).predict([np.array(Image.open(image_path).convert("RGB"))])[0]
    np.testing.assert_array_equal(viz.read_label_png(record["label_png"]), expected)
    ids, counts = np.unique(expected, return_counts=True)
    assert [(c["id"], c["name"], c["pixels"]) for c in record["classes"]] == [
        (int(i), CLASSES[i], int(n)) for i, n in zip(ids, counts)]


def test_export_run_dir_tflite_records_the_run_and_its_class_names(trained, tmp_path):
    from keras_deconv import lite, zoo

    root, run_dir = trained
    out = str(tmp_path / "mine.tflite")
    result = _cli(["export", run_dir, "--format", "tflite", "--out", out, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "deconvnet"
    pipeline = lite.load(out)
    assert pipeline.class_names == list(CLASSES) and pipeline.metadata["model"] == run_dir
    # the export runs the run's network: the same labels as the Keras pipeline on a val image
    image = np.array(Image.open(os.path.join(root, "images", "val", "img1.png")).convert("RGB"))
    keras_labels = zoo.load(run_dir).predict([image])[0]
    assert (pipeline([image])[0].labels == keras_labels).mean() > 0.99
    # and evaluates on the run's data with the recorded class names
    result = _cli(["evaluate", out, "--data", "folder", "--data-dir", root, "--json", "-", "--quiet"])
    assert result.exit_code == 0, result.output
    assert [c["name"] for c in json.loads(result.stdout)["metrics"]["per_class"]] == list(CLASSES)


def test_export_run_dir_saved_model_default_path_is_named_after_the_run(trained, tmp_path, monkeypatch):
    import tensorflow as tf

    _, run_dir = trained
    monkeypatch.chdir(tmp_path)
    result = _cli(["export", run_dir + os.sep, "--format", "saved_model"])
    assert result.exit_code == 0, result.output
    assert os.path.isdir(tmp_path / "mine_saved_model")
    loaded = tf.saved_model.load(str(tmp_path / "mine_saved_model"))
    outputs = loaded.signatures["serving_default"](images=tf.zeros((1, 40, 56, 3), tf.uint8))
    labels = outputs["labels"]
    assert tuple(labels.shape)[-2:] == (40, 56) and int(tf.reduce_max(labels)) < len(CLASSES)


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path):
    os.makedirs(tmp_path / "unfinished" / "stage1")
    image = str(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    for command in (["predict", str(tmp_path / "unfinished"), image, "--out", str(tmp_path / "o")],
                    ["export", str(tmp_path / "unfinished")]):
        result = _cli(command)
        assert result.exit_code == 2, result.output
        assert "without card.json" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- evaluate --data folder
def _numpy_miou(pairs, num_classes):
    """VOC mIoU from (label, prediction) pairs by counting pixels (void 255 skipped)."""
    tp, fp, fn = np.zeros(num_classes), np.zeros(num_classes), np.zeros(num_classes)
    for label, prediction in pairs:
        keep = label != 255
        for c in range(num_classes):
            tp[c] += np.sum((label == c) & (prediction == c) & keep)
            fp[c] += np.sum((label != c) & (prediction == c) & keep)
            fn[c] += np.sum((label == c) & (prediction != c) & keep)
    union = tp + fp + fn
    return float(np.mean(tp[union > 0] / union[union > 0]))


def test_evaluate_run_dir_on_folder_val_same_report_json_and_gallery(trained, tmp_path):
    from keras_deconv import zoo
    from keras_deconv.datasets import folder

    root, run_dir = trained
    json_path, gallery_dir = str(tmp_path / "eval.json"), str(tmp_path / "gallery")
    result = _cli(["evaluate", run_dir, "--data", "folder", "--data-dir", root, "--split", "val", "--json", json_path,
                   "--save-examples", "2", "--examples-dir", gallery_dir, "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"model: {run_dir} (DeconvNet)" in result.output and "data: data val, 2 images" in result.output
    report = json.loads(open(json_path).read())
    assert report["dataset"] == "data" and report["split"] == "val" and report["count"] == 2
    assert [c["name"] for c in report["metrics"]["per_class"]] == list(CLASSES)
    pipeline = zoo.load(run_dir)
    pairs = [(label, pipeline.predict([image])[0]) for _, image, label in folder.examples(root, "val")]
    assert report["metrics"]["mean_iou"] == pytest.approx(_numpy_miou(pairs, len(CLASSES)), abs=1e-6)
    card_metric = json.loads(open(os.path.join(run_dir, "card.json")).read())["weights"]["folder"]["metrics"][0]
    assert 100 * report["metrics"]["mean_iou"] == pytest.approx(card_metric["value"], abs=0.01)
    assert os.path.isfile(os.path.join(gallery_dir, "data-val-gallery.png"))


def test_evaluate_folder_refuses_a_model_of_other_classes_in_one_line(trained, tmp_path):
    root, run_dir = trained
    os.makedirs(tmp_path / "swapped")
    other = make_dataset(tmp_path / "swapped", splits=(("val", 1),), classes=("background", "bar", "disc"))
    result = _cli(["evaluate", run_dir, "--data", "folder", "--data-dir", other, "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("Error: ") and "line 2: 'disc' vs 'bar'" in message and "--init" in message
    # a zoo model of another label space: the count is named
    result = _cli(["evaluate", "fcn8s-small", "--data", "folder", "--data-dir", root, "--quiet"])
    assert result.exit_code == 1 and "outputs 13 classes but" in result.output and "has 3" in result.output
    # missing --data-dir, missing split: one line each
    result = _cli(["evaluate", run_dir, "--data", "folder", "--quiet"])
    assert result.exit_code == 1 and "needs --data-dir" in result.output
    result = _cli(["evaluate", run_dir, "--data", "folder", "--data-dir", root, "--split", "test", "--quiet"])
    assert result.exit_code == 1 and "splits found: train, val" in result.output


def test_random_model_with_the_datasets_class_count_takes_its_names(trained):
    root, _ = trained
    result = _cli(["evaluate", "deconvnet", "--data", "folder", "--data-dir", root, "--weights", "none",
                   "--num-classes", "3", "--config", "width=0.0625", "--config", "fc_units=16", "--limit", "1",
                   "--json", "-", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["random_weights"] is True and report["count"] == 1
    assert [c["name"] for c in report["metrics"]["per_class"]] == list(CLASSES)


# ---------------------------------------------------------------- decouplednet on a folder dataset
def test_strong_images_give_every_class_its_budget():
    from keras_deconv.training.folder_data import strong_images

    rng = np.random.default_rng(3)
    present = [sorted(set(rng.integers(1, 5, rng.integers(0, 3)).tolist())) for _ in range(40)]
    for budget in (1, 2, 5):
        for seed in (0, 7):
            chosen = strong_images(present, budget, seed)
            for c in range(1, 5):
                holding = [i for i in range(40) if c in present[i]]
                assert sum(c in present[i] for i in chosen) >= min(budget, len(holding))
            # each class picks at most `budget` images of its own
            assert len(chosen) <= budget * 4
    assert strong_images(present, "all") == [i for i in range(40) if present[i]]


def test_image_labels_and_class_pairs_come_from_the_masks(tmp_path):
    from test_folder_data import _decode_labels

    from keras_deconv.datasets import folder
    from keras_deconv.training import folder_data

    root = make_dataset(tmp_path, splits=(("train", 4),), size=(48, 64))
    split = folder.scan(root, "train")
    present = folder_data.present_classes(split)
    assert present == [sorted(int(v) for v in np.unique(folder.read_mask(p)) if v not in (0, 255))
                       for p in split.mask_paths]
    # whole images in view (fit, no jitter): the labels are the classes of the whole mask
    images, labels = next(iter(folder_data.image_label_batches(split, 4, (64, 64), 2, scale_range=(1, 1))))
    for image, label in zip(images.numpy(), labels.numpy()):
        classes = [c for c in np.unique(_decode_labels(image)) if c not in (-1, 0, 255)]
        assert np.flatnonzero(label).tolist() == [c - 1 for c in classes]
    # figure-ground targets: 1 exactly on the queried class, void kept
    pairs = [(i, c) for i in range(4) for c in present[i]]
    inputs, target = next(iter(folder_data.class_pair_batches(split, pairs, len(pairs), (32, 32), 2,
                                                              scale_range=(1, 1), shuffle=False, repeat=False)))
    for image, query, binary in zip(inputs["data"].numpy(), inputs["cls-label"].numpy(), target.numpy()):
        decoded = _decode_labels(image)
        c = int(np.argmax(query)) + 1
        np.testing.assert_array_equal(binary, np.where(decoded == 255, 255, (decoded == c).astype(int)))


def test_train_decouplednet_on_a_folder_with_a_budget_is_a_model(tmp_path):
    from keras_deconv import zoo
    from keras_deconv.training.folder_data import present_classes, strong_images
    from keras_deconv.datasets import folder

    os.makedirs(tmp_path / "data")
    root = make_dataset(tmp_path / "data", splits=(("train", 6), ("val", 2)), size=(48, 64))
    run_dir = str(tmp_path / "dn")
    result = _cli(["train", "decouplednet", "-o", run_dir, "--data", "folder", "--data-dir", root, "--budget", "1",
                   "--steps", "2", "--epochs", "1", "--hparam", "batch_size=2", "--no-jit", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    run = json.loads(open(os.path.join(run_dir, "run.json")).read())
    assert list(run["stages"]) == ["classification", "segmentation-1"]  # no shapes pretraining
    expected = strong_images(present_classes(folder.scan(root, "train")), 1)
    assert run["data"]["strong_images"] == {"1": len(expected)} and len(expected) < 6
    seg = zoo.load_segmenter(run_dir)
    assert seg.family == "DecoupledNet" and seg.class_names == list(CLASSES)
    report = _cli(["evaluate", run_dir, "--data", "folder", "--data-dir", root, "--json", "-", "--quiet"])
    assert report.exit_code == 0, report.output
    metric = json.loads(open(os.path.join(run_dir, "card.json")).read())["weights"]["1"]["metrics"][0]
    assert 100 * json.loads(report.stdout)["metrics"]["mean_iou"] == pytest.approx(metric["value"], abs=0.01)


# ---------------------------------------------------------------- transfernet on a folder dataset
def _split_domains(root):
    """Even images keep disc (1) only, odd ones bar (2) only: a source and a target domain."""
    from test_folder_data import image_for

    for split in os.listdir(os.path.join(root, "masks")):
        for name in sorted(os.listdir(os.path.join(root, "masks", split))):
            index = int(name[3:-4])
            path = os.path.join(root, "masks", split, name)
            label = np.array(Image.open(path))
            label[label == (2 if index % 2 == 0 else 1)] = 0
            Image.fromarray(label).save(path)
            Image.fromarray(image_for(label)).save(os.path.join(root, "images", split, name))


def test_train_transfernet_on_a_folder_source_masks_target_image_labels(tmp_path):
    from keras_deconv import zoo

    os.makedirs(tmp_path / "data")
    root = make_dataset(tmp_path / "data", splits=(("train", 6), ("val", 2)), size=(48, 64))
    _split_domains(root)
    run_dir = str(tmp_path / "tn")
    fast = ["--steps", "2", "--epochs", "1", "--hparam", "batch_size=2", "--no-jit", "--quiet"]
    for bad, words in ((["--source-classes", "disc,bar"], "two non-empty parts"),
                       (["--source-classes", "cat"], "'cat' is not a class"),
                       ([], "needs --source-classes")):
        result = _cli(["train", "transfernet", "-o", run_dir, "--data", "folder", "--data-dir", root, *bad, *fast])
        assert result.exit_code == 2 and words in result.output, result.output
        assert not os.path.exists(run_dir)
    result = _cli(["train", "transfernet", "-o", run_dir, "--data", "folder", "--data-dir", root,
                   "--source-classes", "disc", *fast])
    assert result.exit_code == 0, (result.output, result.exception)
    run = json.loads(open(os.path.join(run_dir, "run.json")).read())
    assert set(run["stages"]) == {"encoder", "attention", "segmentation"}  # no pretraining
    assert run["data"]["domains"] == {"source": {"classes": ["disc"], "images": 3},
                                      "target": {"classes": ["bar"], "images": 3}}
    seg = zoo.load_segmenter(run_dir)
    assert seg.family == "TransferNet" and seg.class_names == list(CLASSES) and seg.needs_image_labels
    report = _cli(["evaluate", run_dir, "--data", "folder", "--data-dir", root, "--json", "-", "--quiet"])
    assert report.exit_code == 0, report.output
    document = json.loads(report.stdout)
    assert document["oracle_image_labels"] is True
    metric = json.loads(open(os.path.join(run_dir, "card.json")).read())["weights"]["folder"]["metrics"][0]
    assert "oracle" in metric["setting"]
    assert 100 * document["metrics"]["mean_iou"] == pytest.approx(metric["value"], abs=0.01)
