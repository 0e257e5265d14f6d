"""DeconvNet's fc6 and fc6-deconv as matmuls: formulations that cost a copy or a slow kernel, against the layers' (not a test).

Prints the median ms, in graph mode and under XLA, at full size and batch 1:

* fc6 (``FullyConnectedConv2D``, kernel ``(7, 7, 512, 4096)`` reshaped to
  ``(25088, 4096)``): the matmul followed by a plain bias add, which XLA on
  CPU fuses into the matrix-vector dot and then runs with its own GEMV
  loop; the matmul followed by ``- (-bias)`` (the same numbers, not fused);
  and the layer itself. ``fused`` says whether XLA's optimized HLO fused an
  op into the dot (an output fusion);
* fc6-deconv (``FullyConnectedConv2DTranspose``, ``y = x @ K^T`` with the
  kernel reshaped to ``(kh*kw*out, in)``, 411 MB): a transposed kernel copy
  per call (the earlier formulation), the matmul contracting the kernel's
  minor axis (``transpose_b``, no copy), and the layer itself.

    python bench/fc_layers.py
"""

import os

from _timing import median_ms

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    import keras
    import tensorflow as tf

    from keras_deconv._platform import describe_cpu
    from keras_deconv.layers import FullyConnectedConv2D, FullyConnectedConv2DTranspose

    print(describe_cpu())
    fc6 = FullyConnectedConv2D(4096, 7, name="fc6", bias_initializer="random_normal")
    fc6_input = tf.random.normal([1, 7, 7, 512])
    fc6(fc6_input)
    fc6_flat, fc6_matrix = tf.reshape(fc6_input, [1, -1]), tf.reshape(fc6.kernel, (7 * 7 * 512, 4096))

    deconv = FullyConnectedConv2DTranspose(512, 7, name="fc6-deconv", bias_initializer="random_normal")
    deconv_input = tf.random.normal([1, 1, 1, 4096])
    deconv(deconv_input)
    kernel, deconv_flat = deconv.kernel, tf.reshape(deconv_input, [1, 4096])

    cases = {
        f"fc6, kernel {tuple(fc6.kernel.shape)} = {fc6.kernel.numpy().nbytes / 1e6:.0f} MB float32": (
            ("matmul + bias", lambda v: tf.matmul(v, fc6_matrix) + fc6.bias, fc6_flat),
            ("matmul - (-bias)", lambda v: tf.matmul(v, fc6_matrix) - (-fc6.bias), fc6_flat),
            ("FullyConnectedConv2D", fc6, fc6_input)),
        f"fc6-deconv, kernel {tuple(kernel.shape)} = {kernel.numpy().nbytes / 1e6:.0f} MB float32": (
            ("transposed copy + matmul",
             lambda v: tf.matmul(v, tf.reshape(tf.transpose(kernel, (3, 0, 1, 2)), (4096, 7 * 7 * 512))), deconv_flat),
            ("matmul, transpose_b",
             lambda v: tf.linalg.matmul(v, keras.ops.reshape(kernel, (7 * 7 * 512, 4096)), transpose_b=True), deconv_flat),
            ("FullyConnectedConv2DTranspose", deconv, deconv_input)),
    }
    for title, rows in cases.items():
        print(f"{title}; median ms")
        for name, function, argument in rows:
            graph = tf.function(function, autograph=False)
            xla = tf.function(function, jit_compile=True, autograph=False)
            fused = "kind=kOutput" in xla.experimental_get_compiler_ir(argument)(stage="optimized_hlo")
            print(f"  {name:30s} graph {median_ms(lambda: graph(argument), 7):7.1f}   "
                  f"xla {median_ms(lambda: xla(argument), 7):7.1f}   (xla fused into the dot: {fused})")


if __name__ == "__main__":
    main()
