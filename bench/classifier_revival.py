"""DecoupledNet's classification stage on a trained ``pretrain`` encoder, with and without the dead-layer revival.

    python bench/classifier_revival.py RUN_DIR [--lr 1e-3] [--steps 2500] [--no-revive]
    python bench/classifier_revival.py --from-scratch [--width 0.0625] [--fc-units 64] [--lr 1e-3]

RUN_DIR is a ``keras-deconv train decouplednet`` run whose ``pretrain`` stage
finished (``RUN_DIR/pretrain/final.weights.h5``; ``--hparam pretrain_steps=6000``
as ``bench/train_small.sh``). The script builds the recipe's classification
network exactly as the stage does (``prepare_classification``: the encoder
copied from the pretrain network, :func:`keras_deconv.training.recipes.revive_dead_layers`,
then unit-variance initialisation of the classifier), trains it ``--steps``
steps at Adam ``--lr`` on the recipe's batches and prints the training loss at
the end of each fifth of the steps. ``--no-revive`` skips the revival (the
recipes before it). ``--from-scratch`` instead trains the classification
stage of a run without ``pretrain`` (``pretrain_steps=0``: every layer
unit-variance initialised), optionally at another ``--width`` / ``--fc-units``.
The label prior is about 0.425 (about 1.8 of 12 classes per image). Minutes on
one core.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from keras_deconv import training  # noqa: E402
from keras_deconv.training import recipes  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a decouplednet run with a finished pretrain stage")
    parser.add_argument("--from-scratch", action="store_true", help="no pretrain stage: no RUN_DIR")
    parser.add_argument("--width", type=float, help="--from-scratch: the network's width (recipe default 1/16)")
    parser.add_argument("--fc-units", type=int, help="--from-scratch: fc6/fc7 channels (recipe default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="classification_lr")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--no-revive", dest="revive", action="store_false")
    args = parser.parse_args()
    if args.from_scratch == bool(args.run_dir):
        parser.error("pass either RUN_DIR (a decouplednet run with a finished pretrain stage) or --from-scratch")
    if not args.revive:
        recipes.revive_dead_layers = lambda *unused, **unused_kw: []
    if args.from_scratch:
        config = {key: value for key, value in (("width", args.width), ("fc_units", args.fc_units)) if value}
        recipe = training.get_recipe("decouplednet")(hparams={"classification_lr": args.lr, "pretrain_steps": 0},
                                                    config=config or None)
        label = f"from scratch {config or 'recipe config'}"
    else:
        weights = os.path.join(args.run_dir, "pretrain", "final.weights.h5")
        if not os.path.exists(weights):
            parser.error(f"{weights} does not exist: RUN_DIR must hold a finished decouplednet pretrain stage.")
        recipe = training.get_recipe("decouplednet")(hparams={"classification_lr": args.lr, "pretrain_steps": 6000})
        pretrain = recipe.pretrain_net()
        pretrain.load_weights(weights)
        recipe.models["pretrain"] = pretrain
        label = f"revive {args.revive}"
    stage = next(s for s in recipe.stages() if s.name == "classification")
    stage.prepare()
    fit_model, loss, _, optimizer, metrics = stage.build()
    fit_model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    start = time.perf_counter()
    history = fit_model.fit(stage.dataset(), epochs=5, steps_per_epoch=args.steps // 5, verbose=0)
    print(f"lr {args.lr} {label}: loss after each fifth of {args.steps} steps "
          f"{[round(value, 4) for value in history.history['loss']]}, binary accuracy "
          f"{[round(value, 4) for value in history.history['binary_accuracy']]} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
