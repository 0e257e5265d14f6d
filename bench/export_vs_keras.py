"""Exports of the shipped models against their Keras pipelines, on the shapes test split (not a test).

For each model and format (fp32 SavedModel; fp32 TFLite at the card's input
size, static and ``--any-size``), prints, per image size (the export size and
larger ones): the share of pixels whose label equals
the Keras pipeline's, the worst image, and the mIoU of both against the
ground truth. Goal (issue 22): >= 99.5 % of pixels and mIoU within 0.1 point.

    python bench/export_vs_keras.py [--models deconvnet-small,fcn8s-small] [--count 100] [--sizes 64,96,128]
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_deconv import lite, zoo  # noqa: E402
from keras_deconv.datasets import shapes  # noqa: E402
from keras_deconv.metrics import ConfusionMatrix  # noqa: E402
from keras_deconv.zoo import scoring  # noqa: E402


def _saved_model_segmenter(path):
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]
    return lambda image: serve(images=tf.constant(image[None]))["labels"].numpy()[0]


def _tflite_segmenter(path):
    model = lite.load(path)
    return lambda image: model([image])[0].labels


def compare(name, count, sizes, folder):
    keras = zoo.load(name)
    config = scoring.shapes_config(name)
    export_size = tuple(zoo.info(name)["architecture"]["input_size"])
    runners = {"saved_model": _saved_model_segmenter(zoo.export_model(name, os.path.join(folder, name), "saved_model")["path"])}
    for key, any_size in (("tflite", False), ("tflite-any", True)):
        path = os.path.join(folder, f"{name}-{key}.tflite")
        zoo.export_model(name, path, "tflite", any_size=any_size)
        runners[key] = _tflite_segmenter(path)
    print(f"{name}: exported at {export_size[0]}x{export_size[1]} (tflite: static, larger images resized to fit; "
          f"tflite-any: --any-size)")
    for size in sizes:
        started = time.perf_counter()
        matrices = {key: ConfusionMatrix(13, ignore_label=255) for key in ("keras", *runners)}
        same = {key: 0 for key in runners}
        worst = {key: 0.0 for key in runners}
        pixels = 0
        for index in range(count):
            example = shapes.generate_example("test", index, image_size=size, config=config)
            reference = keras.predict([example["image"]])[0]
            matrices["keras"].update(example["label"], reference)
            pixels += reference.size
            for key, run in runners.items():
                labels = run(example["image"])
                matrices[key].update(example["label"], labels)
                same[key] += int((labels == reference).sum())
                worst[key] = max(worst[key], float(np.mean(labels != reference)))
        base = 100 * matrices["keras"].mean_iou
        for key in runners:
            miou = 100 * matrices[key].mean_iou
            print(f"{name:16s} {key:12s} {size:4d}px  agree {100 * same[key] / pixels:8.4f}%  worst image "
                  f"{100 * worst[key]:5.2f}% differ  mIoU {miou:6.2f} vs Keras {base:6.2f} ({miou - base:+.3f})  "
                  f"[{time.perf_counter() - started:.0f} s]", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="deconvnet-small,fcn8s-small")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--sizes", default="64,96,128")
    args = parser.parse_args()
    from keras_deconv._platform import describe_cpu

    print(describe_cpu())
    print(f"{args.count} shapes test images per size (the config each model's card records)")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            compare(name, args.count, [int(s) for s in args.sizes.split(",")], folder)


if __name__ == "__main__":
    main()
