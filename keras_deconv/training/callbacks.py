"""Callbacks and run-directory helpers of the training recipes."""

import json
import os
import time

import keras

from keras_deconv.progress import progress_bar


class StageTimer(keras.callbacks.Callback):
    """Adds ``lr`` and wall-clock ``seconds`` (cumulative, across resumes) to the logs."""

    def __init__(self, offset_seconds=0.0):
        super().__init__()
        self.offset = float(offset_seconds)
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = self.offset + time.perf_counter() - self.start
            optimizer = self.model.optimizer
            lr = optimizer.learning_rate
            try:
                logs["lr"] = float(lr(optimizer.iterations) if callable(lr) else lr)
            except TypeError:
                logs["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class StageProgress(keras.callbacks.Callback):
    """A tqdm bar over a stage's steps (``keras_deconv.progress``), with the running loss.

    Replaces Keras's own bar (``fit(verbose=1)``) so that every long command
    of the package shows the same kind of bar.
    """

    def __init__(self, steps, name, stream=None):
        super().__init__()
        self.steps, self.name, self.stream = int(steps), name, stream
        self.bar = None
        self.first = 0

    def on_train_begin(self, logs=None):
        self.bar = progress_bar(total=self.steps, desc=self.name, unit="step", enabled=True, stream=self.stream)

    def on_train_batch_begin(self, batch, logs=None):
        self.first = batch  # with steps_per_execution > 1, one call covers batches first ... batch

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            self.bar.set_postfix_str(f"loss {float(logs['loss']):.4f}", refresh=False)
        self.bar.update(batch - self.first + 1)

    def on_train_end(self, logs=None):
        self.bar.close()


def copy_weights_by_name(source, target, *, strict=True, skip=()):
    """Copies the weights of every layer of ``target`` from the same-named layer of ``source``.

    Returns the names of the layers copied. ``strict`` raises if a weighted
    ``target`` layer has no counterpart (or shapes differ), except names in
    ``skip``.
    """
    copied = []
    by_name = {layer.name: layer for layer in _all_layers(source)}
    for layer in _all_layers(target):
        if not layer.weights or layer.name in skip:
            continue
        donor = by_name.get(layer.name)
        if donor is None or [tuple(w.shape) for w in donor.weights] != [tuple(w.shape) for w in layer.weights]:
            if strict:
                raise ValueError(f"No weights of the right shape for layer {layer.name!r} in {source.name!r}.")
            continue
        layer.set_weights(donor.get_weights())
        copied.append(layer.name)
    return copied


def _all_layers(model):
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_all_layers(layer))
        else:
            out.append(layer)
    return out


def write_json(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)
