"""Long-run memory check (not a test): evaluation over 1,000+ batches holds memory flat.

Runs a small DeconvNet pipeline over a long stream of `shapes` batches,
accumulating one dataset-level confusion matrix, and prints the resident set
size (RSS) along the way: after warm-up, then every ``--report`` batches, and
the growth per 1,000 batches between the first report and the end.

    python bench/memory_soak.py [--batches 1200] [--batch-size 8]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_deconv.datasets import shapes  # noqa: E402
from keras_deconv.metrics import ConfusionMatrix  # noqa: E402
from keras_deconv.models import DeconvNet  # noqa: E402
from keras_deconv.pipelines import DeconvNetPipeline  # noqa: E402


def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--report", type=int, default=200)
    args = parser.parse_args()

    model = DeconvNet(num_classes=shapes.NUM_CLASSES, input_shape=(None, None, 3), width=1 / 16, fc_units=32, fc_kernel_size=2)
    pipeline = DeconvNetPipeline(model, min_size=64)
    pool = shapes.as_numpy("test", count=64)
    images, labels = pool["image"], pool["label"]
    matrix = ConfusionMatrix(shapes.NUM_CLASSES)

    def batch(step):
        index = (np.arange(args.batch_size) + step * args.batch_size) % len(images)
        return list(images[index]), labels[index]

    for step in range(20):  # warm-up: tracing, allocator pools
        batch_images, batch_labels = batch(step)
        matrix.update(batch_labels, np.stack(pipeline.predict(batch_images)))
    baseline = rss_mib()
    print(f"after warm-up: RSS {baseline:.1f} MiB")
    started = time.monotonic()
    first_report = None
    for step in range(1, args.batches + 1):
        batch_images, batch_labels = batch(step)
        matrix.update(batch_labels, np.stack(pipeline.predict(batch_images)))
        if step % args.report == 0:
            rss = rss_mib()
            first_report = first_report or (step, rss)
            print(f"batch {step:5d}: RSS {rss:8.1f} MiB ({rss - baseline:+6.1f} since warm-up), "
                  f"{step * args.batch_size / (time.monotonic() - started):6.1f} images/s")
    end = rss_mib()
    span = args.batches - first_report[0]
    growth = (end - first_report[1]) / span * 1000 if span else 0.0
    print(f"{args.batches} batches of {args.batch_size} ({args.batches * args.batch_size} images): "
          f"RSS {baseline:.1f} -> {end:.1f} MiB; growth after batch {first_report[0]}: {growth:+.2f} MiB per 1,000 batches")
    print(f"(accumulated {matrix.evaluated_pixels:,} pixels into one confusion matrix)")


if __name__ == "__main__":
    main()
