"""Entry point of the ``keras-deconv`` command.

Conventions shared by every command:

* results go to stdout, progress and messages to stderr;
* exit 0 on success, 2 on a usage error (click prints the usage line),
  1 on any other error with one ``Error: ...`` line and no traceback;
* ``keras-deconv --debug COMMAND`` shows the full traceback instead;
* TensorFlow's, absl's and LiteRT's own log lines and Python warnings are
  kept off stderr (:mod:`keras_deconv.cli.quiet`) unless
  ``keras-deconv --verbose COMMAND``.

Command groups live in their own modules and are attached in ``_COMMANDS``;
they are imported only when invoked, so ``keras-deconv --help`` stays fast.
"""

import importlib
import os
import sys

import click

from keras_deconv import __version__
from keras_deconv.cli import quiet

# name -> (module, attribute, one-line help). Imported lazily on use.
_COMMANDS = {
    "list": ("keras_deconv.cli.models", "list_command", "List the zoo's models."),
    "info": ("keras_deconv.cli.models", "info_command", "Show a model card."),
    "weights": ("keras_deconv.cli.weights", "weights_group", "Fetch, import, list and remove weights."),
    "export": ("keras_deconv.cli.export", "export_command", "Export as SavedModel, builtin-only TFLite or ONNX."),
    "evaluate": ("keras_deconv.cli.evaluate", "evaluate_command", "Evaluate a model on a dataset split (VOC mIoU)."),
    "predict": ("keras_deconv.cli.predict", "predict_command", "Segment images: label PNGs and overlays."),
    "data": ("keras_deconv.cli.data", "data_group", "Check a folder dataset (images, masks, classes.txt)."),
    "train": ("keras_deconv.cli.train", "train_command", "Train a recipe on the built-in shapes data (checkpoints, resume)."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(_COMMANDS))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in _COMMANDS:
            module, attribute, _ = _COMMANDS[name]
            command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx, formatter):
        # Show the one-line help without importing every command module.
        rows = []
        for name in self.list_commands(ctx):
            if name in _COMMANDS:
                rows.append((name, _COMMANDS[name][2]))
            else:
                rows.append((name, self.get_command(ctx, name).get_short_help_str()))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def register(name, module, attribute, short_help):
    """Attach a lazily imported command (used by this module's table)."""
    _COMMANDS[name] = (module, attribute, short_help)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="keras-deconv")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("--verbose", is_flag=True, help="Let TensorFlow's and LiteRT's own log lines and Python warnings through.")
@click.pass_context
def cli(ctx, debug, verbose):
    """keras-deconv: DeconvNet, DecoupledNet and TransferNet in Keras 3.

    \b
    Examples:
      keras-deconv --version
      keras-deconv list
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _os_error_message(error):
    parts = [error.strerror or str(error)]
    if error.filename:
        parts.append(str(error.filename))
    return ": ".join(parts)


def main(argv=None):
    """Run the CLI; turn unexpected exceptions into one clear line and exit 1."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("KERAS_DECONV_DEBUG") == "1"
    verbose = "--verbose" in args or os.environ.get("KERAS_DECONV_VERBOSE") == "1"
    restore_stderr = (lambda: None) if verbose else quiet.silence()
    try:
        sys.exit(_run(args, debug))
    finally:
        restore_stderr()


def _run(args, debug):
    """Run the click group; return the exit code (a command's ``ctx.exit(N)`` included)."""
    try:
        code = cli.main(args=args, prog_name="keras-deconv", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as error:  # UsageError exits 2, others 1
        error.show()
        return error.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI's one error boundary
        if debug:
            raise
        if isinstance(error, OSError):
            message = _os_error_message(error)
        else:
            message = str(error) or type(error).__name__
        click.echo(f"Error: {message}", err=True)
        click.echo("(run with --debug for the traceback)", err=True)
        return 1
    # standalone_mode=False hands back ctx.exit(N) as the return value.
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
