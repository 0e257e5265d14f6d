"""Training-step speed of the small models: Keras (XLA) against PyTorch, same network, same data, same run.

Usage: ``python bench/train_step.py [--models deconvnet-small,fcn8s-small] [--threads N] [--rounds 3]``
(needs the ``[bench]`` extra: torch).

Both sides train the configuration the shipped model's recipe trains, with
Adam and softmax cross-entropy ignoring 255, on the same batch of ``shapes``
train images:

* ``deconvnet-small``: 13 classes, width 1/4, fc 256, 2x2 fc6, trainable
  batch norm, argmax pooling + unpooling (PyTorch: ``bench/torch_deconvnet.py``);
  ``--plain-pooling`` adds the same network with plain max pooling and
  nearest upsampling instead of the switches: what the switches cost;
* ``fcn8s-small``: 13 classes, width 1/8, fc 128, conv1_1 padded by 100,
  dropout 0.5 (PyTorch: ``bench/torch_fcn8s.py``; its recipe trains without
  XLA, ``--no-jit``, so the ``keras-graph`` row is the one it uses);
* ``decouplednet-small``: width 1/16, fc 64, seg fc 32, 1x1 fc6, the
  recipe's segmentation-stage graph (classification network and bridging
  frozen; the query from the classifier's own scores and a one-hot label;
  figure-ground targets of each image's first object class) (PyTorch:
  ``bench/torch_decouplednet.py``, same 62,830 trainable parameters);
* the ``keras-graph`` row traces the argmax pooling and unpooling on
  TensorFlow's kernels (``kernel_formulation``), as ``keras-deconv train``
  does for steps without XLA; ``--default-ops`` adds the same step with the
  layers' default ops (slices, comparisons, selects): what the kernels gain;
* ``--keras-bn``: DeconvNet and DecoupledNet also with
  ``keras.layers.BatchNormalization`` in place of the models' trainable
  ``FusedBatchNormalization``: what the fused kernel gains;
* the Keras steps use the recipes' optimizer, ``FusedAdam`` (Keras's Adam
  with TensorFlow's one-kernel update, ``keras_deconv.training.fused_adam``);
  ``--keras-adam`` adds the ``keras-graph`` step with ``keras.optimizers.Adam``:
  what the fused update gains;
* ``--fit``: also ``keras-fit``, the step as ``keras-deconv train`` runs it:
  the compiled function ``model.fit`` calls, on a ``tf.data`` repeat of the
  batch, 16 steps per call (``runner.steps_per_execution``), time per call /
  16 (``fit``'s per-epoch setup and epoch-level callbacks left out);
  ``train_on_batch`` (the ``keras-graph`` row) pays Keras's per-call work on
  every step;
* ``--fcn-batch-norm``: ``fcn8s-small`` also as ``keras-fit`` with BN after
  every convolution (``--hparam batch_norm=1``, folded away at export): what
  the BN costs a step;
* ``--breakdown``: the ``keras-graph`` step's forward+backward alone and
  then with ``optimizer.apply``, as graph functions on the same model and
  batch (what the optimizer and Keras's per-call overhead cost);
* ``transfernet-small``: width 1/16, the recipe's ``segmentation`` stage
  (encoder frozen; attention, decoder and classification head trained;
  2 x the figure-ground loss + the attention classifier's cross-entropy on
  the label's class) (PyTorch: ``bench/torch_transfernet.py``).

The first line of each model prints both sides' trainable parameter counts,
which must agree.

Each round times Keras then PyTorch (median of ``--repeats`` steps after
warm-up), alternating so both see the same machine load; the last line prints
the median ratio. Faster steps buy accuracy in a CPU time budget, so the goal
is Keras's time per step <= 1.0x PyTorch's.
"""

import argparse
import contextlib
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _timing import median_ms  # noqa: E402

#: The shipped models' training configurations (their cards' ``architecture.config``).
CONFIGS = {"deconvnet-small": {"width": 0.25, "fc_units": 256, "fc_kernel_size": 2},
           "fcn8s-small": {"width": 0.125, "fc_units": 128},
           "decouplednet-small": {"width": 0.0625, "fc_units": 64, "seg_fc_units": 32, "fc_kernel_size": 1},
           "transfernet-small": {"width": 0.0625}}
#: Models whose network takes the image and a one-hot class label.
TWO_INPUTS = ("decouplednet-small", "transfernet-small")


def _figure_ground(labels):
    """DecoupledNet's segmentation targets: each image's first object class against the rest (void kept)."""
    classes = np.array([np.setdiff1d(np.unique(y), [0, 255])[:1].tolist() or [1] for y in labels])[:, 0]
    figure = np.where(labels == 255, 255, (labels == classes[:, None, None]).astype(np.int64))
    one_hot = np.eye(12, dtype="float32")[classes - 1]
    return figure, one_hot


