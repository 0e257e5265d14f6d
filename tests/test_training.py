"""Training recipes: loss decreases, checkpoint/resume, BN folding, mirrored strategy, shipped models' metrics."""

import contextlib
import csv
import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deconv import models, training, zoo
from keras_deconv.training import augmentation, evaluate, optimizers, recipes
from keras_deconv.training import data as train_data
from keras_deconv.training.bn_folding import batch_norm_layers, fold_batch_norm, recompute_statistics
from keras_deconv.training.callbacks import copy_weights_by_name, read_json
from keras_deconv.training.fused_adam import FusedAdam
from keras_deconv.zoo import scoring

TINY = {"batch_size": 4}


# ---------------------------------------------------------------- schedule and augmentation
def test_step_schedule_keeps_the_official_shape():
    schedule = optimizers.step_schedule(0.01, 200, 9000 / 20000)  # DeconvNet stage 1: drops at 45% and 90%
    assert [round(float(schedule(s)), 6) for s in (0, 89, 90, 179, 180, 199)] == [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]
    assert optimizers.step_schedule(0.01, 100, 1.5) == 0.01  # stepsize beyond the run: constant (DecoupledNet-10)


def test_cosine_schedule_matches_the_formula_and_reaches_the_recipes():
    import math

    schedule = optimizers.lr_schedule(0.003, 400, 0.75, "cosine")
    for step in (0, 1, 100, 333, 399, 400):
        assert float(schedule(step)) == pytest.approx(0.003 * (1 + math.cos(math.pi * step / 400)) / 2, abs=1e-9)
    optimizer = optimizers.make_optimizer("adam", 0.003, 400, 0.75, schedule="cosine")
    assert isinstance(optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)
    with pytest.raises(ValueError, match="schedule"):
        optimizers.lr_schedule(0.01, 10, 0.5, "linear")
    for name in ("deconvnet", "fcn8s", "decouplednet"):
        assert recipes.get_recipe(name)(hparams={"schedule": "cosine"}).hp["schedule"] == "cosine"


def test_warmup_ramps_the_rate_linearly_then_follows_the_schedule_and_survives_serialisation():
    import math

    schedule = optimizers.lr_schedule(0.003, 400, 0.75, "cosine", warmup=0.05)  # 20 warm-up steps
    cosine = lambda step: 0.003 * (1 + math.cos(math.pi * step / 400)) / 2  # noqa: E731
    for step in (0, 9, 19, 20, 200, 399):
        assert float(schedule(step)) == pytest.approx(min(1.0, (step + 1) / 20) * cosine(step), abs=1e-9)
    step_rates = optimizers.lr_schedule(0.01, 100, 0.5, "step", warmup=0.1)
    assert [round(float(step_rates(s)), 6) for s in (0, 4, 9, 49, 50)] == [0.001, 0.005, 0.01, 0.01, 0.001]
    no_warmup = optimizers.lr_schedule(0.01, 100, 0.5, "step", warmup=0.001)  # rounds to 0 steps
    assert not isinstance(no_warmup, optimizers.LinearWarmup)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="warmup"):
            optimizers.lr_schedule(0.01, 100, 0.5, "cosine", warmup=bad)
    optimizer = optimizers.make_optimizer("adam", 0.003, 400, 0.75, schedule="cosine", warmup=0.05)
    restored = keras.optimizers.Adam.from_config(keras.optimizers.Adam(optimizer._learning_rate).get_config())
    assert float(restored._learning_rate(10)) == pytest.approx(float(schedule(10)), abs=1e-9)
    for name in ("deconvnet", "fcn8s", "decouplednet", "transfernet"):  # their scheduled stages, `pretrain` too
        assert recipes.get_recipe(name)(hparams={"warmup": 0.05}).hp["warmup"] == 0.05


