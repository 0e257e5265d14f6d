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
