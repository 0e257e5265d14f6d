"""Train DeconvNet on an easy 3-class folder dataset from disk and print its val mIoU against the floor.

Makes DIR (default /tmp/kd-folder-bench/data) in the folder format: 400 train
and 100 val images of random sizes (64-112 pixels a side), each a noisy
background with 1-3 discs and bars of random colours; masks are class
indices (0 background, 1 disc, 2 bar), every other one saved as a palette
PNG, with a void (255) rim around each object. Then runs the real command

    keras-deconv train deconvnet -o RUN --data folder --data-dir DIR --steps STEPS

and prints the val mIoU the run wrote into RUN/card.json next to the
all-background floor (the mIoU of labelling every val pixel background).

    python bench/folder_train.py                 # the benchmark: 300 steps a stage
    python bench/folder_train.py --steps 2 --train 16 --val 4   # smoke run
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("background", "disc", "bar")


def make_image(rng, height, width):
    """One (image, mask) pair: noisy background, 1-3 discs/bars, void rims."""
    image = rng.normal(rng.uniform(60, 200, 3), 20, (height, width, 3)).clip(0, 255).astype(np.uint8)
    mask = np.zeros((height, width), np.uint8)
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    rims = Image.new("L", (width, height), 0)
    rim_draw = ImageDraw.Draw(rims)
    label = Image.fromarray(mask)
    label_draw = ImageDraw.Draw(label)
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(1, 3))
        side = rng.uniform(0.25, 0.5) * min(height, width)
        cy, cx = rng.uniform(side / 2, height - side / 2), rng.uniform(side / 2, width - side / 2)
        if cls == 1:
            box = [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]
            shape, label_shape, rim_shape = draw.ellipse, label_draw.ellipse, rim_draw.ellipse
        else:
            box = [cx - side / 2, cy - side / 6, cx + side / 2, cy + side / 6]
            if rng.uniform() < 0.5:  # vertical bar
                box = [cx - side / 6, cy - side / 2, cx + side / 6, cy + side / 2]
            shape, label_shape, rim_shape = draw.rectangle, label_draw.rectangle, rim_draw.rectangle
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        rim_shape(box, outline=255, width=2)
        shape(box, fill=colour)
        label_shape(box, fill=cls)
    mask = np.array(label)
    mask[np.array(rims) == 255] = 255
    return np.array(canvas), mask


def make_dataset(root, train=400, val=100, seed=0):
    rng = np.random.default_rng(seed)
    if os.path.exists(root):
        shutil.rmtree(root)
    with_split = (("train", train), ("val", val))
    for split, count in with_split:
        os.makedirs(os.path.join(root, "images", split))
        os.makedirs(os.path.join(root, "masks", split))
        for i in range(count):
            height, width = (int(v) for v in rng.integers(64, 113, 2))
            image, mask = make_image(rng, height, width)
            Image.fromarray(image).save(os.path.join(root, "images", split, f"{i:04d}.jpg"), quality=95)
            label = Image.fromarray(mask)
            if i % 2:
                label = label.convert("P")
                label.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] + [255, 255, 255] * 253)
            label.save(os.path.join(root, "masks", split, f"{i:04d}.png"))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")


def background_floor(root):
    """mIoU of predicting background everywhere on val (VOC convention, as the run's metric)."""
    from keras_deconv.datasets import folder
    from keras_deconv.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(len(CLASSES))
    for _, _, label in folder.examples(root, "val"):
        matrix.update(label, np.zeros_like(label))
    return 100 * matrix.mean_iou


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/kd-folder-bench")
    parser.add_argument("--steps", type=int, default=300, help="steps per stage")
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("extra", nargs="*", help="more `keras-deconv train` arguments (after --)")
    args = parser.parse_args()
    data, run = os.path.join(args.dir, "data"), os.path.join(args.dir, "run")
    make_dataset(data, args.train, args.val)
    if os.path.exists(run):
        shutil.rmtree(run)
    executable = os.path.join(os.path.dirname(sys.executable), "keras-deconv")
    command = [executable, "train", "deconvnet", "-o", run, "--data", "folder", "--data-dir", data,
               "--steps", str(args.steps), "--quiet", *args.extra]
    print("+", " ".join(command), file=sys.stderr)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    with open(os.path.join(run, "card.json")) as f:
        metric = json.load(f)["weights"]["folder"]["metrics"][0]
    print(f"val mIoU {metric['value']:.2f} (pixel accuracy {metric['pixel_accuracy']:.2f}; per class "
          f"{metric['class_iou']}); all-background floor {background_floor(data):.2f}; "
          f"{args.steps} steps a stage, {wall:.0f} s wall")


if __name__ == "__main__":
    main()
