"""How closely LiteRT float32 reproduces Keras scores on a TRAINED model, XNNPACK on and off (not a test).

    python bench/xnnpack_scores.py [NAME] [--count 16]

Exports NAME (default ``deconvnet-small``, shipped with the package) to a
float32 TFLite file in a temporary folder, runs ``--count`` shapes val images
through Keras and through LiteRT with and without the XNNPACK delegate, and
prints, per runtime: the largest score difference relative to the largest
Keras score (the ``--verify`` measure, bound 1e-4), how many score elements
and pixels exceed that bound, and the label agreement.

Argmax pooling makes a network's output discontinuous: when two values of a
pooling window differ by less than float rounding, a different accumulation
order in a convolution (XNNPACK's kernels versus TensorFlow's) can pick the
other one as the maximum, and unpooling then moves that value to another
pixel. Such flips change scores locally by the size of the moved value,
not by rounding. The ``keras, oneDNN off`` row shows the same effect inside
TensorFlow: the Keras model run again in a subprocess with oneDNN off
(``TF_ENABLE_ONEDNN_OPTS=0``, Eigen's convolutions) against the default run.

For each LiteRT run, the ``same switches`` line is what ``--verify`` checks
when the bound is missed (``keras_deconv.switch_agreement``): how many of the
file's pooling switches differ from Keras's, the largest gap between the two
Keras values at such a switch (relative to the layer's largest value), and
the score error against Keras run with the file's own switches.
"""

import argparse
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def model_and_images(name, count):
    from keras_deconv import zoo
    from keras_deconv.datasets import shapes

    model = zoo.create_model(name)
    size = tuple(model.inputs[0].shape[1:3])
    size = (64, 64) if None in size else size
    return model, size, shapes.as_numpy("val", count=count, image_size=size[0])["image"].astype("float32")


def keras_scores(name, count, out):
    """Child process: the Keras scores of ``count`` val images saved to ``out`` (.npy)."""
    import numpy as np

    model, _, images = model_and_images(name, count)
    np.save(out, np.asarray(model(images, training=False)))


def report(label, outputs, reference):
    import numpy as np

    error = np.abs(outputs - reference) / np.abs(reference).max()
    over = error > 1e-4
    agree = (outputs.argmax(-1) == reference.argmax(-1)).mean()
    print(f"  {label:26s}: max relative score error {error.max():.2e}; elements over 1e-4 {100 * over.mean():.3f}%, "
          f"pixels with one {100 * over.any(-1).mean():.3f}%; labels agree {100 * agree:.3f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="deconvnet-small")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_out:
        return keras_scores(args.name, args.count, args.child_out)
    import numpy as np

    from keras_deconv._platform import describe_cpu
    from keras_deconv import export, switch_agreement

    print(describe_cpu())
    model, size, images = model_and_images(args.name, args.count)
    reference = np.asarray(model(images, training=False))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tflite")
        export.export_model(model, path, "tflite", input_size=size, log=lambda message: None)
        flatbuffer = open(path, "rb").read()
    print(f"{args.name}: {len(images)} shapes val images {size[0]}x{size[1]}, scores {reference.shape[1:]}")
    for xnnpack in (True, False):
        interpreter = export.litert_interpreter(flatbuffer, xnnpack=xnnpack)
        outputs = np.concatenate([export.run_tflite(flatbuffer, [image[None]], interpreter=interpreter)[0]
                                  for image in images])
        report(f"litert {'xnnpack' if xnnpack else 'no xnnpack'}", outputs, reference)
        same = switch_agreement.pinned_comparison(model, flatbuffer, images, outputs, xnnpack=xnnpack)
        print(f"  {'  same switches':26s}: {same['switch_flips']} of {same['switches']} switches differ from Keras's, "
              f"largest gap {same['max_flip_gap']:.1e}; max relative score error {same['pinned_score_error']:.2e}")
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "scores.npy")
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
        subprocess.run([sys.executable, __file__, args.name, "--count", str(args.count), "--child-out", out],
                       check=True, env=env, capture_output=True)
        report("keras, oneDNN off (Eigen)", np.load(out), reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
