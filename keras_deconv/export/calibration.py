"""Images for int8 calibration (and the VOC images ``verify`` uses): synthetic shapes, VOC 2012 or a folder.

Which dataset a zoo model's weights were trained on, and so which images
calibrate it by default, is the zoo's to say
(:func:`keras_deconv.zoo.exporting.calibration_dataset`).
"""

import os


#: Images the int8 calibration uses by default (``--calibration-count``).
CALIBRATION_COUNT = 8


def _spread(items, count):
    """``count`` items evenly spaced over ``items`` (all of them if fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[index * len(items) // count] for index in range(count)]


def _voc_files(data_dir, count, split="train"):
    """``count`` VOC 2012 segmentation images of ``split``, evenly spaced over its list.

    Calibration reads ``train`` (never ``val``, the evaluation split);
    ``--verify`` reads ``val``.
    """
    hint = ("Pass --data-dir, the folder holding VOCdevkit/VOC2012/ (as for `keras-deconv evaluate --data voc2012`), "
            "or --calibration-data DIR, a folder of images like yours.")
    if data_dir is None:
        raise ValueError(f"int8 calibration on VOC 2012 images needs the dataset, which is not downloaded for you. {hint}")
    root = os.path.join(os.path.expanduser(os.fspath(data_dir)), "VOCdevkit", "VOC2012")
    listing = os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(listing):
        raise ValueError(f"No VOC 2012 image list at {listing!r}. {hint}")
    with open(listing) as stream:
        ids = [line.strip() for line in stream if line.strip()]
    files = [os.path.join(root, "JPEGImages", f"{image_id}.jpg") for image_id in _spread(ids, count)]
    missing = [path for path in files if not os.path.isfile(path)]
    if missing or not files:
        raise ValueError(f"VOC 2012 images missing under {root!r}: {missing[:3] or f'the {split} list is empty'}. {hint}")
    return files


def _read_rgb(path):
    """An image file as a ``(H, W, 3)`` uint8 RGB array."""
    import tensorflow as tf

    return tf.io.decode_image(tf.io.read_file(os.fspath(path)), channels=3, expand_animations=False).numpy()


def _calibration_images(calibration_data, size, count=CALIBRATION_COUNT, data_dir=None):
    """Up to ``count`` float32 ``[1, H, W, 3]`` RGB arrays resized to ``size``.

    ``calibration_data``: ``"shapes"`` (the synthetic shapes dataset, train
    split; ``"shapes-hard"``: its hard config), ``"voc2012"`` (VOC 2012 segmentation train images under
    ``data_dir``, the folder holding ``VOCdevkit/VOC2012``), a folder of
    images (png/jpg/bmp), or an iterable of ``(H, W, 3)`` arrays. From a list
    or a folder the images are taken evenly spaced.
    """
    import numpy as np
    import tensorflow as tf

    if calibration_data is None or (isinstance(calibration_data, str) and calibration_data in ("shapes", "shapes-hard")):
        from keras_deconv.datasets import shapes

        config = "hard" if calibration_data == "shapes-hard" else "standard"
        images = [shapes.generate_example("train", index, image_size=64, config=config)["image"]
                  for index in range(count)]
    elif isinstance(calibration_data, str) and calibration_data == "voc2012":
        images = [_read_rgb(path) for path in _voc_files(data_dir, count)]
    elif isinstance(calibration_data, (str, os.PathLike)):
        folder = os.fspath(calibration_data)
        if not os.path.isdir(folder):
            raise ValueError(f"Calibration data must be 'shapes', 'shapes-hard', 'voc2012' or a folder of images. "
                             f"Received: {folder!r}")
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")))
        if not files:
            raise ValueError(f"No .png/.jpg/.bmp image in the calibration folder {folder!r}.")
        images = [_read_rgb(os.path.join(folder, f)) for f in _spread(files, count)]
    else:
        images = [np.asarray(image) for image in calibration_data][:count]
    return [tf.image.resize(np.asarray(image, "float32")[None], size).numpy() for image in images]
