"""Fast Keras inference: XLA or graph mode, whichever is faster for each input shape."""


def compiled_predict(model, jit_compile="auto"):
    """A fast inference function for ``model``: ``f(inputs) -> outputs`` (tensors).

    ``jit_compile``: True (XLA), False (graph) or ``"auto"``: on the first
    call for each input shape, time both once and keep the faster (XLA fuses
    the pooling/unpooling and wins on small models; its CPU convolutions are
    slower than TF's oneDNN kernels, so graph mode wins on full-size
    DeconvNet).

    >>> import numpy as np
    >>> from keras_deconv.models import DeconvNet
    >>> predict = compiled_predict(DeconvNet(num_classes=3, width=1 / 16, fc_units=32, fc_kernel_size=2))
    >>> tuple(predict(np.zeros((1, 64, 64, 3), "float32")).shape)
    (1, 64, 64, 3)
    """
    import time

    import tensorflow as tf

    def make(jit):
        return tf.function(lambda *inputs: model(list(inputs) if len(inputs) > 1 else inputs[0], training=False),
                           jit_compile=jit, reduce_retracing=True, autograph=False)

    if jit_compile != "auto":
        function = make(bool(jit_compile))
        return lambda *inputs: function(*inputs)
    candidates = {False: make(False), True: make(True)}
    chosen = {}

    def predict(*inputs):
        key = tuple(tuple(getattr(x, "shape", ())) for x in inputs)
        if key not in chosen:
            timings = {}
            for jit, function in candidates.items():
                try:
                    function(*inputs)  # trace / compile
                    start = time.perf_counter()
                    tf.nest.map_structure(lambda t: t.numpy(), function(*inputs))
                    timings[jit] = time.perf_counter() - start
                except Exception:  # noqa: BLE001 - e.g. an op without an XLA kernel
                    continue
            chosen[key] = min(timings, key=timings.get)
        return candidates[chosen[key]](*inputs)

    predict.choices = chosen
    return predict
