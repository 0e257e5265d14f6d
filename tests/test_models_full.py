"""Full-size builds: official parameter counts, Caffe weight shapes, output shapes.

Each full-size model is built once (a module-scoped, parametrized fixture:
pytest finishes one model's tests and frees it before building the next) and
never run on real data: output shapes come from symbolic shape inference.
"""

import json
import os

import keras
import pytest

from keras_deconv.models import DeconvNet, DecoupledNet, FCN8s, TransferNet, caffe_to_keras_shapes

pytestmark = pytest.mark.slow

from official_nets import SPEC_DIR  # noqa: E402

# name: (builder, official parameter count, spec file or None, official input (H, W)).
FULL_SIZE = {
    "DeconvNet": (DeconvNet, 251_805_653, "DeconvNet_inference_deploy", (224, 224)),
    "FCN8s": (FCN8s, 134_489_780, "fcn-8s-pascal-deploy", (500, 500)),
    "TransferNet": (TransferNet, 233_648_658, "TransferNet_deploy", (320, 320)),
    "DecoupledNet": (DecoupledNet, 427_078_678, "DecoupledNet_Full_anno_inference_deploy", (320, 320)),
    "DecoupledNet-gradient": (lambda: DecoupledNet(bridging="gradient"), 307_450_390, None, (320, 320)),
}
BRIDGING_COPIES = ("cls-score-voc-bp", "fc7-bp", "fc6-bp")


@pytest.fixture(scope="module", params=sorted(FULL_SIZE))
def full(request):
    builder, count, spec_name, size = FULL_SIZE[request.param]
    keras.backend.clear_session()
    model = builder()
    yield request.param, model, count, spec_name, size
    del model
    keras.backend.clear_session()


def _spec(name):
    path = os.path.join(SPEC_DIR, name + ".json")
    with open(path) as handle:
        return json.load(handle)


def test_parameter_count_is_official(full):
    name, model, count, _, _ = full
    print(f"{name}: {model.count_params():,} parameters")
    assert model.count_params() == count


def test_every_caffe_weight_has_its_keras_layer_and_shape(full):
    name, model, _, spec_name, _ = full
    spec = _spec(spec_name or "DecoupledNet_Full_anno_inference_deploy")
    checked = 0
    for layer in spec["layers"]:
        if not layer["blobs"]:
            continue
        if name == "DecoupledNet-gradient" and layer["name"] in BRIDGING_COPIES:
            with pytest.raises(ValueError):
                model.get_layer(layer["name"])  # computed from fc6/fc7/cls-score-voc instead
            continue
        shapes = [tuple(w.shape) for w in model.get_layer(layer["name"]).weights]
        assert shapes == caffe_to_keras_shapes(layer), layer["name"]
        checked += 1
    assert checked == sum(1 for layer in spec["layers"] if layer["blobs"]) - (3 if name == "DecoupledNet-gradient" else 0)
    if spec_name:
        assert model.count_params() == spec["parameter_count"]


def _segmentation(spec):
    return spec["seg-score"] if isinstance(spec, dict) else spec


def test_output_shapes_by_shape_inference(full):
    name, model, _, _, (height, width) = full
    images = keras.KerasTensor((1, height, width, 3))
    if name.startswith("DecoupledNet"):
        out = model.compute_output_spec([images, keras.KerasTensor((1, 20))])
        assert {k: tuple(v.shape) for k, v in out.items()} == {
            "cls-score-avg-sigmoid": (1, 20),
            "cls-score-sigmoid": (1, 20),
            "seg-score": (1, 320, 320, 2),
        }
    elif name == "TransferNet":
        out = model.compute_output_spec([images, keras.KerasTensor((1, 80))])
        assert tuple(out.shape) == (1, 320, 320, 2)
        assert tuple(model.get_layer("att-reshape").output.shape) == (None, 20, 20, 1)
        assert tuple(model.get_layer("feat_embed").kernel.shape) == (512 * 20 * 20, 1024)
    else:
        classes = 21
        assert tuple(model.compute_output_spec(images).shape) == (1, height, width, classes)
        # Any other size (odd ones too): the models have a dynamic input size.
        for other in ((256, 320), (225, 301), (333, 417)):
            assert tuple(model.compute_output_spec(keras.KerasTensor((2, *other, 3))).shape) == (2, *other, classes)
