"""keras_deconv.images.read_image on every kind of odd and bad file (all made in tmp_path)."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_deconv.images import DEFAULT_MAX_PIXELS, ImageError, find_images, max_pixels_limit, read_image


def _save(tmp_path, name, img, **kwargs):
    path = tmp_path / name
    img.save(path, **kwargs)
    return path


def _png_header_only(width, height):
    """A syntactically valid PNG claiming ``width`` x ``height`` with almost no data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_rgb_grayscale_palette_16bit_cmyk_become_rgb_uint8(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    out = read_image(_save(tmp_path, "rgb.png", Image.fromarray(rgb)))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, rgb)

    gray = read_image(_save(tmp_path, "gray.png", Image.fromarray(np.full((4, 6), 77, np.uint8))))
    assert gray.shape == (4, 6, 3) and (gray == 77).all()

    one_bit = read_image(_save(tmp_path, "bits.png", Image.new("1", (3, 2), 1)))
    assert one_bit.shape == (2, 3, 3) and (one_bit == 255).all()

    pal = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    assert read_image(_save(tmp_path, "pal.png", pal)).tolist() == [[[10, 20, 30], [200, 100, 50]]]

    sixteen = Image.fromarray(np.array([[0, 65535, 257 * 100]], np.uint16))
    assert read_image(_save(tmp_path, "16.png", sixteen))[0, :, 0].tolist() == [0, 255, 100]

    cmyk = read_image(_save(tmp_path, "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 0, 0, 0))))
    assert cmyk.shape == (8, 8, 3) and cmyk.min() > 240  # no ink = white


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[1, 1] = (0, 0, 255, 0)  # fully transparent
    out = read_image(_save(tmp_path, "rgba.png", Image.fromarray(rgba, mode="RGBA")))
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 1].tolist() == [255, 255, 255]
    la = read_image(_save(tmp_path, "la.png", Image.new("LA", (2, 2), (0, 0))))
    assert (la == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (6, 3), (0, 0, 0))  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = read_image(_save(tmp_path, "rot.jpg", img, exif=exif.tobytes()))
    assert out.shape == (6, 3, 3)  # displayed tall


@pytest.mark.parametrize("kind", ["corrupt", "truncated_png", "truncated_jpeg", "text", "empty", "missing", "directory"])
def test_bad_files_raise_one_line_image_error_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    elif kind in ("truncated_png", "truncated_jpeg"):
        buffer = io.BytesIO()
        noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3)).astype(np.uint8)
        Image.fromarray(noise).save(buffer, format="PNG" if kind == "truncated_png" else "JPEG")
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif kind == "text":
        path.write_text("this is not an image\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(ImageError) as info:
        read_image(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message and message.startswith(str(path))
    assert info.value.path == str(path)


def test_zero_sized_image_is_refused(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(_png_header_only(0, 5))
    with pytest.raises(ImageError, match="zero.png"):
        read_image(path)


def test_decompression_bomb_guard_default_argument_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_DECONV_MAX_PIXELS", raising=False)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20000, 20000))  # 400 MP claimed in 80 bytes
    assert max_pixels_limit() == DEFAULT_MAX_PIXELS == 100_000_000
    with pytest.raises(ImageError, match="too large.*400,000,000"):
        read_image(bomb)

    small = _save(tmp_path, "small.png", Image.new("RGB", (100, 100)))
    with pytest.raises(ImageError, match="exceeds the limit of 5,000"):
        read_image(small, max_pixels=5000)
    monkeypatch.setenv("KERAS_DECONV_MAX_PIXELS", "5000")
    with pytest.raises(ImageError, match="KERAS_DECONV_MAX_PIXELS"):
        read_image(small)
    assert read_image(small, max_pixels=20000).shape == (100, 100, 3)  # the argument wins
    monkeypatch.setenv("KERAS_DECONV_MAX_PIXELS", "0")
    assert read_image(small).shape == (100, 100, 3)
    monkeypatch.setenv("KERAS_DECONV_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="KERAS_DECONV_MAX_PIXELS"):
        read_image(small)


def test_find_images_recursive_case_insensitive_and_explicit_files(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".hidden").mkdir()
    for name in ("d/B.JPG", "d/a.png", "d/sub/c.jpeg", "d/notes.txt", "d/.hidden/x.png", "other.gif"):
        (tmp_path / name).write_bytes(b"x")
    found = find_images([tmp_path / "d", tmp_path / "other.gif", tmp_path / "d" / "a.png"])
    assert [rel for _, rel in found] == ["B.JPG", "a.png", "sub/c.jpeg", "other.gif"]
    with pytest.raises(FileNotFoundError):
        find_images([tmp_path / "nope"])