def _data(batch, size):
    from keras_deconv.datasets import shapes

    data = shapes.as_numpy("train", image_size=size, indices=range(batch))
    return data["image"], data["label"].astype(np.int64)


def plain_pooling_deconvnet(images):
    """``deconvnet-small`` with plain max pooling and nearest x2 upsampling instead of switches (``--plain-pooling``)."""
    import keras

    from keras_deconv.models import _blocks
    from keras_deconv.models._decoder import DECODER_BLOCKS
    from keras_deconv.models.vgg16_encoder import vgg16_encoder

    config, bn = CONFIGS["deconvnet-small"], "trainable"
    width, units, kernel = config["width"], config["fc_units"], config["fc_kernel_size"]
    inputs, x = _blocks.image_input(images.shape[1:], True)
    x = vgg16_encoder(x, width=width, batch_norm=bn, pooling="max")["pool5"]
    x = _blocks.conv_block(x, units, kernel, "fc6", "relu6", "bnfc6", bn, "valid")
    x = _blocks.conv_block(x, units, 1, "fc7", "relu7", "bnfc7", bn, "valid")
    x = _blocks.deconv_block(x, _blocks.scaled(512, width), kernel, "fc6-deconv", "fc6-deconv-relu", "fc6-deconv-bn", bn,
                             "valid")
    for level in (5, 4, 3, 2, 1):
        x = keras.layers.UpSampling2D(2, name=f"upsample{level}")(x)
        for index, filters in enumerate(DECODER_BLOCKS[level], start=1):
            tag = f"{level}_{index}"
            x = _blocks.deconv_block(x, _blocks.scaled(filters, width), 3, f"deconv{tag}", f"derelu{tag}", f"debn{tag}", bn)
    return keras.Model(inputs, keras.layers.Conv2D(13, 1, name="seg-score-voc")(x))


@contextlib.contextmanager
def keras_batch_norm():
    """Build with ``keras.layers.BatchNormalization`` instead of the models' fused subclass (``--keras-bn``)."""
    import keras

    from keras_deconv.models import _blocks

    fused, _blocks.TRAINABLE_BN_LAYER = _blocks.TRAINABLE_BN_LAYER, keras.layers.BatchNormalization
    try:
        yield
    finally:
        _blocks.TRAINABLE_BN_LAYER = fused


#: The epoch length the ``keras-fit`` row stands for: TransferNet's segmentation stage (16000 steps in 10
#: epochs), for which ``runner.steps_per_execution`` gives 16 steps per call (DeconvNet's 750-step epochs: 15).
FIT_EPOCH_STEPS = 1600


def keras_step(name, images, labels, jit, plain_pooling=False, kernels=None, keras_adam=False, fit_steps=None,
               fcn_batch_norm=None):
    """The Keras step; graph steps (not ``jit``) use TensorFlow's argmax pooling kernels as ``train`` does.

    ``kernels=False``: the layers' default ops instead. ``fit_steps=N``: one call runs N steps in the
    compiled function ``fit`` calls (``run.steps_per_call``)."""
    from keras_deconv.layers import formulation

    step = _keras_step(name, images, labels, jit, plain_pooling, keras_adam, fit_steps or 1, fcn_batch_norm)
    if fit_steps:
        import tensorflow as tf

        model, inputs, targets = step.parts
        features = tuple(inputs) if isinstance(inputs, list) else inputs  # a list would become one stacked tensor
        iterator = iter(tf.data.Dataset.from_tensors((features, targets)).repeat())
        model.make_train_function()  # model.train_function: what fit calls once per fit_steps steps
        trainable = step.trainable
        step = lambda: model.train_function(iterator)  # noqa: E731
        step.trainable, step.parts = trainable, (model, inputs, targets)
    use_kernels = (not jit) if kernels is None else kernels

    def run():  # the step traces on its first call: the formulation must hold there
        with formulation.kernel_formulation(use_kernels):
            return step()

    run.trainable, run.parts, run.steps_per_call = step.trainable, step.parts, fit_steps or 1
    return run


