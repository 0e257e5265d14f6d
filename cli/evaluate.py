"""`keras-deconv evaluate`: VOC-devkit mIoU of a zoo model (or of a folder of label PNGs) on a split."""

import os

import click

# --------------------------------------------------------------------------- options shared with `predict`
weights_option = click.option(
    "--weights", default="default", show_default=True, metavar="TAG|none|PATH",
    help="Weights tag (see `keras-deconv info NAME`), 'none' for a random initialisation "
         "(clearly labelled as such), or a .weights.h5/.caffemodel file.")
num_classes_option = click.option(
    "--num-classes", type=click.IntRange(min=2, max=256),
    help="Labels the model outputs, background included (13 for shapes). Pretrained weights keep "
         "their body and get a randomly initialised classifier.")
config_option = click.option(
    "--config", "config", multiple=True, metavar="KEY=VALUE",
    help="Builder override, repeatable, e.g. --config width=0.0625 --config fc_units=32 "
         "(small variants); values are Python literals.")
pipeline_option_option = click.option(
    "--pipeline-option", "pipeline_options", multiple=True, metavar="KEY=VALUE",
    help="Pipeline setting, repeatable, e.g. --pipeline-option tta=dihedral (average 8 flipped/rotated views), "
         "threshold=0.3 or mode=instance.")
seed_option = click.option(
    "--seed", type=int, default=0, show_default=True,
    help="Random seed set before building the model (reproducible random initialisations).")


def parse_key_values(items, option):
    """``KEY=VALUE`` items -> dict, as a usage error (exit 2) when malformed."""
    from keras_deconv.evaluation import parse_config

    try:
        return parse_config(items)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def options_given(names):
    """Of the current command's parameters ``names``, the ones the user set, as ``--option`` strings."""
    from click.core import ParameterSource

    context = click.get_current_context()
    return [f"--{name.replace('_', '-')}" for name in names
            if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]


def refuse_model_options_for_export(names):
    """A usage error when options that build a zoo model were given with an exported file as NAME."""
    given = options_given(names)
    if given:
        raise click.UsageError(f"{', '.join(given)} build a zoo model; NAME is an exported TFLite model, "
                               "which carries its own weights and input size. Leave them out.")


def load_exported_or_fail(path, pipeline_options, class_names=None):
    """The LiteRT segmenter of an exported file or folder; problems become one 'Error: ...' line and exit 1."""
    from keras_deconv import evaluation

    if not isinstance(pipeline_options, dict):
        pipeline_options = parse_key_values(pipeline_options, "--pipeline-option")
    try:
        return evaluation.load_exported_segmenter(path, class_names=class_names, pipeline_options=pipeline_options)
    except (ValueError, FileNotFoundError) as error:
        raise click.ClickException(" ".join(str(error).split())) from None


def load_segmenter_or_fail(name, weights, num_classes, config, pipeline_options, crf, seed, class_names=None):
    """Builds the segmenter; known problems become one 'Error: ...' line and exit 1."""
    from keras_deconv import zoo

    if not isinstance(config, dict):
        config = parse_key_values(config, "--config")
    if not isinstance(pipeline_options, dict):
        pipeline_options = parse_key_values(pipeline_options, "--pipeline-option")
    try:
        zoo.info(name)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None
    try:
        return zoo.load_segmenter(name, weights=weights, num_classes=num_classes, config=config,
                                  pipeline_options=pipeline_options, crf=crf, seed=seed, class_names=class_names)
    except (ValueError, TypeError, FileNotFoundError, zoo.WeightsError) as error:
        raise click.ClickException(" ".join(str(error).split())) from None


@click.command("evaluate")
@click.argument("name", required=False)
@click.option("--data", type=click.Choice(["voc2012", "shapes", "shapes-hard", "folder"]), required=True,
              help="Dataset: the built-in synthetic 'shapes' (no files), its harder version-1 config 'shapes-hard' "
                   "(what the shipped small models were trained on), PASCAL VOC 2012 (needs --data-dir), or your "
                   "own 'folder' dataset (needs --data-dir; classes from its classes.txt).")
