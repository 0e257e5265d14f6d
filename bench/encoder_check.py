"""Why DecoupledNet and TransferNet pretrain their encoder on source masks: a classifier from image labels alone.

    python bench/encoder_check.py [--steps 1000] [--width 0.25]

Trains a VGG-16 encoder (pool1-pool4, BN after every conv) + global average
pooling + a linear layer as a multi-label classifier on the image-level
labels of all shapes train images (rot90/colour invariances, batch 16, Adam
1e-3), and prints the training loss and the val mean average precision every
200 steps. The label prior's loss is printed for comparison, and chance mAP
is the mean class frequency. Run as in the README: about 2 min per 1000 steps
on the 2-core CPU.
"""

import argparse
import sys
import time
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_deconv._platform import describe_cpu  # noqa: E402
from keras_deconv.models import _blocks  # noqa: E402
from keras_deconv.models.vgg16_encoder import vgg16_encoder  # noqa: E402
from keras_deconv.training import data as train_data  # noqa: E402


def mean_average_precision(scores, labels):
    """Mean over classes of the average precision of ranking the images by score."""
    values = []
    for c in range(labels.shape[1]):
        truth = labels[np.argsort(-scores[:, c], kind="stable"), c]
        if truth.sum() == 0:
            continue
        precision = np.cumsum(truth) / np.arange(1, len(truth) + 1)
        values.append(float((precision * truth).sum() / truth.sum()))
    return float(np.mean(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    print(describe_cpu())
    keras.utils.set_random_seed(0)
    inputs, x = _blocks.image_input((64, 64, 3), True)
    features = vgg16_encoder(x, width=args.width, batch_norm="trainable", num_pools=4)["conv5_3"]
    logits = keras.layers.Dense(12)(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, logits)
    model.compile(keras.optimizers.Adam(args.lr), keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=True)
    train = train_data.arrays("train", 64)
    val = train_data.arrays("val", 64)
    val_images, val_labels = np.asarray(val["image"], "float32"), np.asarray(val["image_labels"], "float32")
    prior = np.asarray(train["image_labels"], "float64").mean(0)
    prior_loss = float(-(prior * np.log(prior) + (1 - prior) * np.log(1 - prior)).mean())
    print(f"label prior: loss {prior_loss:.3f}; chance val mAP {val_labels.mean():.3f}")
    data = train_data.image_labels(train, 16, (64, 64), seed=0, invariances=True)
    start = time.perf_counter()
    for done in range(200, args.steps + 1, 200):
        history = model.fit(data, steps_per_epoch=200, epochs=1, verbose=0)
        scores = model.predict(val_images, batch_size=100, verbose=0)
        print(f"step {done}: train loss {history.history['loss'][-1]:.3f}, "
              f"val mAP {mean_average_precision(scores, val_labels):.3f} ({time.perf_counter() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
