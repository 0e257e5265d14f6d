"""`keras-deconv predict`: segment image files into VOC-style label PNGs, overlays and attention maps."""

import json
import os

import click
import numpy as np

from keras_deconv.progress import progress_bar
from keras_deconv.cli.evaluate import (
    config_option,
    load_exported_or_fail,
    load_segmenter_or_fail,
    num_classes_option,
    parse_key_values,
    pipeline_option_option,
    refuse_model_options_for_export,
    seed_option,
    weights_option,
)


def _heatmap(values):
    """[0, 1] map -> RGB 'jet' colours."""
    v = np.clip(np.asarray(values, np.float32), 0.0, 1.0)[..., None]
    channels = np.concatenate([1.5 - np.abs(4 * v - k) for k in (3.0, 2.0, 1.0)], axis=-1)
    return np.clip(np.round(255 * np.clip(channels, 0, 1)), 0, 255).astype(np.uint8)


def _parse_labels(items, segmenter):
    """'cat,dog' / '8,12' -> sorted label ids of the segmenter."""
    lookup = {name.lower(): i for i, name in enumerate(segmenter.class_names)}
    ids = set()
    for item in items:
        for token in str(item).split(","):
            token = token.strip()
            if not token:
                continue
            if token.isdigit():
                value = int(token)
            elif token.lower() in lookup:
                value = lookup[token.lower()]
            else:
                raise click.BadParameter(
                    f"unknown class {token!r}; known: {', '.join(segmenter.class_names[1:])}", param_hint="--labels")
            if not 1 <= value < segmenter.num_labels:
                raise click.BadParameter(f"class id {value} is outside 1..{segmenter.num_labels - 1}", param_hint="--labels")
            ids.add(value)
    return sorted(ids)


def _output_names(found):
    """Relative output stems without collisions (a.jpg and a.png both -> distinct names)."""
    stems, used = [], set()
    for _, rel in found:
        stem = os.path.splitext(rel)[0]
        if stem in used:
            stem = rel.replace(".", "_")
        used.add(stem)
        stems.append(stem)
    return stems


def _write_all(files):
    """Writes (path, kind, array) items; on any failure removes what was written (no partial output)."""
    from keras_deconv import viz

    written = []
    try:
        for path, kind, array in files:
            if kind == "label":
                viz.save_label_png(path, array)
            else:
                viz.save_image(path, array)
            written.append(path)
    except BaseException:
        for path in written:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise
    return written


@click.command("predict")
@click.argument("name")
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE_OR_DIR...", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created); directory inputs keep their sub-folders.")
@weights_option
@num_classes_option
@config_option
@pipeline_option_option
@seed_option
@click.option("--labels", "labels", multiple=True, metavar="CLASS[,CLASS...]",
              help="TransferNet: the image-level classes to segment (names or ids), for every image. Required for TransferNet.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Overlay opacity.")
@click.option("--max-pixels", type=click.IntRange(min=0),
              help="Refuse larger images (decompression-bomb guard; default $KERAS_DECONV_MAX_PIXELS or 100000000; 0 = no limit).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document (classes found per image, pixel fractions, files) to stdout.")
