"""Runs a recipe: stages with checkpoints, resume, CSV/TensorBoard logs, then the export.

Run directory layout (``output``)::

    run.json                     the resolved recipe, command and timings
    <stage>/backup/              keras.callbacks.BackupAndRestore state (mid-stage resume)
    <stage>/checkpoint.weights.h5  the stage's network after the last finished epoch
    <stage>/log.csv              one row per epoch (loss, metrics, lr, seconds; val_miou where the
                                 recipe scores the stage on val images)
    curve.png                    loss and val mIoU of every stage against time
    <stage>/final.weights.h5, <stage>/done.json   written when the stage ends
    tensorboard/<stage>/         TensorBoard event files
    export/<tag>.weights.h5      inference weights in the zoo's architecture (BN folded)
    card.json, classes.txt       DeconvNet/FCN-8s: the run as a model (``keras_deconv.zoo.load(RUN_DIR)``)

``resume=True`` skips finished stages (loading their weights) and continues
an interrupted stage from its last epoch (weights, optimizer state, epoch
counter). Without it an existing run directory with state is an error.
"""

import os
import shutil
import sys
import tempfile
import time

import keras

from keras_deconv._platform import describe_cpu
from keras_deconv.layers import formulation

from keras_deconv.metrics import StreamingMeanIoU
from keras_deconv.training import recipes as recipes_lib
from keras_deconv.training import run_card
from keras_deconv.training.callbacks import StageProgress, StageTimer, read_json, write_json
from keras_deconv.training.validation import ValidationMIoU, save_curve

#: The run's loss / val-mIoU curve (:func:`~keras_deconv.training.validation.save_curve`), in the run directory.
CURVE_FILE = "curve.png"


def make_strategy(name):
    """``None``/``"default"``: no distribution; ``"mirrored"``: ``tf.distribute.MirroredStrategy``.

    Mirrored uses every GPU when there is one, else every logical CPU device
    (so it can be tested on a CPU with
    ``tf.config.set_logical_device_configuration``).
    """
    import tensorflow as tf

    if name in (None, "", "default", "none"):
        return None
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return _multiworker_strategy()
    raise ValueError(f"Unknown strategy {name!r}: expected 'default', 'mirrored' or 'multiworker'.")


def worker_role(strategy):
    """``(is_chief, "type:index")`` of this process in a multi-worker strategy; ``(True, "chief")`` otherwise.

    The chief is the ``chief`` task, or worker 0 when ``TF_CONFIG`` names no
    chief: it writes the run directory.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if resolver is None or task_type in (None, "chief"):
        return True, "chief"
    task_id = int(resolver.task_id or 0)
    chief = task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    return chief, f"{task_type}:{task_id}"


def _multiworker_strategy():
    """``tf.distribute.MultiWorkerMirroredStrategy`` (reads ``TF_CONFIG``), with ``reduce`` fixed for Keras 3.

    With more than one worker, Keras 3 ``fit`` (3.15, TF 2.21) calls
    ``strategy.reduce`` in two ways TF's collective reduce rejects (found
    with two local workers; keras-team/keras#20585 reports the TF
    multi-worker tutorial failing with Keras 3):

    * on its first batch, an ``(images, labels)`` tuple of per-replica values,
      to learn the input shapes: reduced here value by value;
    * on every step's logs (per-replica scalars: loss, metrics) with
      ``axis=0``: a scalar has no axis 0, so they are averaged over the
      replicas (``axis=None``), which is what the logs mean.
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            if isinstance(value, (tuple, list, dict)):
                return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
            if axis is not None and _rank(self, value) == 0:
                axis = None
            return super().reduce(reduce_op, value, axis)

    return MultiWorkerMirroredStrategy()


def _rank(strategy, value):
    local = strategy.experimental_local_results(value)[0] if hasattr(value, "values") else value
    return getattr(getattr(local, "shape", None), "rank", None)


