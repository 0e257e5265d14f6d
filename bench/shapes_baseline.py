"""Reference baseline on ``shapes``: a plain ~0.5M-parameter U-Net trained on streaming images for a time budget.

    python bench/shapes_baseline.py [--minutes 30] [--threads 2] [--image-size 64] [--curve curve.png]
    python bench/shapes_baseline.py --net deconvnet [--width 0.25] [--fc-units 256]
    python bench/shapes_baseline.py --net deconvnet-nofc --width 0.125 [--init-encoder fcn8s-small]
    python bench/shapes_baseline.py --net deconvnet --memorise 400 --lr 1e-3   # can it fit one batch?

``--net deconvnet`` trains the project's DeconvNet (trainable BN) in this
same loop, data and schedule instead of the U-Net: the gap between the two
is then the architecture's, not the recipe's (docs/training.md).
``--net deconvnet-nofc`` drops fc6, fc7 and fc6-deconv (pool5 goes straight
to unpool5, a SegNet-like net): is the 1x1 fc code the obstacle?
``--init-encoder NAME`` starts the encoder from a trained model's
convolutions (e.g. ``fcn8s-small``, width 1/8): is the encoder?

What it does, in order:

1. Prints the no-learning references on the test split (500 images): the
   all-background floor and a colour-only per-pixel classifier (majority
   class per RGB bin, fitted on ``--colour-train-images`` train images),
   both from :mod:`keras_deconv.datasets.shapes_baselines`.
2. Trains a U-Net-like net (3x3 conv + BN + ReLU pairs at 16/32/64/128
   channels, 2x2 max pooling, transposed-conv upsampling with skip
   concatenation; about 0.48M parameters) with Adam, batch 16, on fresh
   images of the streaming train split (``shapes.load``; no image is seen
   twice), for ``--minutes`` of wall-clock time. The learning rate follows a
   cosine decay over the *time* budget (``lr * (1 + cos(pi * t / T)) / 2``),
   so any budget ends at zero. Loss: pixel cross-entropy, void (255) ignored,
   background pixels weighted by ``--background-weight`` (objects 1).
3. Every ``--eval-every`` seconds prints one curve row: elapsed time, step,
   mean training loss since the last row, mIoU on the first
   ``--val-images`` val images.
4. Prints the final mIoU on the whole test split (500 images; background
   included; :class:`keras_deconv.metrics.ConfusionMatrix`, VOC convention)
   and optionally saves the curve as a PNG (``--curve FILE``).

Goal of the standard config: >= 75 test mIoU within 30 minutes on 2 CPU
threads (the all-background floor is about 7).
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from keras_deconv.datasets import shapes, shapes_baselines  # noqa: E402


def unet(num_classes, image_size, widths=(16, 32, 64, 128)):
    """A plain U-Net: conv pairs down to 1/8 resolution and back up with skip connections."""
    import keras
    from keras import layers

    def conv_pair(x, channels):
        for _ in range(2):
            x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        return x

    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    skips = []
    for channels in widths[:-1]:
        x = conv_pair(x, channels)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = conv_pair(x, widths[-1])
    for channels, skip in zip(reversed(widths[:-1]), reversed(skips)):
        x = layers.Conv2DTranspose(channels, 2, strides=2, use_bias=False)(x)
        x = conv_pair(layers.Concatenate()([x, skip]), channels)
    outputs = layers.Conv2D(num_classes, 1)(x)
    return keras.Model(inputs, outputs, name="shapes_unet")


def references(test, train_images):
    """(all-background mIoU, colour-only mIoU) on the test arrays, in percent."""
    train = shapes.as_numpy("train", count=train_images, image_size=test["image"].shape[1])
    floor = shapes_baselines.background_only_miou(test["label"])
    colour = shapes_baselines.colour_only_miou(train["image"], train["label"], test["image"], test["label"])
    return floor, colour


def miou(model, data, batch_size=50):
    """mIoU (%) of ``model`` on stacked arrays, with the project's ConfusionMatrix."""
    from keras_deconv.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(shapes.NUM_CLASSES, ignore_label=shapes.VOID_LABEL)
    for start in range(0, len(data["image"]), batch_size):
        images = data["image"][start : start + batch_size].astype("float32")
        logits = model(images, training=False)
        matrix.update(data["label"][start : start + batch_size], np.asarray(logits).argmax(-1))
    return 100 * matrix.mean_iou