def _keras_step(name, images, labels, jit, plain_pooling=False, keras_adam=False, steps_per_execution=1,
                fcn_batch_norm=None):
    import keras

    from keras_deconv import models
    from keras_deconv.training.fused_adam import FusedAdam

    adam = keras.optimizers.Adam if keras_adam else FusedAdam  # the recipes train with FusedAdam

    inputs = images
    if plain_pooling:
        model = plain_pooling_deconvnet(images)
    elif name == "deconvnet-small":
        model = models.DeconvNet(13, images.shape[1:], batch_norm="trainable", **CONFIGS[name])
    elif name == "fcn8s-small":
        model = models.FCN8s(13, images.shape[1:], batch_norm=fcn_batch_norm, **CONFIGS[name])
    elif name == "transfernet-small":  # the recipe's segmentation stage: frozen encoder, two losses
        from keras_deconv.training import recipes

        recipe = recipes.TransferNetRecipe()
        network = recipe.models["transfernet"] = models.TransferNet(12, images.shape[1:], include_classifier=True,
                                                                    **CONFIGS[name])
        recipe._freeze_encoder()
        model = keras.Model(network.inputs, {"seg-score": network.output["seg-score"],
                                             "cls-score-voc-att": network.output["cls-score-voc-att"]})
        figure, one_hot = _figure_ground(labels)
        model.compile(adam(1e-3), jit_compile=jit, steps_per_execution=steps_per_execution, loss_weights={"seg-score": 2.0, "cls-score-voc-att": 1.0},
                      loss={"seg-score": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
                            "cls-score-voc-att": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
        targets = {"seg-score": figure, "cls-score-voc-att": one_hot.argmax(1)}
        step = _with_count(lambda: model.train_on_batch([images, one_hot], targets), model)
        step.parts = (model, [images, one_hot], targets)
        return step
    else:  # the recipe's segmentation-stage graph: frozen classifier and bridging, trainable segmentation network
        from keras_deconv.training import recipes

        network = models.DecoupledNet(12, images.shape[1:], batch_norm="trainable", query_input="cls-label",
                                      **CONFIGS[name])
        for layer in network.layers:
            if layer.weights and recipes._is_classification_layer(layer.name):
                layer.trainable = False
        model = recipes.DecoupledNetRecipe(budgets=["all"]).segmentation_graph(network)
        labels, one_hot = _figure_ground(labels)
        inputs = {"data": images, "cls-label": one_hot}
    model.compile(adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255), jit_compile=jit,
                  steps_per_execution=steps_per_execution)
    step = _with_count(lambda: model.train_on_batch(inputs, labels), model)
    step.parts = (model, inputs, labels)
    return step


def breakdown_steps(keras_graph_step):
    """``--breakdown``: the Keras graph step's parts as graph functions on the same compiled model and batch:
    ``forward+backward`` (loss and gradients) and ``+optimizer`` (the same, then ``optimizer.apply``); the
    full ``train_on_batch`` minus the second is Keras's per-call overhead (data handling, metrics, logs)."""
    import tensorflow as tf

    from keras_deconv.layers import formulation

    model, inputs, targets = keras_graph_step.parts
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    targets = tf.nest.map_structure(tf.convert_to_tensor, targets)
    variables = model.trainable_variables

    def loss_and_gradients():
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=True)
        return loss, tape.gradient(loss, variables)

    @tf.function
    def forward_backward():
        loss, gradients = loss_and_gradients()
        return [loss] + gradients  # returned, so no gradient is pruned from the graph

    @tf.function
    def with_optimizer():
        loss, gradients = loss_and_gradients()
        model.optimizer.apply(gradients, variables)
        return loss

    def traced(function):
        def run():
            with formulation.kernel_formulation(True):  # as the keras-graph step
                return function()
        return run

    return {"forward+backward": traced(forward_backward), "+optimizer": traced(with_optimizer)}


def _with_count(step, model):
    """``step`` with the model's trainable parameter count as ``step.trainable`` (Keras or PyTorch)."""
    if hasattr(model, "trainable_weights"):
        step.trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    else:
        step.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return step


