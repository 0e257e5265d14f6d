"""Which ops the argmax pooling and unpooling layers are traced with.

The default formulation (comparisons and selects) is exact for every input,
including +-inf and -0.0, and fuses well under XLA. In LiteRT, though,
XNNPACK delegates none of its comparison and select ops, so they run in
TFLite's reference kernels, one pass each. :func:`litert_formulation` traces
the non-overlapping case with ops that XNNPACK delegates (``MAX_POOL_2D``,
``SUB``, ``CEIL``, ``MINIMUM``, ``MUL``, ``ADD``, ``SQUARED_DIFFERENCE``,
slices, ``CONCATENATION``, ``RESHAPE``): about 4x faster in LiteRT
(``python bench/pool_unpool.py``), slower under XLA, and exact for finite
inputs:

* the switch of window position ``k`` is decided by
  ``min(ceil(max - x_k), 1)``, which is 0 exactly when ``x_k`` equals the
  maximum and 1 otherwise (any positive difference rounds up to 1); values
  closer than the smallest normal float32 (about 1.2e-38) may count as ties
  where the runtime flushes subnormals to zero;
* unpooling multiplies each value by a 0/1 mask, so an infinite value would
  give NaN in the zeroed positions (network activations are finite).

:func:`integer_formulation` is the third one, for integer-only int8 exports
(NPUs and accelerators that run no float op): the first maximum is found
with ``EQUAL`` and ``SELECT_V2`` on the int8 values and int32 window
positions, and unpooling selects with ``EQUAL`` on those positions. Every
tensor is an integer; XNNPACK delegates none of these ops.

:func:`kernel_formulation` is the fourth, for training: TensorFlow's own
kernels, ``tf.nn.max_pool_with_argmax`` (with its registered gradient,
``MaxPoolGradWithArgmax``) for pooling and ``MaxPoolGradWithArgmax`` (its
adjoint a gather) for unpooling, one pass each instead of a chain of
slices, comparisons and selects: 3.6x faster forward and backward on one
CPU thread for a ``[8, 112, 112, 64]`` pool + unpool (``python
bench/pool_unpool.py --threads 1``, row "ours, graph, TF kernels"). Inside it the switches
travel as int64 ``"flat_batch"`` indices. It applies to non-overlapping
windows with the ``"window"`` index format, and to ``"same"`` padding only
for windows of at most 2x2, where TensorFlow's SAME padding is Caffe's ceil
mode (larger ones would start the first window before the image); the rest
traces the default ops. On a CPU the kernel breaks ties as Caffe does (the
first maximum in row-major order), so switches, values and gradients are
identical to the default formulation. These ops have no XLA or TFLite
builtin kernel: :func:`keras_deconv.training.train` uses it for steps that
are not XLA-compiled, and exports never trace it.

Inside the formulation the switches travel between the two layers as float
window positions (casting them to int8 and back would cost two
non-delegated passes); :func:`keras_deconv.export.to_tflite` casts model
outputs back to their declared dtypes. int8 exports use it too, with its
arithmetic kept in float32 on the dequantized int8 values (exact; see
``keras_deconv.export.INT8_FLOAT_OPS``): the context manager yields a record
whose ``used`` says whether any layer traced the formulation.

Example:

>>> import numpy as np, tensorflow as tf
>>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
>>> x = tf.constant(np.arange(16, dtype="float32").reshape(1, 4, 4, 1))
>>> with litert_formulation():
...     pooled, switches = MaxPoolingWithArgmax2D()(x)
...     restored = MaxUnpooling2D()([pooled, switches, x])
>>> switches.dtype.name, float(restored[0, 1, 1, 0])
('float32', 5.0)
"""

import contextlib
import threading

_state = threading.local()


class FormulationRecord:
    """What :func:`litert_formulation` yields: ``used`` turns True once a layer traces the formulation."""

    def __init__(self):
        self.used = False


@contextlib.contextmanager
def _scoped(flag, value):
    """Set ``flag`` in this thread for the block, with a fresh :class:`FormulationRecord`."""
    previous = getattr(_state, flag, False), getattr(_state, "record", None)
    setattr(_state, flag, value)
    _state.record = record = FormulationRecord()
    try:
        yield record
    finally:
        setattr(_state, flag, previous[0])
        _state.record = previous[1]


def litert_formulation(enabled=True):
    """Within this block, pooling layers trace the XNNPACK-friendly ops; yields a :class:`FormulationRecord`."""
    return _scoped("litert", bool(enabled))


def mark_used():
    """Called by a layer that traces the formulation (recorded for the innermost block)."""
    record = getattr(_state, "record", None)
    if record is not None:
        record.used = True


def litert_active():
    """True inside :func:`litert_formulation` (in this thread)."""
    return getattr(_state, "litert", False)


def integer_formulation():
    """Within this block, pooling layers trace integer-only ops (int32 switches); yields a :class:`FormulationRecord`.

    Takes precedence over :func:`litert_formulation`.
    """
    return _scoped("integer", True)


def integer_active():
    """True inside :func:`integer_formulation` (in this thread)."""
    return getattr(_state, "integer", False)


def kernel_formulation(enabled=True):
    """Within this block, pooling layers use TensorFlow's argmax pooling kernels (int64 flat switches); yields a :class:`FormulationRecord`.

    For graph and eager execution only (not XLA, not TFLite); the integer
    and LiteRT formulations take precedence.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from keras_deconv.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
    >>> x = tf.constant(np.arange(16, dtype="float32").reshape(1, 4, 4, 1))
    >>> with kernel_formulation() as record:
    ...     pooled, switches = MaxPoolingWithArgmax2D()(x)
    ...     restored = MaxUnpooling2D()([pooled, switches, x])
    >>> record.used, switches.dtype.name, float(restored[0, 1, 1, 0])
    (True, 'int64', 5.0)
    """
    return _scoped("kernel", bool(enabled))


def kernel_active():
    """True inside :func:`kernel_formulation` (in this thread) and outside the export formulations."""
    return getattr(_state, "kernel", False) and not litert_active() and not integer_active()
