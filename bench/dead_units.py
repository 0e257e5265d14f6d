"""ReLU channels that never fire: per trained model, on val images (a diagnostic, not a test).

A channel whose ReLU output is 0 at every pixel of every image carries
nothing, and no gradient reaches it to bring it back.
For each model (a zoo name or a ``keras-deconv train`` run directory) this
prints how many channels are silent in all and the layers that have any
(models with one input, images: DeconvNet, FCN-8s):
compare the seeds of one command side by side (docs/training.md).

    python bench/dead_units.py runs/deconvnet-small runs/deconvnet-small-seed1 ... [--images 64]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def relu_layers(model):
    """The model's ReLU outputs: ``ReLU`` layers and layers with a ReLU activation (``Activation``, ``Conv2D``)."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)
            or getattr(getattr(layer, "activation", None), "__name__", "") == "relu"]


def silent_channels(model, images):
    """``[(layer name, silent channels, channels)]``: channels that are 0 on every pixel of ``images``."""
    import keras
    import numpy as np

    layers = relu_layers(model)
    outputs = keras.Model(model.inputs, [layer.output for layer in layers]).predict(images, batch_size=16, verbose=0)
    rows = []
    for layer, output in zip(layers, outputs):
        fired = (np.asarray(output).reshape(-1, output.shape[-1]) > 0).any(axis=0)
        rows.append((layer.name, int((~fired).sum()), int(fired.size)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="zoo names or run directories")
    parser.add_argument("--images", type=int, default=64, help="the first N images of the split (default 64)")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    args = parser.parse_args()
    from keras_deconv.datasets import shapes
    from keras_deconv import zoo

    images = shapes.as_numpy(args.split, count=args.images)["image"].astype("float32")
    print(f"silent ReLU channels on the first {args.images} {args.split} images")
    for name in args.models:
        model = zoo.load(name).model
        if len(model.inputs) != 1:
            print(f"{name:36s} skipped: its model takes {len(model.inputs)} inputs (images only here)")
            continue
        rows = silent_channels(model, images)
        silent = sum(row[1] for row in rows)
        total = sum(row[2] for row in rows)
        where = " ".join(f"{layer}:{count}/{channels}" for layer, count, channels in rows if count)
        print(f"{name:36s} {silent:5d} / {total} silent   {where}")


if __name__ == "__main__":
    main()
