"""Validation mIoU after each epoch (``val_miou`` in log.csv) and the run's curve.png."""

import csv
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_deconv import training
from keras_deconv.training import recipes
from keras_deconv.training.validation import ValidationMIoU, draw_curve, save_curve


def _numpy_miou(labels, predictions, num_classes, ignore=255):
    """An independent mIoU: bincount confusion over non-void pixels, mean over classes with a union."""
    keep = labels != ignore
    confusion = np.bincount(labels[keep] * num_classes + predictions[keep],
                            minlength=num_classes ** 2).reshape(num_classes, num_classes)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return 100.0 * np.mean(tp[union > 0] / union[union > 0])


def test_validation_miou_is_the_mean_iou_of_the_argmax():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(6, 8, 8, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(6, 8, 8)).astype("int32")
    labels[:, 0, :] = 255  # void rows are skipped
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 3, padding="same")])
    callback = ValidationMIoU(tf.data.Dataset.from_tensor_slices((images, labels)).batch(4))
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    expected = _numpy_miou(labels, np.asarray(model(images)).argmax(-1), 3)
    assert logs["val_miou"] == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 100


def test_dict_outputs_are_scored_by_name():
    images = np.zeros((2, 4, 4, 3), "float32")
    labels = {"seg": np.ones((2, 4, 4), "int32"), "other": np.zeros((2,), "int32")}
    inputs = keras.Input((4, 4, 3))
    ones = keras.layers.Lambda(lambda x: keras.ops.concatenate([x[..., :1] - 1, x[..., :1] + 1], -1))(inputs)
    model = keras.Model(inputs, {"seg": ones, "other": keras.layers.GlobalAveragePooling2D()(ones)})
    callback = ValidationMIoU(tf.data.Dataset.from_tensor_slices((images, labels)).batch(2), output="seg")
    callback.set_model(model)
    assert callback.score() == 100.0  # every pixel labelled 1, argmax 1


@pytest.mark.parametrize("name, expected", [
    ("deconvnet", {"pretrain": 13, "stage1": 13, "stage2": 13}),
    ("fcn8s", {"train": 13}),
    ("decouplednet", {"pretrain": 8, "classification": None, "segmentation-5": 2}),
    ("transfernet", {"pretrain": 8, "encoder": None, "attention": None, "segmentation": 2}),
])
def test_each_recipe_scores_its_pixel_stages_on_unaugmented_val_images(name, expected):
    kwargs = {"budgets": [5]} if name == "decouplednet" else {}
    hparams = {} if name == "fcn8s" else {"pretrain_steps": 1}
    recipe = training.get_recipe(name)(hparams=hparams, **kwargs)
    for stage in recipe.stages():
        validation = recipe.validation(stage.name)
        assert (validation is None) == (expected[stage.name] is None), stage.name
        if validation is None:
            continue
        dataset_fn, output = validation
        first, second = list(dataset_fn()), list(dataset_fn())
        labels = [y[output] if output else y for _, y in first]
        values = np.unique(np.concatenate([np.asarray(y).ravel() for y in labels]))
        assert set(values) <= set(range(expected[stage.name])) | {255}, (stage.name, values)
        assert len(values) > 2 or expected[stage.name] == 2
        # finite and identical each epoch: no shuffling, no augmentation
        for (x1, _), (x2, _) in zip(first, second):
            x1 = x1["data"] if isinstance(x1, dict) else x1
            x2 = x2["data"] if isinstance(x2, dict) else x2
            np.testing.assert_array_equal(np.asarray(x1), np.asarray(x2))
        images = sum(int((x["data"] if isinstance(x, dict) else x).shape[0]) for x, _ in first)
        assert 0 < images <= (recipe.val_images if expected[stage.name] > 2 else 3 * recipe.val_images)


def test_folder_recipes_do_not_score_shapes_images(tmp_path):
    from keras_deconv.training.folder_recipes import FolderData

    assert FolderData.validation(None, "stage1") is None


def test_a_run_logs_val_miou_and_draws_its_curve(tmp_path):
    output = str(tmp_path / "run")
    recipe = training.get_recipe("transfernet")(hparams={"batch_size": 4})
    recipe.set_steps(2)
    run = training.train(recipe, output, epochs=2, verbose=0, export=False, jit_compile=False)
    assert run["curve"] == "curve.png"
    for stage, scored in (("pretrain", True), ("encoder", False), ("attention", False), ("segmentation", True)):
        with open(os.path.join(output, stage, "log.csv")) as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 2
        if scored:
            assert all(0.0 <= float(row["val_miou"]) <= 100.0 for row in rows), rows
        else:
            assert "val_miou" not in rows[0]
    with Image.open(os.path.join(output, "curve.png")) as image:
        assert image.size == (720, 420)
        colours = {c for _, c in image.convert("RGB").getcolors(1 << 20)}
    assert (0, 0, 255) in colours and (255, 0, 0) in colours  # the val mIoU and the loss lines


def test_no_curve_without_a_logged_epoch(tmp_path):
    assert save_curve(str(tmp_path), ["stage1"], str(tmp_path / "curve.png")) is None
    assert not os.path.exists(tmp_path / "curve.png")


def test_draw_curve_draws_rows_from_elsewhere_with_reference_levels(tmp_path):
    rows = [{"seconds": 60.0 * i, "loss": 2.0 / (i + 1), "val_miou": 10.0 * i} for i in range(1, 5)]
    path = str(tmp_path / "baseline.png")
    assert draw_curve([("train", rows)], path, "U-Net", levels=[("all-background", 6.9, "orange")]) == path
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    # the level is a horizontal orange line at 6.9 % of the plot height (50 px margins, 420 px image)
    y = round(420 - 50 - (420 - 100) * 6.9 / 100)
    assert ((pixels[y - 1 : y + 2, 60:600] == (255, 165, 0)).all(-1)).any(0).mean() > 0.9
    assert draw_curve([("train", [])], path + ".none.png", "empty") is None


def test_recipes_validation_images_are_the_first_of_the_val_split():
    recipe = recipes.DeconvNetRecipe()
    arrays = recipe.val_arrays()
    assert len(arrays["image"]) == recipe.val_images
    source = recipe.val_arrays("source")
    assert set(np.unique(source["label"])) <= set(range(8)) | {255}  # background + the 7 source classes
    assert set(np.unique(recipe.val_arrays("target")["label"])) & set(range(8, 13))
