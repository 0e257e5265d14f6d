"""Robust image reading for inference: any JPEG/PNG (and whatever Pillow reads) in, RGB uint8 out.

:func:`read_image` is what ``keras-deconv predict`` and ``evaluate`` use. It
turns every kind of odd input into an ``(H, W, 3)`` uint8 RGB array, and every
kind of bad input into one :class:`ImageError` (a ``ValueError``) whose message
is a single line naming the file:

=========================  ==================================================
input                      result
=========================  ==================================================
RGB, 8 bit                 unchanged
EXIF orientation tag       rotated/flipped upright (as viewers show it)
grayscale ``L`` / ``1``    replicated to 3 channels
16-bit (``I;16``, ``I``)   scaled to 8 bit (value / 257, rounded), then as L
float ``F``                clipped to [0, 255], rounded
palette ``P``              expanded through its palette
``RGBA``/``LA``/``PA``,    composited over a **white** background
transparency in ``P``/L
``CMYK``                   Pillow's plain conversion (ICC profiles ignored)
``YCbCr``, ``LAB``, ...    Pillow's conversion to RGB
animated GIF/PNG           the first frame
=========================  ==================================================

Refused with :class:`ImageError`: missing or unreadable files, empty
(0-byte) files, files that are not images, truncated or corrupt data, images
with a zero width or height, and images with more than ``max_pixels`` pixels
(a decompression-bomb guard: a tiny PNG can claim to be 50,000 x 50,000). The
limit is :data:`DEFAULT_MAX_PIXELS` (100 megapixels); override it per call
with ``max_pixels=``, or for a whole process (and the CLI) with the
environment variable ``KERAS_DECONV_MAX_PIXELS`` (``0`` disables the guard).

Example:

>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> from keras_deconv.images import read_image, ImageError
>>> path = os.path.join(tempfile.mkdtemp(), "gray.png")
>>> Image.fromarray(np.zeros((4, 6), np.uint8)).save(path)
>>> read_image(path).shape
(4, 6, 3)
>>> try:
...     read_image(path, max_pixels=10)
... except ImageError as error:
...     print("refused")
refused
"""

import contextlib
import os
import threading

import numpy as np

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageError",
    "find_images",
    "max_pixels_limit",
    "read_image",
]

#: Default decompression-bomb limit: 100 megapixels (e.g. 10,000 x 10,000).
DEFAULT_MAX_PIXELS = 100_000_000

#: Environment variable overriding :data:`DEFAULT_MAX_PIXELS` (0 = no limit).
MAX_PIXELS_ENV = "KERAS_DECONV_MAX_PIXELS"

#: File extensions collected from directories by :func:`find_images`.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

_PIL_LOCK = threading.Lock()


class ImageError(ValueError):
    """A file could not be read as an image; the message is one line naming it.

    Attributes:
        path: The offending file name (a string).
        reason: The reason alone, without the file name.
    """

    def __init__(self, path, reason):
        self.path = os.fspath(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path}: {self.reason}")


def max_pixels_limit(max_pixels=None):
    """The effective pixel limit: the argument, else ``$KERAS_DECONV_MAX_PIXELS``, else 100 M.

    Args:
        max_pixels: An explicit limit (int > 0), 0 for none, or None.

    Returns:
        The limit as an int, or None when the guard is disabled.

    Example:

    >>> max_pixels_limit(5000)
    5000
    >>> max_pixels_limit(0) is None
    True
    """
    if max_pixels is None:
        raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(float(raw))
        except ValueError:
            raise ValueError(
                f"{MAX_PIXELS_ENV}={raw!r} is not a number of pixels "
                "(expected e.g. 200000000, or 0 for no limit)."
            ) from None
    max_pixels = int(max_pixels)
    if max_pixels < 0:
        raise ValueError(f"Expected max_pixels >= 0. Received: max_pixels={max_pixels}")
    return max_pixels or None


