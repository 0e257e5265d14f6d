"""Sanity check for the small-model training result (not a test).

Fits a width-1/8 DeconvNet to 16 shapes images, then checks that eager, graph
and XLA inference agree and that the recomputed loss equals the training
loss, and prints how much of the foreground it labels correctly.

    python bench/overfit_check.py
"""

import os
os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import numpy as np, tensorflow as tf, keras
from keras_deconv.datasets import shapes
from keras_deconv.models import DeconvNet
b = shapes.as_numpy("train", count=16)
x, y = b["image"].astype("float32"), b["label"].astype("int32")
w = (y != 255).astype("float32"); y0 = np.where(y == 255, 0, y)
m = DeconvNet(num_classes=13, input_shape=(64, 64, 3), width=0.125, fc_units=128, fc_kernel_size=2, batch_norm="folded")
m.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
h = m.fit(x, y0, sample_weight=w, batch_size=16, epochs=150, verbose=0)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
eager = np.asarray(m(x, training=False))
graph = np.asarray(tf.function(lambda t: m(t, training=False))(x))
xla = np.asarray(tf.function(lambda t: m(t, training=False), jit_compile=True)(x))
print("history loss", h.history["loss"][-1])
print("recomputed loss eager", float(loss_fn(y0, eager, sample_weight=w)), "graph", float(loss_fn(y0, graph, sample_weight=w)), "xla", float(loss_fn(y0, xla, sample_weight=w)))
print("max |eager-graph|", np.abs(eager-graph).max(), "max |eager-xla|", np.abs(eager-xla).max())
pred = eager.argmax(-1); valid = y != 255
print("pixel acc", (pred[valid] == y[valid]).mean(), "fg acc", (pred[valid & (y>0)] == y[valid & (y>0)]).mean(), "fg pixels", (valid&(y>0)).sum())
print("pred classes", np.unique(pred, return_counts=True))
