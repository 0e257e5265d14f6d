"""Full DeconvNet: LiteRT float32 against Keras XLA in alternating rounds, and where LiteRT loses (not a test).

Prints, on the same warm machine:

* ``--rounds`` alternating measurements (median of 5 each) of the full
  DeconvNet at 224x224, batch 1: Keras under XLA and LiteRT float32 with
  XNNPACK, and their ratio (issue target: LiteRT no slower); and the same
  for its encoder alone (preprocessing, conv1_1 ... pool5) and its decoder
  alone (fc6-deconv's output to the scores);
* the encoder cut after each pooling stage, both runtimes, and each stage's
  own cost inside the graph (the difference between consecutive cuts);
* every layer shape of that network alone (the model's own blocks: conv +
  folded BN + ReLU, deconv + BN + ReLU, argmax pool + unpool, the fc layers),
  Keras XLA against LiteRT float32, with how often the shape occurs and the
  sums weighted by that count: which layers LiteRT loses and wins;
* the LiteRT runtime settings a user could try on the slowest layer relative
  to XLA: the ``Interpreter`` against the ``CompiledModel`` API, XNNPACK flags
  (Slinky fusion, latest operators) and YNNPACK;
* for a stride-1 3x3 transposed convolution at the decoder's sizes, LiteRT's
  ``TRANSPOSE_CONV`` against the equivalent ``CONV_2D`` (flipped kernel).

About five minutes (most of it the TFLite conversion of the full model).

    python bench/litert_vs_xla.py [--rounds 4]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _litert import invoke_function  # noqa: E402
from _timing import median_ms  # noqa: E402
from _weights import trained_like  # noqa: E402

#: (kind, spatial size, in channels, out channels): count in DeconvNet at 224x224.
LAYER_SHAPES = {
    ("conv", 224, 3, 64): 1, ("conv", 224, 64, 64): 1, ("conv", 112, 64, 128): 1, ("conv", 112, 128, 128): 1,
    ("conv", 56, 128, 256): 1, ("conv", 56, 256, 256): 2, ("conv", 28, 256, 512): 1, ("conv", 28, 512, 512): 2,
    ("conv", 14, 512, 512): 3,
    ("fc6", 7, 512, 4096): 1, ("fc7", 1, 4096, 4096): 1, ("fc6-deconv", 1, 4096, 512): 1,
    ("deconv", 14, 512, 512): 3, ("deconv", 28, 512, 512): 2, ("deconv", 28, 512, 256): 1,
    ("deconv", 56, 256, 256): 2, ("deconv", 56, 256, 128): 1, ("deconv", 112, 128, 128): 1,
    ("deconv", 112, 128, 64): 1, ("deconv", 224, 64, 64): 2,
    ("pool+unpool", 224, 64, 64): 1, ("pool+unpool", 112, 128, 128): 1, ("pool+unpool", 56, 256, 256): 1,
    ("pool+unpool", 28, 512, 512): 1, ("pool+unpool", 14, 512, 512): 1,
}
#: XNNPACK delegate flags (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h); QS8|QU8 is the default.
XNNPACK_DEFAULT_FLAGS = 0x3
XNNPACK_FLAGS = {"Slinky": 0x100, "latest operators": 0x40}


def compiled_model_runner(flatbuffer, x, threads, **cpu_options):
    """A LiteRT ``CompiledModel`` (CPU) run function; raises where the wheel lacks an option."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.cpu_options import CpuOptions
    from ai_edge_litert.options import Options

    model = CompiledModel.from_buffer(flatbuffer, options=Options(cpu_options=CpuOptions(num_threads=threads, **cpu_options)))
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    inputs[0].write(x)

    def run():
        model.run_by_index(0, inputs, outputs)

    run.keep_alive = (model, inputs, outputs)
    return run


def layer_model(kind, size, in_channels, out_channels):
    """One DeconvNet layer shape as a Keras model, built with the networks' own blocks."""
    import keras

    from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
    from keras_deconv.models import _blocks

    inputs = keras.Input((size, size, in_channels), batch_size=1)
    if kind == "pool+unpool":
        pooled, switches = MaxPoolingWithArgmax2D()(inputs)
        outputs = MaxUnpooling2D()([pooled, switches, inputs])
    elif kind in ("conv", "fc6", "fc7"):
        kernel, padding = {"conv": (3, "same"), "fc6": (7, "valid"), "fc7": (1, "valid")}[kind]
        outputs = _blocks.conv_block(inputs, out_channels, kernel, kind, "relu", "bn", "folded", padding)
    else:
        kernel, padding = (7, "valid") if kind == "fc6-deconv" else (3, "same")
        outputs = _blocks.deconv_block(inputs, out_channels, kernel, kind, "relu", "bn", "folded", padding)
    return trained_like(keras.Model(inputs, outputs))


def best_median_ms(function, repeats=7):
    return min(median_ms(function, repeats) for _ in range(2))