class _Scope:
    def __init__(self, strategy):
        self.strategy = strategy

    def __enter__(self):
        self.context = self.strategy.scope() if self.strategy is not None else None
        return self.context.__enter__() if self.context is not None else None

    def __exit__(self, *exc):
        if self.context is not None:
            return self.context.__exit__(*exc)
        return False


def _has_state(output):
    return os.path.isdir(output) and any(
        os.path.exists(os.path.join(output, entry, marker))
        for entry in os.listdir(output)
        for marker in ("done.json", "backup", "checkpoint.weights.h5")
    )


def train(recipe, output, *, epochs=10, resume=False, strategy=None, verbose=None, export=True,
          export_prefix=None, command=None, calibration_batches=None, stop_after_epochs=None, jit_compile="auto",
          run_eagerly=False):
    """Trains ``recipe`` (a :class:`~keras_deconv.training.recipes.Recipe`) into the run directory ``output``.

    Args:
        recipe: the recipe instance (hyperparameters already set).
        output: run directory.
        epochs: checkpoint/log chunks per stage (a stage of N steps runs
            ``epochs`` epochs of ``ceil(N / epochs)`` steps).
        resume: continue a previous run in ``output``.
        strategy: ``None``, ``"mirrored"``, ``"multiworker"`` or a
            ``tf.distribute.Strategy``. With several workers only the chief
            (:func:`worker_role`) writes ``output``; the others train into a
            temporary folder they remove, and return their ``run`` with
            ``run["worker"]``.
        verbose: Keras ``fit`` verbosity (default: progress bar on a
            terminal, one line per epoch otherwise).
        export: fold BN and write ``output/export/<tag>.weights.h5``.
        export_prefix: also copy each export to ``<prefix>.<tag>.weights.h5``.
        command: the command line, recorded in ``run.json``.
        calibration_batches: override the recipe's BN calibration batches.
        jit_compile: XLA for the training steps; ``"auto"``: on when a GPU
            is visible and no strategy is used; off on a CPU, where TensorFlow's
            graph with its oneDNN kernels trains the small DeconvNet and FCN-8s
            faster than XLA (``bench/train_step.py``), and off under
            ``tf.distribute`` (Keras turns it off there anyway). Steps that
            are not XLA-compiled run the argmax pooling and unpooling on
            TensorFlow's own kernels
            (:func:`keras_deconv.layers.formulation.kernel_formulation`).
        stop_after_epochs: stop (as if interrupted) once this many epochs'
            worth of steps ran in the current stage; for tests of resume.
        run_eagerly: no ``tf.function`` tracing (a few-step run in a test
            is faster without it).

    Returns:
        The ``run.json`` content (dict): stages with steps and seconds, exports.
    """
    if isinstance(strategy, str) or strategy is None:
        strategy = make_strategy(strategy)
    options = dict(epochs=epochs, strategy=strategy, verbose=verbose, export=export, command=command,
                   calibration_batches=calibration_batches, stop_after_epochs=stop_after_epochs,
                   jit_compile=jit_compile, run_eagerly=run_eagerly)
    chief, task = worker_role(strategy)
    if chief:
        return _train(recipe, output, resume=resume, export_prefix=export_prefix, **options)
    # Every worker runs every step (the collectives need them all), but only the chief writes the run: the
    # others write into a temporary folder, removed at the end (as in the TF multi-worker guide).
    scratch = tempfile.mkdtemp(prefix=f"keras-deconv-{task.replace(':', '')}-")
    try:
        run = _train(recipe, scratch, resume=False, export_prefix=None, **options)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run["worker"] = {"task": task, "chief": False, "wrote": "nothing (the chief writes the run directory)"}
    return run


def auto_jit(strategy, run_eagerly=False):
    """``jit_compile="auto"``: XLA only on a GPU without a ``tf.distribute`` strategy."""
    import tensorflow as tf

    return strategy is None and not run_eagerly and bool(tf.config.list_physical_devices("GPU"))


