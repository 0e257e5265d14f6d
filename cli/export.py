"""`keras-deconv export`: SavedModel, builtin-only TFLite or ONNX, with optional verification."""

import ast
import json
import os

import click

from keras_deconv.export import CALIBRATION_COUNT


def _parse_config(items):
    """``KEY=VALUE`` pairs -> dict; values are Python literals when they parse (``1/16`` too)."""
    config = {}
    for item in items:
        if "=" not in item:
            raise click.UsageError(f"--config expects KEY=VALUE. Received: {item!r}")
        key, text = item.split("=", 1)
        config[key.strip()] = _literal(text.strip())
    return config


def _literal(text):
    if "/" in text and all(part.strip().replace(".", "", 1).isdigit() for part in text.split("/", 1)):
        numerator, denominator = text.split("/", 1)
        return float(numerator) / float(denominator)
    if "," in text and not text.startswith(("[", "(")):
        return tuple(_literal(part.strip()) for part in text.split(","))
    if text == "None":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_size(text):
    if text is None:
        return None
    parts = text.lower().replace("x", ",").split(",")
    try:
        sizes = [int(part) for part in parts if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected N or H,W (e.g. 224 or 320,480). Received: {text!r}", param_hint="--input-size")
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise click.BadParameter(f"expected N or H,W. Received: {text!r}", param_hint="--input-size")
    return tuple(sizes)


def _default_out(name, format_, quantize, kind, integer_only=False):
    stem = name.replace(":", "_").replace(".", "_")
    if format_ == "saved_model":
        return f"{stem}_saved_model"
    if format_ == "onnx":
        return f"{stem}.onnx"
    suffix = ("" if quantize == "none" else f"_{quantize}") + ("_integer" if integer_only else "")
    return f"{stem}{suffix}_tflite" if kind in ("decouplednet", "transfernet") else f"{stem}{suffix}.tflite"


@click.command("export")
@click.argument("name")
@click.option("--format", "format_", type=click.Choice(["saved_model", "tflite", "onnx"]), default="saved_model",
              show_default=True, help="Artifact type.")
@click.option("--quantize", type=click.Choice(["none", "float16", "int8"]), default="none", show_default=True,
              help="TFLite only: float32, float16 weights, or int8 weights and activations (calibrated).")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Output path (default: NAME_saved_model/, NAME.tflite, NAME_tflite/ or NAME.onnx).")
@click.option("--verify", is_flag=True, help="Run the artifact on sample images and compare with Keras; exit 1 below the bounds.")
@click.option("--weights", default="default", show_default=True,
              help="Weights tag, 'none' for random initialisation, or a .weights.h5/.caffemodel path.")
@click.option("--config", "config", multiple=True, metavar="KEY=VALUE",
              help="Builder override, repeatable (e.g. width=1/16, fc_units=32, input_shape=64,64,3).")
@click.option("--input-size", default=None, metavar="N|H,W",
              help="Static TFLite/ONNX input size (default: official, DeconvNet 224, FCN-8s 500).")
@click.option("--calibration-data", default="auto", show_default=True, metavar="auto|shapes|shapes-hard|voc2012|DIR",
              help="int8 calibration images. auto: the dataset the weights were trained on (the shapes config "
                   "on a shipped small model's card, shapes for --weights none, VOC 2012 train images for the authors' models, which needs --data-dir); "
                   "or a folder of images like yours.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="The folder holding VOCdevkit/VOC2012/ (as for `keras-deconv evaluate`): int8 calibration on VOC "
                   "train images, and --verify on 16 VOC val images instead of synthetic scenes.")
@click.option("--calibration-count", type=click.IntRange(min=1), default=CALIBRATION_COUNT, show_default=True,
              help="int8: how many calibration images (evenly spaced over the dataset or folder).")
@click.option("--integer-only", is_flag=True,
              help="With --quantize int8 (DeconvNet, FCN-8s): no float op or tensor at all, uint8 image in and int8 "
                   "scores out, for NPUs and integer-only accelerators. Slower on CPUs than plain int8.")
@click.option("--any-size", is_flag=True,
              help="TFLite of DeconvNet/FCN-8s: a file that runs images of any size (dynamic height and width, "
                   "padded as the Keras pipeline pads them). Slower per image than the static file (XNNPACK "
                   "delegates it in pieces).")
@click.option("--threshold", type=float, default=None, help="DecoupledNet/TransferNet detection threshold (default: the card's).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_command(name, format_, quantize, out, verify, weights, config, input_size, calibration_data, data_dir,
                   calibration_count, integer_only, any_size, threshold, as_json):
    """Export zoo model NAME (or a `keras-deconv train` run directory) as a SavedModel, a builtin-only TFLite model or ONNX.

    \b
    SavedModel: serving signatures take uint8 RGB images of any size and
    return labels, probabilities and scores (the whole pipeline in-graph).
    TFLite: DeconvNet/FCN-8s -> one file at a static size (--any-size: any
    size); DecoupledNet and TransferNet -> a folder with encoder.tflite,
    decoder.tflite (per-class pass, the class query as input) and
    manifest.json, or, with an --out ending in .tflite, one file with
    `classify` and `segment` signatures (for phone apps); run either with
    keras_deconv.lite.load(PATH).

    \b
    Examples:
      keras-deconv export deconvnet --format saved_model --out deconvnet_sm
      keras-deconv export deconvnet --format tflite --quantize int8 --data-dir ~/data/voc --verify
      keras-deconv export deconvnet --format tflite --quantize int8 --integer-only --data-dir ~/data/voc
      keras-deconv export decouplednet --format tflite --out decoupled_tflite
      keras-deconv export decouplednet-small --format tflite --out decoupled.tflite --verify
      keras-deconv export runs/mine --format tflite --quantize int8   # calibrated on the run's train images
      keras-deconv export deconvnet --weights none --config width=1/16 \\
          --config fc_units=32 --config fc_kernel_size=2 --input-size 64 --format tflite --verify
    """
    from keras_deconv import export

    builder_config = _parse_config(config)
    weights_value = None if weights.lower() == "none" else weights
    size = _parse_size(input_size)
    options = {} if threshold is None else {"threshold": threshold}
    if format_ != "tflite" and quantize != "none":
        raise click.UsageError("--quantize applies to --format tflite only.")
    if integer_only and quantize != "int8":
        raise click.UsageError("--integer-only applies to --format tflite --quantize int8 only.")
    from keras_deconv.cli.evaluate import options_given

    calibration_options = options_given(["calibration_data", "calibration_count"] + ([] if verify else ["data_dir"]))
    if quantize != "int8" and calibration_options:
        raise click.UsageError(f"{', '.join(calibration_options)} apply to --quantize int8 only"
                               f"{'' if verify else ' (--data-dir also to --verify)'}.")
    if format_ == "onnx":
        reason = export.onnx_available()
        if reason:
            raise click.ClickException(reason)
    from keras_deconv import zoo

    try:
        card = zoo.info(name)
    except ValueError as error:
        raise click.BadParameter(" ".join(str(error).split()), param_hint="NAME") from None
    kind = {"DeconvNet": "deconvnet", "FCN8s": "fcn8s", "DecoupledNet": "decouplednet", "TransferNet": "transfernet"}.get(
        card["architecture"]["builder"] if isinstance(card["architecture"]["builder"], str) else "", None)
    if kind is None:
        raise click.ClickException(f"{name!r} is an ensemble; export its parts (deconvnet, fcn8s) separately.")
    stem = os.path.basename(os.path.normpath(name)) if zoo.is_run_dir(name) else name  # a run: its folder's name
    out = out or _default_out(stem, format_, quantize, kind, integer_only)
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    try:
        result = zoo.export_model(name, out, format_, quantize=quantize, weights=weights_value, config=builder_config,
                                  input_size=size, calibration_data=calibration_data, data_dir=data_dir,
                                  calibration_count=calibration_count, verify=verify,
                                  pipeline_options=options, log=log, integer_only=integer_only, any_size=any_size)
    except export.ExportError as error:
        raise click.ClickException(str(error))
    except (ValueError, FileNotFoundError, zoo.WeightsError) as error:  # known problems: one line, exit 1
        raise click.ClickException(" ".join(str(error).split())) from None
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{result['path']}\t{result['format']}\t{result['quantize']}\t{result['size_bytes']:,} bytes")
    if "verification_images" in result:
        click.echo(f"verified on {result['verification_images']}")
    for check in result.get("verification", []):
        click.echo(f"verify {export.describe_check(check)}")
