"""Does keras-cv's mask-aware augmentation do what our training needs? Evidence for the docs.

Usage: ``pip install --no-deps keras-cv regex`` (keras-cv 0.9 is not a
dependency of keras-deconv), then ``python bench/keras_cv_augment.py``.

Our recipes need one joint operation on an image and its label map
(``keras_deconv.training.augmentation.random_scale_crop_flip``): random scale,
crop, mirror, with the label map resampled nearest (no invented classes) and
every pixel that comes from outside the image labelled 255 (void, ignored by
the loss) rather than 0 (background, which would teach the network that
the border is background). This script feeds the same image + label map
(classes 0-3 and a void band) through keras-cv 0.9's segmentation-aware
layers and through ours, and prints, per transform:

* whether the labels stay inside the original label set,
* what label fills pixels that come from outside the image,
* whether image and labels stay aligned (the label map is a function of the
  image colour here, so a misaligned pixel is detectable),
* the median time per batch of 16 64x64 examples, in graph mode.
"""

import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_ms  # noqa: E402

COLOURS = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.float32)


def _example(size=64, seed=0):
    """Blocky label map with classes 0-3 and a void band; the image colour encodes the class."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 4, (size // 8, size // 8))
    label = np.kron(blocks, np.ones((8, 8), np.int64)).astype(np.uint8)
    image = COLOURS[label]
    label[:, 30:32] = 255
    return image, label


def _check(images, labels):
    images, labels = np.asarray(images), np.asarray(labels).astype(np.int64)
    values = set(np.unique(labels).tolist())
    invented = sorted(values - {0, 1, 2, 3, 255})
    # Pixels whose image colour is exactly one class colour must carry that class (or void).
    distances = ((images[..., None, :] - COLOURS) ** 2).sum(-1)
    colour_class = distances.argmin(-1)
    exact = distances.min(-1) == 0
    labelled = labels != 255
    mismatched = np.mean(colour_class[exact & labelled] != labels[exact & labelled]) if np.any(exact & labelled) else 0.0
    outside = np.all(images == 0, axis=-1) & ~exact  # only used if a layer fills with zeros
    return invented, mismatched, outside


def _report(name, fn, image, label):
    import tensorflow as tf

    batch_images = tf.constant(np.repeat(image[None], 16, 0))
    batch_labels = tf.constant(np.repeat(label[None, ..., None], 16, 0))
    graph = tf.function(fn)
    try:
        out_images, out_labels = graph(batch_images, batch_labels)
    except (NotImplementedError, ValueError, TypeError) as error:
        print(f"{name:48s} does not take segmentation masks: {type(error).__name__}")
        return
    invented, mismatched, _ = _check(out_images.numpy(), out_labels.numpy()[..., 0])
    # Fill label for pixels from outside the frame: shrink hard, read the corner region.
    ms = median_ms(lambda: graph(batch_images, batch_labels), repeats=20)
    print(f"{name:48s} invented labels {str(invented):10s} misaligned {100 * mismatched:6.2f}%  {ms:7.2f} ms/batch")


def main():
    started = time.perf_counter()
    probe = subprocess.run([sys.executable, "-c", "import tensorflow, time; t = time.perf_counter(); import keras_cv; "
                            "print(time.perf_counter() - t)"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit("keras-cv is not installed: pip install --no-deps keras-cv regex")
    print(f"import keras_cv after tensorflow: {float(probe.stdout.strip().splitlines()[-1]):.2f} s")

    import keras_cv
    import tensorflow as tf

    from keras_deconv.training import augmentation

    image, label = _example()

    def ours(images, labels):
        def one(pair):
            out_image, out_label = augmentation.random_scale_crop_flip(pair[0], pair[1][..., 0], (64, 64), (0.5, 1.5), True)
            return out_image, tf.cast(out_label, labels.dtype)[..., None]

        return tf.map_fn(one, (images, labels), fn_output_signature=(tf.float32, labels.dtype))

    def keras_cv_layer(layer):
        def apply(images, labels):
            out = layer({"images": images, "segmentation_masks": labels}, training=True)
            return out["images"], out["segmentation_masks"]

        return apply

    print(f"keras-cv {keras_cv.__version__}; 16 examples of 64x64, classes 0-3 + void band")
    _report("keras-deconv random_scale_crop_flip (0.5-1.5)", ours, image, label)
    _report("keras_cv.layers.RandomFlip", keras_cv_layer(keras_cv.layers.RandomFlip("horizontal", seed=1)), image, label)
    _report("keras_cv.layers.RandomZoom (-0.5, 0.5)",
            keras_cv_layer(keras_cv.layers.RandomZoom((-0.5, 0.5), fill_mode="constant", seed=1)), image, label)
    _report("keras_cv.layers.RandomRotation (0.1)",
            keras_cv_layer(keras_cv.layers.RandomRotation(0.1, fill_mode="constant", segmentation_classes=4, seed=1)),
            image, label)
    _report("keras_cv.layers.RandomCrop (48)", keras_cv_layer(keras_cv.layers.RandomCrop(48, 48, seed=1)), image, label)

    # Where does a zoom-out put the pixels that come from outside the frame?
    zoom = keras_cv.layers.RandomZoom((0.5, 0.5), fill_mode="constant", seed=1)
    out = zoom({"images": tf.constant(image[None]), "segmentation_masks": tf.constant(label[None, ..., None])}, training=True)
    corner = int(np.asarray(out["segmentation_masks"])[0, 0, 0, 0])
    print(f"keras_cv RandomZoom zoom-out: label of a pixel from outside the frame = {corner} (void would be 255)")
    _, padded = augmentation.pad_to_at_least(tf.constant(image), tf.constant(label), (96, 96))
    print(f"keras-deconv pad_to_at_least: label of a pixel from outside the frame = {int(np.asarray(padded)[-1, -1])}")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
