"""Write (or refresh) the zoo cards of the small models trained on ``shapes``.

Usage (after bench/train_small.sh):

    python bench/make_cards.py [--shapes-config hard] [deconvnet-small fcn8s-small decouplednet-small transfernet-small]
    python bench/make_cards.py --ship best-val deconvnet-small   # ship the seed with the best val mIoU

For each model: the card is written from the run directory (runs/<name>/run.json:
command, configuration, stage timings) and the shipped weights in zoo/weights/,
then every tag is evaluated through the zoo pipeline (``zoo.load``) with
``keras_deconv.metrics.ConfusionMatrix`` on the full shapes test split (500
images) and on the CI subset (the first 64), and both values are stored in
the card. tests/test_training.py re-computes the subset value.

Seeds: seed 0 is runs/<name>, seed K the same command with ``--seed K`` in
runs/<name>-seedK (bench/train_small.sh). When seed runs exist, each is
scored on the full test split too and the default weights entry gets
``seeds``: every seed's test mIoU, their mean and (sample) standard
deviation, and which seed ships. Seed 0 ships unless ``--ship best-val``
chose another: it scores every finished run of the model on the full *val*
split (never test), copies the export of the best one into zoo/weights/, and
the card records the choice and the val scores; later runs of this script
keep that choice (the card's ``shipped_seed``) and describe the shipped
seed's run (command, timings, curve).

``--seeds-only NAME``: rewrite only the ``seeds`` record of an existing card
from the seed runs on this machine (the shipped run directory not needed).
``--metrics-only NAME``: re-score only the metrics of an existing card's
shipped weights (no run directory needed). Without these, a model whose
shipped run directory is missing is refused (its card would lose the command).

The default weights also get the metrics with test-time augmentation
(``--pipeline-option tta=dihedral``, 8 views) after the plain ones.

The run's training curve (runs/<name>/curve.png: loss and val mIoU of every
stage) is copied to docs/images/curves/<name>.png and named in the card.

Every weights entry records the shapes generator it was trained and scored
on (``shapes_config``, ``shapes_version``): the recipes train on the default
``standard`` config; ``--shapes-config hard`` writes cards for weights trained
on the version-1 generator (the models shipped before version 2).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_deconv import zoo  # noqa: E402
from keras_deconv.datasets import shapes, shapes_baselines  # noqa: E402
from keras_deconv.training import evaluate  # noqa: E402
from keras_deconv.zoo import registry, scoring  # noqa: E402
from keras_deconv.zoo.cache import sha256_file  # noqa: E402

LICENSE = "MIT (the keras-deconv project licence); trained by the keras-deconv developers on synthetic data."
PREPROCESSING = {
    "input": "RGB images, uint8 or float in [0, 255], any size",
    "channel_order": "BGR",
    "mean": [104.00698793, 116.66876762, 122.67891434],
    "scale": 1.0,
    "applied_by": "the model's first layer (CaffePreprocessing)",
    "source": "official MATLAB inference code, util/preprocess_image*.m",
}
SHAPES = "keras_deconv.datasets.shapes (built-in synthetic data, 64x64, no download)"
#: The shapes config the weights were trained on; set by --shapes-config.
SHAPES_CONFIG = "standard"


def _data_name():
    """The ``--data`` value of ``keras-deconv evaluate`` for SHAPES_CONFIG."""
    return "shapes" if SHAPES_CONFIG == "standard" else f"shapes-{SHAPES_CONFIG}"


def _shapes_description():
    return f"{SHAPES}, config {SHAPES_CONFIG!r} (version {shapes.VERSIONS[SHAPES_CONFIG]})"

MODELS = {
    "deconvnet-small": {
        "base": "deconvnet", "title": "DeconvNet (small, shapes)", "builder": "DeconvNet", "num_classes": 13,
        "pipeline": {"class": "DeconvNetPipeline", "config": {"mode": "whole", "min_size": 64}},
        "summary": "A 1/4-width DeconvNet trained from scratch on the synthetic shapes dataset: one stage of fresh "
                   "whole images from the streaming train split, Adam with a cosine decay, background pixels weighted "
                   "0.2 in the loss, through scaffold skips (U-Net-style shortcuts after every unpooling that fade "
                   "to 0 one level after another, finest first, over the first 75 % of the steps; --hparam "
                   "scaffold_fade=0.75 --hparam scaffold_order=fine-first), so the last quarter trains the plain "
                   "DeconvNet; BN folded for inference.",
        "tags": {"shapes": "fresh whole images of the streaming shapes train split (--hparam train_stream=1: 7500 steps x 16 = 120,000 images, none seen twice, no augmentation)"},
    },
    "fcn8s-small": {
        "base": "fcn8s", "title": "FCN-8s (small, shapes)", "builder": "FCN8s", "num_classes": 13,
        "pipeline": {"class": "FCN8sPipeline", "config": {"pad_to": None}},
        "summary": "A 1/8-width FCN-8s trained from scratch on the synthetic shapes dataset (fresh whole images "
                   "from the streaming train split, Adam with a cosine decay; background pixels weighted 0.2 in "
                   "the loss): the DeconvNet paper's baseline in miniature.",
        "tags": {"shapes": "fresh whole images of the streaming shapes train split (--hparam train_stream=1: 4000 steps x 16 = 64,000 images, none seen twice, no augmentation)"},
    },
    "decouplednet-small": {
        "base": "decouplednet", "title": "DecoupledNet (small, shapes)", "builder": "DecoupledNet", "num_classes": 12,
        "pipeline": {"class": "DecoupledNetPipeline", "config": {"threshold": 0.5}},
        "summary": "A 1/16-width DecoupledNet trained on shapes: encoder pretrained as an FCN-8s on source-domain "
                   "masks (classes 1-7), one classification network on the image-level labels of all train images, "
                   "and one figure-ground network per annotation budget (5, 10, 25 strong images per class, or "
                   "all); background pixels weighted 0.2 in the pretraining and figure-ground losses. One tag per "
                   "budget.",
        "tags": {
            "all": "image-level labels of the first 4000 train images; pixel masks of all 4000 (pretraining: masks of the source-domain train images)",
            "25": "image-level labels of the first 4000 train images; pixel masks of shapes.strong_indices(25) only (pretraining: masks of the source-domain train images, classes 1-7)",
            "10": "image-level labels of the first 4000 train images; pixel masks of shapes.strong_indices(10) only (pretraining: masks of the source-domain train images, classes 1-7)",
            "5": "image-level labels of the first 4000 train images; pixel masks of shapes.strong_indices(5) only (pretraining: masks of the source-domain train images, classes 1-7)",
        },
        "default": "all",
    },
    "transfernet-small": {
        "base": "transfernet", "title": "TransferNet (small, shapes)", "builder": "TransferNet", "num_classes": 12,
        "pipeline": {"class": "TransferNetPipeline", "config": {"threshold": 0.6, "background_weight": 0.5}},
        "summary": "A 1/16-width TransferNet trained on shapes with pixel masks of the 7 source classes only and "
                   "image-level labels of both domains; segments the 5 target classes (hexagon ... diamond) "
                   "with zero target masks (background pixels weighted 0.2 in the pretraining and segmentation "
                   "losses). Needs image-level labels (class ids) at inference.",
        "tags": {"shapes": "source-domain train images (classes 1-7) with masks; target-domain train images "
                           "(classes 8-12) with image-level labels only (shapes domain rules); encoder "
                           "pretrained as an FCN-8s on the source-domain masks, then fine-tuned as a classifier on "
                           "the image-level labels of all train images"},
        "side_files": {"transfernet-small.cam-baseline.weights.h5":
                       "the weakly supervised CAM baseline of bench/claims.py: "
                       "keras_deconv.training.recipes.build_cam_classifier, trained in the recipe's encoder stage"},
    },
}


def run_name(name, seed):
    """The run directory name of seed ``seed`` of ``name`` under runs/ (bench/train_small.sh's naming)."""
    return name if seed == 0 else f"{name}-seed{seed}"


def _seeds_record(name):
    """The ``seeds`` record of the card's default weights as on disk ({} without a card or a record)."""
    path = registry.CARDS_DIR / f"{name}.json"
    if not path.exists():
        return {}
    card = json.loads(path.read_text())
    return card["weights"][card["default_weights"]].get("seeds", {})


def shipped_seed(name):
    """The seed whose weights the zoo ships: the card's ``seeds.shipped_seed`` (0 when the card has none)."""
    return _seeds_record(name).get("shipped_seed", 0)


def _selection(name):
    """The card's record of how its shipped seed was chosen (``--ship best-val``), or None."""
    return _selection_in(_seeds_record(name))


def _selection_in(record):
    chosen = record.get("selected_by")
    return chosen if isinstance(chosen, dict) else None


def _run(run):
    path = ROOT / "runs" / run / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _wall(run):
    path = ROOT / "runs" / f"{run}.wall"
    return float(path.read_text().split()[0]) if path.exists() else None


#: Where the training curves of the shipped runs go (the run's curve.png, copied for the manual).
CURVES_DIR = ROOT / "docs" / "images" / "curves"


def _curve(name, run):
    """Copies runs/<run>/curve.png (written by keras-deconv train) beside the manual's pages as <name>.png;
    its path or None."""
    source = ROOT / "runs" / run / "curve.png"
    if not source.exists():
        return None
    CURVES_DIR.mkdir(parents=True, exist_ok=True)
    target = CURVES_DIR / f"{name}.png"
    target.write_bytes(source.read_bytes())
    return str(target.relative_to(ROOT))


def skeleton(name, seed=0):
    """The card of ``name`` without metrics, describing the run of ``seed`` (the shipped one)."""
    spec = MODELS[name]
    run = _run(run_name(name, seed))
    curve = _curve(name, run_name(name, seed))
    base = zoo.info(spec["base"])
    config = dict(run.get("config", {}))
    config["num_classes"] = spec["num_classes"]  # the builder's argument (cards' config is passed to the builder)
    if spec["builder"] in ("DecoupledNet", "TransferNet"):
        config["input_shape"] = [run.get("image_size", 64), run.get("image_size", 64), 3]
    command = run.get("command")
    weights = {}
    for tag, trained_on in spec["tags"].items():
        file_name = f"{name}.{tag}.weights.h5"
        path = registry.SHIPPED_WEIGHTS_DIR / file_name
        weights[tag] = {
            "description": f"{spec['title']}, tag {tag!r}: trained by keras-deconv with `keras-deconv train {spec['base']}`.",
            "origin": "keras-deconv",
            "license": LICENSE,
            "redistributable": True,
            "shipped_file": file_name,
            "sha256": sha256_file(path) if path.exists() else None,
            "size": path.stat().st_size if path.exists() else None,
            "trained_on": f"{_shapes_description()}: {trained_on}",
            "shapes_config": SHAPES_CONFIG,
            "shapes_version": shapes.VERSIONS[SHAPES_CONFIG],
            "training": {
                "command": command,
                "run": run.get("stages"),
                "hparams": run.get("hparams"),
                "wall_seconds": _wall(run_name(name, seed)),
                "machine": run.get("machine") or "not recorded",
                **({"curve": f"{curve} (loss and val mIoU per epoch: the run's curve.png)"} if curve else {}),
            },
            "files": [],
            "metrics": [],
        }
    return {
        "name": name,
        "title": spec["title"],
        "summary": spec["summary"],
        "paper": base["paper"],
        "code": "keras_deconv/training (this repository); original: " + base["code"],
        "architecture": {
            "builder": spec["builder"],
            "config": config,
            "input_size": [run.get("image_size", 64)] * 2,
            "parameter_count": None,
            "parameter_count_source": "counted from the built model (folded BN)",
            "num_classes": spec["num_classes"],
        },
        "pipeline": json.loads(json.dumps(spec["pipeline"])),  # a copy: tuning edits it
        "categories": None,
        "category_names": list(shapes.CLASS_NAMES),
        "palette": "voc",
        "preprocessing": PREPROCESSING,
        "default_weights": spec.get("default", "shapes"),
        "weights": weights,
        "notes": [
            "Trained on synthetic data only: a demonstration and test model, not a PASCAL VOC model.",
            "Label space: keras_deconv.datasets.shapes.CLASS_NAMES (0 background, 1-12 shapes; 255 void).",
        ],
    }


def _finished(name, path):
    """Whether the run directory wrote its card (DeconvNet, FCN-8s) or exported the card's default weights
    (a DecoupledNet run of several budgets exports one file per budget and writes no card)."""
    tag = registry.card(name)["default_weights"]
    return (path / "card.json").exists() or (path / "export" / f"{tag}.weights.h5").exists()


def seed_runs(name, include_shipped=False):
    """``{seed: run directory}`` of the finished runs of ``name`` other than the shipped seed's.

    Seed 0 is runs/<name>, seed K >= 1 runs/<name>-seedK. With ``include_shipped``, the shipped seed's
    run too (when it is on this machine)."""
    shipped = shipped_seed(name)
    runs = {}
    for path in sorted((ROOT / "runs").glob(f"{name}*")):
        suffix = path.name[len(name) + len("-seed"):] if path.name.startswith(f"{name}-seed") else None
        seed = 0 if path.name == name else int(suffix) if suffix and suffix.isdigit() and int(suffix) > 0 else None
        if seed is not None and path.is_dir() and _finished(name, path) and (include_shipped or seed != shipped):
            runs[seed] = path
    return runs


def seed_sources(name):
    """``{seed: what zoo.load takes}``: the zoo name for the shipped seed, the run directory for the others."""
    return {**{seed: str(path) for seed, path in seed_runs(name).items()}, shipped_seed(name): name}


def seed_pipelines(name, path, tags):
    """``{tag: pipeline}`` of a seed run without a card: its ``export/<tag>.weights.h5`` in the card's
    architecture, with the card's pipeline setting (``TUNING``) re-chosen on val images for the run's
    default weights (DecoupledNet: one classifier, one threshold for every budget of the run)."""
    files = {tag: str(path / "export" / f"{tag}.weights.h5") for tag in tags}
    options = {}
    if name in TUNING:
        default = registry.card(name)["default_weights"]
        key, best, scores = tune_pipeline(name, None, weights=str(path / "export" / f"{default}.weights.h5"))
        options[key] = best
        print(f"{path.name}: {key}={best} ({scores})")
    return {tag: zoo.load(name, weights=file, **options) for tag, file in files.items()}


def score_seed_run(name, path):
    """ConfusionMatrix of a seed run on the test split, in the setting of the card's first metric (oracle
    labels for TransferNet, whose pipeline needs them): as a run directory, or, when the run wrote no card
    or the card's pipeline setting is tuned (``TUNING``), its default weights through :func:`seed_pipelines`."""
    if (path / "card.json").exists() and name not in TUNING:
        return scoring.score_zoo_model(str(path), "test", config=SHAPES_CONFIG,
                                       oracle_labels=scoring.needs_oracle_labels(name))
    tag = registry.card(name)["default_weights"]
    pipeline = seed_pipelines(name, path, [tag])[tag]
    return evaluate.score(pipeline, "test", oracle_labels=scoring.needs_oracle_labels(name), config=SHAPES_CONFIG)


def seeds_entry(name, shipped_value, shipped=0, selection=None):
    """The card's ``seeds`` record: test mIoU per seed (``shipped_value`` for the shipped seed), mean and std,
    and how the shipped seed was chosen (``selection``: val scores); None if no other seed finished."""
    runs = {seed: path for seed, path in seed_runs(name, include_shipped=True).items() if seed != shipped}
    if not runs:
        return None
    values = {shipped: shipped_value}
    for seed, path in runs.items():
        values[seed] = round(100 * score_seed_run(name, path).mean_iou, 2)
    ordered = [values[seed] for seed in sorted(values)]
    evaluated = (f"keras-deconv evaluate runs/{name}-seedK --data {_data_name()} --split test"
                 if name not in TUNING and all((path / "card.json").exists() for path in runs.values()) else
                 f"zoo.load({name!r}, weights='runs/{name}-seedK/export/<default tag>.weights.h5') with its pipeline "
                 "setting re-chosen on val images (bench/make_cards.py score_seed_run)")
    return {
        "seeds": sorted(values), "test_miou": ordered,
        "mean": round(float(np.mean(ordered)), 2), "std": round(float(np.std(ordered, ddof=1)), 2),
        "shipped_seed": shipped, "split": "test (all 500)", "oracle_labels": scoring.needs_oracle_labels(name),
        "selected_by": selection or "seed 0 (bench/train_small.sh exports seed 0 into the zoo)",
        "runs": [f"runs/{run_name(name, seed)}" for seed in sorted(values)],
        "command": f"bench/train_small.sh's command for {name} with --seed K -o runs/{name}-seedK (seed 0: "
                   f"without --seed, -o runs/{name}); scored with {evaluated}",
    }


def ship_best_val(name):
    """``--ship best-val``: scores every finished run of ``name`` on the full val split, copies the best run's
    exported weights into zoo/weights/ and returns ``(seed, selection record)`` for the card."""
    if name in TUNING:
        sys.exit(f"--ship best-val: {name}'s card pipeline setting is tuned per run ({TUNING[name][0]}); "
                 "only DeconvNet and FCN-8s runs (scored as run directories) can be chosen this way.")
    runs = seed_runs(name, include_shipped=True)
    missing = [seed for seed, path in runs.items() if not (path / "card.json").exists()]
    if len(runs) < 2 or missing:
        sys.exit(f"--ship best-val: {name} needs at least two finished runs with a card (runs/{name}, "
                 f"runs/{name}-seedK); found seeds {sorted(runs)}" + (f", without card: {missing}" if missing else ""))
    val = {}
    for seed, path in sorted(runs.items()):
        matrix = scoring.score_zoo_model(str(path), "val", config=SHAPES_CONFIG,
                                         oracle_labels=scoring.needs_oracle_labels(name))
        val[seed] = round(100 * matrix.mean_iou, 2)
        print(f"{name} seed {seed} ({path.name}): val mIoU {val[seed]}")
    best = max(val, key=val.get)
    selection = {"rule": "the best val mIoU of the finished runs (all 500 val images; the test split not used)",
                 "val_miou": {str(seed): value for seed, value in val.items()},
                 "command": f"python bench/make_cards.py --ship best-val {name}"}
    return best, selection


def write(name, card):
    """Writes zoo/cards/<name>.json in one step (a reader never sees half a card)."""
    path = registry.CARDS_DIR / f"{name}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(card, indent=1) + "\n")
    partial.replace(path)
    registry._cards.cache_clear()


def interim_seeds(name, seed, selection):
    """The ``seeds`` record a card keeps while :func:`main` re-scores it (the card is on disk meanwhile, since
    zoo.load reads it): the previous record if it names the same shipped seed, else the shipped seed and how
    it was chosen. So a reader started beside it (bench/claims.py) never takes another seed as the shipped one."""
    previous = _seeds_record(name)
    if previous.get("shipped_seed", 0) == seed:
        return previous or None
    return {"shipped_seed": seed, "selected_by": selection or "seed 0 (bench/train_small.sh exports seed 0 into the zoo)",
            "pending": "bench/make_cards.py is re-scoring this card's seeds"}


ORACLE = "oracle image-level labels (ground-truth class ids)"


#: The test-time augmentation of the cards' extra metrics (every pipeline takes ``tta``).
TTA = "dihedral"


def metrics_for(name, tag):
    """The card metrics: the pipeline as users run it (the first: what the card reports); DecoupledNet also with
    oracle labels; the default tag also with test-time augmentation (``tta``, 8 views)."""
    settings = [(scoring.needs_oracle_labels(name), None)]
    if MODELS[name]["builder"] == "DecoupledNet":
        settings.append((True, None))
    if tag == MODELS[name].get("default", "shapes"):
        settings.append((scoring.needs_oracle_labels(name), {"tta": TTA}))
    out = []
    for oracle, options in settings:
        for count, subset in ((None, "all 500"), (evaluate.CI_SUBSET, f"first {evaluate.CI_SUBSET}")):
            out.append(_metric(name, tag, count, subset, oracle, options))
    return out


def _metric(name, tag, count, subset, oracle, options=None):
    start = time.perf_counter()
    matrix = scoring.score_zoo_model(f"{name}.{tag}", "test", count=count, oracle_labels=oracle, config=SHAPES_CONFIG,
                                     pipeline_options=options)
    setting = ORACLE if oracle else "no CRF"
    command = f"keras-deconv evaluate {name}:{tag} --data {_data_name()} --split test" + (f" --limit {count}" if count else "")
    if oracle and not scoring.needs_oracle_labels(name):
        setting, command = ORACLE + " instead of the classifier's", command + " --oracle-labels"
    if options:
        setting += ", test-time augmentation: " + ", ".join(f"{k}={v}" for k, v in options.items())
        command += "".join(f" --pipeline-option {k}={v}" for k, v in options.items())
    return {
        "dataset": "shapes", "shapes_config": SHAPES_CONFIG, "shapes_version": shapes.VERSIONS[SHAPES_CONFIG],
        "split": "test", "subset": subset, "metric": "mIoU",
        "value": round(100 * matrix.mean_iou, 2), "pixel_accuracy": round(100 * matrix.pixel_accuracy, 2),
        "setting": setting, "oracle_labels": bool(oracle),
        **({"pipeline_options": dict(options)} if options else {}),
        "command": command,
        "source": f"bench/make_cards.py (keras_deconv.zoo.scoring.score_zoo_model; zoo.load + ConfusionMatrix), {time.perf_counter() - start:.0f} s",
        "verified": False,
    }


#: Pipeline settings chosen per model on shapes *val* images, never on the test split: TransferNet's
#: background weight by mIoU on source-domain images (masks its supervision allows, never target
#: masks); DecoupledNet's detection threshold by the F1 of the detected classes against the
#: image-level labels (no masks, whatever the budget).
TUNING = {
    "transfernet-small": ("background_weight", (2.0, 1.5, 1.0, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05), "source-domain mIoU"),
    "decouplednet-small": ("threshold", (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1), "image-label F1"),
}
TUNING_IMAGES = 100


def _label_f1(scores, labels, threshold):
    detected, truth = scores > threshold, labels > 0
    hits = (detected & truth).sum(1)
    return float(np.mean(2 * hits / np.maximum(detected.sum(1) + truth.sum(1), 1)))


def tune_pipeline(name, tag, weights=None):
    """``(key, best value, {value: val score})`` for the model's tuned pipeline setting (of ``weights``: a file)."""

    def load(**options):
        return zoo.load(name, weights=weights, **options) if weights else zoo.load(f"{name}.{tag}", **options)

    key, grid, criterion = TUNING[name]
    scores = {}
    if criterion == "image-label F1":
        data = shapes.as_numpy("val", count=TUNING_IMAGES, config=SHAPES_CONFIG)
        pipeline = load(threshold=1.0)  # scores only: no class pass
        class_scores = np.stack([r.scores for r in pipeline(list(data["image"]))])
        for value in grid:
            scores[value] = round(100 * _label_f1(class_scores, np.asarray(data["image_labels"]), value), 2)
    else:
        indices = shapes.domain_indices("val", "source", config=SHAPES_CONFIG)[:TUNING_IMAGES]
        for value in grid:
            pipeline = load(**{key: value})
            matrix = evaluate.score(pipeline, "val", indices=indices, oracle_labels=scoring.needs_oracle_labels(name),
                                    config=SHAPES_CONFIG)
            scores[value] = round(100 * matrix.mean_iou, 2)
    return key, max(scores, key=scores.get), scores


def background_only_miou():
    """mIoU (%) of labelling every pixel background on the full shapes test split: the no-learning floor."""

    labels = shapes.as_numpy("test", config=SHAPES_CONFIG)["label"]
    return round(shapes_baselines.background_only_miou(labels), 2)


def copy_into_zoo(name, seed):
    """Copies the exported weights of the shipped seed's run (runs/<name>[-seedK]/export/<tag>.weights.h5)
    into zoo/weights/, so the zoo ships the run the card describes even after bench/train_small.sh wrote
    seed 0's there. Nothing happens for a tag whose run file is not on this machine."""
    for tag in MODELS[name]["tags"]:
        source = ROOT / "runs" / run_name(name, seed) / "export" / f"{tag}.weights.h5"
        target = registry.SHIPPED_WEIGHTS_DIR / f"{name}.{tag}.weights.h5"
        if not source.exists():
            continue
        data = source.read_bytes()
        if target.exists() and target.read_bytes() == data:
            continue
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)  # never a half-copied file in the zoo
        print(f"{name}: ships seed {seed}: {source.relative_to(ROOT)} -> {target.relative_to(ROOT)}")


