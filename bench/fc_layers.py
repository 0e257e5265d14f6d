"""DeconvNet's fc6-deconv as one matmul: a transposed kernel copy per call vs contracting the kernel's minor axis (not a test).

``FullyConnectedConv2DTranspose`` computes ``y = x @ K^T`` with the Keras
kernel ``K`` reshaped to ``(kh*kw*out, in)`` (411 MB at full size). Prints
the median ms, in graph mode and under XLA, of

* the earlier formulation: ``transpose(K, (3, 0, 1, 2))`` then matmul,
  which materialises a transposed copy of the kernel on every call;
* the layer's formulation: ``matmul(x, K2, transpose_b=True)``, no copy;
* the layer itself, called on a ``[1, 1, 1, 4096]`` input.

    python bench/fc_layers.py
"""

import os

from _timing import median_ms

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    import keras
    import tensorflow as tf

    from keras_deconv._platform import describe_cpu
    from keras_deconv.layers import FullyConnectedConv2DTranspose

    print(describe_cpu())
    layer = FullyConnectedConv2DTranspose(512, 7, name="fc6-deconv")
    x = tf.random.normal([1, 1, 1, 4096])
    layer(x)
    kernel, flat = layer.kernel, tf.reshape(x, [1, 4096])

    def transposed_copy(v):
        return tf.matmul(v, tf.reshape(tf.transpose(kernel, (3, 0, 1, 2)), (4096, 7 * 7 * 512)))

    def transpose_b(v):
        return tf.linalg.matmul(v, keras.ops.reshape(kernel, (7 * 7 * 512, 4096)), transpose_b=True)

    print(f"fc6-deconv, kernel {tuple(kernel.shape)} = {kernel.numpy().nbytes / 1e6:.0f} MB float32; median ms")
    for name, function, argument in (("transposed copy + matmul", transposed_copy, flat),
                                      ("matmul, transpose_b", transpose_b, flat),
                                      ("FullyConnectedConv2DTranspose", layer, x)):
        graph = tf.function(function, autograph=False)
        xla = tf.function(function, jit_compile=True, autograph=False)
        print(f"  {name:30s} graph {median_ms(lambda: graph(argument), 7):7.1f}   xla {median_ms(lambda: xla(argument), 7):7.1f}")


if __name__ == "__main__":
    main()
