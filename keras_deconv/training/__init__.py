"""Training recipes for the DeconvNet family (``keras-deconv train RECIPE``).

* :mod:`~keras_deconv.training.recipes`: DeconvNet (two stages, BN folded),
  FCN-8s, DecoupledNet (classification, then one segmentation network per
  annotation budget), TransferNet (encoder, attention, segmentation).
* :mod:`~keras_deconv.training.augmentation`: joint image/label-map
  augmentation with ``tf.image`` (scale, crop, flip, windows).
* :mod:`~keras_deconv.training.data`: the data layers of the official
  training, on the synthetic ``shapes`` dataset.
* :mod:`~keras_deconv.training.folder_data` and
  :mod:`~keras_deconv.training.folder_recipes`: every recipe on your own
  data (a folder of images and masks, streamed from disk; DecoupledNet and
  TransferNet take image-level labels from the masks).
* :mod:`~keras_deconv.training.finetune`: ``--init`` / ``--freeze-encoder``;
  :mod:`~keras_deconv.training.run_card`: the run directory as a model.
* :class:`SegmentationLoss`: pixel cross-entropy, void ignored, background
  weighted (hyperparameter ``background_loss_weight``).
* :func:`fold_batch_norm`: trainable BN -> the inference-mode affine (§1.5);
  :func:`fold_batch_norm_into_convolutions`: BN -> the convolutions before it (FCN-8s).
* :func:`train`: runs a recipe with checkpoints, resume, CSV/TensorBoard logs
  and an optional ``tf.distribute`` strategy.

Example (a few steps; the shipped small models use the defaults):

>>> from keras_deconv import training
>>> recipe = training.get_recipe("deconvnet")(hparams={"batch_size": 4})
>>> recipe.set_steps(2)
>>> run = training.train(recipe, "/tmp/kd-run", epochs=1, verbose=0, export=False)  # doctest: +SKIP
"""

from keras_deconv.training.bn_folding import fold_batch_norm, fold_batch_norm_into_convolutions, recompute_statistics
from keras_deconv.training.recipes import (
    RECIPES,
    DecoupledNetRecipe,
    DeconvNetRecipe,
    FCN8sRecipe,
    Recipe,
    TransferNetRecipe,
    get_recipe,
)
from keras_deconv.training.optimizers import lr_schedule, step_schedule
from keras_deconv.training.folder_recipes import folder_recipe
from keras_deconv.training.losses import SegmentationLoss
from keras_deconv.training.runner import make_strategy, train

__all__ = [
    "RECIPES",
    "DecoupledNetRecipe",
    "DeconvNetRecipe",
    "FCN8sRecipe",
    "Recipe",
    "SegmentationLoss",
    "TransferNetRecipe",
    "fold_batch_norm",
    "fold_batch_norm_into_convolutions",
    "folder_recipe",
    "get_recipe",
    "lr_schedule",
    "make_strategy",
    "recompute_statistics",
    "step_schedule",
    "train",
]
