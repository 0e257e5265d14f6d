"""Does the input pipeline keep up with training? Folder-data images/s against the training step's, same run.

Makes a folder dataset of ``--images`` (default 200) JPEG images of 64-112
pixels a side with PNG masks (``bench/folder_train.py``'s generator), then
times ``--rounds`` rounds of each side, one side after the other:

* the input pipeline alone: ``--batches-per-round`` batches of
  :func:`keras_deconv.training.folder_data.batches` (decode, joint
  scale/crop/flip, batching; ``tf.data``, AUTOTUNE) iterated with nothing
  else to do, rounds back to back (so prefetch buffers cannot fill up between
  them and time the buffer instead of the pipeline);
* the training step alone: ``train_on_batch`` of a DeconvNet configured as
  ``deconvnet-small`` (width 1/4, fc 256, 2x2 fc6, trainable batch norm,
  Adam, XLA) on one fixed batch from that pipeline, as many batches.

It prints each side's median images/s over the rounds and their ratio: the
pipeline keeps up if its images/s exceed the step's (ratio > 1); in a real
run both share the CPU, so a ratio near 1 means the step waits for data.

    python bench/input_pipeline.py                      # 200 images, 5 rounds of 8 batches of 16 a side
    python bench/input_pipeline.py --rounds 2 --batches-per-round 2   # quick look
"""

import argparse
import os
import shutil
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from folder_train import CLASSES, make_dataset  # noqa: E402

#: deconvnet-small's configuration (as bench/train_step.py).
CONFIG = {"width": 0.25, "fc_units": 256, "fc_kernel_size": 2}


def images_per_second(function, batches, batch_size):
    """Images/s of ``batches`` calls of ``function()`` (each one batch), timed together."""
    start = time.perf_counter()
    for _ in range(batches):
        function()
    return batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/kd-input-pipeline-bench")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="training crop side (the models' input size)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches-per-round", type=int, default=8)
    args = parser.parse_args()

    import keras

    from keras_deconv import models
    from keras_deconv._platform import describe_cpu
    from keras_deconv.datasets import folder
    from keras_deconv.training import folder_data

    print(describe_cpu())
    data = os.path.join(args.dir, "data")
    make_dataset(data, train=args.images, val=0)
    split = folder.scan(data, "train", decode_images=False)

    def pipeline():
        return iter(folder_data.batches(split, args.batch, (args.size, args.size)))

    # The pipeline first, read back to back: between reads nothing else runs, so its prefetch buffers hold only
    # what it made while being read (interleaving it with the step would let them fill up and time the buffer).
    rates = {"pipeline": [], "step": []}
    batches = pipeline()
    for _ in range(3):  # warm-up: threads, shuffle buffer, autotuning
        next(batches)
    for _ in range(args.rounds):
        rates["pipeline"].append(images_per_second(lambda: next(batches), args.batches_per_round, args.batch))
    del batches
    images, labels = (t.numpy() for t in next(pipeline()))
    model = models.DeconvNet(len(CLASSES), (args.size, args.size, 3), batch_norm="trainable", **CONFIG)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255), jit_compile=True)
    for _ in range(3):  # warm-up: XLA compilation
        model.train_on_batch(images, labels)
    for _ in range(args.rounds):
        rates["step"].append(images_per_second(lambda: model.train_on_batch(images, labels), args.batches_per_round,
                                               args.batch))
    for index, (a, b) in enumerate(zip(rates["pipeline"], rates["step"]), 1):
        print(f"round {index}: pipeline {a:.0f} img/s, training step {b:.0f} img/s")
    pipeline, step = (statistics.median(rates[name]) for name in ("pipeline", "step"))
    counted = args.rounds * args.batches_per_round * args.batch
    print(f"input pipeline: median {pipeline:.0f} images/s; training step (deconvnet-small-like, XLA): median "
          f"{step:.0f} images/s; pipeline/step {pipeline / step:.2f}x ({counted} images each side, batch "
          f"{args.batch}, {args.size}x{args.size} crops, {args.images} images on disk). The pipeline keeps up if "
          f"its images/s exceed the step's: {'yes' if pipeline > step else 'no'}.")
    shutil.rmtree(args.dir)


if __name__ == "__main__":
    main()
