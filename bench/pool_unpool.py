"""Benchmark: argmax pooling + unpooling (not a test).

Prints, for [8,112,112,64] and [1,224,224,64] float32, the median time of
pool+unpool forward and forward+backward for

* ours (MaxPoolingWithArgmax2D + MaxUnpooling2D) in graph mode and under XLA,
  and in graph mode in the kernel formulation that training steps without
  XLA use (``formulation.kernel_formulation``: TensorFlow's
  ``max_pool_with_argmax`` and ``MaxPoolGradWithArgmax`` kernels),
* ours converted to TFLite and run in LiteRT with XNNPACK (forward only),
  with the XNNPACK-delegated ops that ``export.to_tflite`` uses for float
  exports and, for comparison, with the Keras layers' default ops,
* the SegNet-style pair ``tf.nn.max_pool_with_argmax`` + ``tf.scatter_nd``,
* PyTorch ``max_pool2d(return_indices=True)`` + ``max_unpool2d`` in NCHW and
  channels_last, when torch is installed (``pip install -e ".[bench]"``),

a LiteRT reference without switches: ``MAX_POOL_2D`` and the same output
assembly, spreading each maximum over its whole window (what any builtin
formulation costs before computing a single switch), and an unfused DRAM-traffic estimate: the bytes a pool
then an unpool move when the pooled values and int8 switches go through
memory (read input, write pooled values and switches, read them back, write
the output) divided by the copy bandwidth measured in the same run; XLA
fuses pool and unpool and caches help, so this is a reference, not a floor.
All rows run in one process on the same machine.

Every row times the computation up to a result in the framework's own
tensor type, as PyTorch's rows do: TensorFlow's eager calls on the CPU return
once the result is computed, and ``.numpy()`` would add a copy of the output
that the PyTorch and LiteRT rows do not pay (shown separately as "ours, XLA
+ .numpy() copy": earlier versions of this script timed every TensorFlow row
that way).

    python bench/pool_unpool.py [--repeats 30] [--threads 2]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import _timing  # noqa: E402
from _litert import invoke_function  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_deconv import export  # noqa: E402
from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D, formulation  # noqa: E402

SHAPES = [(8, 112, 112, 64), (1, 224, 224, 64)]


def median_ms(function, repeats, warmup=3):
    return _timing.median_ms(function, repeats, warmup)


def copy_bandwidth_gbs(repeats):
    """Read+write bandwidth of a large NumPy copy (bytes read + bytes written)."""
    source = np.ones(64 * 2**20, np.float32)  # 256 MiB
    target = np.empty_like(source)
    ms = median_ms(lambda: np.copyto(target, source), max(5, repeats // 3), warmup=2)
    return 2 * source.nbytes / (ms * 1e-3) / 1e9


def ours_fns(shape):
    pool, unpool = MaxPoolingWithArgmax2D(), MaxUnpooling2D()
    weights = tf.constant(np.random.default_rng(1).standard_normal(shape).astype("float32"))

    def forward(x):
        pooled, switches = pool(x)
        return unpool([pooled, switches, x])

    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(forward(x) * weights)
        return tape.gradient(loss, x)

    return forward, forward_backward


def in_kernel_formulation(function):
    """``function`` as a graph traced in the kernel formulation (it traces on the first call)."""
    graph = tf.function(function)

    def run(x):
        with formulation.kernel_formulation():
            return graph(x)

    return run


def segnet_fns(shape):
    weights = tf.constant(np.random.default_rng(1).standard_normal(shape).astype("float32"))

    def forward(x):
        pooled, index = tf.nn.max_pool_with_argmax(x, 2, 2, "SAME", include_batch_in_index=True)
        flat = tf.scatter_nd(tf.reshape(index, [-1, 1]), tf.reshape(pooled, [-1]), [tf.size(x, out_type=tf.int64)])
        return tf.reshape(flat, tf.shape(x))

    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(forward(x) * weights)
        return tape.gradient(loss, x)

    return forward, forward_backward


def litert_fn(shape, threads, pooling="auto"):
    import keras

    inputs = keras.Input(shape[1:], batch_size=shape[0])
    pooled, switches = MaxPoolingWithArgmax2D()(inputs)
    model = keras.Model(inputs, MaxUnpooling2D()([pooled, switches, inputs]))
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    return invoke_function(export.to_tflite(model, pooling=pooling), [x], threads)


def litert_floor_fn(shape, threads):
    """MAX_POOL_2D + the litert formulation's output assembly, no switch: what builtin ops cost before any switch."""
    batch, height, width, channels = shape

    def pool_and_spread(x):
        pooled = tf.nn.max_pool2d(x, 2, 2, "VALID")
        row = tf.reshape(tf.concat([pooled, pooled], -1), [-1, 1, width // 2, 2 * channels])
        return tf.reshape(tf.concat([row, row], 1), shape)

    function = tf.function(pool_and_spread, input_signature=[tf.TensorSpec(shape, tf.float32)])
    return invoke_function(export.to_tflite(function), [np.ones(shape, np.float32)], threads)


def torch_fns(shape, channels_last, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    batch, height, width, channels = shape
    x = torch.randn(batch, channels, height, width)
    weights = torch.randn(batch, channels, height, width)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        weights = weights.contiguous(memory_format=torch.channels_last)

    def forward():
        with torch.no_grad():
            pooled, index = F.max_pool2d(x, 2, 2, return_indices=True)
            return F.max_unpool2d(pooled, index, 2, 2, output_size=x.shape[-2:])

    leaf = x.clone().requires_grad_(True)

    def forward_backward():
        pooled, index = F.max_pool2d(leaf, 2, 2, return_indices=True)
        loss = (F.max_unpool2d(pooled, index, 2, 2, output_size=leaf.shape[-2:]) * weights).sum()
        leaf.grad = None
        loss.backward()
        return leaf.grad

    return forward, forward_backward


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed: PyTorch rows skipped (pip install -e '.[bench]').")

    from keras_deconv._platform import describe_cpu

    print(describe_cpu())
    bandwidth = copy_bandwidth_gbs(args.repeats)
    print(f"copy bandwidth (read+write): {bandwidth:.1f} GB/s; {args.threads} threads; median of {args.repeats} runs\n")
    for shape in SHAPES:
        x = tf.constant(np.random.default_rng(0).standard_normal(shape).astype("float32"))
        elements = int(np.prod(shape))
        # input read 4E, pooled+switches written 1.25E, read back 1.25E, output written 4E
        floor_ms = 10.5 * elements / (bandwidth * 1e9) * 1e3
        rows = {}
        ours_f, ours_fb = ours_fns(shape)
        seg_f, seg_fb = segnet_fns(shape)
        for name, function in (
            ("ours, graph", tf.function(ours_f)),
            ("ours, graph, TF kernels", in_kernel_formulation(ours_f)),
            ("ours, XLA", tf.function(ours_f, jit_compile=True)),
            ("SegNet-style pair, graph", tf.function(seg_f)),
        ):
            rows[name] = [median_ms(lambda: function(x), args.repeats)]
        for name, function in (
            ("ours, graph", tf.function(ours_fb)),
            ("ours, graph, TF kernels", in_kernel_formulation(ours_fb)),
            ("ours, XLA", tf.function(ours_fb, jit_compile=True)),
            ("SegNet-style pair, graph", tf.function(seg_fb)),
        ):
            rows[name].append(median_ms(lambda: function(x), args.repeats))
        xla_forward = tf.function(ours_f, jit_compile=True)
        rows["ours, XLA + .numpy() copy"] = [median_ms(lambda: xla_forward(x).numpy(), args.repeats), None]
        rows["ours, LiteRT XNNPACK"] = [median_ms(litert_fn(shape, args.threads), args.repeats), None]
        rows["ours, LiteRT, default ops"] = [median_ms(litert_fn(shape, args.threads, "default"), args.repeats), None]
        rows["LiteRT, max pool + spread only"] = [median_ms(litert_floor_fn(shape, args.threads), args.repeats), None]
        if have_torch:
            for name, last in (("PyTorch NCHW", False), ("PyTorch channels_last", True)):
                forward, forward_backward = torch_fns(shape, last, args.threads)
                rows[name] = [median_ms(forward, args.repeats), median_ms(forward_backward, args.repeats)]
        rows["unfused DRAM estimate"] = [floor_ms, None]

        print(f"[{','.join(map(str, shape))}] float32 pool+unpool, median ms")
        print(f"  {'variant':28s} {'forward':>9s} {'fwd+bwd':>9s}")
        for name, (forward, backward) in rows.items():
            backward_text = f"{backward:9.2f}" if backward is not None else f"{'-':>9s}"
            print(f"  {name:28s} {forward:9.2f} {backward_text}")
        ours_xla = rows["ours, XLA"][0]
        print("  ratios (forward):")
        print(f"    SegNet-style pair / ours XLA       = {rows['SegNet-style pair, graph'][0] / ours_xla:6.2f}x  (target >= 10x)")
        print(f"    SegNet-style pair / ours graph     = {rows['SegNet-style pair, graph'][0] / rows['ours, graph'][0]:6.2f}x")
        print(f"    ours XLA / unfused DRAM estimate   = {ours_xla / floor_ms:6.2f}x")
        if have_torch:
            torch_cl = rows["PyTorch channels_last"][0]
            print(f"    ours XLA / PyTorch channels_last   = {ours_xla / torch_cl:6.2f}x  (target <= 1.0x)")
            print(f"    ours LiteRT / PyTorch channels_last = {rows['ours, LiteRT XNNPACK'][0] / torch_cl:6.2f}x  (target <= 2.0x)")
            print(f"    ours LiteRT default ops / PyTorch CL = {rows['ours, LiteRT, default ops'][0] / torch_cl:6.2f}x")
            print(f"    LiteRT pool+spread only / PyTorch CL = {rows['LiteRT, max pool + spread only'][0] / torch_cl:6.2f}x")
            print(f"    ours XLA / PyTorch NCHW            = {ours_xla / rows['PyTorch NCHW'][0]:6.2f}x")
            print("  ratios (forward+backward):")
            print(f"    ours XLA / PyTorch channels_last   = {rows['ours, XLA'][1] / rows['PyTorch channels_last'][1]:6.2f}x")
            print(f"    SegNet-style pair / ours XLA       = {rows['SegNet-style pair, graph'][1] / rows['ours, XLA'][1]:6.2f}x")
        print(f"  ours graph / ours graph, TF kernels (fwd+bwd) = "
              f"{rows['ours, graph'][1] / rows['ours, graph, TF kernels'][1]:6.2f}x  (what training without XLA gains)")
        print()


if __name__ == "__main__":
    main()
