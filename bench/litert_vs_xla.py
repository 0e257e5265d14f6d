"""Full DeconvNet: LiteRT float32 against Keras XLA in alternating rounds, and where LiteRT loses (not a test).

Prints, on the same warm machine:

* ``--rounds`` alternating measurements (median of 5 each) of the full
  DeconvNet at 224x224, batch 1: Keras under XLA and LiteRT float32 with
  XNNPACK, and their ratio (issue target: LiteRT no slower);
* for a stride-1 3x3 transposed convolution at the decoder's sizes, LiteRT's
  ``TRANSPOSE_CONV`` against the equivalent ``CONV_2D`` (flipped kernel).

About three minutes (most of it the TFLite conversion).

    python bench/litert_vs_xla.py [--rounds 4]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _timing import median_ms  # noqa: E402


def litert_runner(flatbuffer, x, threads):
    from keras_deconv import export

    interpreter = export.litert_interpreter(flatbuffer, xnnpack=True, num_threads=threads)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    return interpreter.invoke


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from keras_deconv import export
    from keras_deconv._platform import describe_cpu
    from keras_deconv.models import DeconvNet

    threads = os.cpu_count()
    print(describe_cpu())
    model = DeconvNet(input_shape=(224, 224, 3))
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    tx = tf.constant(x)
    xla = tf.function(lambda t: model(t, training=False), jit_compile=True, autograph=False)
    lite = litert_runner(export._dense_tflite(model, None, "none", "shapes", (224, 224)), x, threads)
    print("\nDeconvNet 224x224 batch 1, median ms of 5 per round:")
    for round_index in range(args.rounds):
        keras_ms, lite_ms = median_ms(lambda: xla(tx), 5), median_ms(lite, 5)
        print(f"  round {round_index}: keras xla {keras_ms:6.1f}  litert float32 {lite_ms:6.1f}  ratio {lite_ms / keras_ms:.3f}")

    print("\nStride-1 3x3 transposed convolution in LiteRT (XNNPACK), median ms:")
    for size, channels in ((224, 64), (112, 128), (56, 256), (28, 512), (14, 512)):
        inputs = keras.Input((size, size, channels), batch_size=1)
        deconv, conv = keras.layers.Conv2DTranspose(channels, 3, padding="same"), keras.layers.Conv2D(channels, 3, padding="same")
        deconv_model, conv_model = keras.Model(inputs, deconv(inputs)), keras.Model(inputs, conv(inputs))
        conv.kernel.assign(tf.transpose(deconv.kernel[::-1, ::-1], [0, 1, 3, 2]))
        conv.bias.assign(deconv.bias)
        data = np.random.default_rng(1).standard_normal((1, size, size, channels)).astype("float32")
        equal = np.allclose(deconv_model(data), conv_model(data), atol=1e-4)
        ms = [median_ms(litert_runner(export.to_tflite(m), data, threads), 15) for m in (deconv_model, conv_model)]
        print(f"  [{size}x{size}x{channels}] TRANSPOSE_CONV {ms[0]:6.2f}  CONV_2D {ms[1]:6.2f}  "
              f"ratio {ms[1] / ms[0]:.3f}  (same outputs: {equal})")


if __name__ == "__main__":
    main()
