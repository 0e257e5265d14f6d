"""Generation speed of the ``shapes`` configs: median ms per image, standard vs hard in the same run.

    python bench/shapes_speed.py [--images 200] [--sizes 64 224]

Each image is generated from scratch (``shapes.generate_example``, test split,
indices 0..N-1); the ratio standard/hard is the figure to compare across
machines. A training step of a small CNN on a batch of 16 at 64x64 takes
about 100 ms on 2 CPU threads, so generation at a few ms per image keeps the
streaming train split from being the bottleneck.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_deconv.datasets import shapes  # noqa: E402


def per_image_ms(config, size, count):
    """Median and total-based mean milliseconds per image over ``count`` fresh test images."""
    shapes.generate_example("test", 0, size, config=config)  # warm-up (imports, caches)
    times = []
    for index in range(count):
        start = time.perf_counter()
        shapes.generate_example("test", index % shapes.SPLITS["test"], size, config=config)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, statistics.fmean(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images per config and size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    args = parser.parse_args()
    for size in args.sizes:
        medians = {}
        for config in shapes.CONFIGS:
            median, mean = per_image_ms(config, size, args.images)
            medians[config] = median
            print(f"{size}x{size} {config:8s} (version {shapes.VERSIONS[config]}): median {median:6.2f} ms/image, "
                  f"mean {mean:6.2f} ms ({args.images} images)")
        print(f"{size}x{size} standard / hard: {medians['standard'] / medians['hard']:.2f}x")


if __name__ == "__main__":
    main()
