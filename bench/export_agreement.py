"""Export every shipped small model to TFLite (float32, float16, int8) and verify it (not a test).

Prints, per model and quantization, the ``--verify`` result of
:func:`keras_deconv.zoo.export_model`: label agreement with Keras (exact
ties counted as agreeing, see ``export.TIE_TOLERANCE``), the share of
identical labels, the relative score error, the bound, and the file size,
for LiteRT with XNNPACK on and off, on ``export.VERIFY_IMAGES`` shapes val
images. Where a float32 file's scores miss the bound, ``--verify`` compares
its pooling switches with Keras's (``keras_deconv.switch_agreement``): the
last two columns give how many switches differ (all must be ties) and the
score error against Keras run with the file's own switches; ``-`` where that
comparison did not run. ``int8-io`` rows are integer-only int8 exports
(``--integer-only``: uint8 in, int8 out, no float op), for the single-file
models. It is the same check as ``keras-deconv export NAME --format tflite
--quantize Q --verify``. About a minute.

    python bench/export_agreement.py [--models deconvnet-small,...]
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_deconv import export, zoo  # noqa: E402
from keras_deconv.export._files import _size  # noqa: E402

MODELS = ["deconvnet-small", "fcn8s-small", "decouplednet-small", "transfernet-small"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    from keras_deconv._platform import describe_cpu

    print(describe_cpu())
    print(f"{export.VERIFY_IMAGES} shapes val images; bounds: labels float32 99.9%, float16 99.5%, int8 98%; "
          f"float32 scores 1e-4 relative\n")
    print(f"{'model':20s} {'quantize':8s} {'runtime':36s} {'labels agree':>12s} {'identical':>9s} {'score err':>9s} "
          f"{'size KB':>8s} {'flips':>6s} {'pinned err':>10s}  result")
    for name in args.models.split(","):
        # Integer-only int8 ("int8-io", --integer-only) exists for the single-file models.
        variants = [(quantize, quantize, False) for quantize in export.QUANTIZATIONS]
        if not name.startswith(("decouplednet", "transfernet")):
            variants.append(("int8-io", "int8", True))
        for label, quantize, integer_only in variants:
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "model")
                try:
                    result = zoo.export_model(name, path, "tflite", quantize=quantize, verify=True,
                                              integer_only=integer_only)
                    checks, size = result["verification"], result["size_bytes"]
                except export.ExportError as error:
                    if error.verification is None:
                        raise
                    checks, size = error.verification, _size(path)
                for check in checks:
                    switches = check.get("switches")
                    flips = "-" if not switches else f"{switches['switch_flips']}{'' if switches['flips_are_ties'] else '!'}"
                    pinned = "-" if not switches else f"{switches['pinned_score_error']:.2e}"
                    print(f"{name:20s} {label:8s} {check['runtime']:36s} {100 * check['label_agreement']:11.3f}% "
                          f"{100 * check['strict_label_agreement']:8.3f}% {check['score_error']:9.2e} "
                          f"{size / 1024:8.0f} {flips:>6s} {pinned:>10s}  {'pass' if check['passed'] else 'FAIL'}",
                          flush=True)


if __name__ == "__main__":
    main()
