"""The papers' claims, in miniature: the README's table (Training), printed from the shipped small models.

    python bench/claims.py [--count N] [--shapes-config hard] [--only transfernet ...] [--seeds]
    python bench/claims.py --only transfernet --transfernet-run runs/exp/RUN ...   # + experiment runs

Data: the shapes test split (500 images, 64x64) of the generator config the
shipped models of each part were trained on (their cards' ``shapes_config``;
override with ``--shapes-config``), each model through its zoo pipeline (``zoo.load``), one
ConfusionMatrix per row (VOC mIoU).

1. DeconvNet vs FCN-8s (ICCV 2015: DeconvNet handles objects of many scales,
   FCN's fixed receptive field struggles with small and large ones; the
   ensemble is best): mIoU, pixel accuracy, and per-object accuracy by object
   size. An object's accuracy is the share of its (non-void) pixels predicted
   as its class; objects are binned by visible area (shapes ``areas``) as a
   fraction of the image: small < 3 %, medium 3-15 %, large >= 15 %.
2. DecoupledNet with 5 / 10 / 25 / all strong images per class (NIPS 2015:
   accuracy degrades gracefully as strong annotations shrink): with the
   classes its own classifier detects, and with oracle image labels (the
   segmentation network alone); the budget is strict on target-domain images.
3. TransferNet vs a weakly supervised baseline on the 5 target classes, with
   zero target masks (CVPR 2016: transfer beats weak supervision). Both get the
   same ground-truth image-level labels (oracle class ids). Baseline:
   thresholded class-activation maps of the classifier trained on image labels
   of both domains (the recipe's ``encoder`` stage); the threshold is chosen
   on the *source*-domain val images (masks allowed there), never on target
   masks.
"""

import argparse
import functools
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_deconv import pipelines, zoo  # noqa: E402
from keras_deconv.datasets import shapes  # noqa: E402
from keras_deconv.training import evaluate  # noqa: E402
from keras_deconv.training.cam import CAMPipeline  # noqa: E402
from keras_deconv.training.data import MAX_TRAIN_IMAGES  # noqa: E402
from keras_deconv.training.recipes import build_cam_classifier  # noqa: E402
from keras_deconv.zoo import registry, scoring  # noqa: E402

SIZE_BINS = (("small", 0.0, 0.03), ("medium", 0.03, 0.15), ("large", 0.15, 1.01))
CAM_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
CAM_LABEL = "CAM baseline (thresholded class activation maps)"
#: The shapes generator config scored on (main() sets it).
CONFIG = "standard"


class ObjectAccuracy:
    """Per-object accuracy (share of an object's pixels labelled with its class), binned by area."""

    def __init__(self):
        self.values = {name: [] for name, _, _ in SIZE_BINS}

    def __call__(self, example, prediction):
        side = example["label"].shape[0]
        for k in range(int(example["num_objects"])):
            mask = example["instances"] == k + 1
            if not mask.any():
                continue
            accuracy = float((prediction[mask] == example["classes"][k]).mean())
            fraction = example["areas"][k] / side**2
            for name, low, high in SIZE_BINS:
                if low <= fraction < high:
                    self.values[name].append(accuracy)

    def row(self):
        return {name: (100 * float(np.mean(v)) if v else float("nan"), len(v)) for name, v in self.values.items()}


def _fmt(value):
    return "n/a" if value is None or value != value else f"{value:.1f}"


def _deconvnet_rows(deconv, fcn, count):
    """``[(label, mIoU, pixel accuracy, object accuracy by size)]``: DeconvNet, FCN-8s and their average."""
    ensemble = pipelines.DeconvNetPipeline(deconv.model, fcn=fcn.model, mode="whole", ensemble="average",
                                           fcn_pad_to=None, min_size=64)
    rows = []
    for label, pipeline in (("DeconvNet-small", deconv), ("FCN-8s-small", fcn),
                            ("EDeconvNet-small (average of the two)", ensemble)):
        objects = ObjectAccuracy()
        matrix = evaluate.score(pipeline, "test", count=count, on_example=objects, config=CONFIG)
        rows.append((label, 100 * matrix.mean_iou, 100 * matrix.pixel_accuracy, objects.row()))
    return rows


