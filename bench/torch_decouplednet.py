"""DecoupledNet's segmentation stage in PyTorch (the layers of keras_deconv.models.DecoupledNet), for benchmarks only.

The network the recipe's segmentation stages train: the frozen
classification network (VGG-16 without BN, argmax pools, fc6 / fc7 with
their ReLU masks, ``cls-score-voc``, the max over the class-score map), the
query ``sigmoid(max score) * one-hot label`` unpooled to the score map, the
frozen bridging layers (``cls-score-voc-bp``, ``fc7-bp``, ``fc6-bp``, masked
by the ReLUs), and the trainable segmentation network (``pool5-bn`` and
``pool5-bp-bn`` concatenated, fc6-seg, fc7-seg, fc6-deconv, DeconvNet's
unpooling decoder with BN, a 2-class score). channels_last memory format;
weights are random: only the speed is compared.

>>> import torch
>>> net = TorchDecoupledNet(12, width=1 / 16, fc_units=64, seg_fc_units=32, fc_kernel_size=1).train()
>>> tuple(net(torch.zeros(2, 3, 64, 64), torch.eye(12)[:2]).shape)
(2, 2, 64, 64)
"""

import torch
from torch import nn
from torch.nn import functional as F

from torch_deconvnet import _block, _scaled, decode, encode_with_switches, unpooling_decoder, vgg16_encoder


class TorchDecoupledNet(nn.Module):
    def __init__(self, num_classes=20, width=1.0, fc_units=None, seg_fc_units=None, fc_kernel_size=7):
        super().__init__()
        fc_units = fc_units or _scaled(4096, width)
        seg_fc_units = seg_fc_units or _scaled(2048, width)
        self.encoder, channels = vgg16_encoder(width, batch_norm=None)  # the classification network: no BN
        self.fc6 = nn.Conv2d(channels, fc_units, fc_kernel_size)
        self.fc7 = nn.Conv2d(fc_units, fc_units, 1)
        self.cls_score = nn.Conv2d(fc_units, num_classes, 1)
        self.cls_score_bp = nn.Conv2d(num_classes, fc_units, 1)
        self.fc7_bp = nn.ConvTranspose2d(fc_units, fc_units, 1)
        self.fc6_bp = nn.ConvTranspose2d(fc_units, channels, fc_kernel_size)
        frozen = [*self.encoder, self.fc6, self.fc7, self.cls_score, self.cls_score_bp, self.fc7_bp, self.fc6_bp]
        for module in frozen:  # the recipe's segmentation stages train the segmentation network only
            module.requires_grad_(False)
        self.pool5_bn, self.pool5_bp_bn = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)
        self.fc6_seg = _block(nn.Conv2d(2 * channels, seg_fc_units, fc_kernel_size), seg_fc_units, True)
        self.fc7_seg = _block(nn.Conv2d(seg_fc_units, seg_fc_units, 1), seg_fc_units, True)
        self.fc6_deconv = _block(nn.ConvTranspose2d(seg_fc_units, channels, fc_kernel_size), channels, True)
        self.decoder, channels = unpooling_decoder(channels, width, True)
        self.seg_score = nn.Conv2d(channels, 2, 1)

    def forward(self, x, label):
        pool5, switches = encode_with_switches(self.encoder, x)
        fc6 = self.fc6(pool5)
        relu6_mask = (fc6 > 0).to(fc6.dtype)
        fc7 = self.fc7(fc6 * relu6_mask)
        relu7_mask = (fc7 > 0).to(fc7.dtype)
        scores = self.cls_score(fc7 * relu7_mask)
        best, where = F.max_pool2d(scores, scores.shape[-2:], 1, return_indices=True)
        query = (torch.sigmoid(best) * label[:, :, None, None])
        unpooled = F.max_unpool2d(query, where, scores.shape[-2:], 1, output_size=scores.shape[-2:])
        bp = self.fc6_bp(self.fc7_bp(self.cls_score_bp(unpooled) * relu7_mask) * relu6_mask)
        x = torch.cat([self.pool5_bn(pool5), self.pool5_bp_bn(bp)], 1)
        x = self.fc6_deconv(self.fc7_seg(self.fc6_seg(x)))
        return self.seg_score(decode(self.decoder, x, switches))