def torch_step(name, images, labels):
    import torch
    from torch_decouplednet import TorchDecoupledNet
    from torch_deconvnet import TorchDeconvNet
    from torch_fcn8s import TorchFCN8s
    from torch_transfernet import TorchTransferNet

    torch.manual_seed(0)
    config = CONFIGS[name]
    if name == "deconvnet-small":
        net = TorchDeconvNet(13, config["width"], config["fc_units"], config["fc_kernel_size"], batch_norm=True)
    elif name == "fcn8s-small":
        net = TorchFCN8s(13, config["width"], config["fc_units"])
    elif name == "transfernet-small":
        net = TorchTransferNet(12, config["width"], input_size=images.shape[1])
        labels, one_hot = _figure_ground(labels)
    else:
        net = TorchDecoupledNet(12, **config)
        labels, one_hot = _figure_ground(labels)
    net = net.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], 1e-3)
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)  # the Keras model's Caffe mean
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() - mean).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(labels)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)
    forward = (lambda: net(x, torch.from_numpy(one_hot))) if name in TWO_INPUTS else (lambda: net(x))
    if name == "transfernet-small":  # the recipe's losses: 2 x figure-ground + the attention classifier's
        classes = torch.from_numpy(one_hot.argmax(1))
        objective = lambda out: 2.0 * loss_fn(out[0], y) + torch.nn.functional.cross_entropy(out[1], classes)  # noqa: E731
    else:
        objective = lambda out: loss_fn(out, y)  # noqa: E731

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = objective(forward())
        loss.backward()
        optimizer.step()
        return loss

    return _with_count(step, net)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--plain-pooling", action="store_true",
                        help="deconvnet-small also with plain max pooling + nearest upsampling (what the switches cost)")
    parser.add_argument("--keras-bn", action="store_true",
                        help="also the Keras graph step with keras.layers.BatchNormalization instead of the models' "
                             "FusedBatchNormalization (what the fused kernel gains)")
    parser.add_argument("--default-ops", action="store_true",
                        help="also the Keras graph step with the layers' default (XLA/TFLite-friendly) pooling ops "
                             "instead of TensorFlow's argmax pooling kernels (what the kernels gain)")
    parser.add_argument("--keras-adam", action="store_true",
                        help="also the Keras graph step with keras.optimizers.Adam instead of the recipes' FusedAdam "
                             "(what the fused update gains)")
    parser.add_argument("--fcn-batch-norm", action="store_true",
                        help="fcn8s-small also trained with BN after every convolution (--hparam batch_norm=1), "
                             "as keras-fit: what the BN costs a step")
    parser.add_argument("--fit", action="store_true",
                        help="also keras-fit: the graph step as keras-deconv train runs it (fit's function, 16 steps per call)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the keras-graph step's forward+backward alone and with the optimizer "
                             "(where the time goes)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    names = args.models.split(",")
    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        parser.error(f"--models: unknown model(s) {', '.join(map(repr, unknown))}; choose from {', '.join(CONFIGS)}")

    import tensorflow as tf
    import torch

    from keras_deconv._platform import describe_cpu

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    torch.set_num_threads(args.threads)
    from keras_deconv.training.runner import steps_per_execution  # what keras-deconv train passes to compile

    print(describe_cpu())
    images, labels = _data(args.batch, args.size)
    fit_steps = steps_per_execution(FIT_EPOCH_STEPS)  # the keras-fit rows: steps per call of fit's function
    for name in names:
        steps = {"keras-xla": keras_step(name, images, labels, True),
                 "keras-graph": keras_step(name, images, labels, False), "torch": torch_step(name, images, labels)}
        if args.plain_pooling and name == "deconvnet-small":
            steps["keras-xla-plain-pooling"] = keras_step(name, images, labels, True, plain_pooling=True)
            steps["keras-graph-plain-pooling"] = keras_step(name, images, labels, False, plain_pooling=True)
        if args.default_ops and name != "fcn8s-small":  # FCN-8s has no argmax pooling
            steps["keras-graph-default-ops"] = keras_step(name, images, labels, False, kernels=False)
        if args.keras_bn and name in ("deconvnet-small", "decouplednet-small"):  # the others have no batch norm
            with keras_batch_norm():
                steps["keras-graph-keras-bn"] = keras_step(name, images, labels, False)
        if args.fit:
            steps["keras-fit"] = keras_step(name, images, labels, False, fit_steps=fit_steps)
        if args.fcn_batch_norm and name == "fcn8s-small":
            steps["keras-fit-batch-norm"] = keras_step(name, images, labels, False, fcn_batch_norm="trainable",
                                                       fit_steps=fit_steps)
        if args.keras_adam:
            steps["keras-graph-keras-adam"] = keras_step(name, images, labels, False, keras_adam=True)
        print(f"{name} trainable parameters: " + ", ".join(f"{runtime} {step.trainable:,}" for runtime, step in steps.items()))
        if args.breakdown:
            steps.update({f"keras-graph {part}": run for part, run in breakdown_steps(steps["keras-graph"]).items()})
        ratios = {runtime: [] for runtime in steps if runtime != "torch"}
        for round_index in range(args.rounds):
            times = {runtime: median_ms(step, args.repeats, warmup=3) / getattr(step, "steps_per_call", 1)
                     for runtime, step in steps.items()}
            for runtime in ratios:
                ratios[runtime].append(times[runtime] / times["torch"])
            print(f"{name} round {round_index + 1}: " + "  ".join(
                f"{runtime} {ms:.1f} ms/step ({1000 * args.batch / ms:.0f} img/s)" for runtime, ms in times.items()))
        for runtime, values in ratios.items():
            print(f"{name} {runtime} / torch time per step: median {statistics.median(values):.2f}x "
                  f"(rounds: {', '.join(f'{v:.2f}' for v in values)}); batch {args.batch}, {args.size}x{args.size}, "
                  f"{args.threads} threads", flush=True)


if __name__ == "__main__":
    main()
