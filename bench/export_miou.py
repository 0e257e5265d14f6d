"""mIoU of every shipped small model on shapes: Keras against its TFLite exports run by LiteRT (not a test).

For each model: the Keras pipeline (``keras-deconv evaluate NAME``), then its
float32, float16 and int8 TFLite exports (``keras-deconv export NAME --format
tflite --quantize Q``) evaluated the same way (``keras-deconv evaluate
FILE``): mIoU (VOC devkit convention), pixel accuracy, images per second
(batch 1, LiteRT with XNNPACK) and file size. TransferNet takes the
ground-truth image-level labels (an oracle-label evaluation) in every row;
DecoupledNet uses its own classifier. The label agreement of
``bench/export_agreement.py`` counts pixels, most of them background; this
table shows what a quantization costs on the classes. Each model is scored
on the shapes config on its card (``standard`` or ``hard``). A few minutes.

    python bench/export_miou.py [--models deconvnet-small,...] [--split test] [--limit N]
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
    args = parser.parse_args()
    from keras_deconv import evaluation, export, zoo
    from keras_deconv.export._files import _size
    from keras_deconv._platform import describe_cpu
    from keras_deconv.zoo import scoring

    print(describe_cpu())
    print(f"{'model':20s} {'data':22s} {'runtime':22s} {'mIoU':>6s} {'aAcc':>6s} {'img/s':>7s} {'size KB':>8s}")
    for name in args.models.split(","):
        config = scoring.shapes_config(name)
        source = evaluation.open_dataset("shapes" if config == "standard" else f"shapes-{config}", args.split,
                                         limit=args.limit)
        data = f"{config} {args.split} ({len(source)})"
        rows = [("keras", zoo.load_segmenter(name), None)]
        with tempfile.TemporaryDirectory() as folder:
            for quantize in export.QUANTIZATIONS:
                path = os.path.join(folder, f"{quantize}.tflite")
                zoo.export_model(name, path, "tflite", quantize=quantize)
                segmenter = evaluation.load_exported_segmenter(path, class_names=source.class_names)
                rows.append((f"litert {'float32' if quantize == 'none' else quantize}", segmenter, _size(path)))
            for runtime, segmenter, size in rows:
                report = evaluation.evaluate(segmenter, source, oracle_labels=segmenter.needs_image_labels)
                confusion = report.confusion
                print(f"{name:20s} {data:22s} {runtime:22s} {100 * confusion.mean_iou:6.2f} {100 * confusion.pixel_accuracy:6.2f} "
                      f"{report.images_per_second:7.1f} {'' if size is None else f'{size / 1024:8.0f}'}", flush=True)


if __name__ == "__main__":
    main()