def test_the_warmup_hparam_reaches_each_scheduled_stages_optimizer():
    for name, hparams in (("fcn8s", {"train_steps": 100}), ("deconvnet", {"stage1_steps": 100, "stage2_steps": 100})):
        recipe = recipes.get_recipe(name)(hparams={"warmup": 0.1, "optimizer": "adam", **hparams})
        for stage in recipe.stages():
            stage.prepare()
            optimizer = stage.build()[3]
            assert isinstance(optimizer._learning_rate, optimizers.LinearWarmup), (name, stage.name)
            assert optimizer._learning_rate.warmup_steps == 10
    plain = recipes.get_recipe("fcn8s")(hparams={"train_steps": 100}).stages()[0]
    plain.prepare()
    assert not isinstance(plain.build()[3]._learning_rate, optimizers.LinearWarmup)


def test_augmentation_moves_image_and_labels_together():
    tf.random.set_seed(0)
    blocks = np.random.default_rng(0).integers(0, 13, (8, 8))
    label = np.kron(blocks, np.ones((8, 8))).astype("int32")  # 8x8 blocks: bilinear = nearest inside them
    image = np.stack([label * 10.0, label * 5.0, np.zeros_like(label, "float64")], -1).astype("float32")
    for _ in range(5):
        out_image, out_label = augmentation.random_scale_crop_flip(image, label, (48, 48), (1, 1))
        out_image, out_label = out_image.numpy(), out_label.numpy()
        np.testing.assert_array_equal(out_image[..., 0], out_label * 10.0)
    # with rescaling (labels nearest, image bilinear) the maps agree away from block edges
    out_image, out_label = augmentation.random_scale_crop_flip(image, label, (64, 64), (1.2, 1.2))
    valid = out_label.numpy() != 255
    agree = np.abs(out_image.numpy()[..., 0] - out_label.numpy() * 10.0)[valid] < 1e-3
    assert agree.mean() > 0.5
    # the identity window is pixel exact; outside the image: black image, void labels
    crop, lab = augmentation.crop_window(image, label, [0.0, 0.0, 1.0, 1.0], (64, 64))
    np.testing.assert_allclose(crop.numpy(), image, atol=1e-3)
    np.testing.assert_array_equal(lab.numpy(), label)
    crop, lab = augmentation.crop_window(image, label, [-0.5, -0.5, 0.5, 0.5], (64, 64))
    assert (lab.numpy()[:30, :30] == 255).all() and (crop.numpy()[:30, :30] == 0).all()


def test_shape_invariances_keep_labels_on_their_pixels():
    tf.random.set_seed(1)
    label = np.kron(np.random.default_rng(1).integers(0, 13, (4, 4)), np.ones((4, 4))).astype("int32")
    label[0, 0] = 255
    # channel c holds 10 * label + c, so any permutation/inversion still identifies the label
    image = np.stack([label * 1.0 * (label != 255) + 20.0 * c for c in range(3)], -1).astype("float32")
    seen_turns, seen_inverted, seen_orders = set(), set(), set()
    for _ in range(40):
        out_image, out_label = (t.numpy() for t in augmentation.random_shape_invariances(image, label))
        inverted = bool(out_image.max() > 100)
        plain = 255.0 - out_image if inverted else out_image
        order = tuple(int(round(plain[..., c].min() / 20.0)) for c in range(3))
        assert sorted(order) == [0, 1, 2]
        recovered = plain[..., 0] - 20.0 * order[0]
        np.testing.assert_array_equal(recovered, out_label * (out_label != 255))
        turns = next(k for k in range(4) if np.array_equal(np.rot90(label, k), out_label))
        seen_turns.add(turns), seen_inverted.add(inverted), seen_orders.add(order)
    assert seen_turns == {0, 1, 2, 3} and seen_inverted == {False, True} and len(seen_orders) == 6


# ---------------------------------------------------------------- every recipe learns on a fixed batch
def _stage_losses(recipe, stage, steps=4):
    stage.prepare()
    fit_model, loss, loss_weights, optimizer, _ = stage.build()
    fit_model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, run_eagerly=True)  # no tracing: faster here
    x, y = next(iter(stage.dataset()))
    return [float(np.ravel(fit_model.train_on_batch(x, y))[0]) for _ in range(steps)]