def main(names, ship=None):
    for name in names:
        seed, selection = ship_best_val(name) if ship else (shipped_seed(name), _selection(name))
        if not (ROOT / "runs" / run_name(name, seed)).is_dir():
            sys.exit(f"{name}: the shipped run runs/{run_name(name, seed)} is not on this machine, so its card "
                     f"cannot be rebuilt (command, timings); rescore it with --metrics-only or --seeds-only.")
        copy_into_zoo(name, seed)
        interim = interim_seeds(name, seed, selection)
        card = skeleton(name, seed)
        if interim:
            card["weights"][card["default_weights"]]["seeds"] = interim
        write(name, card)
        model = zoo.create_model(name, weights=None)
        card["architecture"]["parameter_count"] = int(model.count_params())
        if name in TUNING:
            key, best, scores = tune_pipeline(name, card["default_weights"])
            card["pipeline"]["config"][key] = best
            criterion = TUNING[name][2]
            card["notes"].append(
                f"Pipeline {key}={best}: the best of {sorted(scores)} by {criterion} on shapes val images "
                f"(the first {TUNING_IMAGES} of that selection; bench/make_cards.py tune_pipeline: {scores}).")
            print(name, key, best, scores)
            write(name, card)
        for tag in card["weights"]:
            if card["weights"][tag]["sha256"] is None:
                print(f"{name}:{tag}: no shipped file yet, metrics left empty", file=sys.stderr)
                continue
            card["weights"][tag]["metrics"] = metrics_for(name, tag)
            print(name, tag, [(m["subset"], m["value"]) for m in card["weights"][tag]["metrics"]])
            if tag == card["default_weights"]:
                seeds = seeds_entry(name, card["weights"][tag]["metrics"][0]["value"], seed, selection)
                if seeds:
                    card["weights"][tag]["seeds"] = seeds
                    print(name, tag, "seeds", seeds["test_miou"], f"{seeds['mean']} +- {seeds['std']}")
                elif seed == 0:  # no other seed finished: no record needed (seed 0 ships by default)
                    card["weights"][tag].pop("seeds", None)
                else:  # keep saying which seed ships, or the next run would copy seed 0's weights back
                    card["weights"][tag]["seeds"] = {**interim, "pending": "no other seed's run on this machine"}
        for file_name, what in MODELS[name].get("side_files", {}).items():
            path = registry.SHIPPED_WEIGHTS_DIR / file_name
            if path.exists():
                card["notes"].append(f"Also shipped: {file_name} ({what}; sha256 {sha256_file(path)}).")
        floor = background_only_miou()
        scores = ", ".join(f"{tag} {w['metrics'][0]['value']}" for tag, w in card["weights"].items() if w["metrics"])
        if scores:
            card["notes"].append(f"Shapes test mIoU (all 500, config {SHAPES_CONFIG!r}): {scores}; labelling every "
                                 f"pixel background scores {floor} (bench/make_cards.py background_only_miou).")
        write(name, card)


