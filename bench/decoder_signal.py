"""How much signal reaches TransferNet's decoder: std, mean and live channels of each decoder layer.

    python bench/decoder_signal.py RUN/segmentation/final.weights.h5 [--width 0.0625] [--count 32]

Loads the weights of a TransferNet with its classification head (a stage's
``final.weights.h5`` of a ``keras-deconv train transfernet`` run, 64x64,
``--width`` as trained) and runs the first ``--count`` shapes val images, each
queried with its first object class, through the network. For the saliency
map ``filter_sum``, the decoder's ReLUs and the 2-class score it prints the
standard deviation and mean of the values and the share of channels that are
ever positive. A decoder whose layers sit near 1e-4 passes nothing: its score
is its biases, "all background" (docs/training.md, "What held them back").
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

LAYERS = ("filter_sum", "derelu5_1", "derelu4_1", "derelu3_1", "derelu2_1", "derelu1_2", "seg-score")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="e.g. runs/transfernet-small/segmentation/final.weights.h5")
    parser.add_argument("--width", type=float, default=1 / 16, help="the run's width (its run.json config)")
    parser.add_argument("--count", type=int, default=32)
    args = parser.parse_args()
    weights = Path(args.weights)
    if not weights.is_file():
        sys.exit(f"{weights}: no such file; pass a stage's final.weights.h5 of a transfernet run")

    import keras

    from keras_deconv import models
    from keras_deconv.datasets import shapes

    net = models.TransferNet(shapes.NUM_OBJECT_CLASSES, (64, 64, 3), include_classifier=True, width=args.width)
    net.load_weights(weights)
    data = shapes.as_numpy("val", count=args.count)
    labels = np.eye(shapes.NUM_OBJECT_CLASSES, dtype="float32")[[int(c[0]) - 1 for c in data["classes"]]]
    probe = keras.Model(net.inputs, [net.get_layer(name).output for name in LAYERS])
    print(f"{weights}: {args.count} val images, each with its first class")
    for name, values in zip(LAYERS, probe([data["image"].astype("float32"), labels])):
        values = np.asarray(values)
        alive = (values.reshape(-1, values.shape[-1]) > 0).any(axis=0).mean()
        print(f"{name:12s} std {values.std():9.3g}  mean {values.mean():9.3g}  channels ever > 0: {100 * alive:5.1f} %")


if __name__ == "__main__":
    main()
