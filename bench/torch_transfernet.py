"""TransferNet's segmentation stage in PyTorch (the layers of keras_deconv.models.TransferNet), for benchmarks only.

The network the recipe's ``segmentation`` stage trains: the frozen encoder
(VGG-16 without BN, conv1_1 ... conv5_3, argmax pools 1-4, conv5_3 scaled by
0.004), the trainable attention (``feat_embed`` on the Caffe C,H,W flatten,
``cls_embed`` of the one-hot label, their product, ``combined_embed`` + ReLU,
``att-w``, softmax over positions), the attended feature ``soft-att`` and the
saliency map ``filter_sum``, the decoder without BN (``deconv5_1``, then
unpool4 ... unpool1 with DeconvNet's deconvolutions), a 2-class score, and
the classification head on ``soft-att`` (``ip1`` + ReLU,
``cls-score-voc-att``). channels_last memory format; weights are random:
only the speed is compared.

>>> import torch
>>> net = TorchTransferNet(12, width=1 / 16, input_size=64).train()
>>> seg, cls = net(torch.zeros(2, 3, 64, 64), torch.eye(12)[:2])
>>> tuple(seg.shape), tuple(cls.shape)
((2, 2, 64, 64), (2, 12))
"""

import torch
from torch import nn

from torch_deconvnet import _block, _scaled, decode, encode_with_switches, unpooling_decoder, vgg16_encoder

CONV5_3_SCALE = 0.004  # keras_deconv.models.transfernet.CONV5_3_SCALE


class TorchTransferNet(nn.Module):
    def __init__(self, num_classes=80, width=1.0, embed_units=None, input_size=320):
        super().__init__()
        embed_units = embed_units or _scaled(1024, width)
        self.encoder, channels = vgg16_encoder(width, batch_norm=None)
        self.encoder.requires_grad_(False)  # the recipe freezes the encoder after its own stages
        positions = (-(-input_size // 16)) ** 2  # conv5_3 after 4 ceil-mode pools
        self.feat_embed = nn.Linear(channels * positions, embed_units)
        self.cls_embed = nn.Linear(num_classes, embed_units)
        self.combined_embed = nn.Linear(embed_units, embed_units)
        self.att_w = nn.Linear(embed_units, positions)
        self.deconv5_1 = _block(nn.ConvTranspose2d(1, _scaled(512, width), 3, padding=1), None, None)
        self.decoder, out = unpooling_decoder(_scaled(512, width), width, None, levels=(4, 3, 2, 1))
        self.seg_score = nn.Conv2d(out, 2, 1)
        self.ip1 = nn.Linear(channels, _scaled(512, width))
        self.cls_score = nn.Linear(_scaled(512, width), num_classes)

    def forward(self, x, label):
        x, switches = encode_with_switches(self.encoder[:4], x)
        features = self.encoder[4](x) * CONV5_3_SCALE  # (B, C, H5, W5)
        feat = self.feat_embed(features.flatten(1))  # NCHW flatten = Caffe's C,H,W order
        att = torch.relu(self.combined_embed(self.cls_embed(label) * feat))
        att = torch.softmax(self.att_w(att), 1).view(-1, 1, *features.shape[-2:])
        soft_att = (features * att).sum((2, 3))  # (B, C)
        saliency = (features * soft_att[:, :, None, None]).sum(1, keepdim=True)  # (B, 1, H5, W5)
        seg = self.seg_score(decode(self.decoder, self.deconv5_1(saliency), switches))
        return seg, self.cls_score(torch.relu(self.ip1(soft_att)))
