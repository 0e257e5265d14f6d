"""Training-step speed of the small DeconvNet: Keras (XLA) against PyTorch, same network, same data, same run.

Usage: ``python bench/train_step.py [--batch 16] [--size 64] [--rounds 3]``
(needs the ``[bench]`` extra: torch).

Both sides train the configuration ``deconvnet-small``'s recipe trains
(width 1/4, fc 256, 2x2 fc6, trainable batch norm, 13 classes, Adam, softmax
cross-entropy ignoring 255) on the same batch of ``shapes`` train images.
Each round times Keras then PyTorch (median of ``--repeats`` steps after
warm-up), alternating so both see the same machine load; the last line prints
the median ratio. Faster steps buy accuracy in a CPU time budget, so the goal
is Keras's time per step <= 1.0x PyTorch's.
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _timing import median_ms  # noqa: E402

CONFIG = {"width": 0.25, "fc_units": 256, "fc_kernel_size": 2}


def _data(batch, size):
    from keras_deconv.datasets import shapes

    data = shapes.as_numpy("train", image_size=size, indices=range(batch))
    return data["image"], data["label"].astype(np.int64)


def keras_step(images, labels, jit):
    import keras

    from keras_deconv import models

    model = models.DeconvNet(13, images.shape[1:], batch_norm="trainable", **CONFIG)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255), jit_compile=jit)
    return lambda: model.train_on_batch(images, labels)


def torch_step(images, labels):
    import torch
    from torch_deconvnet import TorchDeconvNet

    torch.manual_seed(0)
    net = TorchDeconvNet(13, CONFIG["width"], CONFIG["fc_units"], CONFIG["fc_kernel_size"], batch_norm=True)
    net = net.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)  # the Keras model's Caffe mean
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() - mean).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(labels)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import tensorflow as tf
    import torch

    from keras_deconv._platform import describe_cpu

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(describe_cpu())
    images, labels = _data(args.batch, args.size)
    steps = {"keras-xla": keras_step(images, labels, True), "keras-graph": keras_step(images, labels, False),
             "torch": torch_step(images, labels)}
    ratios = {"keras-xla": [], "keras-graph": []}
    for round_index in range(args.rounds):
        times = {name: median_ms(step, args.repeats, warmup=3) for name, step in steps.items()}
        for name in ratios:
            ratios[name].append(times[name] / times["torch"])
        print(f"round {round_index + 1}: " + "  ".join(
            f"{name} {ms:.1f} ms/step ({1000 * args.batch / ms:.0f} img/s)" for name, ms in times.items()))
    for name, values in ratios.items():
        print(f"{name} / torch time per step: median {statistics.median(values):.2f}x "
              f"(rounds: {', '.join(f'{v:.2f}' for v in values)}); batch {args.batch}, {args.size}x{args.size}, "
              f"{args.threads} threads")


if __name__ == "__main__":
    main()
