"""`keras-deconv weights fetch|import|list|remove`."""

import json

import click

from keras_deconv import zoo


@click.group("weights")
def weights_group():
    """Fetch, import, list and remove model weights in the local cache.

    The authors' weights cannot be redistributed: `fetch` downloads them from
    the authors' server and converts them, `import` converts a file you have.
    """


def _name_and_tag(name, tag):
    try:
        return zoo.resolve_tag(name, tag)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME/--tag") from None


@weights_group.command("fetch")
@click.argument("name")
@click.option("--tag", default="default", show_default=True, help="Weights tag (see `keras-deconv info NAME`).")
@click.option("--keep-download", is_flag=True, help="Keep the downloaded .caffemodel in the cache's downloads/ folder.")
def fetch_command(name, tag, keep_download):
    """Download the authors' weights for NAME and convert them.

    \b
    Examples:
      keras-deconv weights fetch deconvnet
      keras-deconv weights fetch decouplednet --tag 25
    """
    name, tag = _name_and_tag(name, tag)
    result = zoo.fetch_weights(name, tag, keep_download=keep_download)
    for path in result if isinstance(result, list) else [result]:
        click.echo(str(path))


@weights_group.command("import")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--tag", default="default", show_default=True, help="Weights tag (see `keras-deconv info NAME`).")
def import_command(name, path, tag):
    """Convert a local .caffemodel for NAME into the cache.

    \b
    Examples:
      keras-deconv weights import deconvnet ~/Downloads/DeconvNet_trainval_inference.caffemodel
      keras-deconv weights import decouplednet DecoupledNet_5_anno_inference.caffemodel --tag 5
    """
    name, tag = _name_and_tag(name, tag)
    click.echo(str(zoo.import_weights(name, path, tag)))


@weights_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json):
    """List the converted weights in the cache, with their source file's sha256."""
    rows = [
        {"name": name, "tag": tag, "path": str(path), "source_sha256": (manifest or {}).get("source", {}).get("sha256"), "size": path.stat().st_size}
        for name, tag, path, manifest in zoo.list_cached()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    click.echo(f"cache: {zoo.cache_dir()}", err=True)
    for row in rows:
        click.echo(f"{row['name']}:{row['tag']}  {row['size'] / 2**20:9.1f} MiB  source sha256 {row['source_sha256']}  {row['path']}")
    if not rows:
        click.echo("(empty)", err=True)


@weights_group.command("remove")
@click.argument("name")
@click.option("--tag", default=None, help="Only this tag (default: every tag of NAME).")
def remove_command(name, tag):
    """Delete cached weights of NAME."""
    removed = zoo.remove_weights(name, tag)
    if not removed:
        raise click.ClickException(f"No cached weights for {name}{':' + tag if tag else ''} in {zoo.cache_dir()}.")
    for path in removed:
        click.echo(f"removed {path}")
