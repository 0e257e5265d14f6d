"""DeconvNet in PyTorch (same layers as keras_deconv.models.DeconvNet, folded BN), for benchmarks only.

channels_last memory format; BN folded into a per-channel affine (as the
Keras ``batch_norm="folded"`` model); max_pool2d(return_indices) +
max_unpool2d. Weights are random: only the speed is compared.

>>> import torch
>>> net = TorchDeconvNet(width=1 / 16, fc_units=32, fc_kernel_size=2).eval()
>>> tuple(net(torch.zeros(1, 3, 64, 64)).shape)
(1, 21, 64, 64)
"""

import torch
from torch import nn
from torch.nn import functional as F

VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
DECODER_BLOCKS = {5: (512, 512, 512), 4: (512, 512, 256), 3: (256, 256, 128), 2: (128, 64), 1: (64, 64)}


def _scaled(channels, width):
    return max(1, int(round(channels * width)))


class _Affine(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        return x * self.scale + self.shift


def _block(conv, channels, batch_norm=False):
    """conv + norm + ReLU; ``batch_norm``: True trainable BN, False the folded affine, None no norm (no-BN nets)."""
    if batch_norm is None:
        return nn.Sequential(conv, nn.ReLU(inplace=True))
    norm = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01) if batch_norm else _Affine(channels)
    return nn.Sequential(conv, norm, nn.ReLU(inplace=True))


def vgg16_encoder(width, batch_norm):
    """``(encoder, channels out)``: conv1_1 ... conv5_3, one ``nn.Sequential`` per block (pooling is the caller's)."""
    encoder, channels = nn.ModuleList(), 3
    for block in VGG16_BLOCKS:
        layers = []
        for filters in block:
            filters = _scaled(filters, width)
            layers.append(_block(nn.Conv2d(channels, filters, 3, padding=1), filters, batch_norm))
            channels = filters
        encoder.append(nn.Sequential(*layers))
    return encoder, channels


def unpooling_decoder(channels, width, batch_norm, levels=(5, 4, 3, 2, 1)):
    """``(decoder, channels out)``: deconv{L}_i blocks, one ``nn.Sequential`` per level (run after each unpool)."""
    decoder = nn.ModuleList()
    for level in levels:
        layers = []
        for filters in DECODER_BLOCKS[level]:
            filters = _scaled(filters, width)
            layers.append(_block(nn.ConvTranspose2d(channels, filters, 3, padding=1), filters, batch_norm))
            channels = filters
        decoder.append(nn.Sequential(*layers))
    return decoder, channels


def encode_with_switches(encoder, x):
    """``(pool5, [(indices, size before pooling)] per level)``: the encoder blocks, each followed by a 2x2 argmax pool."""
    switches = []
    for block in encoder:
        x = block(x)
        size = x.shape[-2:]
        x, index = F.max_pool2d(x, 2, 2, return_indices=True, ceil_mode=True)
        switches.append((index, size))
    return x, switches


def decode(decoder, x, switches):
    """Unpools ``x`` with each level's switches (pool5 first) and applies that level's blocks."""
    for block, (index, size) in zip(decoder, reversed(switches)):
        x = block(F.max_unpool2d(x, index, 2, 2, output_size=size))
    return x


class TorchDeconvNet(nn.Module):
    def __init__(self, num_classes=21, width=1.0, fc_units=None, fc_kernel_size=7, batch_norm=False):
        """``batch_norm=True``: trainable BatchNorm (the training configuration) instead of the folded affine."""
        super().__init__()
        fc_units = fc_units or _scaled(4096, width)
        self.encoder, channels = vgg16_encoder(width, batch_norm)
        self.fc6 = _block(nn.Conv2d(channels, fc_units, fc_kernel_size), fc_units, batch_norm)
        self.fc7 = _block(nn.Conv2d(fc_units, fc_units, 1), fc_units, batch_norm)
        self.fc6_deconv = _block(nn.ConvTranspose2d(fc_units, channels, fc_kernel_size), channels, batch_norm)
        self.decoder, channels = unpooling_decoder(channels, width, batch_norm)
        self.score = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x):
        x, switches = encode_with_switches(self.encoder, x)
        return self.score(decode(self.decoder, self.fc6_deconv(self.fc7(self.fc6(x))), switches))


def main():
    """``python bench/torch_deconvnet.py --batch 1 --size 224``: prints the median forward time in ms, the RSS (MB) once the network is built and the peak above it while running."""
    import argparse
    import os

    from _memory import peak_above, reset_peak
    from _timing import median_ms

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--fc-units", type=int, default=None)
    parser.add_argument("--fc-kernel-size", type=int, default=7)
    parser.add_argument("--num-classes", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    net = TorchDeconvNet(args.num_classes, args.width, args.fc_units, args.fc_kernel_size).eval()
    net = net.to(memory_format=torch.channels_last)
    x = (torch.rand(args.batch, 3, args.size, args.size) * 255).contiguous(memory_format=torch.channels_last)
    start_mb = reset_peak()
    with torch.no_grad():
        milliseconds = median_ms(lambda: net(x), args.repeats, warmup=2)
    peak_mb = peak_above(start_mb)
    memory = "None None" if start_mb is None else f"{start_mb:.0f} {peak_mb:.0f}"
    print(f"{milliseconds:.3f} {memory}")


if __name__ == "__main__":
    main()
