"""Colour palettes, label-map PNG files and image galleries (NumPy + Pillow).

Everything here is pure NumPy/Pillow: importing this module does not load
TensorFlow or Keras.

The palette is the PASCAL VOC devkit colormap (``VOClabelcolormap.m``): the
bits of the class index are spread over the high bits of R, G and B, three
bits per round. Class 0 is black, 1 is (128, 0, 0), 15 (person) is
(192, 128, 128) and 255 (void) is (224, 224, 192), exactly the colours in the
VOC ``SegmentationClass`` PNGs.

Label PNGs are written the way VOC stores them: 8-bit palettized ("P" mode)
images whose pixel values *are* the class indices. Read them back with
:func:`read_label_png` (not with OpenCV, which would return colours).

Example:

>>> import numpy as np
>>> from keras_deconv import viz
>>> viz.palette()[[0, 1, 15, 255]].tolist()
[[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]]
>>> viz.colorize(np.array([[0, 1], [2, 255]], np.uint8)).shape
(2, 2, 3)
"""

import os

import numpy as np

from keras_deconv._atomic import atomic_path

__all__ = [
    "VOID_LABEL",
    "palette",
    "colorize",
    "overlay",
    "legend",
    "gallery",
    "save_label_png",
    "read_label_png",
    "save_image",
]

VOID_LABEL = 255


