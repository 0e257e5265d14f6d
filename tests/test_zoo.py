"""The zoo registry, model cards, weights cache and their CLI commands."""

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from keras_deconv import zoo
from official_nets import SPEC_DIR
from keras_deconv.cli.main import cli
from keras_deconv.zoo import cache, registry

SPEC_NETS = Path(SPEC_DIR)
SMALL = {"width": 1 / 16, "fc_units": 32}


pytestmark = pytest.mark.usefixtures("offline_cache")


# ---------------------------------------------------------------- cards
REQUIRED_CARD_FIELDS = {"name", "title", "summary", "paper", "code", "architecture", "pipeline", "categories", "preprocessing", "default_weights", "weights"}
REQUIRED_WEIGHTS_FIELDS = {"description", "origin", "license", "redistributable", "trained_on", "files", "metrics"}
REQUIRED_METRIC_FIELDS = {"dataset", "split", "metric", "value", "source", "verified"}


@pytest.mark.parametrize("name", zoo.list())
def test_every_card_is_complete(name):
    card = zoo.info(name)
    assert REQUIRED_CARD_FIELDS <= set(card), REQUIRED_CARD_FIELDS - set(card)
    assert card["default_weights"] in card["weights"]
    names = card["category_names"] if "category_names" in card else card["categories"]
    assert names[0] == "background"
    # Label maps cover background + classes; DecoupledNet/TransferNet classifiers have no background.
    queries = len(card.get("query_label_names", []))
    assert card["architecture"]["num_classes"] in (len(names), len(names) - 1, queries)
    for tag, spec in card["weights"].items():
        assert REQUIRED_WEIGHTS_FIELDS <= set(spec), (tag, REQUIRED_WEIGHTS_FIELDS - set(spec))
        for metric in spec["metrics"]:
            assert REQUIRED_METRIC_FIELDS <= set(metric)
            if metric["verified"]:
                assert metric["value"] is not None and "README" in metric["source"]
        if spec["origin"] == "authors":
            assert spec["redistributable"] is False
        for file in spec["files"]:
            assert file["url"].startswith("http") and file["name"] in file["url"]


@pytest.mark.parametrize(
    "name, spec_file",
    [("deconvnet", "DeconvNet_inference_deploy.json"), ("decouplednet", "DecoupledNet_Full_anno_inference_deploy.json"),
     ("transfernet", "TransferNet_deploy.json"), ("fcn8s", "fcn-8s-pascal-deploy.json")],
)
def test_card_parameter_counts_match_the_official_networks(name, spec_file):
    official = json.loads((SPEC_NETS / spec_file).read_text())["parameter_count"]
    assert zoo.info(name)["architecture"]["parameter_count"] == official


@pytest.mark.parametrize("name", zoo.list())
def test_card_pipeline_options_are_pipeline_arguments(name):
    import inspect

    from keras_deconv import pipelines

    card = zoo.info(name)
    pipeline_class = getattr(pipelines, card["pipeline"]["class"])
    accepted = set()
    for klass in pipeline_class.__mro__:
        if "__init__" in klass.__dict__:
            accepted |= set(inspect.signature(klass.__init__).parameters)
    assert set(card["pipeline"]["config"]) <= accepted, set(card["pipeline"]["config"]) - accepted


def test_published_numbers_are_copied_exactly():
    decoupled = zoo.info("decouplednet")["weights"]
    assert {tag: spec["metrics"][0]["value"] for tag, spec in decoupled.items()} == {"full": 66.6, "25": 62.5, "10": 58.7, "5": 54.7}
    ensemble = zoo.info("edeconvnet")["weights"]["voc2012"]["metrics"]
    assert [m["value"] for m in ensemble if m["verified"]] == [72.5]
    assert zoo.info("transfernet")["query_label_names"][20] == "truck"
    assert len(zoo.info("transfernet")["query_label_names"]) == 80


def test_list_filters_and_unknown_names():
    assert zoo.list("*net") == ["deconvnet", "decouplednet", "edeconvnet", "transfernet"]
    # nothing converted into the cache here: only the models shipped inside the package are available
    shipped = sorted(name for name in zoo.list()
                     if any(spec.get("shipped_file") and (registry.SHIPPED_WEIGHTS_DIR / spec["shipped_file"]).exists()
                            for spec in zoo.info(name)["weights"].values()))
    assert zoo.list(weights_available=True) == shipped
    assert all(not spec.get("shipped_file") for name in ("deconvnet", "transfernet")
               for spec in zoo.info(name)["weights"].values())  # the authors' weights are never shipped
    with pytest.raises(ValueError, match="Did you mean 'transfernet'"):
        zoo.info("transfernt")
    with pytest.raises(ValueError, match="no weights tagged '7'"):
        zoo.resolve_tag("decouplednet", "7")
    assert zoo.resolve_tag("decouplednet.25") == ("decouplednet", "25")
    assert zoo.resolve_tag("decouplednet") == ("decouplednet", "full")