@contextlib.contextmanager
def _pil_bomb_limit(limit):
    # Pillow has its own, global bomb check (an error above 2x
    # Image.MAX_IMAGE_PIXELS). Ours replaces it while we open the file, so a
    # larger user limit is honoured and a smaller one gives our message.
    from PIL import Image

    with _PIL_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _white_background(img):
    from PIL import Image

    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _to_rgb_array(img):
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        return np.asarray(_white_background(img), dtype=np.uint8)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(img).astype(np.float64)
        gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)
        gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("L", "1"):
        gray = np.asarray(img.convert("L"), dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    try:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as error:
        raise ValueError(f"cannot convert a {mode!r} image to RGB ({error})") from None


def read_image(path, max_pixels=None):
    """Reads an image file as an ``(H, W, 3)`` uint8 RGB array.

    See the module docstring for how each kind of image is converted.

    Args:
        path: File name (str or path-like).
        max_pixels: Refuse images with more pixels than this (checked from the
            header, before decoding). None: ``$KERAS_DECONV_MAX_PIXELS`` or
            :data:`DEFAULT_MAX_PIXELS` (100 M); 0: no limit.

    Returns:
        A C-contiguous ``(H, W, 3)`` uint8 array, upright (EXIF applied).

    Raises:
        ImageError: One line ``"<path>: <reason>"`` for a missing, empty,
            non-image, truncated, corrupt, zero-sized or too large file.

    Example:

    >>> import os, tempfile
    >>> from PIL import Image
    >>> p = os.path.join(tempfile.mkdtemp(), "rgba.png")
    >>> Image.new("RGBA", (3, 2), (0, 0, 0, 0)).save(p)
    >>> read_image(p)[0, 0].tolist()  # transparent -> white
    [255, 255, 255]
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = os.fspath(path)
    limit = max_pixels_limit(max_pixels)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except OSError as error:
        raise ImageError(path, f"cannot access the file ({error.strerror or error})") from None
    if os.path.isdir(path):
        raise ImageError(path, "is a directory, not an image file")
    if size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        with _pil_bomb_limit(limit):
            img = Image.open(path)
        with img:
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageError(path, f"zero-sized image ({width}x{height})")
            if limit is not None and width * height > limit:
                raise ImageError(
                    path,
                    f"image too large: {width}x{height} = {width * height:,} pixels exceeds the "
                    f"limit of {limit:,} (decompression-bomb guard; raise it with "
                    f"max_pixels= or {MAX_PIXELS_ENV}, 0 = no limit)",
                )
            img.load()  # decodes everything: truncation and corruption surface here
            img = ImageOps.exif_transpose(img) or img
            array = _to_rgb_array(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(path, "not a recognised image file (corrupt, or an unsupported format)") from None
    except Image.DecompressionBombError as error:  # pragma: no cover - our guard runs first
        raise ImageError(path, f"image too large ({error})") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        message = str(error) or type(error).__name__
        if "truncated" in message.lower() or isinstance(error, EOFError):
            message = f"truncated or corrupt image data ({message})"
        else:
            message = f"corrupt or unreadable image ({message})"
        raise ImageError(path, message) from None
    if array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ImageError(path, f"unexpected decoded shape {array.shape}")
    return np.ascontiguousarray(array)


def find_images(paths, extensions=IMAGE_EXTENSIONS):
    """Expands files and directories into a sorted list of image files.

    Directories are searched recursively for files whose extension (any
    case) is in ``extensions``; hidden files and folders (``.name``) are
    skipped. Files named explicitly are always kept, whatever their extension,
    so that a bad file the user asked for is reported rather than ignored.

    Args:
        paths: Iterable of file or directory names.
        extensions: Lower-case extensions to collect from directories.

    Returns:
        A list of ``(path, relative_name)`` pairs, where ``relative_name`` is
        the path below the directory it was found in (the file name for
        explicit files), without duplicates.

    Raises:
        FileNotFoundError: A path does not exist.

    Example:

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); os.makedirs(os.path.join(d, "sub"))
    >>> for name in ("a.JPG", "sub/b.png", "notes.txt"):
    ...     open(os.path.join(d, name), "wb").close()
    >>> [rel for _, rel in find_images([d])]
    ['a.JPG', 'sub/b.png']
    """
    found, seen = [], set()
    extensions = tuple(e.lower() for e in extensions)
    for root in paths:
        root = os.fspath(root)
        if os.path.isdir(root):
            entries = []
            for current, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in files:
                    if name.startswith(".") or not name.lower().endswith(extensions):
                        continue
                    full = os.path.join(current, name)
                    entries.append((full, os.path.relpath(full, root).replace(os.sep, "/")))
            entries.sort(key=lambda item: item[1])
        elif os.path.exists(root):
            entries = [(root, os.path.basename(root))]
        else:
            raise FileNotFoundError(f"No such file or directory: {root}")
        for full, rel in entries:
            key = os.path.realpath(full)
            if key not in seen:
                seen.add(key)
                found.append((full, rel))
    return found