def build_net(args):
    """``(model, label)`` for ``--net``: the reference U-Net, the project's DeconvNet, or DeconvNet without fc."""
    if args.net == "unet":
        return unet(shapes.NUM_CLASSES, args.image_size), "U-Net"
    import keras

    from keras_deconv import models
    from keras_deconv.models import _blocks
    from keras_deconv.models._decoder import deconv_decoder
    from keras_deconv.models.vgg16_encoder import vgg16_encoder

    input_shape = (args.image_size, args.image_size, 3)
    if args.net == "deconvnet":
        model = models.DeconvNet(shapes.NUM_CLASSES, input_shape, width=args.width, fc_units=args.fc_units,
                                 fc_kernel_size=min(7, -(-args.image_size // 32)), batch_norm="trainable")
        label = f"DeconvNet width {args.width:g}, fc_units {args.fc_units}"
    else:  # deconvnet-nofc: the same encoder and unpooling decoder, pool5 straight into unpool5
        inputs, x = _blocks.image_input(input_shape, True)
        blobs = vgg16_encoder(x, width=args.width, batch_norm="trainable")
        x = deconv_decoder(blobs["pool5"], blobs, width=args.width, batch_norm="trainable")
        model = keras.Model(inputs, keras.layers.Conv2D(shapes.NUM_CLASSES, 1, name="seg-score-voc")(x))
        label = f"DeconvNet without fc6/fc7/fc6-deconv, width {args.width:g}"
    if args.init_encoder:
        from keras_deconv import zoo
        from keras_deconv.training.pretraining import copy_encoder

        donor = zoo.load(args.init_encoder).model
        theirs, ours = (m.get_layer("conv1_1").get_weights()[0].shape for m in (donor, model))
        if theirs != ours:
            raise SystemExit(f"--init-encoder {args.init_encoder}: its conv1_1 has kernel {theirs}, this network's "
                             f"{ours}; pass the --width it was trained with")
        copy_encoder(donor, model)
        label += f", conv1_1 ... conv5_3 from {args.init_encoder}"
    return model, label


def make_step(model, optimizer, args):
    """One training step: pixel cross-entropy, void ignored, background pixels weighted by ``--background-weight``."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=shapes.VOID_LABEL)

    @tf.function(jit_compile=args.jit)
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(tf.cast(images, "float32"), training=True)
            labels = tf.cast(labels, "int32")
            weights = tf.where(labels == 0, args.background_weight, 1.0)
            loss = loss_fn(labels, logits, sample_weight=weights)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def memorise(args):
    """``--memorise STEPS``: can the net fit ONE fixed batch of train images? (a net that cannot leave the
    label prior here has an optimisation problem, not a data problem). Constant Adam ``--lr``; every 50
    steps: the loss, and the batch's pixel accuracy, share of pixels predicted background and mIoU, all in
    training mode (batch statistics, so the lag of BN's moving averages does not hide what was learnt)."""
    import keras

    from keras_deconv.metrics import ConfusionMatrix

    keras.utils.set_random_seed(args.seed)
    model, label = build_net(args)
    batch = shapes.as_numpy("train", count=args.batch_size, image_size=args.image_size)
    images, labels = batch["image"].astype("float32"), batch["label"].astype("int32")
    labelled = labels != shapes.VOID_LABEL
    print(f"model: {label}, {model.count_params():,} parameters; memorising {args.batch_size} train images "
          f"({100 * np.mean(labels[labelled] == 0):.1f} % of their labelled pixels background) with Adam lr "
          f"{args.lr:g}, {args.threads} thread(s)")
    step = make_step(model, keras.optimizers.Adam(args.lr), args)
    print(f"{'step':>6} {'loss':>7} {'pixel acc.':>10} {'predicted bg':>12} {'batch mIoU':>10}")
    for index in range(1, args.memorise + 1):
        loss = float(step(images, labels))
        if index % 50 == 0 or index == args.memorise:
            predicted = np.asarray(model(images, training=True)).argmax(-1)
            matrix = ConfusionMatrix(shapes.NUM_CLASSES, ignore_label=shapes.VOID_LABEL)
            matrix.update(labels, predicted)
            print(f"{index:6d} {loss:7.3f} {100 * np.mean(predicted[labelled] == labels[labelled]):10.1f} "
                  f"{100 * np.mean(predicted[labelled] == 0):12.1f} {100 * matrix.mean_iou:10.1f}", flush=True)


def train(args, val):
    import keras

    keras.utils.set_random_seed(args.seed)
    model, label = build_net(args)
    print(f"model: {label}, {model.count_params():,} parameters; Adam lr {args.lr} cosine-decayed over "
          f"{args.minutes:g} min; batch {args.batch_size}; {args.image_size}x{args.image_size}; "
          f"{args.threads} thread(s); background weight {args.background_weight:g}")
    optimizer = keras.optimizers.Adam(args.lr)
    step = make_step(model, optimizer, args)
    data = shapes.load("train", batch_size=args.batch_size, image_size=args.image_size, seed=args.seed,
                       drop_remainder=True)
    budget = 60 * args.minutes
    curve, losses, step_count = [], [], 0
    start = last_eval = time.perf_counter()
    print(f"{'time':>8} {'step':>7} {'loss':>7} {'val mIoU':>9}")
    for images, labels in data:
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            break
        optimizer.learning_rate.assign(args.lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        losses.append(float(step(images, labels)))
        step_count += 1
        if time.perf_counter() - last_eval >= args.eval_every:
            curve.append(_curve_row(model, val, start, step_count, losses))
            losses, last_eval = [], time.perf_counter()
    if losses:
        curve.append(_curve_row(model, val, start, step_count, losses))
    return model, label, curve


def _curve_row(model, val, start, step_count, losses):
    row = (time.perf_counter() - start, step_count, float(np.mean(losses)), miou(model, val))
    print(f"{row[0]:7.0f}s {row[1]:7d} {row[2]:7.3f} {row[3]:9.2f}", flush=True)
    return row


def save_curve(path, curve, floor, colour, test_miou, label):
    """The curve as a PNG (:func:`keras_deconv.training.validation.draw_curve`, the runs' own curve drawer)."""
    from keras_deconv.training.validation import draw_curve

    rows = [{"seconds": t, "loss": loss, "val_miou": value} for t, _, loss, value in curve]
    return draw_curve([("train", rows)], path, f"{label}: test mIoU {test_miou:.1f}",
                      levels=[("all-background", floor, "gray"), ("colour-only", colour, "orange")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=["unet", "deconvnet", "deconvnet-nofc"], default="unet",
                        help="the reference U-Net, or DeconvNet in the same loop (-nofc: without fc6/fc7)")
    parser.add_argument("--init-encoder", metavar="NAME|RUN_DIR",
                        help="--net deconvnet*: copy conv1_1 ... conv5_3 from this zoo model (same --width)")
    parser.add_argument("--width", type=float, default=0.25, help="--net deconvnet: channel multiplier")
    parser.add_argument("--fc-units", type=int, default=256, help="--net deconvnet: fc6/fc7 channels")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra- and inter-op threads")
    parser.add_argument("--image-size", type=int, default=64, help="as the shipped small models (cards' input_size)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate")
    parser.add_argument("--eval-every", type=float, default=60.0, help="seconds between curve rows")
    parser.add_argument("--val-images", type=int, default=100, help="val images per curve row")
    parser.add_argument("--colour-train-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background-weight", type=float, default=0.2,
                        help="loss weight of background pixels (objects 1); bench/torch_learnability.py measures it")
    parser.add_argument("--no-jit", dest="jit", action="store_false", help="no XLA for the training step")
    parser.add_argument("--curve", help="save the curve as this PNG file")
    parser.add_argument("--memorise", type=int, metavar="STEPS",
                        help="instead: train STEPS steps on one fixed batch and print how well the net fits it")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive; got {args.minutes}")
    if args.memorise is not None and args.memorise < 1:
        parser.error(f"--memorise must be a positive number of steps; got {args.memorise}")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.memorise:
        return memorise(args)

    print(f"data: shapes config 'standard' (version {shapes.VERSION}); train streams "
          f"{shapes.SPLITS['train']:,} images, test {shapes.SPLITS['test']}")
    test = shapes.as_numpy("test", image_size=args.image_size)
    val = shapes.as_numpy("val", count=args.val_images, image_size=args.image_size)
    floor, colour = references(test, args.colour_train_images)
    print(f"all-background floor: {floor:.2f} test mIoU")
    print(f"colour-only classifier (8 bins/channel, {args.colour_train_images} train images): {colour:.2f} test mIoU")

    model, label, curve = train(args, val)
    test_miou = miou(model, test)
    print(f"final test mIoU ({len(test['image'])} images, background included): {test_miou:.2f} "
          f"after {curve[-1][1] if curve else 0} steps, {curve[-1][0] / 60 if curve else 0:.1f} min")
    if args.curve:
        save_curve(args.curve, curve, floor, colour, test_miou, label)
        print(f"curve: {args.curve}")


if __name__ == "__main__":
    main()