def _recipe_stages():
    cases = []
    for name in ("deconvnet", "fcn8s", "decouplednet", "transfernet"):
        kwargs = {"budgets": [5]} if name == "decouplednet" else {}
        if name == "fcn8s":
            # Dropout 0.5 makes each step's loss a random draw: a 4-step
            # comparison would test the dropout masks, not the learning.
            kwargs = {"config": {"dropout": 0.0}}
        cases.append((name, kwargs))
    return cases


@pytest.mark.parametrize("name, kwargs", _recipe_stages())
def test_a_few_steps_of_every_stage_decrease_the_loss(name, kwargs):
    keras.utils.set_random_seed(0)
    hp = dict(TINY)
    if name == "deconvnet":
        hp["lr"] = 0.05
    if name == "fcn8s":
        hp["lr"] = 0.001  # 0.01 overshoots on the first of 4 steps (2.8 -> 8.9) on a batch of 4
    recipe = training.get_recipe(name)(hparams=hp, **kwargs)
    recipe.set_steps(1000)  # keeps the lr schedule flat over the few steps
    stages = recipe.stages()
    if name == "deconvnet":
        stages = stages[:1]  # stage 2 trains the same model with the same solver, only the data differ
    for stage in stages:
        losses = _stage_losses(recipe, stage)
        assert losses[-1] < losses[0], (name, stage.name, losses)


# ---------------------------------------------------------------- checkpoints and resume
def test_checkpoint_and_resume_continue_the_stage(tmp_path):
    output = str(tmp_path / "run")
    recipe = training.get_recipe("fcn8s")(hparams={"batch_size": 2})
    recipe.set_steps(3)
    first = training.train(recipe, output, epochs=3, verbose=0, export=False, stop_after_epochs=1, jit_compile=False)
    assert not os.path.exists(os.path.join(output, "train", "done.json"))
    assert os.path.exists(os.path.join(output, "train", "checkpoint.weights.h5"))
    assert first["stages"]["train"]["steps"] == 3
    with pytest.raises(FileExistsError, match="resume"):
        training.train(recipe, output, epochs=3, verbose=0, export=False, jit_compile=False)

    resumed = training.get_recipe("fcn8s")(hparams={"batch_size": 2})
    resumed.set_steps(3)
    run = training.train(resumed, output, epochs=3, verbose=0, resume=True, jit_compile=False)
    with open(os.path.join(output, "train", "log.csv")) as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2]  # epoch 0 before the interruption, 1-2 after it
    assert read_json(os.path.join(output, "train", "done.json"))["steps"] == 3
    assert os.path.exists(run["export"]["files"]["shapes"])

    # a resumed run with every stage done only reloads and exports
    again = training.get_recipe("fcn8s")(hparams={"batch_size": 2})
    training.train(again, output, epochs=3, verbose=0, resume=True, export=False)
    for a, b in zip(again.models["fcn8s"].weights, resumed.models["fcn8s"].weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------- BN folding
def _randomise_batch_norm(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in batch_norm_layers(model):
        c = layer.gamma.shape[0]
        layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 1, c), rng.normal(0, 1, c), rng.uniform(0.5, 2, c)])