def _train(recipe, output, *, epochs, resume, strategy, verbose, export, export_prefix, command, calibration_batches,
           stop_after_epochs, jit_compile, run_eagerly):
    if _has_state(output) and not resume:
        raise FileExistsError(f"{output} already holds a training run: pass resume=True (--resume) to continue it, "
                              "or choose another output directory.")
    os.makedirs(output, exist_ok=True)
    run_path = os.path.join(output, "run.json")
    run = read_json(run_path) if (resume and os.path.exists(run_path)) else {}
    run.update(recipe.describe())
    run.update({"command": command, "strategy": type(strategy).__name__ if strategy else None,
                "replicas": strategy.num_replicas_in_sync if strategy else 1, "epochs": epochs,
                "machine": describe_cpu()})
    run.setdefault("stages", {})
    if verbose is None:  # a tqdm bar on a terminal, one line an epoch in a log
        verbose = 1 if sys.stderr.isatty() else 2
    keras.utils.set_random_seed(recipe.seed)

    for stage in recipe.stages():
        stage_dir = os.path.join(output, stage.name)
        os.makedirs(stage_dir, exist_ok=True)
        done_path = os.path.join(stage_dir, "done.json")
        with _Scope(strategy):
            if stage.prepare is not None:
                stage.prepare()
        owner = recipe.models[stage.owner]
        if resume and os.path.exists(done_path):
            owner.load_weights(os.path.join(stage_dir, "final.weights.h5"))
            print(f"[{recipe.name}] stage {stage.name}: already done, weights loaded", file=sys.stderr)
            continue
        steps_per_epoch = max(1, recipe_steps_per_epoch(stage.steps, epochs))
        n_epochs = recipes_lib.ceil_div(stage.steps, steps_per_epoch)
        with _Scope(strategy):
            fit_model, loss, loss_weights, optimizer, metrics = stage.build()
            jit = auto_jit(strategy, run_eagerly) if jit_compile == "auto" else bool(jit_compile)
            if jit and metrics:
                # StreamingMeanIoU accumulates with bincount, which has no XLA kernel.
                metrics = [m for m in metrics if not isinstance(m, StreamingMeanIoU)] or None
            steps_per_call = steps_per_execution(steps_per_epoch, strategy, run_eagerly)
            fit_model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics,
                              jit_compile=jit, run_eagerly=run_eagerly, steps_per_execution=steps_per_call)
        dataset = stage.dataset()
        previous = run["stages"].get(stage.name, {})
        callbacks = [
            StageTimer(previous.get("seconds", 0.0) if resume else 0.0),
            keras.callbacks.BackupAndRestore(os.path.join(stage_dir, "backup"), delete_checkpoint=False),
            keras.callbacks.ModelCheckpoint(os.path.join(stage_dir, "checkpoint.weights.h5"), save_weights_only=True),
        ]
        validation = recipe.validation(stage.name)
        if validation is not None:  # before the CSV logger, which writes the logs it adds
            callbacks.append(ValidationMIoU(validation[0](), output=validation[1]))
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(stage_dir, "log.csv"), append=True))
        if tensorboard_available():
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(output, "tensorboard", stage.name),
                                                         write_graph=False, profile_batch=0))
        elif not run.get("tensorboard_note"):
            run["tensorboard_note"] = "tensorboard is not installed: no TensorBoard logs (CSV logs only)"
            print(f"[{recipe.name}] note: {run['tensorboard_note']}", file=sys.stderr)
        if stop_after_epochs is not None:
            callbacks.append(_StopAfter(stop_after_epochs))
        print(f"[{recipe.name}] stage {stage.name}: {stage.steps} steps ({n_epochs} epochs x {steps_per_epoch}), "
              f"batch {recipe.hp.get('batch_size')}", file=sys.stderr)
        start = time.perf_counter()
        if verbose == 1:
            callbacks.append(StageProgress(n_epochs * steps_per_epoch, f"[{recipe.name}] {stage.name}"))
        # The step is traced on its first call, inside fit: the formulation must hold there (XLA has no such kernels).
        with formulation.kernel_formulation(not jit) as kernels:
            history = fit_model.fit(dataset, epochs=n_epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                                    verbose=0 if verbose == 1 else verbose)
        seconds = time.perf_counter() - start
        record = {"steps": n_epochs * steps_per_epoch, "steps_per_execution": steps_per_call,
                  "seconds": round(previous.get("seconds", 0.0) * bool(resume) + seconds, 1)}
        if history.history.get("loss"):
            record["final_loss"] = float(history.history["loss"][-1])
        if kernels.used:  # the argmax pooling ran on TensorFlow's kernels (no XLA)
            record["argmax_pooling"] = "tensorflow-kernels"
        run["stages"][stage.name] = record
        write_json(run_path, run)
        if stop_after_epochs is not None and int(fit_model.optimizer.iterations) < n_epochs * steps_per_epoch:
            return run  # interrupted on purpose
        owner.save_weights(os.path.join(stage_dir, "final.weights.h5"))
        write_json(done_path, record)

    run.update(recipe.describe())  # now with what --init re-initialised
    if save_curve(output, [stage.name for stage in recipe.stages()], os.path.join(output, CURVE_FILE),
                  title=f"keras-deconv train {recipe.name}: {os.path.basename(os.path.abspath(output))}"):
        run["curve"] = CURVE_FILE
    if export:
        exported = {}
        export_dir = os.path.join(output, "export")
        os.makedirs(export_dir, exist_ok=True)
        start = time.perf_counter()
        exported_models = recipe.export(calibration_batches)
        for tag, model in exported_models.items():
            path = os.path.join(export_dir, f"{tag}.weights.h5")
            model.save_weights(path)
            exported[tag] = path
            if export_prefix:
                os.makedirs(os.path.dirname(os.path.abspath(export_prefix)), exist_ok=True)
                shutil.copyfile(path, f"{export_prefix}.{tag}.weights.h5")
                exported[tag] = f"{export_prefix}.{tag}.weights.h5"
        run["export"] = {"files": exported, "seconds": round(time.perf_counter() - start, 1)}
        card = run_card.write_card(output, recipe, run, exported_models)
        if card is not None:
            run["card"] = run_card.CARD_FILE
            metrics = card["weights"][card["default_weights"]]["metrics"]
            if metrics:
                run["val_metrics"] = metrics
    run["total_seconds"] = round(sum(s.get("seconds", 0) for s in run["stages"].values())
                                 + run.get("export", {}).get("seconds", 0), 1)
    write_json(run_path, run)
    return run


