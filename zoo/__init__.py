"""The keras-deconv model zoo: registry, model cards and weights.

>>> from keras_deconv import zoo
>>> zoo.list()[:3]
['deconvnet', 'deconvnet-small', 'decouplednet']
>>> zoo.info("deconvnet")["architecture"]["parameter_count"]
251805653
>>> model = zoo.create_model("deconvnet", weights=None, width=1 / 16, fc_units=64)  # doctest: +SKIP

``zoo.load(name)`` returns a pipeline (images in, label maps out) with the
registered weights (``zoo.load(RUN_DIR)``: a ``keras-deconv train`` run, see
docs/your-data.md), ``zoo.load_segmenter(name)`` the same wrapped for
:mod:`keras_deconv.evaluation`, and ``zoo.export_model(name, path, format)``
exports it (:mod:`keras_deconv.export`): the zoo resolves names, cards and
weights and hands models down; the library never looks a name up. The
authors' weights must first be fetched or imported
(``keras-deconv weights fetch NAME`` / ``keras-deconv weights import NAME PATH``).
Cached weights live under ``$KERAS_DECONV_HOME``, else ``$KERAS_HOME/keras_deconv``,
else ``~/.keras/keras_deconv``.
"""

from keras_deconv.zoo.cache import WeightsError, cache_dir, list_cached
from keras_deconv.zoo.cache import remove as remove_weights
from keras_deconv.zoo.exporting import export_model
from keras_deconv.zoo.manage import fetch_weights, import_weights
from keras_deconv.zoo.registry import create_model, info, is_run_dir, load, resolve_tag, weights_file
from keras_deconv.zoo.registry import list_models as list  # noqa: A001 - the documented name
from keras_deconv.zoo.segmenters import check_planned, load_segmenter, planned_num_labels

__all__ = [
    "WeightsError",
    "cache_dir",
    "check_planned",
    "create_model",
    "export_model",
    "fetch_weights",
    "import_weights",
    "info",
    "is_run_dir",
    "list",
    "list_cached",
    "load",
    "load_segmenter",
    "planned_num_labels",
    "remove_weights",
    "resolve_tag",
    "weights_file",
]