def test_missing_weights_say_which_commands_to_run():
    with pytest.raises(zoo.WeightsError) as error:
        zoo.create_model("transfernet")
    message = str(error.value)
    assert "keras-deconv weights fetch transfernet" in message and "keras-deconv weights import transfernet" in message


def test_cache_location_respects_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_DECONV_HOME")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert zoo.cache_dir() == tmp_path / "kh" / "keras_deconv"
    monkeypatch.setenv("KERAS_DECONV_HOME", str(tmp_path / "own"))
    assert zoo.cache_dir() == tmp_path / "own"


# ---------------------------------------------------------------- weights and models
def small_weights(tmp_path, name="deconvnet", **config):
    model = registry.build(name, **{**SMALL, **config})
    path = tmp_path / f"{name}.weights.h5"
    model.save_weights(path)
    return model, path


def test_create_model_from_a_weights_file_and_none(tmp_path):
    reference, path = small_weights(tmp_path)
    model = zoo.create_model("deconvnet", weights=str(path), **SMALL)
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.zoo_info["weights"] == str(path)
    random_model = zoo.create_model("deconvnet", weights=None, **SMALL)
    assert random_model.count_params() == model.count_params()


def test_different_num_classes_keeps_the_body(tmp_path):
    reference, path = small_weights(tmp_path)
    model = zoo.create_model("deconvnet", weights=str(path), num_classes=5, **SMALL)
    assert model.zoo_info["reinitialised"] == ["seg-score-voc"]
    np.testing.assert_array_equal(model.get_layer("conv1_1").get_weights()[0], reference.get_layer("conv1_1").get_weights()[0])
    assert model.get_layer("seg-score-voc").get_weights()[0].shape[-1] == 5


def test_wrong_architecture_weights_are_refused(tmp_path):
    _, path = small_weights(tmp_path)
    with pytest.raises(ValueError, match="does not fit"):
        zoo.create_model("deconvnet", weights=str(path), width=1 / 8, fc_units=32)
    with pytest.raises(ValueError, match="neither a weights tag"):
        zoo.create_model("deconvnet", weights=str(tmp_path / "missing.weights.h5"))


def test_store_is_atomic_and_verified(tmp_path):
    def broken(temporary):
        Path(temporary).write_bytes(b"half a file")
        raise KeyboardInterrupt  # interrupted mid-conversion

    with pytest.raises(KeyboardInterrupt):
        cache.store("deconvnet", "voc2012", broken)
    folder = cache.weights_path("deconvnet", "voc2012").parent
    assert [p.name for p in folder.iterdir()] == []  # no partial file, no stray .lock
    model, path = small_weights(tmp_path)
    stored = cache.store("deconvnet", "voc2012", model.save_weights, source={"file": "x.caffemodel", "sha256": "ab"})
    assert registry.weights_status("deconvnet", "voc2012") == "cached"
    assert zoo.weights_file("deconvnet", "voc2012") == stored
    # Damage the file: the load is refused with the repair command.
    with open(stored, "r+b") as stream:
        stream.seek(200)
        stream.write(b"\x00\xff\x00\xff")
    with pytest.raises(zoo.WeightsError, match="no longer match their recorded sha256.*keras-deconv weights fetch deconvnet"):
        zoo.weights_file("deconvnet", "voc2012")


def _store_slowly(home, marker):
    os.environ["KERAS_DECONV_HOME"] = home
    import time

    from keras_deconv.zoo import cache as process_cache

    def write(temporary):
        Path(temporary).write_bytes(marker * 1000)
        time.sleep(0.3)

    process_cache.store("deconvnet", "voc2012", write)


def test_two_processes_storing_the_same_weights_end_valid(offline_cache):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_store_slowly, args=(str(offline_cache), marker)) for marker in (b"a", b"b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    path = cache.verified_path("deconvnet", "voc2012")  # manifest and file agree
    assert path.read_bytes() in (b"a" * 1000, b"b" * 1000)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


# ---------------------------------------------------------------- CLI
def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, standalone_mode=True)


def test_cli_list_and_info():
    result = run("list")
    assert result.exit_code == 0 and "deconvnet" in result.output and "251,805,653" in result.output
    assert [row["name"] for row in json.loads(run("list", "fcn*", "--json").output)] == ["fcn8s", "fcn8s-small"]
    info = run("info", "decouplednet")
    assert info.exit_code == 0 and "66.6" in info.output and "cvlab.postech.ac.kr" in info.output
    card = json.loads(run("info", "transfernet", "--json").output)
    assert card["architecture"]["parameter_count"] == 233648658