@pytest.mark.parametrize("name", ["deconvnet", "decouplednet"])
def test_folded_batch_norm_matches_the_trainable_model_in_inference_mode(name):
    keras.utils.set_random_seed(1)
    recipe = training.get_recipe(name)(**({"budgets": [5]} if name == "decouplednet" else {}))
    trained = recipe._build_model("trainable")
    _randomise_batch_norm(trained)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    inputs = images if name == "deconvnet" else [images, rng.uniform(0, 1, (2, 12)).astype("float32")]
    folded = fold_batch_norm(trained)
    zoo_arch = recipe._build_model("folded")  # the builder's inference architecture (ChannelAffine)
    copy_weights_by_name(folded, zoo_arch)

    def seg(out):
        return np.asarray(out["seg-score"] if isinstance(out, dict) else out)

    expected = seg(trained(inputs, training=False))
    np.testing.assert_allclose(seg(folded(inputs, training=False)), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(seg(zoo_arch(inputs, training=False)), expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_folds_into_the_convolutions_of_fcn8s():
    """FCN-8s trained with BN (--hparam batch_norm=1) becomes the official net: same scores, no BN layer."""
    keras.utils.set_random_seed(3)
    config = {"width": 1 / 16, "fc_units": 16}
    trained = models.FCN8s(13, (64, 64, 3), batch_norm="trainable", **config)
    assert [layer.name for layer in batch_norm_layers(trained)] == [
        f"bn{block}_{index}" for block, count in enumerate((2, 2, 3, 3, 3), 1) for index in range(1, count + 1)
    ] + ["bnfc6", "bnfc7"]
    _randomise_batch_norm(trained)
    plain = training.fold_batch_norm_into_convolutions(trained, models.FCN8s(13, (64, 64, 3), **config))
    assert not batch_norm_layers(plain)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = np.asarray(trained(images, training=False))
    np.testing.assert_allclose(np.asarray(plain(images)), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    with pytest.raises(ValueError, match="follows .fc6-deconv., not a convolution with a bias"):
        training.fold_batch_norm_into_convolutions(models.DeconvNet(13, (64, 64, 3), width=1 / 16, fc_units=16,
                                                                    fc_kernel_size=2, batch_norm="trainable"),
                                                   models.FCN8s(13, (64, 64, 3), **config))


def test_fcn8s_recipe_with_batch_norm_exports_weights_of_the_official_net(tmp_path):
    keras.utils.set_random_seed(4)
    recipe = training.get_recipe("fcn8s")(hparams={"batch_size": 2, "batch_norm": 1, "calibration_batches": 2})
    recipe.set_steps(2)
    run = training.train(recipe, str(tmp_path / "run"), epochs=1, verbose=0, jit_compile=False)
    trained = recipe.models["fcn8s"]
    assert len(batch_norm_layers(trained)) == 15
    exported = models.FCN8s(13, (64, 64, 3), weights=run["export"]["files"]["shapes"], **recipe.config)
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = np.asarray(trained(images, training=False))  # after export: the recomputed statistics
    np.testing.assert_allclose(np.asarray(exported(images)), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    with pytest.raises(ValueError, match="batch_norm must be 0 or 1"):
        training.get_recipe("fcn8s")(hparams={"batch_norm": 2})


def test_recompute_statistics_is_the_caffe_procedure():
    keras.utils.set_random_seed(2)
    model = recipes.DeconvNetRecipe()._build_model("trainable")
    batches = [np.random.default_rng(i).uniform(0, 255, (3, 64, 64, 3)).astype("float32") for i in range(2)]
    recompute_statistics(model, batches)
    probe = keras.Model(model.inputs, model.get_layer("bn1_1").input)
    values = [np.asarray(probe(b, training=True), "float64") for b in batches]  # bn1_1 is the first BN: no earlier BN
    m = 3 * 64 * 64
    mean = np.mean([v.mean(axis=(0, 1, 2)) for v in values], axis=0)
    var = np.mean([v.var(axis=(0, 1, 2)) for v in values], axis=0) * m / (m - 1)
    layer = model.get_layer("bn1_1")
    np.testing.assert_allclose(np.asarray(layer.moving_mean), mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), var, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- tf.distribute
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    output = tmp_path / "mirrored"
    command = [sys.executable, "-m", "keras_deconv.cli.main", "train", "fcn8s", "-o", str(output), "--steps", "2",
               "--epochs", "1", "--strategy", "mirrored", "--logical-cpus", "2", "--hparam", "batch_size=4", "--quiet"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((output / "run.json").read_text())
    assert run["strategy"] == "MirroredStrategy" and run["replicas"] == 2
    assert set(run["stages"]) == {"train"} and run["stages"]["train"]["steps"] == 2
    assert (output / "export" / "shapes.weights.h5").exists()


def test_auto_jit_is_xla_only_on_a_gpu_without_a_strategy():
    import tensorflow as tf

    from keras_deconv.training.runner import auto_jit

    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert auto_jit(None) is has_gpu  # on a CPU the graph with oneDNN is faster (bench/train_step.py)
    assert auto_jit(tf.distribute.get_strategy()) is False
    assert auto_jit(None, run_eagerly=True) is False


def test_steps_without_xla_train_the_argmax_pooling_on_tensorflow_kernels(tmp_path):
    recipe = training.get_recipe("deconvnet")(hparams={"batch_size": 2}, config={"width": 1 / 16, "fc_units": 16})
    recipe.set_steps(2)
    run = training.train(recipe, str(tmp_path / "run"), epochs=1, verbose=0, export=False, jit_compile=False)
    assert {stage["argmax_pooling"] for stage in run["stages"].values()} == {"tensorflow-kernels"}
    assert all(np.isfinite(stage["final_loss"]) for stage in run["stages"].values())


# ---------------------------------------------------------------- CLI
def test_cli_train_usage_errors():
    from click.testing import CliRunner

    from keras_deconv.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["train", "fcn8s", "-o", "x", "--budget", "5"])
    assert result.exit_code == 2 and "decouplednet" in result.output
    result = runner.invoke(cli, ["train", "fcn8s", "-o", "x", "--hparam", "nonsense=1"])
    assert result.exit_code == 2 and "Unknown hyperparameter" in result.output


# ---------------------------------------------------------------- shipped models reproduce their cards
def _shipped():
    cases = []
    for name in zoo.list():
        card = zoo.info(name)
        for tag, spec in card["weights"].items():
            if spec.get("origin") == "keras-deconv" and spec.get("shipped_file"):
                for metric in spec["metrics"]:
                    if metric.get("subset") == f"first {evaluate.CI_SUBSET}":
                        oracle = "-oracle" if metric.get("oracle_labels") else ""
                        options = "".join(f"-{k}={v}" for k, v in metric.get("pipeline_options", {}).items())
                        cases.append(pytest.param(name, tag, metric, id=f"{name}:{tag}{oracle}{options}"))
    return cases


@pytest.mark.parametrize("name, tag, metric", _shipped())
def test_shipped_models_reproduce_the_card_metric(name, tag, metric):
    """Re-evaluates each shipped model on the fixed test subset; the card stores that subset's value.

    Tolerance 0.2 mIoU points: the stored value was computed the same way, so
    only float noise (a few pixels flipping between CPUs) may differ.
    """
    matrix = scoring.score_zoo_model(f"{name}.{tag}", "test", count=evaluate.CI_SUBSET,
                                     oracle_labels=metric.get("oracle_labels"),
                                     config=metric.get("shapes_config", "standard"),
                                     pipeline_options=metric.get("pipeline_options"))
    assert abs(100 * matrix.mean_iou - metric["value"]) <= 0.2, (name, tag, 100 * matrix.mean_iou, metric["value"])


def test_train_stream_draws_fresh_whole_images_for_deconvnet_and_fcn8s():
    first = next(iter(train_data.stream(4, 64, seed=3)))
    images, labels = (np.asarray(t) for t in first)
    assert images.shape == (4, 64, 64, 3) and images.dtype == np.float32
    assert labels.shape == (4, 64, 64) and labels.dtype == np.int32
    assert set(np.unique(labels)) <= set(range(13)) | {255}
    batches = [np.asarray(b[0]) for _, b in zip(range(3), train_data.stream(4, 64, seed=3))]
    flat = np.concatenate(batches).reshape(12, -1)
    assert len({row.tobytes() for row in flat}) == 12  # no image twice
    other = np.asarray(next(iter(train_data.stream(4, 64, seed=4)))[0])
    assert not np.array_equal(other, images)  # the seed picks the images
    for name, method in (("deconvnet", "stage2_data"), ("fcn8s", "train_data")):
        recipe = recipes.get_recipe(name)(hparams={"batch_size": 4, "train_stream": 1})
        data = getattr(recipe, method)(3, True) if method == "stage2_data" else recipe.train_data(3)
        np.testing.assert_array_equal(np.asarray(next(iter(data))[0]), images)


def test_several_steps_per_call_count_every_step_and_train_as_one(tmp_path):
    from keras_deconv.models import DeconvNet
    from keras_deconv.training.scaffold import with_scaffold_skips

    hp = {"batch_size": 2, "stage1_steps": 0, "stage2_steps": 6, "stage2_whole_images": 1.0, "scaffold_fade": 0.5}
    config = {"width": 1 / 16, "fc_units": 16}
    recipe = training.get_recipe("deconvnet")(hparams=hp, config=config)
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
        record = training.train(recipe, str(tmp_path / "run"), epochs=1, verbose=1, export=False,
                                jit_compile=False)["stages"]["stage2"]
    assert (record["steps"], record["steps_per_execution"]) == (6, 6)  # one call ran the whole epoch
    assert "6/6" in stream.getvalue()  # the progress bar counts steps, not calls
    # every step inside the call counted: the scaffold's fade (3 steps) is over after 6
    scaffolded = with_scaffold_skips(DeconvNet(recipe.num_classes, recipe.input_shape, batch_norm="trainable",
                                               **recipe.config), fade_steps=3)
    scaffolded.load_weights(str(tmp_path / "run" / "stage2" / "checkpoint.weights.h5"))
    assert float(keras.ops.convert_to_numpy(scaffolded.get_layer("scaffold_unpool1").calls)) == 6.0

    def trained(per_call):  # Keras runs the same steps in one call: what the choice relies on
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
        model.compile(FusedAdam(0.01), "mse", steps_per_execution=per_call)
        data = np.arange(48, dtype="float32").reshape(6, 2, 4) / 48
        dataset = tf.data.Dataset.from_tensor_slices((data, data[..., :2] ** 2))
        model.fit(dataset, epochs=2, steps_per_epoch=6, verbose=0)
        return model.get_weights(), int(model.optimizer.iterations)

    (one, one_steps), (three, three_steps) = trained(1), trained(3)
    assert one_steps == three_steps == 12
    for a, b in zip(one, three):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_steps_per_execution_divides_the_epoch_and_is_one_under_a_strategy():
    from keras_deconv.training.runner import steps_per_execution

    assert [steps_per_execution(n) for n in (750, 1600, 7, 1, 17)] == [15, 16, 7, 1, 1]
    assert steps_per_execution(750, strategy=object()) == 1 and steps_per_execution(750, run_eagerly=True) == 1


def test_bench_dead_units_counts_the_relu_channels_that_never_fire():
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "bench", "dead_units.py")
    spec = importlib.util.spec_from_file_location("dead_units", path)
    dead_units = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dead_units)
    inputs = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(3, 1, name="conv")
    outputs = keras.layers.ReLU(name="relu")(conv(inputs))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="relu", name="fc")(outputs))
    conv.set_weights([np.array([1.0, -1.0, 0.0], "float32").reshape(1, 1, 1, 3), np.array([0.0, 0.0, -1.0], "float32")])
    images = np.random.default_rng(0).uniform(0.1, 1.0, (5, 4, 4, 1)).astype("float32")  # > 0: channels 2, 3 never fire
    rows = dead_units.silent_channels(model, images)
    assert rows[0] == ("relu", 2, 3)
    assert [row[0] for row in rows] == ["relu", "fc"] and rows[1][2] == 2