def update_metrics(names):
    """``--metrics-only``: re-scores the metrics of every shipped tag of existing cards (:func:`metrics_for`, e.g.
    after a new metric setting) and rewrites only those, keeping the rest (command, timings, seeds) as it was:
    for a model whose shipped run directory is not on this machine."""
    for name in names:
        card = json.loads((registry.CARDS_DIR / f"{name}.json").read_text())
        for tag, spec in card["weights"].items():
            if spec["sha256"] is None:
                continue
            spec["metrics"] = metrics_for(name, tag)
            print(name, tag, [(m["subset"], m["setting"], m["value"]) for m in spec["metrics"]])
        write(name, card)


def update_seeds(names):
    """``--seeds-only``: re-scores the seed runs of existing cards and rewrites only their ``seeds`` record.

    For a model whose shipped run directory (runs/<name>) is not on this machine, e.g. seeds trained
    again after the shipped run: the rest of the card (command, timings, metrics) stays as it was."""
    for name in names:
        card = json.loads((registry.CARDS_DIR / f"{name}.json").read_text())
        tag = card["default_weights"]
        record = card["weights"][tag].get("seeds", {})  # the card in hand, not a second read of its file
        seeds = seeds_entry(name, card["weights"][tag]["metrics"][0]["value"], record.get("shipped_seed", 0),
                            _selection_in(record))
        if seeds is None:
            print(f"{name}: no finished seed run (runs/{name}-seedK), card unchanged", file=sys.stderr)
            continue
        card["weights"][tag]["seeds"] = seeds
        print(name, tag, "seeds", seeds["test_miou"], f"{seeds['mean']} +- {seeds['std']}")
        write(name, card)


if __name__ == "__main__":
    args = sys.argv[1:]
    ship = None
    if "--ship" in args:
        at = args.index("--ship")
        ship = args[at + 1] if at + 1 < len(args) else None
        if ship != "best-val":
            sys.exit(f"--ship takes 'best-val' (ship the seed with the best val mIoU); got {ship!r}.")
        del args[at : at + 2]
    if "--metrics-only" in args:
        args.remove("--metrics-only")
        update_metrics(args or list(MODELS))
        sys.exit(0)
    if "--seeds-only" in args:
        args.remove("--seeds-only")
        update_seeds(args or list(MODELS))
        sys.exit(0)
    if "--shapes-config" in args:
        at = args.index("--shapes-config")
        SHAPES_CONFIG = args[at + 1]
        if SHAPES_CONFIG not in shapes.CONFIGS:
            sys.exit(f"--shapes-config must be one of {', '.join(shapes.CONFIGS)}; got {SHAPES_CONFIG!r}.")
        del args[at : at + 2]
    main(args or list(MODELS), ship=ship)
