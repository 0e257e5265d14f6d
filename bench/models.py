"""Whole-model inference speed: Keras graph / XLA, LiteRT float32/float16/int8 (XNNPACK), PyTorch.

Not a test. Run once, on an otherwise idle machine if possible:

    python bench/models.py            # full DeconvNet 224x224 batch 1 + small DeconvNet batch 8
    python bench/models.py --quick    # small model only

Prints a table (median ms over repeats, images/s, GFLOP/s from an analytic
FLOP count of the model's conv/deconv layers), the float32 2048^2 matmul
GFLOP/s measured in the same run, memory, and the ratios against targets.
Keras XLA and LiteRT float32, the pair the LiteRT target compares, run in
``--rounds`` alternating process pairs (default 3); their rows show the
median round, and every round is printed: the machine's speed drifts over
minutes, and one pair timed minutes apart carries that drift into the ratio.
Every row runs in its own process, so its memory is its own
(``_memory.py``, Linux): the RSS once the process holds the model (the Keras
model; the flatbuffer bytes for LiteRT; the built network for PyTorch), and
the peak RSS above that while setting the runtime up (tracing and XLA
compilation; the interpreter with XNNPACK's packed weights), warming up and
timing: what that runtime adds to run the model.
The Keras models get trained-looking biases and BN terms (``_weights.py``:
with the initial zeros the converter exports a different graph).
TensorFlow calls are timed up to their result tensor (TensorFlow's eager
calls on the CPU return once it is computed), without a ``.numpy()`` copy,
for the matmul baseline as for the models.
"""

import argparse
import gc
import os
import sys
import tempfile
import time

import numpy as np
from _memory import peak_above, reset_peak
from _timing import median_ms
from _weights import trained_like


def timed(function, repeats, warmup=2):
    """Median seconds per call."""
    return median_ms(function, repeats, warmup) / 1e3