def per_layer(threads):
    import tensorflow as tf

    from keras_deconv import export

    print("\nEach DeconvNet layer shape alone, batch 1 (best of 2 medians of 7, ms):")
    print(f"  {'layer':12s} {'size':>4s} {'channels':>11s} {'count':>5s} {'keras xla':>10s} {'litert f32':>10s} {'ratio':>6s}")
    totals = {}
    slowest = None
    for (kind, size, in_channels, out_channels), count in LAYER_SHAPES.items():
        model = layer_model(kind, size, in_channels, out_channels)
        x = np.random.default_rng(0).standard_normal((1, size, size, in_channels)).astype("float32")
        tx = tf.constant(x)
        xla = tf.function(lambda t: model(t, training=False), jit_compile=True, autograph=False)
        flatbuffer = export.to_tflite(model)
        keras_ms, lite_ms = best_median_ms(lambda: xla(tx)), best_median_ms(invoke_function(flatbuffer, [x], threads))
        group = "pooling" if kind == "pool+unpool" else "fc" if kind.startswith("fc") else kind
        sums = totals.setdefault(group, [0.0, 0.0])
        sums[0] += count * keras_ms
        sums[1] += count * lite_ms
        if slowest is None or lite_ms / keras_ms > slowest[0]:
            slowest = (lite_ms / keras_ms, (kind, size, in_channels, out_channels), flatbuffer, x)
        print(f"  {kind:12s} {size:4d} {in_channels:5d}->{out_channels:<5d} {count:5d} {keras_ms:10.2f} {lite_ms:10.2f} "
              f"{lite_ms / keras_ms:6.2f}")
    print("  sums weighted by count:")
    for group, (keras_ms, lite_ms) in totals.items():
        print(f"    {group:10s} keras xla {keras_ms:7.1f}  litert {lite_ms:7.1f}  litert - keras {lite_ms - keras_ms:+6.1f}")
    keras_ms, lite_ms = (sum(values[index] for values in totals.values()) for index in (0, 1))
    print(f"    {'all':10s} keras xla {keras_ms:7.1f}  litert {lite_ms:7.1f}  litert - keras {lite_ms - keras_ms:+6.1f}")
    return slowest


def encoder_stages(model, x, threads, rounds):
    """The encoder cut after each pooling stage, in both runtimes: where inside the graph the gap grows.

    Layers timed alone leave out what the whole graph adds (weights and
    activations cold in cache, one runtime call instead of many); the
    difference between consecutive prefixes is each stage's cost in the graph.
    """
    import keras
    import tensorflow as tf

    from keras_deconv import export

    prefixes = {}
    for level in range(1, 6):
        prefix = keras.Model(model.inputs, model.get_layer(f"pool{level}").output[0])
        compiled = tf.function(lambda t, prefix=prefix: prefix(t, training=False), jit_compile=True, autograph=False)
        flatbuffer = export.to_tflite(prefix, input_signature=[tf.TensorSpec(x.shape, tf.float32)])
        prefixes[level] = (lambda compiled=compiled, tx=tf.constant(x): compiled(tx), invoke_function(flatbuffer, [x], threads))
    best = {level: [float("inf"), float("inf")] for level in prefixes}
    for _ in range(rounds):  # alternating, best median per prefix and runtime
        for level, runs in prefixes.items():
            for index, run in enumerate(runs):
                best[level][index] = min(best[level][index], median_ms(run, 7))
    print(f"\nThe encoder up to each pooling stage (best of {rounds} alternating medians of 7, ms),"
          " and each stage's own cost in the graph:")
    print(f"  {'up to':6s} {'keras xla':>9s} {'litert':>7s} {'ratio':>6s}   {'stage':12s} {'keras xla':>9s} {'litert':>7s} {'litert - keras':>14s}")
    previous = (0.0, 0.0)
    stages = ["conv1 + pool1", "conv2 + pool2", "conv3 + pool3", "conv4 + pool4", "conv5 + pool5"]
    for (level, (keras_ms, lite_ms)), stage in zip(best.items(), stages):
        step = (keras_ms - previous[0], lite_ms - previous[1])
        print(f"  pool{level:<2d} {keras_ms:9.1f} {lite_ms:7.1f} {lite_ms / keras_ms:6.3f}   {stage:12s} {step[0]:9.1f} {step[1]:7.1f}"
              f" {step[1] - step[0]:+14.1f}")
        previous = (keras_ms, lite_ms)


