"""Tests for keras_deconv.viz (palette, colourising, label PNG files)."""

import os

import numpy as np
import pytest
from PIL import Image

from keras_deconv import viz


def _reference_colormap(n=256):
    # The VOC devkit's VOClabelcolormap.m, written out literally.
    def bitget(value, idx):
        return (value >> idx) & 1

    cmap = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= bitget(c, 0) << (7 - j)
            g |= bitget(c, 1) << (7 - j)
            b |= bitget(c, 2) << (7 - j)
            c >>= 3
        cmap.append((r, g, b))
    return np.array(cmap, dtype=np.uint8)


def test_palette_known_values():
    pal = viz.palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert pal[0].tolist() == [0, 0, 0]
    assert pal[1].tolist() == [128, 0, 0]
    assert pal[2].tolist() == [0, 128, 0]
    assert pal[15].tolist() == [192, 128, 128]  # person
    assert pal[255].tolist() == [224, 224, 192]  # void
    np.testing.assert_array_equal(pal, _reference_colormap())
    np.testing.assert_array_equal(viz.palette(21), pal[:21])
    with pytest.raises(ValueError):
        viz.palette(257)


def test_colorize_and_overlay():
    lab = np.array([[0, 1], [15, 255]], np.uint8)
    rgb = viz.colorize(lab)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[1, 1].tolist() == [224, 224, 192]
    img = np.full((2, 2, 3), 100, np.uint8)
    out = viz.overlay(img, lab, alpha=0.5)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [100, 100, 100]  # background untouched
    assert out[0, 1].tolist() == [114, 50, 50]  # (100 + 128) / 2, 100 / 2
    full = viz.overlay(img.astype(np.float32) / 255, lab, 1.0, include_background=True)
    np.testing.assert_array_equal(full, rgb)
    with pytest.raises(ValueError):
        viz.colorize(np.array([[256]]))
    with pytest.raises(ValueError):
        viz.overlay(img, lab[:1])


def test_label_png_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 21, size=(17, 23)).astype(np.uint8)
    lab[:3] = 255
    path = tmp_path / "sub" / "2007_000032.png"
    viz.save_label_png(path, lab)
    with Image.open(path) as img:
        assert img.mode == "P"  # indexed, like VOC SegmentationClass files
        pal = np.array(img.getpalette()[: 256 * 3], np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(pal, viz.palette())
    np.testing.assert_array_equal(viz.read_label_png(path), lab)
    assert not [f for f in os.listdir(path.parent) if f.startswith(".tmp")]
    # Grayscale label PNGs give their values back.
    gray = tmp_path / "gray.png"
    Image.fromarray(lab, mode="L").save(gray)
    np.testing.assert_array_equal(viz.read_label_png(gray), lab)
    # Colour PNGs are refused rather than misread.
    rgb = tmp_path / "rgb.png"
    Image.fromarray(viz.colorize(lab)).save(rgb)
    with pytest.raises(ValueError, match="not a palette"):
        viz.read_label_png(rgb)


def test_legend_and_gallery(tmp_path):
    strip = viz.legend(["background", "circle", "square"], [0, 2, 255])
    assert strip.ndim == 3 and strip.shape[2] == 3 and strip.dtype == np.uint8
    img = np.zeros((8, 8, 3), np.uint8)
    lab = np.ones((8, 8), np.uint8)
    g = viz.gallery([(img, lab, lab), (img, lab, None)], pad=2, scale=2,
                    class_names=["background", "circle"])
    assert g.dtype == np.uint8 and g.shape[1] == 3 * 16 + 4 * 2
    # The colourised ground truth sits in the second column.
    assert g[14 + 2 + 1, 2 + 16 + 2 + 1].tolist() == [128, 0, 0]
    out = viz.save_image(tmp_path / "g.png", g)
    assert np.array_equal(np.asarray(Image.open(out)), g)
    with pytest.raises(ValueError):
        viz.gallery([(img, np.zeros((4, 4), np.uint8))])
