"""int8 exports: the two argmax pooling formulations, side by side (not a test).

Exports one DeconvNet to int8 twice from the same calibration images:
``pooling="default"`` (the Keras layers' comparisons and selects, which
XNNPACK does not delegate: what int8 exports used before this version) and
``pooling="auto"`` (the XNNPACK-delegated formulation with its switch
arithmetic kept in float32, ``export.INT8_FLOAT_OPS``), and a third time
integer-only (``integer_only=True``: uint8 in, int8 out, the pooling as
int8 comparisons and selects, no float tensor). For each, prints the
op types XNNPACK has no kernel for (they run in TFLite's own kernels), the
number of XNNPACK partitions (the int8 reversed slice of the RGB->BGR flip
stays outside XNNPACK in both, so the best is two), the
median latency (LiteRT, XNNPACK, batch 1) and the agreement with the Keras
model on shapes images: labels equal to Keras's argmax, and the mean
absolute score error relative to the mean absolute Keras score.

The model is the one ``bench/models.py`` times (trained-looking biases and BN
terms, random kernels): random kernels have no class margins, so the label
agreement compares the two formulations with each other, not with a trained
model's accuracy (``bench/export_agreement.py`` does that on the shipped small
models). About nine minutes for the full DeconvNet (three int8 conversions).

    python bench/int8_pooling.py [--small]
"""

import argparse
import collections
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _timing import median_ms  # noqa: E402
from models import CONFIGS, build  # noqa: E402

#: Op types XNNPACK delegates in these graphs (STRIDED_SLICE only with positive strides).
DELEGATED = {"CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "MAX_POOL_2D", "SUB", "CEIL", "MINIMUM", "MUL", "ADD",
             "SQUARED_DIFFERENCE", "STRIDED_SLICE", "CONCATENATION", "RESHAPE", "QUANTIZE", "DEQUANTIZE", "MAXIMUM"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the small DeconvNet of bench/models.py instead")
    parser.add_argument("--images", type=int, default=4)
    args = parser.parse_args()
    import tensorflow as tf

    from keras_deconv import export
    from keras_deconv._platform import describe_cpu
    from keras_deconv.export.calibration import _calibration_images

    config = "small" if args.small else "full"
    name, _, size, _ = CONFIGS[config]
    model = build(config)
    spec = [tf.TensorSpec((1, size, size, 3), tf.float32, name="images")]
    calibration = [[image] for image in _calibration_images("shapes", (size, size), export.CALIBRATION_COUNT, None)]
    from keras_deconv.datasets import shapes

    images = [shapes.generate_example("val", index, image_size=size)["image"][None].astype("float32")
              for index in range(args.images)]
    reference = [np.asarray(model(image)) for image in images]
    print(describe_cpu())
    print(f"{name}, int8, LiteRT with XNNPACK, batch 1; agreement with Keras on {len(images)} shapes images")
    print(f"{'pooling':12s} {'op types XNNPACK lacks':34s} {'partitions':>10s} {'median ms':>10s} {'labels':>8s} {'score err':>9s}")
    with tempfile.TemporaryDirectory() as folder:
        for pooling in ("default", "auto", "integer-only"):
            path = os.path.join(folder, f"{pooling}.tflite")
            integer_only = pooling == "integer-only"
            export.to_tflite(model, path, "int8", calibration, input_signature=spec,
                             pooling="auto" if integer_only else pooling, integer_only=integer_only)
            interpreter = export.litert_interpreter(path, xnnpack=True, num_threads=os.cpu_count())
            interpreter.allocate_tensors()
            nodes = collections.Counter(detail["op_name"] for detail in interpreter._get_ops_details())
            own = ", ".join(f"{op} {count}" for op, count in sorted(nodes.items()) if op not in DELEGATED | {"DELEGATE"})
            agree, error = [], []
            for image, keras_scores in zip(images, reference):
                scores = export.run_tflite(None, [image], interpreter=interpreter)[0]
                agree.append(np.mean(scores.argmax(-1) == keras_scores.argmax(-1)))
                error.append(np.abs(scores - keras_scores).mean() / np.abs(keras_scores).mean())
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], export.quantize_input(images[0], detail))
            milliseconds = median_ms(interpreter.invoke, 20 if args.small else 7, warmup=2)
            print(f"{pooling:12s} {own or 'none':34s} {nodes['DELEGATE']:10d} {milliseconds:10.1f} "
                  f"{100 * np.mean(agree):7.2f}% {np.mean(error):9.4f}", flush=True)


if __name__ == "__main__":
    main()
