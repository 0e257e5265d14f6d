"""Learning-rate schedules and optimizers of the training stages (``--hparam optimizer/lr/schedule/warmup``).

The papers' solver is Caffe's SGD with momentum, weight decay on kernels
only and a step schedule (:func:`caffe_sgd`); the shipped small models use
Adam (:class:`~keras_deconv.training.fused_adam.FusedAdam`) with a cosine
decay and, optionally, a linear warm-up (:class:`LinearWarmup`).
"""

import keras
from keras import ops

from keras_deconv.training.fused_adam import FusedAdam


def step_schedule(base_lr, steps, stepsize_fraction, gamma=0.1):
    """Caffe's ``lr_policy: "step"`` scaled to a run of ``steps``: ``base * gamma^floor(it / stepsize)``.

    ``stepsize = round(stepsize_fraction * steps)`` keeps the official
    solver's shape (e.g. DeconvNet stage 1: stepsize 9000 of max_iter 20000
    -> fraction 0.45, one drop at 45% and one at 90%).
    """
    stepsize = max(1, int(round(stepsize_fraction * steps)))
    # PiecewiseConstantDecay switches after a boundary: step k*stepsize already has the next rate, as Caffe.
    boundaries = [b - 1 for b in range(stepsize, steps, stepsize)]
    if not boundaries:
        return float(base_lr)
    values = [float(base_lr * gamma**i) for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


#: ``--hparam schedule=...``: ``"step"`` (Caffe's, the default) or ``"cosine"``.
SCHEDULES = ("step", "cosine")


@keras.saving.register_keras_serializable(package="keras_deconv")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``schedule(step) * min(1, (step + 1) / warmup_steps)``: a linear ramp over the first steps.

    ``--hparam warmup=F`` (a fraction of the stage's steps). Adam's first
    steps move every weight by about the full rate whatever the gradient.
    Without a ramp, ``deconvnet-small``'s slow seeds sat on the background
    for epochs, and FCN-8s silenced most of its fc6/fc7 channels within 400
    steps (docs/training.md).
    """

    def __init__(self, schedule, warmup_steps):
        self.schedule = schedule
        self.warmup_steps = max(1, int(warmup_steps))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = self.schedule(step) if callable(self.schedule) else self.schedule
        return ops.minimum(1.0, (step + 1.0) / self.warmup_steps) * rate

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["warmup_steps"])


def lr_schedule(base_lr, steps, stepsize_fraction, schedule="step", warmup=0.0):
    """The learning rate of a stage: :func:`step_schedule` or a cosine decay from ``base_lr`` to 0 over ``steps``.

    The cosine decay is the reference U-Net's (``bench/shapes_baseline.py``)
    and the shipped ``fcn8s-small``'s (docs/training.md). ``warmup``: the
    fraction of ``steps`` the rate ramps up over (:class:`LinearWarmup`).

    >>> round(float(lr_schedule(0.01, 100, 0.5, "cosine")(50)), 6)
    0.005
    >>> round(float(lr_schedule(0.01, 100, 0.5, "cosine", warmup=0.1)(4)), 6)  # 5/10 of the cosine's rate
    0.00498
    """
    if schedule == "step":
        rate = step_schedule(base_lr, steps, stepsize_fraction)
    elif schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(float(base_lr), max(1, int(steps)))
    else:
        raise ValueError(f"Expected --hparam schedule to be one of {SCHEDULES}. Received {schedule!r}.")
    warmup = float(warmup)
    if not 0 <= warmup < 1:
        raise ValueError(f"Expected --hparam warmup in [0, 1) (a fraction of the stage's steps). Received {warmup!r}.")
    warmup_steps = int(round(warmup * steps))
    return LinearWarmup(rate, warmup_steps) if warmup_steps > 0 else rate


def caffe_sgd(lr, steps, stepsize_fraction, momentum=0.9, weight_decay=5e-4, schedule="step", warmup=0.0):
    """SGD with momentum, step schedule and weight decay on kernels only (Caffe: bias decay 0)."""
    optimizer = keras.optimizers.SGD(lr_schedule(lr, steps, stepsize_fraction, schedule, warmup), momentum=momentum,
                                     weight_decay=weight_decay or None)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "scale", "shift"])
    return optimizer


def make_optimizer(kind, lr, steps, stepsize_fraction, momentum=0.9, weight_decay=5e-4, schedule="step", warmup=0.0):
    """``"sgd"``: :func:`caffe_sgd` (the papers' solver); ``"adam"``: Adam with the same schedule.

    The shipped small models use Adam (in the earlier CPU runs SGD at lr
    0.01-0.1 sat on the predict-background plateau for the whole budget);
    the full configurations default to SGD.
    """
    if kind == "sgd":
        return caffe_sgd(lr, steps, stepsize_fraction, momentum, weight_decay, schedule, warmup)
    if kind == "adam":
        return FusedAdam(lr_schedule(lr, steps, stepsize_fraction, schedule, warmup))
    raise ValueError(f"Expected optimizer 'sgd' or 'adam'. Received {kind!r}.")
