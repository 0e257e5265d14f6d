"""`keras-deconv data ...`: check your own segmentation data before training on it."""

import click


@click.group("data")
def data_group():
    """Inspect datasets in the folder format (classes.txt, images/<split>/, masks/<split>/).

    \b
    Example:
      keras-deconv data check my-data
    """


@click.command("check")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--split", "splits", multiple=True, help="Check only this split (repeatable); default: every split.")
@click.option("--headers-only", is_flag=True,
              help="Read image headers instead of decoding every image (faster; misses truncated files).")
def check_command(directory, splits, headers_only):
    """Validate a folder dataset; print image counts and per-class pixel shares.

    Every mask is read and checked (values are a class of classes.txt or 255,
    sizes match the images). A broken dataset prints one error line naming
    the files and exits with status 1.

    \b
    Example:
      keras-deconv data check my-data --split train
    """
    from keras_deconv.datasets import folder

    try:
        report = folder.check(directory, splits or None, decode_images=not headers_only)
    except folder.FolderDatasetError as error:
        raise click.ClickException(str(error)) from None
    classes = report["classes"]
    click.echo(f"{report['root']}: {len(classes)} classes ({', '.join(classes)})")
    split_names = list(report["splits"])
    width = max(12, *(len(name) for name in classes))
    click.echo(f"{'':<{width}}  " + "  ".join(f"{s:>9}" for s in split_names))
    click.echo(f"{'images':<{width}}  " + "  ".join(f"{report['splits'][s]['images']:>9}" for s in split_names))
    for name in classes:
        shares = (100 * report["splits"][s]["class_shares"][name] for s in split_names)
        click.echo(f"{name:<{width}}  " + "  ".join(f"{v:>8.2f}%" for v in shares))
    click.echo(f"{'void (255)':<{width}}  "
               + "  ".join(f"{100 * report['splits'][s]['void_share']:>8.2f}%" for s in split_names))
    absent = [(s, n) for s in split_names for n in classes if report["splits"][s]["class_shares"][n] == 0]
    for split, name in absent:
        click.echo(f"note: class {name!r} has no pixel in split {split!r}", err=True)


data_group.add_command(check_command)
