"""FCN-8s in PyTorch (same layers as keras_deconv.models.FCN8s), for the training-step benchmark only.

conv1_1 with 100 pixels of zero padding, VGG-16 with ceil-mode max pooling,
fc6 (7x7) / fc7 with dropout, the pool4 and pool3 score fusions with the
Caffe crop offsets (5, 9, 31) and bilinear-initialised transposed
convolutions (the last one fixed, as the Keras model's ``upsample``).
channels_last memory format. Weights are random: only the speed is compared.

>>> import torch
>>> net = TorchFCN8s(13, width=1 / 8, fc_units=128).eval()
>>> tuple(net(torch.zeros(1, 3, 64, 64)).shape)
(1, 13, 64, 64)
"""

from torch import nn
from torch.nn import functional as F

from torch_deconvnet import VGG16_BLOCKS, _scaled


class TorchFCN8s(nn.Module):
    def __init__(self, num_classes=21, width=1.0, fc_units=None, dropout=0.5):
        super().__init__()
        fc_units = fc_units or _scaled(4096, width)
        self.blocks = nn.ModuleList()
        channels, first = 3, True
        for block in VGG16_BLOCKS:
            layers = []
            for filters in block:
                filters = _scaled(filters, width)
                layers += [nn.Conv2d(channels, filters, 3, padding=100 if first else 1), nn.ReLU(inplace=True)]
                channels, first = filters, False
            self.blocks.append(nn.Sequential(*layers))
        pool3, pool4 = _scaled(256, width), _scaled(512, width)
        self.fc = nn.Sequential(nn.Conv2d(channels, fc_units, 7), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                nn.Conv2d(fc_units, fc_units, 1), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                nn.Conv2d(fc_units, num_classes, 1))
        self.score2 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2)
        self.score_pool4 = nn.Conv2d(pool4, num_classes, 1)
        self.score4 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, bias=False)
        self.score_pool3 = nn.Conv2d(pool3, num_classes, 1)
        self.upsample = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, bias=False)
        self.upsample.weight.requires_grad_(False)  # Caffe blobs_lr: 0

    def forward(self, images):
        x, pools = images, []
        for block in self.blocks:
            x = F.max_pool2d(block(x), 2, 2, ceil_mode=True)
            pools.append(x)
        score2 = self.score2(self.fc(x))
        fused = score2 + _crop(self.score_pool4(pools[3]), 5, score2)
        score4 = self.score4(fused)
        final = score4 + _crop(self.score_pool3(pools[2]), 9, score4)
        return _crop(self.upsample(final), 31, images)


def _crop(x, offset, reference):
    height, width = reference.shape[-2:]
    return x[:, :, offset : offset + height, offset : offset + width]