def seed_pairs():
    """``{seed: (DeconvNet, FCN-8s)}`` for the seeds trained for both, as ``zoo.load`` takes them: the zoo
    name for the seed each model ships, the run directory (runs/<name>[-seedK]) for the others."""
    from make_cards import seed_sources  # bench/: the cards' own list of finished seed runs

    deconv, fcn = seed_sources("deconvnet-small"), seed_sources("fcn8s-small")
    return {seed: (deconv[seed], fcn[seed]) for seed in sorted(set(deconv) & set(fcn))}


def _names(sources):
    """``zoo.load`` sources as printed: zoo names as they are, run directories relative to the repository."""
    return " + ".join(os.path.relpath(source, ROOT) if os.path.isdir(source) else source for source in sources)


def deconvnet_vs_fcn(count, seeds=False):
    deconv, fcn = zoo.load("deconvnet-small"), zoo.load("fcn8s-small")
    rows = _deconvnet_rows(deconv, fcn, count)
    print("\n## 1. DeconvNet vs FCN-8s (shapes test, %s images)\n" % (count or 500))
    print("| model | params | mIoU | pixel acc. | obj. acc. small | medium | large |")
    print("|---|---|---|---|---|---|---|")
    params = {"DeconvNet-small": deconv.model.count_params(), "FCN-8s-small": fcn.model.count_params()}
    for label, miou, acc, bins in rows:
        counts = {k: v[1] for k, v in bins.items()}
        print(f"| {label} | {params.get(label, params['DeconvNet-small'] + params['FCN-8s-small']):,} | {_fmt(miou)} | "
              f"{_fmt(acc)} | " + " | ".join(_fmt(bins[name][0]) for name, _, _ in SIZE_BINS) + " |")
    print(f"\nobjects per bin: {counts} (small < 3 % of the image, medium 3-15 %, large >= 15 %)")
    if seeds:
        _deconvnet_seeds(rows, count)


def _deconvnet_seeds(shipped_rows, count):
    """``--seeds``: the same comparison for every seed trained for both models, and whether each claim holds."""
    pairs = seed_pairs()
    if len(pairs) < 2:
        print("\n--seeds: no seed run trained for both models (runs/deconvnet-small-seedK, runs/fcn8s-small-seedK)")
        return
    by_seed = {}
    for seed, (deconv, fcn) in pairs.items():
        shipped = (deconv, fcn) == ("deconvnet-small", "fcn8s-small")  # the pair part 1 scored
        by_seed[seed] = shipped_rows if shipped else _deconvnet_rows(zoo.load(deconv), zoo.load(fcn), count)
    print("\nSeeds (K = the same commands with --seed K, runs/<name>-seedK, seed 0 without; the seed each "
          f"model ships scored from the zoo: {', '.join(f'{s}: {_names(p)}' for s, p in pairs.items())}): mIoU, "
          "and small-object accuracy\n")
    print("| seed | DeconvNet mIoU | FCN-8s mIoU | EDeconvNet mIoU | ensemble >= better | DeconvNet > FCN | "
          "DeconvNet small obj. | FCN small obj. |")
    print("|---|---|---|---|---|---|---|---|")
    table = []
    for seed, rows in by_seed.items():
        (_, d, _, d_bins), (_, f, _, f_bins), (_, e, _, _) = rows
        values = (d, f, e, d_bins["small"][0], f_bins["small"][0])
        table.append(values)
        print(f"| {seed} | {_fmt(d)} | {_fmt(f)} | {_fmt(e)} | {'yes' if e >= max(d, f) else 'no'} | "
              f"{'yes' if d > f else 'no'} | {_fmt(values[3])} | {_fmt(values[4])} |")
    table = np.array(table)
    mean, std = table.mean(0), table.std(0, ddof=1)
    holds = sum(int(e >= max(d, f)) for d, f, e, _, _ in table)
    wins = sum(int(d > f) for d, f, _, _, _ in table)
    print(f"| mean +- std ({len(table)}) | " + " | ".join(f"{m:.1f} +- {s:.1f}" for m, s in zip(mean[:3], std[:3]))
          + f" | {holds} of {len(table)} | {wins} of {len(table)} | "
          + " | ".join(f"{m:.1f} +- {s:.1f}" for m, s in zip(mean[3:], std[3:])) + " |")


