"""Model builders for the POSTECH DeconvNet family, with Caffe layer names.

* :func:`DeconvNet` (ICCV 2015), :func:`DecoupledNet` (NIPS 2015),
  :func:`TransferNet` (CVPR 2016) and :func:`FCN8s` (DeconvNet's ensemble
  partner). Each returns a ``keras.Model`` that takes RGB images (uint8 or
  float, 0-255) and applies the Caffe preprocessing itself.
* Layer naming rule: every Keras layer that reproduces a Caffe layer has the
  Caffe layer's name verbatim (``conv1_1``, ``bn1_1``, ``fc6-deconv``,
  ``debn5_1``, ``cls-score-voc-bp``; Keras accepts ``-``). Where a prototxt
  gives two parameter-free layers the same name (DecoupledNet ``avg-pool``
  and ``cls-score-sigmoid``, TransferNet ``soft-att``, FCN ``crop``/``fuse``),
  they are named after their top blob. Helper layers with no Caffe
  counterpart are named ``<caffe name>_<role>`` (``data_preprocessing``,
  ``conv1_1_pad``, ``feat_embed_chw``, ``feat_embed_flatten``,
  ``avg-unpool_reshape``, ``cls-score-pooled_flatten``).
* :func:`caffe_to_keras_shapes` / :func:`caffe_to_keras_weights` /
  :func:`keras_to_caffe_weights`: the Caffe blob <-> Keras weight layout.
"""

from keras_deconv.models.caffe_layout import caffe_to_keras_shapes, caffe_to_keras_weights, keras_to_caffe_weights
from keras_deconv.models.deconvnet import DeconvNet
from keras_deconv.models.decouplednet import DecoupledNet, sync_bridging_weights
from keras_deconv.models.fcn8s import FCN8s
from keras_deconv.models.transfernet import TransferNet

__all__ = [
    "DeconvNet",
    "DecoupledNet",
    "FCN8s",
    "TransferNet",
    "caffe_to_keras_shapes",
    "caffe_to_keras_weights",
    "keras_to_caffe_weights",
    "sync_bridging_weights",
]
