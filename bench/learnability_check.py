"""Why the small models do not learn ``shapes`` in the CPU budget (not a test).

Two measurements, each printed with the numbers behind the conclusion:

1. **Step size.** A 1/8-width DeconvNet (trainable BN) fitted to ONE fixed
   batch of 16 train images with Adam at the learning rate of the earlier
   runs (0.002) and at 0.01: foreground pixel accuracy on that batch after
   the same number of steps. Adam moves each weight by about ``lr`` per step,
   so the classifier's scores need hundreds of steps at 0.002 just to leave
   the label prior.
2. **Generalisation.** A plain 4-block CNN classifier (BN, Adam) trained on
   the single-object train images whose object spans more than 30% of the
   side (the easiest subset): training accuracy against val accuracy of the
   same subset. If training accuracy reaches ~100% while val stays near
   chance (1/12), the network memorises colours and textures instead of
   learning shapes: the data, not the optimiser or the layers, is the limit.
   The same run with ``random_shape_invariances`` (rot90, colour permutation
   and inversion: the recipes' ``invariances`` hyperparameter) shows whether
   that augmentation turns memorisation into learning.

    python bench/learnability_check.py [--steps 150] [--classifier-steps 1000] [--shapes-config standard]

Default data: the ``hard`` shapes config (version 1), the data this check
was written to diagnose; ``--shapes-config standard`` runs it on the default
generator (the classifier then uses the first 4000 of its streaming train
images).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


CONFIG = "hard"  # set by --shapes-config


def fit_one_batch(learning_rate, steps):
    import keras
    import numpy as np

    from keras_deconv.datasets import shapes
    from keras_deconv.models import DeconvNet

    keras.utils.set_random_seed(0)
    batch = shapes.as_numpy("train", count=16, config=CONFIG)
    x, y = batch["image"].astype("float32"), batch["label"].astype("int32")
    model = DeconvNet(shapes.NUM_CLASSES, (64, 64, 3), width=1 / 8, fc_units=128, fc_kernel_size=2,
                      batch_norm="trainable")
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255), jit_compile=True)
    history = model.fit(x, y, batch_size=16, epochs=steps, verbose=0)
    predicted = np.asarray(model(x, training=True)).argmax(-1)
    foreground = (y != 255) & (y > 0)
    return history.history["loss"][-1], float((predicted[foreground] == y[foreground]).mean())


def classifier_generalisation(steps, invariances, min_size=0.3):
    import keras
    import tensorflow as tf

    from keras_deconv.datasets import shapes
    from keras_deconv.training import augmentation

    def easy_subset(split):
        data = shapes.as_numpy(split, count=4000, config=CONFIG)
        keep = (data["num_objects"] == 1) & (data["sizes"][:, 0] > min_size)
        return data["image"][keep].astype("float32"), data["image_labels"][keep].argmax(1)

    def augment(image, label):
        image, _ = augmentation.random_shape_invariances(image, tf.zeros(tf.shape(image)[:2], tf.int32))
        return image, label

    keras.utils.set_random_seed(0)
    x, y = easy_subset("train")
    xv, yv = easy_subset("val")
    layers = keras.layers
    inputs = keras.Input((64, 64, 3))
    h = layers.Rescaling(1 / 255)(inputs)
    for channels in (16, 32, 64, 64):
        h = layers.Conv2D(channels, 3, padding="same", use_bias=False)(h)
        h = layers.MaxPooling2D()(layers.ReLU()(layers.BatchNormalization()(h)))
    model = keras.Model(inputs, layers.Dense(shapes.NUM_OBJECT_CLASSES)(layers.GlobalMaxPooling2D()(h)))
    model.compile(keras.optimizers.Adam(0.003), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).repeat()
    if invariances:
        data = data.map(augment)
    data = data.batch(32)
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    train_accuracy = model.evaluate(x, y, verbose=0)[1]
    val_accuracy = model.evaluate(xv, yv, verbose=0)[1]
    return len(x), len(xv), train_accuracy, val_accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="steps of the one-batch fits")
    parser.add_argument("--classifier-steps", type=int, default=1000)
    parser.add_argument("--shapes-config", choices=("standard", "hard"), default="hard")
    args = parser.parse_args()
    global CONFIG
    CONFIG = args.shapes_config

    print(f"1. DeconvNet (width 1/8, BN) fitted to one batch of 16 train images, {args.steps} Adam steps:")
    for learning_rate in (0.002, 0.01):
        start = time.perf_counter()
        loss, accuracy = fit_one_batch(learning_rate, args.steps)
        print(f"   lr {learning_rate:<6} loss {loss:.3f}  foreground pixel accuracy {accuracy:.3f}"
              f"  ({time.perf_counter() - start:.0f} s)")
    print(f"2. CNN classifier on single-object images with the object > 30% of the side, "
          f"{args.classifier_steps} steps of 32:")
    for invariances in (False, True):
        n_train, n_val, train_accuracy, val_accuracy = classifier_generalisation(args.classifier_steps, invariances)
        label = "with invariances" if invariances else "no augmentation"
        print(f"   {label:17s} {n_train} train / {n_val} val images; train accuracy {train_accuracy:.3f}, "
              f"val accuracy {val_accuracy:.3f} (chance {1 / 12:.3f})")


if __name__ == "__main__":
    main()