class BackgroundOnly:
    """The no-learning floor: every pixel background."""

    def __call__(self, images, labels=None):
        return [pipelines.Segmentation(np.zeros(np.asarray(image).shape[:2], "int32"), np.zeros(0), None)
                for image in images]


def decouplednet_budgets(count, seeds=False):
    """mIoU per budget: as the pipeline runs (its classifier picks the classes) and with oracle labels.

    The target-domain column is where the budget is strict (the encoder's
    pretraining saw source-domain masks only).
    """
    target = shapes.domain_indices("test", "target", config=CONFIG)
    print("\n## 2. DecoupledNet: strong annotations per class (shapes test, %s images)\n" % (count or 500))
    print("| strong images per class | strong train images | mIoU, classifier's labels | mIoU, oracle labels "
          "| target-domain images, oracle labels |")
    print("|---|---|---|---|---|")
    for tag in ("5", "10", "25", "all"):
        pipeline = zoo.load(f"decouplednet-small.{tag}")
        own = evaluate.score(pipeline, "test", count=count, config=CONFIG)
        oracle = evaluate.score(pipeline, "test", count=count, oracle_labels=True, config=CONFIG)
        strict = evaluate.score(pipeline, "test", indices=target, count=count, oracle_labels=True, config=CONFIG)
        # the recipes hold at most the first MAX_TRAIN_IMAGES of a selection (the standard train split streams 1M)
        strong = min(len(shapes.strong_indices("all" if tag == "all" else int(tag), config=CONFIG)),
                     MAX_TRAIN_IMAGES)
        print(f"| {tag} | {strong} | {_fmt(100 * own.mean_iou)} | {_fmt(100 * oracle.mean_iou)} | "
              f"{_fmt(100 * strict.mean_iou)} |")
    floor = evaluate.score(BackgroundOnly(), "test", count=count, config=CONFIG)
    floor_target = evaluate.score(BackgroundOnly(), "test", indices=target, count=count, oracle_labels=True, config=CONFIG)
    print(f"| (every pixel background) | | {_fmt(100 * floor.mean_iou)} | {_fmt(100 * floor.mean_iou)} | "
          f"{_fmt(100 * floor_target.mean_iou)} |")
    if seeds:
        _decouplednet_seeds(count)


def _decouplednet_seeds(count):
    """``--seeds``: mIoU per budget for every seed (runs/decouplednet-small-seedK, all budgets in one run)."""
    from make_cards import TUNING, seed_pipelines, seed_runs  # bench/: the cards' own seed runs and tuning

    runs = seed_runs("decouplednet-small")
    if not runs:
        print("\n--seeds: no finished seed run (runs/decouplednet-small-seedK)")
        return
    tags = ("5", "10", "25", "all")
    key = TUNING["decouplednet-small"][0]
    print("\nSeeds (0 = the shipped weights; K = runs/decouplednet-small-seedK, the same command with --seed K; "
          f"each seed's {key} re-chosen on val images as for the card): mIoU per budget\n")
    print("| seed | " + " | ".join(f"{t}: classifier's labels" for t in tags) + " | 5: oracle | all: oracle |")
    print("|---|" + "---|" * (len(tags) + 2))
    table = []
    for seed in [0] + sorted(runs):
        by_tag = ({tag: zoo.load(f"decouplednet-small.{tag}") for tag in tags} if seed == 0
                  else seed_pipelines("decouplednet-small", runs[seed], tags))
        own = [100 * evaluate.score(by_tag[tag], "test", count=count, config=CONFIG).mean_iou for tag in tags]
        oracle = [100 * evaluate.score(by_tag[tag], "test", count=count, oracle_labels=True, config=CONFIG).mean_iou
                  for tag in ("5", "all")]
        table.append(own + oracle)
        print(f"| {seed} | " + " | ".join(_fmt(v) for v in own + oracle) + " |")
    table = np.array(table)
    print(f"| mean +- std ({len(table)}) | " + " | ".join(
        f"{m:.1f} +- {sd:.1f}" for m, sd in zip(table.mean(0), table.std(0, ddof=1))) + " |")
    falls = sum(int(row[0] < row[3]) for row in table)
    print(f"\n5 strong images per class below all of them (classifier's labels): {falls} of {len(table)} seeds")