@click.pass_context
def predict_command(ctx, name, inputs, out_dir, weights, num_classes, config, pipeline_options, seed, labels, alpha,
                    max_pixels, as_json):
    """Segment images with NAME: a VOC palette label PNG, an overlay and (TransferNet) attention maps per image.

    NAME: a zoo model, a `keras-deconv train` run directory (its weights and
    class names), or a TFLite export (a DeconvNet / FCN-8s .tflite file
    or a DecoupledNet / TransferNet folder or single .tflite file), run by
    LiteRT; --weights, --num-classes, --config and --seed do not apply to an
    export. A TransferNet export writes attention maps like the Keras model
    (folders exported before they were an output write none).

    IMAGE_OR_DIR: image files (JPEG, PNG, anything Pillow reads) and
    directories, searched recursively for *.jpg, *.jpeg and *.png. Any size;
    grayscale, palette, 16-bit, CMYK and RGBA images are converted to RGB
    (transparency over white) and EXIF orientation is applied.

    For each image, in --out: NAME.png, the label map at the original
    resolution as an 8-bit palette PNG with the VOC colours (exactly like VOC
    SegmentationClass files: pixel values are class ids); NAME_overlay.png,
    the colours over the image; for TransferNet NAME_attention_CLASS.png per
    class, the attention map as a heat map over the image.

    A bad file (corrupt, truncated, not an image, empty, too large) is
    reported with one line on stderr, gets no output files, and the others are
    still processed; the exit code is then 1 (0 if every image succeeded).

    \b
    Examples:
      # no download: a random small DeconvNet (labelled random in the output)
      keras-deconv predict deconvnet photos/ --out seg/ --weights none \\
          --num-classes 13 --config width=0.0625 --config fc_units=32
      keras-deconv predict deconvnet street.jpg --out seg/ --json
      keras-deconv predict deconvnet-small shapes/ --out seg/ --pipeline-option tta=dihedral
      keras-deconv predict decouplednet.25 photos/ --out seg/
      keras-deconv predict transfernet dog.jpg --labels dog,person --out seg/
      keras-deconv predict deconvnet.tflite street.jpg --out seg/
      keras-deconv predict runs/mine photos/ --out seg/      # a training run
    """
    from keras_deconv import viz
    from keras_deconv.evaluation import is_exported_model
    from keras_deconv.images import ImageError, find_images, read_image

    config = parse_key_values(config, "--config")
    pipeline_options = parse_key_values(pipeline_options, "--pipeline-option")

    try:
        found = find_images(inputs)
    except FileNotFoundError as error:
        raise click.BadParameter(str(error), param_hint="IMAGE_OR_DIR") from None
    if not found:
        raise click.ClickException(f"No images (*.jpg, *.jpeg, *.png) found in {', '.join(inputs)}.")

    class_names = None
    if num_classes == 13:
        from keras_deconv.datasets import shapes

        class_names = shapes.CLASS_NAMES
    if is_exported_model(name):
        refuse_model_options_for_export(["weights", "num_classes", "config", "seed"])
        segmenter = load_exported_or_fail(name, pipeline_options)
    else:
        segmenter = load_segmenter_or_fail(name, weights, num_classes, config, pipeline_options, False, seed,
                                           class_names=class_names)
    query = None
    if segmenter.family == "TransferNet":
        if not labels:
            raise click.UsageError(
                f"{segmenter.name} segments the classes it is told about: pass --labels CLASS[,CLASS...] "
                f"(names or ids, e.g. --labels {segmenter.class_names[min(12, segmenter.num_labels - 1)]})."
                " Its authors' image classifier was not released.")
        query = _parse_labels(labels, segmenter)
    elif labels:
        raise click.UsageError(f"--labels applies to TransferNet only; {segmenter.name} finds the classes itself.")
    for note in segmenter.notes:
        click.echo(f"note: {note}", err=True)
    if segmenter.is_random:
        click.echo("warning: weights: none (random initialisation): the label maps are NOT meaningful.", err=True)

    records, failures = [], []
    items = progress_bar(zip(found, _output_names(found)), total=len(found), desc="predicting", unit="img",
                         enabled=None if len(found) > 1 else False)
    for (path, _rel), stem in items:
        try:
            image = read_image(path, max_pixels=max_pixels)
            prediction = segmenter.predict([image], image_labels=None if query is None else [query])[0]
            label_map = prediction.labels
            base = os.path.join(out_dir, stem)
            if os.path.realpath(base + ".png") == os.path.realpath(path):
                raise ValueError(f"the label PNG would overwrite the input image; choose another --out than {out_dir}")
            files = [(base + ".png", "label", label_map),
                     (base + "_overlay.png", "rgb", viz.overlay(image, label_map, alpha=alpha))]
            attention_files = {}
            if segmenter.family == "TransferNet":
                for class_id, att in sorted((prediction.attention or {}).items()):
                    cname = segmenter.class_names[class_id].replace(" ", "_")
                    blended = (1 - alpha) * image.astype(np.float32) + alpha * _heatmap(att).astype(np.float32)
                    att_path = f"{base}_attention_{cname}.png"
                    files.append((att_path, "rgb", np.clip(np.round(blended), 0, 255).astype(np.uint8)))
                    attention_files[segmenter.class_names[class_id]] = att_path
            _write_all(files)
        except ImageError as error:
            failures.append({"image": path, "error": str(error)})
            click.echo(f"error: {error}", err=True)
            continue
        except Exception as error:  # noqa: BLE001 - report the image and go on with the others
            message = " ".join(str(error).split()) or type(error).__name__
            failures.append({"image": path, "error": f"{path}: {message}"})
            click.echo(f"error: {path}: {message}", err=True)
            continue
        ids, counts = np.unique(label_map, return_counts=True)
        total = label_map.size
        classes = [
            {"id": int(i), "name": segmenter.class_names[i] if i < len(segmenter.class_names) else f"label_{i}",
             "pixels": int(c), "fraction": round(float(c) / total, 6)}
            for i, c in zip(ids, counts)
        ]
        record = {"image": path, "size": [int(label_map.shape[0]), int(label_map.shape[1])],
                  "label_png": files[0][0], "overlay": files[1][0], "classes": classes}
        if prediction.class_ids is not None:
            record["queried_classes" if segmenter.family == "TransferNet" else "detected_classes"] = [
                segmenter.class_names[i] for i in prediction.class_ids if i < len(segmenter.class_names)]
        if attention_files:
            record["attention"] = attention_files
        records.append(record)
        if not as_json:
            found_text = ", ".join(f"{c['name']} {100 * c['fraction']:.1f}%" for c in sorted(classes, key=lambda c: -c["pixels"]))
            click.echo(f"{path} -> {files[0][0]}: {found_text}")

    if as_json:
        document = {
            "model": segmenter.name,
            "weights": segmenter.weights_label,
            "random_weights": segmenter.is_random,
            "out": out_dir,
            "images": records,
            "failed": failures,
        }
        click.echo(json.dumps(document, indent=1))
    click.echo(f"{len(records)} of {len(found)} image(s) segmented into {out_dir}"
               + (f"; {len(failures)} failed" if failures else "")
               + (" [weights: none (random initialisation)]" if segmenter.is_random else ""), err=True)
    if failures:
        ctx.exit(1)