def runtime_options(slowest, threads):
    _, (kind, size, in_channels, out_channels), flatbuffer, x = slowest
    print(f"\nLiteRT runtime settings on the layer LiteRT loses most ({kind} {size} {in_channels}->{out_channels}), ms:")
    runs = {"Interpreter (as bench/models.py)": lambda: invoke_function(flatbuffer, [x], threads),
            "CompiledModel, default XNNPACK": lambda: compiled_model_runner(flatbuffer, x, threads)}
    for name, flag in XNNPACK_FLAGS.items():
        runs[f"CompiledModel, XNNPACK {name}"] = (
            lambda flag=flag: compiled_model_runner(flatbuffer, x, threads, xnnpack_flags=XNNPACK_DEFAULT_FLAGS | flag))
    runs["CompiledModel, YNNPACK"] = lambda: compiled_model_runner(flatbuffer, x, threads, enable_ynnpack=True)
    for name, make in runs.items():
        try:
            run = make()
        except Exception as error:  # the runtime raises bare RuntimeErrors for options its build lacks
            print(f"  {name:36s} unavailable in this LiteRT build ({type(error).__name__})")
            continue
        print(f"  {name:36s} {best_median_ms(run):7.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from keras_deconv import export
    from keras_deconv._platform import describe_cpu
    from keras_deconv.export.tflite import _dense_tflite
    from keras_deconv.models import DeconvNet

    threads = os.cpu_count()
    print(describe_cpu())
    model = trained_like(DeconvNet(input_shape=(224, 224, 3)))
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    tx = tf.constant(x)
    xla = tf.function(lambda t: model(t, training=False), jit_compile=True, autograph=False)
    lite = invoke_function(_dense_tflite(model, None, "none", "shapes", (224, 224)), [x], threads)
    # The network in two parts, to see where the whole-graph gap sits: the encoder alone
    # (preprocessing, conv1_1 ... pool5; no switches needed, so plain max pools), and the
    # decoder alone (fc6-deconv's output to the scores; the switches and the pooled maps,
    # which only give the unpooling its output size, are inputs).
    encoder = keras.Model(model.inputs, model.get_layer("pool5").output[0])
    decoder_inputs = [model.get_layer("fc6-deconv-relu").output]
    decoder_inputs += [model.get_layer(f"pool{level}").output[1] for level in range(1, 6)]
    decoder_inputs += [model.get_layer(f"unpool{level}").input[2] for level in range(1, 6)]
    decoder = keras.Model(decoder_inputs, model.output)
    decoder_data = [np.asarray(value) for value in keras.Model(model.inputs, decoder_inputs)(x)]
    parts = {}
    for name, part, data in (("encoder", encoder, [x]), ("decoder", decoder, decoder_data)):
        tensors = [tf.constant(array) for array in data]
        compiled = tf.function(lambda *t, part=part: part(list(t) if len(t) > 1 else t[0], training=False),
                               jit_compile=True, autograph=False)
        flatbuffer = export.to_tflite(part, input_signature=[tf.TensorSpec(a.shape, a.dtype) for a in data])
        parts[name] = (lambda compiled=compiled, tensors=tensors: compiled(*tensors), invoke_function(flatbuffer, data, threads))
    print("\nDeconvNet 224x224 batch 1, median ms of 5 per round, Keras XLA / LiteRT float32 = ratio:")
    for round_index in range(args.rounds):
        keras_ms, lite_ms = median_ms(lambda: xla(tx), 5), median_ms(lite, 5)
        line = f"  round {round_index}: whole {keras_ms:6.1f} / {lite_ms:6.1f} = {lite_ms / keras_ms:.3f}"
        for name, (keras_run, lite_run) in parts.items():
            part_keras_ms, part_lite_ms = median_ms(keras_run, 5), median_ms(lite_run, 5)
            line += f"  | {name} {part_keras_ms:6.1f} / {part_lite_ms:6.1f} = {part_lite_ms / part_keras_ms:.3f}"
        print(line)
    del lite, parts
    encoder_stages(model, x, threads, rounds=3)

    runtime_options(per_layer(threads), threads)

    print("\nStride-1 3x3 transposed convolution in LiteRT (XNNPACK), median ms:")
    for size, channels in ((224, 64), (112, 128), (56, 256), (28, 512), (14, 512)):
        inputs = keras.Input((size, size, channels), batch_size=1)
        deconv, conv = keras.layers.Conv2DTranspose(channels, 3, padding="same"), keras.layers.Conv2D(channels, 3, padding="same")
        deconv_model, conv_model = keras.Model(inputs, deconv(inputs)), keras.Model(inputs, conv(inputs))
        conv.kernel.assign(tf.transpose(deconv.kernel[::-1, ::-1], [0, 1, 3, 2]))
        conv.bias.assign(deconv.bias)
        data = np.random.default_rng(1).standard_normal((1, size, size, channels)).astype("float32")
        equal = np.allclose(deconv_model(data), conv_model(data), atol=1e-4)
        ms = [median_ms(invoke_function(export.to_tflite(m), [data], threads), 15) for m in (deconv_model, conv_model)]
        print(f"  [{size}x{size}x{channels}] TRANSPOSE_CONV {ms[0]:6.2f}  CONV_2D {ms[1]:6.2f}  "
              f"ratio {ms[1] / ms[0]:.3f}  (same outputs: {equal})")


if __name__ == "__main__":
    main()
