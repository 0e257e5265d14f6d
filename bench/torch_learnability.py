"""How many training steps the standard ``shapes`` takes, per architecture: PyTorch, any device (not a test).

A question of steps, not of speed: run where steps are cheap (a GPU), then
read the curve against the CPU's time per step (``bench/train_step.py``) to
see what a 30-minute CPU budget buys. Same data as the Keras recipes: the
streaming ``shapes`` train split (config ``standard``), batch 16, 64x64,
Adam with cosine decay, softmax cross-entropy ignoring void; test mIoU on
the 500 fixed test images (void ignored, background included).

    python bench/torch_learnability.py --steps 4000 --runs unet:1e-3 deconvnet:1e-3 deconvnet:3e-3

A run may change the generator for the experiment (``kind:lr:key=value,...``):
``rot`` (largest rotation either way, degrees; the generator's own otherwise),
``dmin`` / ``dmax`` (object diameter range, fraction of the side), ``n=1`` (one object
an image), ``flat=1`` (flat fills only); and the loss: ``bg`` (background's weight):

    python bench/torch_learnability.py --runs unet:1e-3 unet:1e-3:rot=20,dmin=0.18
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_deconvnet import TorchDeconvNet  # noqa: E402

from keras_deconv.datasets import _shapes_standard, shapes, shapes_baselines  # noqa: E402

_ORIGINAL = {"sample_object": _shapes_standard._sample_object, "sample_scene": _shapes_standard.sample_scene,
             "FILL_PROBS": _shapes_standard.FILL_PROBS,
             "MIN_DIAMETER": _shapes_standard.MIN_DIAMETER, "MAX_DIAMETER": _shapes_standard.MAX_DIAMETER}


def apply_variant(text):
    """Patches the standard generator for one experiment (forked data workers inherit it); returns the settings."""
    settings = dict(item.split("=") for item in text.split(",") if item)
    _shapes_standard.MIN_DIAMETER = float(settings.get("dmin", _ORIGINAL["MIN_DIAMETER"]))
    _shapes_standard.MAX_DIAMETER = float(settings.get("dmax", _ORIGINAL["MAX_DIAMETER"]))
    _shapes_standard._sample_object = _ORIGINAL["sample_object"]
    _shapes_standard.sample_scene = _ORIGINAL["sample_scene"]
    _shapes_standard.FILL_PROBS = (1.0, 0.0, 0.0) if settings.get("flat") == "1" else _ORIGINAL["FILL_PROBS"]
    if settings.get("n") == "1":
        _shapes_standard.sample_scene = lambda rng, classes: _ORIGINAL["sample_scene"](rng, classes[:1])
    if "rot" in settings:
        limit = np.radians(float(settings["rot"]))

        def sample_object(rng, cls, placed):
            obj = _ORIGINAL["sample_object"](rng, cls, placed)
            obj["theta"] = float(rng.uniform(-limit, limit))
            return obj

        _shapes_standard._sample_object = sample_object
    return settings


MEAN = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)


class UNet(nn.Module):
    """A plain U-Net (about 0.5M parameters at base 16), as bench/shapes_baseline.py."""

    def __init__(self, classes=13, base=16):
        super().__init__()
        widths = [base, base * 2, base * 4, base * 8]

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.down = nn.ModuleList()
        cin = 3
        for w in widths:
            self.down.append(block(cin, w))
            cin = w
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.merge.append(block(2 * w, w))
            cin = w
        self.score = nn.Conv2d(cin, classes, 1)

    def forward(self, x):
        skips = []
        for index, block in enumerate(self.down):
            x = block(x)
            if index < len(self.down) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], 1))
        return self.score(x)


class StreamingTrain(torch.utils.data.IterableDataset):
    def __init__(self, seed):
        self.seed = seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info else 0
        rng = np.random.default_rng(self.seed * 1000 + worker)
        while True:
            ex = shapes.generate_example("train", int(rng.integers(0, 1_000_000)), image_size=64)
            yield ex["image"], ex["label"]


def _tensor(images):
    return torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float() - MEAN


def test_miou(net, device, test):
    net.eval()
    confusion = np.zeros((13, 13), np.int64)
    with torch.no_grad():
        for start in range(0, len(test["image"]), 100):
            x = _tensor(test["image"][start:start + 100]).to(device)
            predicted = net(x).argmax(1).cpu().numpy()
            truth = test["label"][start:start + 100]
            valid = truth != 255
            confusion += np.bincount(truth[valid].astype(np.int64) * 13 + predicted[valid], minlength=169).reshape(13, 13)
    net.train()
    intersection = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    iou = intersection / np.maximum(union, 1)
    test_miou.per_class = " ".join(f"{100 * v:.0f}" for v in iou)  # read by run() at the end
    return 100 * float(np.mean(iou[union > 0]))


def run(kind, lr, steps, device, test, workers, seed=0, background_weight=1.0):
    torch.manual_seed(seed)
    if kind.startswith("unet"):
        net = UNet()
    else:  # the deconvnet-small recipe's network: width 1/4, fc 256, 2x2 fc6, trainable BN
        net = TorchDeconvNet(13, 0.25, 256, 2, batch_norm=True)
    net = net.to(device)
    parameters = sum(p.numel() for p in net.parameters())
    optimizer = torch.optim.Adam(net.parameters(), lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    loader = torch.utils.data.DataLoader(StreamingTrain(seed), batch_size=16, num_workers=workers)
    started = time.perf_counter()
    losses = []
    for step, (images, labels) in enumerate(loader, 1):
        x, y = _tensor(images).to(device), labels.long().to(device)
        weight = torch.ones(13, device=device)
        weight[0] = background_weight
        loss = F.cross_entropy(net(x), y, weight=weight, ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 500 == 0 or step == steps:
            print(f"{kind:9s} lr {lr:g} ({parameters:,} params)  step {step:5d}  loss {np.mean(losses[-100:]):.3f}  "
                  f"test mIoU {test_miou(net, device, test):6.2f}  [{time.perf_counter() - started:.0f} s]", flush=True)
        if step == steps:
            print(f"  per-class test IoU (background first): {test_miou.per_class}", flush=True)
            break


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--runs", nargs="+", default=["unet:1e-3", "deconvnet:1e-3", "deconvnet:3e-3"])
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}; shapes config standard version {shapes.VERSIONS['standard']}; batch 16, 64x64", flush=True)
    standard_test = shapes.as_numpy("test")
    print(f"all-background test mIoU: {shapes_baselines.background_only_miou(standard_test['label']):.2f}", flush=True)
    for item in args.runs:
        kind, lr, variant = (item.split(":") + [""])[:3]
        settings = apply_variant(variant)
        test = standard_test
        if variant:  # the variant's own test images (a run without one is scored on the standard ones)
            test = shapes.as_numpy("test")
            print(f"variant {variant}: all-background test mIoU "
                  f"{shapes_baselines.background_only_miou(test['label']):.2f}", flush=True)
        run(f"{kind}[{variant}]" if variant else kind, float(lr), args.steps, device, test, args.workers,
            background_weight=float(settings.get("bg", 1.0)))
        apply_variant("")


if __name__ == "__main__":
    main()