@click.option("--split", default="val", show_default=True,
              help="shapes: train/val/test; voc2012: val (1,449 images, the standard list), train, train_aug "
                   "(needs SBD); folder: a folder under DIR/images/.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="voc2012: the folder holding VOCdevkit/VOC2012/ (the voc2012_seg builder's manual dir); "
                   "folder: the dataset (classes.txt, images/<split>/, masks/<split>/).")
@click.option("--image-size", type=int, default=64, show_default=True, help="shapes: image side (multiple of 32, >= 64).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Images per pipeline call.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N images of the split list.")
@weights_option
@num_classes_option
@config_option
@pipeline_option_option
@seed_option
@click.option("--crf", is_flag=True, help="Refine with a dense CRF (needs keras-deconv[crf] and a pipeline with a CRF step).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write every figure (model, weights, dataset, split, count, timing, per-class table, confusion matrix) to FILE ('-' = stdout).")
@click.option("--save-examples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Write a PNG gallery (image | ground truth | prediction, with a legend) of the first N images.")
@click.option("--examples-dir", type=click.Path(file_okay=False), default="eval-examples", show_default=True,
              help="Folder for --save-examples.")
@click.option("--save-predictions", type=click.Path(file_okay=False),
              help="Also write every prediction as a VOC-style palette PNG <image id>.png into this folder.")
@click.option("--predictions", "predictions_dir", type=click.Path(file_okay=False),
              help="Score a folder of predicted label PNGs (<image id>.png, palette or grayscale indices) instead of running a model.")
@click.option("--oracle-labels", is_flag=True,
              help="Give the model the ground-truth image-level labels (DecoupledNet: instead of its classifier's; "
                   "TransferNet always gets them). Measures the segmentation apart from the classification.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def evaluate_command(name, data, split, data_dir, image_size, batch_size, limit, weights, num_classes, config,
                     pipeline_options, seed, crf, json_path, save_examples, examples_dir, save_predictions,
                     predictions_dir, oracle_labels, quiet):
    """Evaluate NAME (a zoo model, a training run directory, or an exported TFLite file/folder) on a dataset split: VOC mean IoU and a per-class table.

    One confusion matrix is accumulated over the whole split (PASCAL VOC
    devkit convention): ground-truth 255 (void) is ignored, IoU =
    TP/(TP+FP+FN), the mean is over classes present in the ground truth or the
    predictions. Out-of-range labels are counted and reported, never dropped.
    The table goes to stdout, progress (images/s, running mIoU) to stderr.

    --weights none evaluates a randomly initialised model, labelled as such in
    the output and the JSON. TransferNet needs image-level labels: they are
    taken from the ground truth, which makes it an ORACLE-LABEL evaluation
    (an upper bound), and the output says so.

    NAME may be a TFLite export (`keras-deconv export NAME --format tflite`):
    a DeconvNet / FCN-8s .tflite file or a DecoupledNet / TransferNet folder
    or single .tflite file (classify and segment signatures).
    LiteRT runs it (XNNPACK) with the Keras pipelines' pre- and
    post-processing, so its figures compare with the Keras model's;
    --weights, --num-classes, --config, --seed and --crf do not apply.

    With --predictions DIR no model runs (omit NAME): the label PNGs in DIR are
    scored against the split. Missing files are an error, extra files are
    listed.

    \b
    Examples:
      # no download: a random small DeconvNet on the built-in shapes data
      keras-deconv evaluate deconvnet --data shapes --split val --limit 50 \\
          --weights none --num-classes 13 --config width=0.0625 --config fc_units=32
      # the shipped small DeconvNet, averaging 8 flipped/rotated views of each image
      keras-deconv evaluate deconvnet-small --data shapes --split test --pipeline-option tta=dihedral
      # the official model on VOC 2012 val (after `keras-deconv weights fetch deconvnet`)
      keras-deconv evaluate deconvnet --data voc2012 --data-dir ~/data/voc --json deconvnet-val.json
      keras-deconv evaluate transfernet --data voc2012 --data-dir ~/data/voc --save-examples 8
      # the deployed artifact itself (here an int8 export of a shipped small model)
      keras-deconv export deconvnet-small --format tflite --quantize int8 --out d.tflite
      keras-deconv evaluate d.tflite --data shapes --split val
      # a training run on your own data (keras-deconv train ... --data folder)
      keras-deconv evaluate runs/mine --data folder --data-dir my-data --split val --save-examples 4
      # score label PNGs written by another tool
      keras-deconv evaluate --predictions results/ --data voc2012 --data-dir ~/data/voc
    """
    from keras_deconv import evaluation, viz, zoo

    if predictions_dir and name:
        raise click.UsageError("Give either NAME (run a model) or --predictions DIR (score files), not both.")
    if not predictions_dir and not name:
        raise click.UsageError("Missing argument 'NAME' (a zoo model, see `keras-deconv list`, a training run "
                               "directory, or an exported TFLite file/folder), or use --predictions DIR.")
    if predictions_dir and (crf or save_predictions or oracle_labels):
        raise click.UsageError("--crf, --save-predictions and --oracle-labels need a model; they do not apply to --predictions.")
    if data not in ("voc2012", "folder") and data_dir:
        raise click.UsageError("--data-dir applies to --data voc2012 and --data folder only.")
    config = parse_key_values(config, "--config")
    pipeline_options = parse_key_values(pipeline_options, "--pipeline-option")

    try:
        source = evaluation.open_dataset(data, split, data_dir=data_dir, limit=limit, image_size=image_size)
    except (evaluation.DataError, ValueError) as error:
        raise click.ClickException(" ".join(str(error).split())) from None
    click.echo(f"data: {source.description}", err=True)
    progress = None if quiet else click.get_text_stream("stderr")

    if predictions_dir:
        try:
            report = evaluation.score_predictions(predictions_dir, source, progress=progress or False,
                                                  save_examples=save_examples)
        except evaluation.DataError as error:
            raise click.ClickException(" ".join(str(error).split())) from None
        header = [f"predictions: {report.predictions_dir} ({report.count} files)"]
        if report.extra_files:
            shown = ", ".join(report.extra_files[:5]) + (f" and {len(report.extra_files) - 5} more" if len(report.extra_files) > 5 else "")
            click.echo(f"warning: {len(report.extra_files)} extra file(s) in {predictions_dir} match no image of "
                       f"{data} {split}; not scored: {shown}", err=True)
        title = f"predictions {report.predictions_dir}"
    elif evaluation.is_exported_model(name):
        refuse_model_options_for_export(["weights", "num_classes", "config", "seed", "crf"])
        segmenter = load_exported_or_fail(name, pipeline_options, class_names=source.class_names)
    else:
        try:
            zoo.check_planned(name, num_classes, source)
        except ValueError as error:
            if "Unknown model" in str(error):
                raise click.BadParameter(str(error), param_hint="NAME") from None
            raise click.ClickException(str(error)) from None
        segmenter = load_segmenter_or_fail(name, weights, num_classes, config, pipeline_options, crf, seed,
                                           class_names=source.class_names)
    if not predictions_dir:
        try:
            evaluation.check_compatible(segmenter, source)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        for note in segmenter.notes:
            click.echo(f"note: {note}", err=True)
        if segmenter.is_random:
            click.echo("warning: weights: none (random initialisation): these figures measure an UNTRAINED model.", err=True)
        if oracle_labels and not segmenter.accepts_image_labels:
            raise click.UsageError(f"--oracle-labels: {segmenter.name} ({segmenter.family}) does not take image-level "
                                   "labels; only DecoupledNet and TransferNet models do.")
        oracle = segmenter.needs_image_labels or oracle_labels
        if oracle:
            click.echo(f"note: {segmenter.name} takes image-level labels from outside; using {source.image_labels_source}. "
                       "This is an ORACLE-LABEL evaluation (an upper bound for the model with a real classifier).", err=True)
        report = evaluation.evaluate(segmenter, source, batch_size=batch_size, progress=progress or False,
                                     save_examples=save_examples, save_predictions=save_predictions,
                                     oracle_labels=oracle)
        header = [
            f"model: {segmenter.name} ({segmenter.family})",
            f"weights: {segmenter.weights_label}",
        ]
        if segmenter.config:
            header.append("config: " + ", ".join(f"{k}={v!r}" for k, v in segmenter.config.items()))
        if segmenter.pipeline_options:
            header.append("pipeline: " + ", ".join(f"{k}={v!r}" for k, v in segmenter.pipeline_options.items()))
        if crf:
            header.append("crf: dense CRF applied")
        if oracle:
            header.append(f"ORACLE image-level labels: {source.image_labels_source}")
        title = f"{segmenter.name}, weights: {segmenter.weights_label}"

    header += [
        f"data: {source.name} {source.split}, {report.count} images",
        f"time: {report.seconds:.1f} s ({report.images_per_second:.2f} images/s)",
    ]
    to_stderr = json_path == "-"  # keep stdout pure JSON then
    click.echo("\n".join(header), err=to_stderr)
    click.echo(report.confusion.format_table(), err=to_stderr)

    if save_examples and report.gallery_rows:
        path = os.path.join(examples_dir, f"{source.name}-{source.split}-gallery.png")
        viz.save_image(path, evaluation.example_gallery(report.gallery_rows, source.class_names, title=title))
        click.echo(f"gallery: {path}", err=True)
    if save_predictions:
        click.echo(f"predictions written to {save_predictions}", err=True)
    if json_path:
        evaluation.write_json(json_path, report.to_dict())
        if json_path != "-":
            click.echo(f"json: {json_path}", err=True)