def model_flops(model, batch):
    """2 * MACs of every Conv2D / Conv2DTranspose / Dense layer (the rest is negligible)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kh, kw = layer.kernel_size
            out = layer.output.shape
            cin = layer.input.shape[-1]
            if isinstance(layer, keras.layers.Conv2DTranspose):  # MACs = input pixels * k*k*cin*cout
                h, w = layer.input.shape[1:3]
                total += 2 * h * w * kh * kw * cin * layer.filters
            else:
                total += 2 * out[1] * out[2] * kh * kw * cin * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total * batch


def matmul_gflops():
    import tensorflow as tf

    a = tf.random.normal([2048, 2048])
    f = tf.function(lambda: tf.matmul(a, a))
    seconds = timed(f, 10)
    return 2 * 2048**3 / seconds / 1e9


def layer_times(model, x):
    """Per-layer-type share of the graph-mode time, from a profile-free estimate: time each conv layer alone."""
    import tensorflow as tf

    rows = []
    for layer in model.layers:
        if layer.__class__.__name__ in ("Conv2D", "Conv2DTranspose"):
            shape = (1,) + tuple(layer.input.shape[1:])
            data = tf.random.normal(shape)
            f = tf.function(lambda d, layer=layer: layer(d))
            rows.append((layer.name, layer.__class__.__name__, timed(lambda: f(data), 3, 1) * 1e3))
    return rows


def transpose_vs_conv(size=224, channels=64, repeats=5):
    """Conv2DTranspose (stride 1, 3x3, same) against the equivalent Conv2D (flipped kernel), graph and XLA."""
    import keras
    import tensorflow as tf

    x = tf.random.normal([1, size, size, channels])
    deconv = keras.layers.Conv2DTranspose(channels, 3, padding="same")
    conv = keras.layers.Conv2D(channels, 3, padding="same")
    deconv.build(x.shape), conv.build(x.shape)
    conv.kernel.assign(tf.transpose(deconv.kernel[::-1, ::-1], [0, 1, 3, 2]))
    conv.bias.assign(deconv.bias)
    out = {}
    for label, layer in (("Conv2DTranspose", deconv), ("Conv2D (flipped)", conv)):
        for jit in (False, True):
            f = tf.function(lambda t, layer=layer: layer(t), jit_compile=jit)
            out[(label, jit)] = timed(lambda: f(x), repeats) * 1e3
    diff = float(tf.reduce_max(tf.abs(deconv(x) - conv(x))))
    return out, diff


#: The two benchmarked networks: DeconvNet keyword arguments, input size, batch.
CONFIGS = {
    "small": ("small DeconvNet (w=1/4) 64x64", dict(num_classes=21, width=1 / 4, fc_units=256, fc_kernel_size=2), 64, 8),
    "full": ("DeconvNet 224x224", {}, 224, 1),
}


def build(config):
    import keras

    from keras_deconv.models import DeconvNet

    _, kwargs, size, _ = CONFIGS[config]
    keras.utils.set_random_seed(0)  # the same kernels in every process and run
    return trained_like(DeconvNet(input_shape=(size, size, 3), **kwargs))


def sample_batch(config):
    _, _, size, batch = CONFIGS[config]
    return np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def child(runtime, config, repeats, flatbuffer_path=None):
    """One runtime in a fresh process (so memory is its own); prints ``ms start_mb peak_mb``.

    ``start_mb`` is the RSS before the runtime is set up (the Keras model, or the
    flatbuffer bytes, already held) and ``peak_mb`` the peak above it while
    setting up (tracing, XLA compilation; the interpreter and XNNPACK's packed
    weights), warming up and timing.
    """
    x = sample_batch(config)
    if runtime.startswith("keras"):
        import tensorflow as tf

        model = build(config)
        tx = tf.constant(x)
        start_mb = reset_peak()
        compiled = tf.function(lambda t: model(t, training=False), jit_compile=runtime == "keras xla", autograph=False)

        def function():
            return compiled(tx)
    else:
        from keras_deconv import export

        flatbuffer = open(flatbuffer_path, "rb").read()
        start_mb = reset_peak()
        interpreter = export.litert_interpreter(flatbuffer, xnnpack=True, num_threads=os.cpu_count())
        interpreter.allocate_tensors()
        detail, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

        def function():
            for image in x:
                interpreter.set_tensor(detail["index"], image[None])
                interpreter.invoke()
                interpreter.get_tensor(output["index"])

    milliseconds = median_ms(function, repeats, warmup=2)
    peak_mb = peak_above(start_mb)
    print(f"{milliseconds:.3f} " + ("None None" if start_mb is None else f"{start_mb:.0f} {peak_mb:.0f}"))


def in_child(arguments):
    """Run a command whose last line is ``ms start_mb peak_mb``; returns the three (None where unknown)."""
    import subprocess

    fields = subprocess.run(arguments, check=True, capture_output=True, text=True).stdout.split()[-3:]
    return [None if field == "None" else float(field) for field in fields]


def run(config, model, repeats, rows, quant=True, rounds=3, pair_rounds=None):
    from keras_deconv.export.tflite import _dense_tflite

    name, kwargs, size, batch = CONFIGS[config]
    flops = model_flops(model, batch)
    here = os.path.abspath(__file__)

    def add(runtime, measured):
        milliseconds, rss_mb, peak_mb = measured
        seconds = milliseconds / 1e3
        rows.append((name, runtime, batch, milliseconds, batch / seconds, flops / seconds / 1e9, rss_mb, peak_mb))
        print(f"  {runtime:24s} {milliseconds:9.1f} ms", file=sys.stderr, flush=True)

    def own_process(runtime, flatbuffer_path=None):
        command = [sys.executable, here, "--child", runtime, "--config", config, "--repeats", str(repeats)]
        return in_child(command + (["--flatbuffer", flatbuffer_path] if flatbuffer_path else []))

    def convert(quantize, path):
        start = time.perf_counter()
        _dense_tflite(model, path, quantize, "shapes", (size, size))
        print(f"  (converted {quantize} in {time.perf_counter() - start:.0f} s)", file=sys.stderr)

    print(f"{name}: {flops / 1e9:.1f} GFLOP per call", file=sys.stderr)
    add("keras graph", own_process("keras graph"))
    with tempfile.TemporaryDirectory() as folder:
        # The target pair, Keras XLA and LiteRT float32, in alternating processes: the machine's
        # speed drifts over minutes, and a single pair timed minutes apart carries that drift.
        float32_path = os.path.join(folder, "float32.tflite")
        convert("none", float32_path)
        pairs = [(own_process("keras xla"), own_process("litert", float32_path)) for _ in range(rounds)]
        for index, (xla, lite) in enumerate(pairs):
            pair_rounds.append((name, index, xla[0], lite[0]))
        median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731 - odd rounds: the middle one
        for position, runtime in ((0, "keras xla"), (1, "litert float32 xnnpack")):
            times = [pair[position][0] for pair in pairs]
            chosen = next(pair[position] for pair in pairs if pair[position][0] == median(times))
            add(runtime, chosen)
    for quantize in ("float16", "int8") if quant else ():
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "m.tflite")
            convert(quantize, path)
            add(f"litert {quantize} xnnpack", own_process("litert", path))
    gc.collect()
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise ImportError
        command = [sys.executable, os.path.join(os.path.dirname(here), "torch_deconvnet.py"),
                   "--batch", str(batch), "--size", str(size), "--repeats", str(repeats),
                   "--width", str(kwargs.get("width", 1.0)), "--fc-kernel-size", str(kwargs.get("fc_kernel_size", 7)),
                   "--num-classes", str(kwargs.get("num_classes", 21))]
        if kwargs.get("fc_units"):
            command += ["--fc-units", str(kwargs["fc_units"])]
        add("pytorch channels_last", in_child(command))
    except ImportError:
        print("  torch not installed: skipped", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating Keras XLA / LiteRT float32 process pairs per model (odd; the rows show the median)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--flatbuffer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.config, args.repeats, args.flatbuffer)
    import tensorflow as tf

    if args.rounds < 1 or args.rounds % 2 == 0:
        parser.error("--rounds must be odd (the rows show the median round)")
    rows, pair_rounds = [], []
    matmul = matmul_gflops()
    print(f"matmul 2048^2 float32: {matmul:.0f} GFLOP/s", file=sys.stderr)
    run("small", build("small"), args.repeats, rows, rounds=args.rounds, pair_rounds=pair_rounds)
    if not args.quick:
        full = build("full")
        run("full", full, args.repeats, rows, rounds=args.rounds, pair_rounds=pair_rounds)
        slow = sorted(layer_times(full, None), key=lambda r: -r[2])[:6]
        print("\nSlowest conv layers alone (graph mode, ms):")
        for layer_name, cls, ms in slow:
            print(f"  {layer_name:14s} {cls:16s} {ms:8.1f}")
    pairs, diff = transpose_vs_conv()
    print(f"\nStride-1 3x3 64->64 on [1,224,224,64] (max|diff| {diff:.1e}), ms:")
    for (label, jit), ms in pairs.items():
        print(f"  {label:18s} {'xla' if jit else 'graph':5s} {ms:8.2f}")
    from keras_deconv._platform import describe_cpu

    print(f"\n{describe_cpu()}")
    print(f"matmul 2048^2 float32 (tf.function): {matmul:.0f} GFLOP/s; tf {tf.__version__}; {os.cpu_count()} CPUs")
    print(f"{'model':32s} {'runtime':26s} {'batch':>5s} {'median ms':>10s} {'img/s':>8s} {'GFLOP/s':>8s} {'% matmul':>8s} {'RSS +peak MB':>15s}")
    for model, runtime, batch, ms, ips, gflops, rss, peak in rows:
        memory = "n/a" if rss is None else f"{rss:.0f} +{peak:.0f}"
        print(f"{model:32s} {runtime:26s} {batch:5d} {ms:10.1f} {ips:8.2f} {gflops:8.1f} {100 * gflops / matmul:7.0f}% {memory:>15s}")
    print(f"\nKeras XLA and LiteRT float32 in {args.rounds} alternating process pairs (the rows above: the median):")
    for model, index, xla, lite in pair_rounds:
        print(f"  {model:32s} round {index}: keras xla {xla:7.1f} ms  litert float32 {lite:7.1f} ms  ratio {lite / xla:.3f}")
    by = {(m, r): ms for m, r, _, ms, *_ in rows}
    print("\nTargets:")
    for model in dict.fromkeys(m for m, *_ in rows):
        get = lambda r: by.get((model, r))  # noqa: E731
        if get("pytorch channels_last"):
            print(f"  {model}: Keras XLA / PyTorch time = {get('keras xla') / get('pytorch channels_last'):.2f}x (target <= 1.0)")
        gf = next(g for m, r, _, _, _, g, *_ in rows if m == model and r == "keras xla")
        print(f"  {model}: Keras XLA = {100 * gf / matmul:.0f}% of matmul GFLOP/s (target >= 60% for full DeconvNet)")
        if get("litert float32 xnnpack"):
            print(f"  {model}: LiteRT float32 / Keras XLA time = {get('litert float32 xnnpack') / get('keras xla'):.2f}x (target <= 1.0)")
        if get("litert int8 xnnpack"):
            print(f"  {model}: LiteRT int8 speed-up over float32 = {get('litert float32 xnnpack') / get('litert int8 xnnpack'):.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
