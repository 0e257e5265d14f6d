"""Test-time augmentation on the shipped small models: shapes test mIoU with ``tta`` none / flip / dihedral.

Each row is ``keras-deconv evaluate NAME --data shapes --split test
--pipeline-option tta=T`` (the Keras pipeline), and the same for the int8
TFLite export run by LiteRT (``keras-deconv export NAME --format tflite
--quantize int8``, then ``keras-deconv evaluate FILE --pipeline-option
tta=T``): mIoU, pixel accuracy and images per second (batch 1). DecoupledNet
uses its own classifier, TransferNet the ground-truth image-level labels (its
card's setting: an oracle-label evaluation). The views are
``keras_deconv.pipelines.TTA_VIEWS``: the mirror, and the 8 symmetries of the
square, which leave a ``shapes`` class unchanged (training rotates by
multiples of 90 degrees and mirrors). A few minutes per model.

    python bench/tta.py [--models deconvnet-small,fcn8s-small,...] [--split test] [--limit N] [--no-int8]
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = ["deconvnet-small", "fcn8s-small", "decouplednet-small", "transfernet-small"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 TFLite rows")
    args = parser.parse_args()
    from keras_deconv import evaluation, zoo
    from keras_deconv._platform import describe_cpu
    from keras_deconv.pipelines import TTA_VIEWS

    print(describe_cpu())
    print(f"{'model':18s} {'runtime':12s} {'tta':9s} {'views':>5s} {'mIoU':>6s} {'aAcc':>6s} {'img/s':>7s}")
    for name in args.models.split(","):
        source = evaluation.open_dataset("shapes", args.split, limit=args.limit)
        with tempfile.TemporaryDirectory() as folder:
            runtimes = [("keras", lambda tta: zoo.load_segmenter(name, pipeline_options={"tta": tta}))]
            if not args.no_int8:
                path = os.path.join(folder, "int8.tflite")
                zoo.export_model(name, path, "tflite", quantize="int8")
                runtimes.append(("litert int8", lambda tta: evaluation.load_exported_segmenter(
                    path, class_names=source.class_names, pipeline_options={"tta": tta})))
            for runtime, load in runtimes:
                for tta in TTA_VIEWS:
                    segmenter = load(tta)
                    report = evaluation.evaluate(segmenter, source, oracle_labels=segmenter.needs_image_labels)
                    confusion = report.confusion
                    print(f"{name:18s} {runtime:12s} {tta:9s} {len(TTA_VIEWS[tta]):5d} {100 * confusion.mean_iou:6.2f} "
                          f"{100 * confusion.pixel_accuracy:6.2f} {report.images_per_second:7.1f}", flush=True)


if __name__ == "__main__":
    main()