def palette(num_classes=256):
    """Returns the VOC devkit colormap as a ``(num_classes, 3)`` uint8 array.

    Args:
        num_classes: Number of entries, 1 to 256. Entry ``i`` is the colour of
            class ``i``; use the default 256 so that 255 (void) is included.

    Returns:
        A ``(num_classes, 3)`` uint8 array of RGB colours.

    Example:

    >>> palette(3).tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    if not 1 <= int(num_classes) <= 256:
        raise ValueError(
            f"Expected 1 <= num_classes <= 256. Received: num_classes={num_classes}"
        )
    ids = np.arange(int(num_classes), dtype=np.int64)
    cmap = np.zeros((len(ids), 3), dtype=np.int64)
    c = ids.copy()
    for j in range(8):
        # Bits 0, 1, 2 of the remaining index go to bit (7 - j) of R, G, B.
        for channel in range(3):
            cmap[:, channel] |= ((c >> channel) & 1) << (7 - j)
        c >>= 3
    return cmap.astype(np.uint8)


_PALETTE = palette(256)


def _as_label_map(label_map):
    label_map = np.asarray(label_map)
    if label_map.ndim == 3 and label_map.shape[-1] == 1:
        label_map = label_map[..., 0]
    if label_map.ndim != 2:
        raise ValueError(
            "Expected a (H, W) or (H, W, 1) label map. "
            f"Received: shape={label_map.shape}"
        )
    if label_map.dtype.kind not in "iub":
        if label_map.dtype.kind == "f" and np.all(np.mod(label_map, 1) == 0):
            label_map = label_map.astype(np.int64)
        else:
            raise TypeError(
                "Expected an integer label map. "
                f"Received: dtype={label_map.dtype}"
            )
    if label_map.size and (label_map.min() < 0 or label_map.max() > 255):
        raise ValueError(
            "Label values must lie in [0, 255] to be drawn with the VOC palette. "
            f"Received: min={label_map.min()}, max={label_map.max()}"
        )
    return label_map.astype(np.uint8)


def _as_rgb(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            f"Expected an (H, W, 3) RGB image. Received: shape={image.shape}"
        )
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.dtype != np.uint8:
        if image.dtype.kind == "f" and image.size and image.max() <= 1.0:
            # A float image in [0, 1] (a common convention) is scaled up.
            image = image * 255.0
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image


def colorize(label_map):
    """Maps a label map to RGB colours with the VOC palette.

    Args:
        label_map: ``(H, W)`` or ``(H, W, 1)`` integer array with values in
            [0, 255].

    Returns:
        ``(H, W, 3)`` uint8 RGB image.

    Example:

    >>> colorize(np.array([[1, 255]])).tolist()
    [[[128, 0, 0], [224, 224, 192]]]
    """
    return _PALETTE[_as_label_map(label_map)]


def overlay(image, label_map, alpha=0.5, include_background=False):
    """Blends the colourised label map over an image.

    Args:
        image: ``(H, W, 3)`` RGB image (uint8, or float in [0, 1]).
        label_map: ``(H, W)`` integer label map of the same size.
        alpha: Opacity of the label colours, in [0, 1].
        include_background: If False (the default), class-0 pixels keep the
            image unchanged so objects stand out.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.

    Example:

    >>> img = np.full((2, 2, 3), 200, np.uint8)
    >>> overlay(img, np.array([[0, 1], [0, 0]])).dtype
    dtype('uint8')
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Expected 0 <= alpha <= 1. Received: alpha={alpha}")
    image = _as_rgb(image)
    labels = _as_label_map(label_map)
    if image.shape[:2] != labels.shape:
        raise ValueError(
            "Image and label map sizes differ. "
            f"Received: image={image.shape[:2]}, label_map={labels.shape}"
        )
    colours = _PALETTE[labels].astype(np.float32)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    if not include_background:
        blended = np.where((labels == 0)[..., None], image, blended)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _text_image(text, height, fill=(0, 0, 0), background=(255, 255, 255)):
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    width = max(1, right - left + 2)
    canvas = Image.new("RGB", (width, height), background)
    y = max(0, (height - (bottom - top)) // 2 - top)
    ImageDraw.Draw(canvas).text((1, y), text, fill=fill, font=font)
    return np.asarray(canvas)


def legend(class_names, present_ids=None, swatch=14, columns=None):
    """Draws a colour legend: one swatch and name per class.

    Args:
        class_names: Sequence of class names, indexed by class id.
        present_ids: Class ids to show (e.g. ``np.unique(label_map)``); ids
            outside ``class_names`` other than 255 are skipped, 255 is shown as
            "void". Defaults to all classes.
        swatch: Swatch size in pixels (also the row height).
        columns: Entries per row; defaults to all in one row.

    Returns:
        ``(H, W, 3)`` uint8 RGB image strip.

    Example:

    >>> legend(["background", "circle"], [0, 1, 255]).shape[2]
    3
    """
    names = list(class_names)
    if present_ids is None:
        ids = list(range(len(names)))
    else:
        ids = sorted({int(i) for i in np.asarray(present_ids).ravel()})
    entries = []
    for i in ids:
        if 0 <= i < len(names):
            entries.append((i, str(names[i])))
        elif i == VOID_LABEL:
            entries.append((i, "void"))
    if not entries:
        return np.full((swatch, swatch, 3), 255, np.uint8)
    tiles = []
    for i, name in entries:
        box = np.full((swatch, swatch, 3), _PALETTE[i], np.uint8)
        box[[0, -1], :] = 0
        box[:, [0, -1]] = 0
        text = _text_image(f" {i}:{name}  ", swatch)
        tiles.append(np.concatenate([box, text], axis=1))
    columns = len(tiles) if not columns else int(columns)
    rows = [tiles[k : k + columns] for k in range(0, len(tiles), columns)]
    widths = [sum(t.shape[1] for t in row) for row in rows]
    strip = np.full((swatch * len(rows), max(widths), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        x = 0
        for tile in row:
            strip[r * swatch : (r + 1) * swatch, x : x + tile.shape[1]] = tile
            x += tile.shape[1]
    return strip


def gallery(rows, titles=("image", "ground truth", "prediction"), pad=2,
            scale=1, class_names=None):
    """Composes (image, ground truth, prediction) rows into one RGB image.

    Label maps (2-D arrays) are colourised with the VOC palette; RGB arrays are
    used as they are. Any entry may be ``None`` (left blank), so
    ``(image, label)`` pairs also work.

    Args:
        rows: Sequence of tuples ``(image, ground_truth, prediction, ...)``.
            All cells must have the same height and width.
        titles: Column titles drawn above the first row, or None.
        pad: White spacing between cells, in pixels.
        scale: Integer nearest-neighbour upscaling of every cell (small
            images are easier to look at when enlarged).
        class_names: If given, a legend of the classes present in the label
            maps is appended at the bottom.

    Returns:
        ``(H, W, 3)`` uint8 image; save it with :func:`save_image`.

    Example:

    >>> img = np.zeros((8, 8, 3), np.uint8); lab = np.zeros((8, 8), np.uint8)
    >>> gallery([(img, lab, lab)], titles=None, pad=1).shape
    (10, 28, 3)
    """
    rows = [tuple(r) for r in rows]
    if not rows:
        raise ValueError("Expected at least one row. Received: rows=[]")
    ncols = max(len(r) for r in rows)
    cell_shape = None
    present = set()
    cells = []
    for row in rows:
        out = []
        for cell in row:
            if cell is None:
                out.append(None)
                continue
            arr = np.asarray(cell)
            if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 1):
                lab = _as_label_map(arr)
                present.update(np.unique(lab).tolist())
                arr = colorize(lab)
            else:
                arr = _as_rgb(arr)
            if cell_shape is None:
                cell_shape = arr.shape[:2]
            elif arr.shape[:2] != cell_shape:
                raise ValueError(
                    "All gallery cells must have the same size. "
                    f"Received: {arr.shape[:2]} and {cell_shape}"
                )
            out.append(arr)
        cells.append(out + [None] * (ncols - len(out)))
    if cell_shape is None:
        raise ValueError("Every gallery cell is None.")
    scale = max(1, int(scale))
    h, w = cell_shape[0] * scale, cell_shape[1] * scale
    header = 0
    if titles:
        header = 14
    width = ncols * w + (ncols + 1) * pad
    height = header + len(rows) * h + (len(rows) + 1) * pad
    canvas = np.full((height, width, 3), 255, np.uint8)
    if titles:
        for c, title in enumerate(list(titles)[:ncols]):
            text = _text_image(str(title), header)[:, : w]
            x = pad + c * (w + pad)
            canvas[:header, x : x + text.shape[1]] = text
    for r, row in enumerate(cells):
        y = header + pad + r * (h + pad)
        for c, arr in enumerate(row):
            if arr is None:
                continue
            x = pad + c * (w + pad)
            if scale > 1:
                arr = np.repeat(np.repeat(arr, scale, axis=0), scale, axis=1)
            canvas[y : y + h, x : x + w] = arr
    if class_names is not None:
        strip = legend(class_names, sorted(present), columns=max(1, width // 110))
        strip = strip[:, :width]
        bottom = np.full((strip.shape[0] + pad, width, 3), 255, np.uint8)
        bottom[: strip.shape[0], : strip.shape[1]] = strip
        canvas = np.concatenate([canvas, bottom], axis=0)
    return canvas


def _atomic_save(path, pil_image, **kwargs):
    # Write to a temporary file in the same directory, then rename, so a crash
    # never leaves a truncated PNG behind (and readers never see half a file).
    with atomic_path(path, suffix=".png") as temporary:
        pil_image.save(temporary, format="PNG", **kwargs)
    return os.fspath(path)


def save_image(path, image):
    """Writes an RGB image (e.g. from :func:`gallery`) to a PNG file atomically.

    Args:
        path: Destination file name.
        image: ``(H, W, 3)`` array (uint8, or float in [0, 1]).

    Returns:
        The path written.

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> save_image(p, np.zeros((4, 4, 3), np.uint8)) == p
    True
    """
    from PIL import Image

    return _atomic_save(path, Image.fromarray(_as_rgb(image), mode="RGB"))


def save_label_png(path, label_map):
    """Writes a label map as an indexed-palette PNG, like VOC SegmentationClass.

    The pixel values are the class indices (0..255, 255 = void) and the file
    carries the 256-entry VOC palette, so image viewers show the usual
    colours while :func:`read_label_png` gets the indices back unchanged.

    Args:
        path: Destination file name.
        label_map: ``(H, W)`` integer array with values in [0, 255].

    Returns:
        The path written.

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "label.png")
    >>> lab = np.array([[0, 1], [15, 255]], np.uint8)
    >>> _ = save_label_png(p, lab)
    >>> read_label_png(p).tolist()
    [[0, 1], [15, 255]]
    """
    from PIL import Image

    img = Image.fromarray(_as_label_map(label_map), mode="P")
    img.putpalette(_PALETTE.ravel().tolist())
    return _atomic_save(path, img)


def read_label_png(path):
    """Reads a label PNG into class indices.

    Palette ("P") PNGs give their indices (VOC, SBD exports, files from
    :func:`save_label_png`); grayscale PNGs give their pixel values. Colour
    (RGB) PNGs are refused: their colours are not class ids, and guessing would
    silently produce wrong IoUs (the classic ``cv2.imread`` bug).

    Args:
        path: PNG file name.

    Returns:
        ``(H, W)`` uint8 array (uint16/int32 for 16-bit grayscale files).

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "l.png")
    >>> _ = save_label_png(p, np.full((2, 3), 7, np.uint8))
    >>> read_label_png(p).shape
    (2, 3)
    """
    from PIL import Image

    with Image.open(path) as img:
        mode = img.mode
        if mode in ("P", "L"):
            return np.array(img, dtype=np.uint8)
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.array(img)
        if mode == "1":
            return np.array(img, dtype=np.uint8)
    raise ValueError(
        f"{os.fspath(path)!r} is a {mode!r} image, not a palette or grayscale "
        "label PNG. Colour PNGs hold colours, not class indices; convert them "
        "to palette PNGs first."
    )