def test_cli_usage_errors_exit_2():
    result = run("info", "nope")
    assert result.exit_code == 2 and "Unknown model" in result.output
    assert run("weights", "fetch", "decouplednet", "--tag", "7").exit_code == 2
    assert run("weights", "import", "deconvnet", "/nonexistent.caffemodel").exit_code == 2
    assert run("list", "--bogus").exit_code == 2


def test_cli_runtime_errors_exit_1_with_one_line(tmp_path, capfd):
    from keras_deconv.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["weights", "fetch", "deconvnet"])
    assert exit_.value.code == 1
    err = capfd.readouterr().err
    assert "keras-deconv weights import deconvnet PATH" in err and "Traceback" not in err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(SystemExit) as exit_:
        main(["weights", "import", "deconvnet", str(text)])
    assert exit_.value.code == 1
    assert "expected a .caffemodel" in capfd.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["weights", "remove", "deconvnet"])
    assert exit_.value.code == 1
    assert not list((zoo.cache_dir()).glob("**/*.weights.h5"))


def test_cli_debug_shows_the_traceback():
    from keras_deconv.cli.main import main

    with pytest.raises(zoo.WeightsError):
        main(["--debug", "weights", "fetch", "deconvnet"])


def test_cli_weights_import_list_remove_with_keras_weights(tmp_path):
    _, path = small_weights(tmp_path)
    # A .weights.h5 of the wrong (small) architecture cannot become the full model's weights.
    result = CliRunner().invoke(cli, ["weights", "import", "deconvnet", str(path)])
    assert result.exit_code != 0
    assert not cache.weights_path("deconvnet", "voc2012").exists()
    assert run("weights", "list").stdout.strip() == ""  # results on stdout, notes on stderr


# ---------------------------------------------------------------- pipelines from the zoo
@pytest.mark.parametrize(
    "name, config, options, call",
    [
        ("deconvnet", {"width": 1 / 16, "fc_units": 32}, {}, {}),
        ("fcn8s", {"width": 1 / 16, "fc_units": 16}, {"pad_to": 64}, {}),
        ("edeconvnet", {"width": 1 / 16, "fc_units": 16}, {"min_box_size": 16, "max_proposals": 3, "fcn_pad_to": 64}, {}),
        ("decouplednet", {"input_shape": (64, 64, 3), "width": 1 / 16, "fc_kernel_size": 1}, {"threshold": 0.0}, {}),
        ("transfernet", {"input_shape": (64, 64, 3), "width": 1 / 16}, {}, {"labels": [[1, 3]]}),
    ],
)
def test_every_entry_loads_as_a_pipeline(name, config, options, call):
    pipeline = zoo.load(name, weights=None, config=config, **options)
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    [result] = pipeline([image], **call)
    assert result.labels.shape == (37, 53)
    assert result.probabilities.shape[:2] == (37, 53)
    if name == "transfernet":
        assert set(result.attention) == {1, 3} and result.attention[1].shape == (37, 53)


@pytest.mark.slow
def test_import_then_load_offline_end_to_end(tmp_path):
    """The user path: import a .caffemodel once, then everything works offline."""
    from keras_deconv.caffe import load_net_spec, synthetic_layers_from_spec, write_caffemodel

    spec = load_net_spec(str(SPEC_NETS / "fcn-8s-pascal-deploy.json"))
    source = tmp_path / "fcn-8s-pascal.caffemodel"
    write_caffemodel(str(source), synthetic_layers_from_spec(spec, seed=3, dialect="v1", lazy=True), dialect="v1")
    result = CliRunner().invoke(cli, ["weights", "import", "fcn8s", str(source)])
    assert result.exit_code == 0, result.output
    cached = cache.weights_path("fcn8s", "voc2011")
    assert result.stdout.strip() == str(cached)
    manifest = json.loads(cache.manifest_path("fcn8s", "voc2011").read_text())
    assert manifest["source"]["sha256"] == cache.sha256_file(source)
    source.unlink()  # the original is no longer needed
    listed = json.loads(run("weights", "list", "--json").stdout)
    assert [(row["name"], row["tag"]) for row in listed] == [("fcn8s", "voc2011")]
    assert "voc2011: cached" in run("list").stdout
    pipeline = zoo.load("fcn8s", pad_to=None)  # urlopen is disabled: fully offline
    [labels] = pipeline.predict([np.full((40, 60, 3), 128, np.uint8)])
    assert labels.shape == (40, 60)
