"""The unpooling + deconvolution decoder of DeconvNet, DecoupledNet and TransferNet (private)."""

from keras_deconv.layers import MaxUnpooling2D
from keras_deconv.models._blocks import deconv_block, scaled
from keras_deconv.models.vgg16_encoder import VGG16_BLOCKS

#: Output channels of deconv{level}_{i}: the decoder narrows one level early
#: (deconv4_3 -> 256, deconv3_3 -> 128, deconv2_2 -> 64) so each unpooled map
#: has the channel count of the encoder switches it meets.
DECODER_BLOCKS = {5: (512, 512, 512), 4: (512, 512, 256), 3: (256, 256, 128), 2: (128, 64), 1: (64, 64)}


def deconv_decoder(x, blobs, *, levels=(5, 4, 3, 2, 1), width=1.0, batch_norm=None):
    """unpool{L} (switches pool{L}_mask) then deconv{L}_i (+ debn{L}_i) + derelu{L}_i, for each level.

    Each unpooling takes the switches of the matching encoder pooling and the
    tensor that was pooled (``conv{L}_last``) as size reference, replacing
    Caffe's fixed ``unpool_size`` so any input size works.
    """
    for level in levels:
        pooled_from = blobs[f"conv{level}_{len(VGG16_BLOCKS[level - 1])}"]
        x = MaxUnpooling2D(pool_size=2, strides=2, name=f"unpool{level}")([x, blobs[f"pool{level}_mask"], pooled_from])
        for index, filters in enumerate(DECODER_BLOCKS[level], start=1):
            tag = f"{level}_{index}"
            bn_name = f"debn{tag}" if batch_norm is not None else None
            x = deconv_block(x, scaled(filters, width), 3, f"deconv{tag}", f"derelu{tag}", bn_name, batch_norm)
    return x
