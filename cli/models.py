"""`keras-deconv list` and `keras-deconv info`."""

import json

import click

from keras_deconv import zoo


def _metric_text(metric):
    value = "n/a" if metric.get("value") is None else f"{metric['value']}"
    mark = "" if metric.get("verified") else " (unverified)"
    return f"{metric['metric']} {value} on {metric['dataset']} {metric['split']}, {metric.get('setting', '')}{mark}; source: {metric['source']}"


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--available", is_flag=True, help="Only entries whose weights load now (shipped or cached).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(pattern, available, as_json):
    """List the zoo's models, optionally filtered by a glob PATTERN.

    \b
    Examples:
      keras-deconv list
      keras-deconv list '*net' --json
    """
    rows = []
    for name in zoo.list(pattern, weights_available=True if available else None):
        card = zoo.info(name)
        rows.append(
            {
                "name": name,
                "title": card["title"],
                "parameters": card["architecture"]["parameter_count"],
                "weights": {tag: spec["status"] for tag, spec in card["weights"].items()},
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("No model matches.", err=True)
        return
    click.echo(f"{'name':14s} {'parameters':>12s}  weights (tag: status)   title")
    for row in rows:
        weights = ", ".join(f"{tag}: {status}" for tag, status in row["weights"].items())
        click.echo(f"{row['name']:14s} {row['parameters']:12,d}  {weights}   {row['title']}")


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The whole card as JSON.")
def info_command(name, as_json):
    """Show the model card of NAME: architecture, paper, weights, metrics.

    \b
    Examples:
      keras-deconv info deconvnet
      keras-deconv info decouplednet --json
      keras-deconv info runs/mine            # a training run directory
    """
    try:
        card = zoo.info(name)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None
    if as_json:
        click.echo(json.dumps(card, indent=1))
        return
    if "run_dir" in card:
        click.echo("\n".join(_run_lines(card)))
        return
    paper = card["paper"]
    arch = card["architecture"]
    lines = [
        f"{card['title']} ({card['name']})",
        f"  {card['summary']}",
        f"  paper:        {paper['title']} ({paper['venue']}, arXiv {paper['arxiv']})",
        f"  code:         {card['code']}",
        f"  builder:      keras_deconv.models.{arch['builder'] if isinstance(arch['builder'], str) else ' + '.join(arch['builder'])}",
        f"  parameters:   {arch['parameter_count']:,}",
        f"  input size:   {arch['input_size'][0]}x{arch['input_size'][1]} (official)",
        f"  classes:      {len(card['category_names'])} ({card['categories']})",
        f"  preprocessing: {card['preprocessing']['channel_order']}, mean {card['preprocessing']['mean']}, applied inside the model",
        f"  default weights: {card['default_weights']}",
    ]
    for note in card.get("notes", []):
        lines.append(f"  note: {note}")
    for tag, spec in card["weights"].items():
        lines.append(f"  weights {tag!r} [{spec['status']}]: {spec['description']}")
        lines.append(f"    trained on: {spec['trained_on']}")
        lines.append(f"    origin: {spec['origin']}; licence: {spec['license']}")
        for file in spec.get("files", []):
            lines.append(f"    file: {file['name']} <{file.get('url', 'shipped')}> sha256 {file.get('sha256') or 'not recorded'}")
        for metric in spec.get("metrics", []):
            lines.append(f"    metric: {_metric_text(metric)}")
    click.echo("\n".join(lines))


def _run_lines(card):
    """``keras-deconv info RUN_DIR``: what the run's card says."""
    arch = card["architecture"]
    tag = card["default_weights"]
    spec = card["weights"][tag]
    training = spec.get("training", {})
    data = training.get("data") or {}
    config = ", ".join(f"{k}={v!r}" for k, v in arch["config"].items() if k != "num_classes")
    lines = [
        f"{card['title']} ({card['name']})",
        f"  run directory: {card['run_dir']}",
        f"  builder:      keras_deconv.models.{arch['builder']} ({config})",
        f"  parameters:   {arch['parameter_count']:,}",
        f"  classes:      {len(card['category_names'])} ({', '.join(card['category_names'])})",
        f"  weights {tag!r} [{spec['status']}]: {spec['file']}",
        f"    trained on: {data.get('dir') or data.get('kind', '?')}; recipe {training.get('recipe')}, steps "
        + ", ".join(f"{stage} {steps}" for stage, steps in (training.get("steps") or {}).items()),
    ]
    if training.get("command"):
        lines.append(f"    command: {training['command']}")
    for metric in spec.get("metrics", []):
        lines.append(f"    metric: {metric['metric']} {metric['value']} on {metric['dataset']} {metric['split']} "
                     f"({metric['images']} images), pixel accuracy {metric['pixel_accuracy']}, {metric['setting']}")
    return lines
