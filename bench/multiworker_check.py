"""Does tf.distribute.MultiWorkerMirroredStrategy work with Keras 3 here? A 1-worker local check.

    python bench/multiworker_check.py

Sets TF_CONFIG to a single worker on localhost (no network beyond the
loopback), builds and fits a small DeconvNet for 2 steps inside the
strategy's scope with `model.fit`, then the same through the training
runner (`keras-deconv train --strategy multiworker`). Prints one line per
check: OK or the exception. ecosystem.md §5 reports keras-team/keras#20585
(the TF multi-worker tutorial fails with Keras 3 since TF 2.16).
"""

import json
import os
import socket
import sys
import tempfile
import traceback

with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}})
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

print(f"tensorflow {tf.__version__}, keras {keras.__version__}, TF_CONFIG 1 worker localhost:{port}")
results = {}
try:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    print(f"strategy: {type(strategy).__name__}, replicas {strategy.num_replicas_in_sync}")
    from keras_deconv.models import DeconvNet
    from keras_deconv.training.recipes import seg_loss

    with strategy.scope():
        model = DeconvNet(13, (64, 64, 3), width=1 / 16, fc_units=32, fc_kernel_size=2, batch_norm="trainable")
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), seg_loss())
    x = np.random.default_rng(0).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, 13, (8, 64, 64)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    history = model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
    results["model.fit under MultiWorkerMirroredStrategy"] = f"OK (loss {history.history['loss'][-1]:.3f})"
except Exception as error:  # noqa: BLE001 - report whatever breaks
    results["model.fit under MultiWorkerMirroredStrategy"] = f"FAILED: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
    traceback.print_exc()
try:
    from keras_deconv import training

    recipe = training.get_recipe("fcn8s")(hparams={"batch_size": 4})
    recipe.set_steps(2)
    run = training.train(recipe, tempfile.mkdtemp(), epochs=1, strategy=strategy, verbose=0, export=False)
    results["keras-deconv training runner"] = f"OK (replicas {run['replicas']})"
except Exception as error:  # noqa: BLE001
    results["keras-deconv training runner"] = f"FAILED: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
for check, outcome in results.items():
    print(f"{check}: {outcome}")
sys.exit(0 if all(v.startswith("OK") for v in results.values()) else 1)