def tensorboard_available():
    """TensorBoard logging needs the ``tensorboard`` package (not a dependency of tensorflow-cpu here)."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def steps_per_execution(steps_per_epoch, strategy=None, run_eagerly=False, most=16):
    """Training steps per call of the compiled step: the largest divisor of ``steps_per_epoch`` up to ``most``.

    Keras's ``fit`` calls the compiled step from Python once per execution and
    the callbacks after it; on a CPU that costs about 2-3 ms a step, a tenth of
    a small DecoupledNet or TransferNet step (``bench/train_step.py``). Several
    steps per call keep every step the same (the loop runs inside the graph);
    only per-batch callbacks see every ``k``-th step. A divisor, because Keras
    would run past an epoch's end otherwise. 1 under a ``tf.distribute``
    strategy or eagerly.

    >>> steps_per_execution(750), steps_per_execution(16000 // 10), steps_per_execution(7)
    (15, 16, 7)
    """
    if strategy is not None or run_eagerly:
        return 1
    return max(d for d in range(1, int(most) + 1) if int(steps_per_epoch) % d == 0)


def recipe_steps_per_epoch(steps, epochs):
    return recipes_lib.ceil_div(int(steps), max(1, int(epochs)))


class _StopAfter(keras.callbacks.Callback):
    """Stops training after ``epochs`` epochs of this fit call (simulates an interruption)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = int(epochs)
        self.seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1
        if self.seen >= self.epochs:
            self.model.stop_training = True