def cam_baseline(weights=None):
    """The CAM baseline's classifier: the shipped one, or ``weights`` (a run's ``export/cam-baseline.weights.h5``)."""
    card = zoo.info("transfernet-small")
    config = card["architecture"]["config"]
    classifier = build_cam_classifier(shapes.NUM_OBJECT_CLASSES, tuple(config["input_shape"]), width=config.get("width", 1 / 16))
    classifier.load_weights(weights or registry.SHIPPED_WEIGHTS_DIR / "transfernet-small.cam-baseline.weights.h5")
    return classifier


def cam_pipeline(classifier):
    """``(CAMPipeline, threshold, source val mIoU)``: the threshold of ``CAM_THRESHOLDS`` best on source-domain val images."""
    source_val = shapes.domain_indices("val", "source", config=CONFIG)
    best = None
    for threshold in CAM_THRESHOLDS:
        m = evaluate.score(CAMPipeline(classifier, threshold), "val", indices=source_val, oracle_labels=True, config=CONFIG)
        if best is None or m.mean_iou > best[1]:
            best = (threshold, m.mean_iou)
    return CAMPipeline(classifier, best[0]), best[0], best[1]


def _domain_scores(pipeline, count):
    """``[target mIoU, target pixel acc., source mIoU, source pixel acc.]`` (percent), oracle image labels."""
    cells = []
    for domain in ("target", "source"):
        indices = shapes.domain_indices("test", domain, config=CONFIG)
        m = evaluate.score(pipeline, "test", indices=indices, count=count, oracle_labels=True, config=CONFIG)
        cells += [100 * m.mean_iou, 100 * m.pixel_accuracy]
    return cells


def transfer_vs_weak(count, seeds=False, extra_runs=()):
    cam, threshold, source_miou = cam_pipeline(cam_baseline())
    transfer = zoo.load("transfernet-small")
    print("\n## 3. TransferNet (no target masks) vs weak baseline (shapes test, oracle image labels)\n")
    print(f"CAM threshold {threshold} (best on source-domain val images, mIoU {100 * source_miou:.1f})")
    print(f"TransferNet background_weight {transfer.background_weight} (the card's, chosen on source-domain val "
          "images by bench/make_cards.py)\n")
    print("| model | target-domain images: mIoU | pixel acc. | source-domain images: mIoU | pixel acc. |")
    print("|---|---|---|---|---|")
    shipped = {}
    for label, pipeline in (("TransferNet-small", transfer), (CAM_LABEL, cam),
                            ("every pixel background", BackgroundOnly())):
        shipped[label] = _domain_scores(pipeline, count)
        print(f"| {label} | " + " | ".join(_fmt(v) for v in shipped[label]) + " |")
    n_t = len(shapes.domain_indices("test", "target", config=CONFIG)[:count])
    n_s = len(shapes.domain_indices("test", "source", config=CONFIG)[:count])
    print(f"\nimages: {n_t} target-domain, {n_s} source-domain test images")
    if seeds:
        _transfernet_seeds((shipped["TransferNet-small"][0], shipped[CAM_LABEL][0], threshold), count)
    if extra_runs:
        _transfernet_runs(extra_runs, count)


def _transfernet_runs(paths, count):
    """``--transfernet-run``: other TransferNet run directories (experiments), scored as the shipped model is
    (export/shapes.weights.h5, background_weight re-chosen on val images as for the card)."""
    from make_cards import seed_pipelines  # bench/: the cards' own tuning of a run without a card

    print("\nOther runs (--transfernet-run), oracle image labels\n")
    print("| run | target-domain images: mIoU | pixel acc. | source-domain images: mIoU | pixel acc. |")
    print("|---|---|---|---|---|")
    for path in paths:
        if not (Path(path) / "export" / "shapes.weights.h5").exists():
            raise SystemExit(f"--transfernet-run {path}: no export/shapes.weights.h5 there; pass a finished "
                             "`keras-deconv train transfernet` run directory")
        pipeline = seed_pipelines("transfernet-small", Path(path), ["shapes"])["shapes"]
        print(f"| {path} | " + " | ".join(_fmt(v) for v in _domain_scores(pipeline, count)) + " |", flush=True)


