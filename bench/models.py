"""Whole-model inference speed: Keras graph / XLA, LiteRT float32/float16/int8 (XNNPACK), PyTorch.

Not a test. Run once, on an otherwise idle machine if possible:

    python bench/models.py            # full DeconvNet 224x224 batch 1 + small DeconvNet batch 8
    python bench/models.py --quick    # small model only

Prints a table (median ms over repeats, images/s, GFLOP/s from an analytic
FLOP count of the model's conv/deconv layers), the float32 2048^2 matmul
GFLOP/s measured in the same run, peak RSS, and the ratios against targets.
The Keras models get trained-looking biases and BN terms (``_weights.py``:
with the initial zeros the converter exports a different graph).
TensorFlow calls are timed up to their result tensor (TensorFlow's eager
calls on the CPU return once it is computed), without a ``.numpy()`` copy,
for the matmul baseline as for the models.
"""

import argparse
import gc
import os
import resource
import sys
import tempfile
import time

import numpy as np
from _timing import median_ms
from _weights import trained_like


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def run(name, model, batch, size, repeats, rows, torch_kwargs=None, quant=True):
    import tensorflow as tf

    from keras_deconv import export

    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    flops = model_flops(model, batch)
    graph = tf.function(lambda t: model(t, training=False), autograph=False)
    xla = tf.function(lambda t: model(t, training=False), jit_compile=True, autograph=False)
    tx = tf.constant(x)

    def add(runtime, seconds):
        rows.append((name, runtime, batch, seconds * 1e3, batch / seconds, flops / seconds / 1e9, peak_rss_mb()))
        print(f"  {runtime:24s} {seconds * 1e3:9.1f} ms", file=sys.stderr, flush=True)

    print(f"{name}: {flops / 1e9:.1f} GFLOP per call", file=sys.stderr)
    add("keras graph", timed(lambda: graph(tx), repeats))
    add("keras xla", timed(lambda: xla(tx), repeats))
    for quantize in ("none", "float16", "int8") if quant else ("none",):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "m.tflite")
            start = time.perf_counter()
            flatbuffer = export._dense_tflite(model, path, quantize, "shapes", (size, size))
            print(f"  (converted {quantize} in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
            interpreter = export.litert_interpreter(flatbuffer, xnnpack=True, num_threads=os.cpu_count())
            interpreter.allocate_tensors()
            detail = interpreter.get_input_details()[0]

            def lite():
                for image in x:
                    interpreter.set_tensor(detail["index"], image[None])
                    interpreter.invoke()
                    interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

            add(f"litert {'float32' if quantize == 'none' else quantize} xnnpack", timed(lite, repeats))
            del interpreter, flatbuffer
            gc.collect()
    # PyTorch in its own process: TensorFlow's and LiteRT's thread pools would otherwise compete.
    try:
        import importlib.util
        import subprocess

        if importlib.util.find_spec("torch") is None:
            raise ImportError
        kwargs = torch_kwargs or {}
        command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_deconvnet.py"),
                   "--batch", str(batch), "--size", str(size), "--repeats", str(repeats),
                   "--width", str(kwargs.get("width", 1.0)), "--fc-kernel-size", str(kwargs.get("fc_kernel_size", 7)),
                   "--num-classes", str(kwargs.get("num_classes", 21))]
        if kwargs.get("fc_units"):
            command += ["--fc-units", str(kwargs["fc_units"])]
        milliseconds = float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[-1])
        add("pytorch channels_last", milliseconds / 1e3)
    except ImportError:
        print("  torch not installed: skipped", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small model only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import tensorflow as tf

    from keras_deconv.models import DeconvNet

    rows = []
    matmul = matmul_gflops()
    print(f"matmul 2048^2 float32: {matmul:.0f} GFLOP/s", file=sys.stderr)
    small = dict(num_classes=21, width=1 / 4, fc_units=256, fc_kernel_size=2)
    run("small DeconvNet (w=1/4) 64x64", trained_like(DeconvNet(input_shape=(64, 64, 3), **small)), 8, 64, args.repeats, rows, small)
    if not args.quick:
        full = trained_like(DeconvNet(input_shape=(224, 224, 3)))
        run("DeconvNet 224x224", full, 1, 224, args.repeats, rows, {})
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
    print(f"{'model':32s} {'runtime':26s} {'batch':>5s} {'median ms':>10s} {'img/s':>8s} {'GFLOP/s':>8s} {'% matmul':>8s} {'peak RSS MB':>11s}")
    for model, runtime, batch, ms, ips, gflops, rss in rows:
        print(f"{model:32s} {runtime:26s} {batch:5d} {ms:10.1f} {ips:8.2f} {gflops:8.1f} {100 * gflops / matmul:7.0f}% {rss:11.0f}")
    by = {(m, r): ms for m, r, _, ms, _, _, _ in rows}
    print("\nTargets:")
    for model in dict.fromkeys(m for m, *_ in rows):
        get = lambda r: by.get((model, r))  # noqa: E731
        if get("pytorch channels_last"):
            print(f"  {model}: Keras XLA / PyTorch time = {get('keras xla') / get('pytorch channels_last'):.2f}x (target <= 1.0)")
        gf = next(g for m, r, _, _, _, g, _ in rows if m == model and r == "keras xla")
        print(f"  {model}: Keras XLA = {100 * gf / matmul:.0f}% of matmul GFLOP/s (target >= 60% for full DeconvNet)")
        if get("litert float32 xnnpack"):
            print(f"  {model}: LiteRT float32 / Keras XLA time = {get('litert float32 xnnpack') / get('keras xla'):.2f}x (target <= 1.0)")
        if get("litert int8 xnnpack"):
            print(f"  {model}: LiteRT int8 speed-up over float32 = {get('litert float32 xnnpack') / get('litert int8 xnnpack'):.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