def _transfernet_seeds(shipped, count):
    """``--seeds``: TransferNet and its run's CAM baseline on target-domain images, for every seed
    (runs/transfernet-small-seedK: export/shapes.weights.h5 with background_weight re-chosen on val as for
    the card, export/cam-baseline.weights.h5 with the CAM threshold chosen on source-domain val images)."""
    from make_cards import seed_pipelines, seed_runs  # bench/: the cards' own seed runs and tuning

    runs = seed_runs("transfernet-small")
    if not runs:
        print("\n--seeds: no finished seed run (runs/transfernet-small-seedK)")
        return
    print("\nSeeds (0 = the shipped weights; K = runs/transfernet-small-seedK, the same command with --seed K): "
          "target-domain images, oracle image labels\n")
    print("| seed | TransferNet mIoU | CAM baseline mIoU | CAM threshold | TransferNet / CAM | >= 2x CAM |")
    print("|---|---|---|---|---|---|")
    table = []
    for seed in [0] + sorted(runs):
        if seed == 0:
            transfer_miou, cam_miou, threshold = shipped
        else:
            transfer = seed_pipelines("transfernet-small", runs[seed], ["shapes"])["shapes"]
            cam, threshold, _ = cam_pipeline(cam_baseline(str(runs[seed] / "export" / "cam-baseline.weights.h5")))
            transfer_miou, cam_miou = _domain_scores(transfer, count)[0], _domain_scores(cam, count)[0]
        ratio = transfer_miou / cam_miou
        table.append((transfer_miou, cam_miou, ratio))
        print(f"| {seed} | {_fmt(transfer_miou)} | {_fmt(cam_miou)} | {threshold} | {ratio:.2f}x | "
              f"{'yes' if ratio >= 2 else 'no'} |")
    table = np.array(table)
    mean, std = table.mean(0), table.std(0, ddof=1)
    print(f"| mean +- std ({len(table)}) | {mean[0]:.1f} +- {std[0]:.1f} | {mean[1]:.1f} +- {std[1]:.1f} | | "
          f"{mean[2]:.2f}x +- {std[2]:.2f} | {int((table[:, 2] >= 2).sum())} of {len(table)} |")
    print(f"\nTransferNet above the CAM baseline: {int((table[:, 0] > table[:, 1]).sum())} of {len(table)} seeds")


def _shipped(name, tag=None):
    try:
        card = zoo.info(name)
    except ValueError:
        return False
    tags = [tag] if tag else list(card["weights"])
    return all(registry.weights_status(name, t) == "shipped" for t in tags)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="only the first N images of each selection (default: all)")
    parser.add_argument("--only", choices=("deconvnet", "decouplednet", "transfernet"), action="append")
    parser.add_argument("--seeds", action="store_true",
                        help="each part also for every finished seed run (runs/<name>-seedK), mean +- std")
    parser.add_argument("--shapes-config", choices=shapes.CONFIGS,
                        help="shapes generator config (default: the one on each part's model cards)")
    parser.add_argument("--transfernet-run", action="append", default=[], metavar="RUN_DIR",
                        help="part 3 also scores this TransferNet run directory (repeatable; experiments)")
    args = parser.parse_args()
    global CONFIG
    parts = args.only or ("deconvnet", "decouplednet", "transfernet")
    checks = {"deconvnet": (("deconvnet-small", "fcn8s-small"), deconvnet_vs_fcn),
              "decouplednet": (("decouplednet-small",), decouplednet_budgets),
              "transfernet": (("transfernet-small",),
                              functools.partial(transfer_vs_weak, extra_runs=args.transfernet_run))}
    for part in parts:
        needed, run = checks[part]
        missing = [n for n in needed if not _shipped(n)]
        if missing:
            print(f"\n## {part}: not measured: {', '.join(missing)} not shipped (see the README, 'Our own small models')")
            continue
        configs = {scoring.shapes_config(n) for n in needed}
        if not args.shapes_config and len(configs) > 1:
            print(f"\n## {part}: not measured: {', '.join(needed)} were trained on different shapes configs "
                  f"({', '.join(sorted(configs))}); pass --shapes-config to score them all on one")
            continue
        CONFIG = args.shapes_config or configs.pop()
        print(f"\n## {part}: data: shapes config {CONFIG!r} (version {shapes.VERSIONS[CONFIG]}), "
              f"the one on the models' cards")
        run(args.count, seeds=args.seeds)


if __name__ == "__main__":
    main()
