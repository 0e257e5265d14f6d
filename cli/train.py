"""`keras-deconv train RECIPE`: the training recipes (DeconvNet, FCN-8s, DecoupledNet, TransferNet) on shapes."""

import os
import shlex
import sys

import click

RECIPE_NAMES = ("deconvnet", "fcn8s", "decouplednet", "transfernet")


def _key_values(items, option):
    from keras_deconv.evaluation import parse_config

    try:
        return parse_config(items)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


@click.command("train")
@click.argument("recipe", type=click.Choice(RECIPE_NAMES))
@click.option("--output", "-o", type=click.Path(file_okay=False), required=True,
              help="Run directory: checkpoints, CSV/TensorBoard logs, run.json, export/.")
@click.option("--resume", is_flag=True, help="Continue the run in --output (finished stages are skipped).")
@click.option("--image-size", type=int, default=64, show_default=True,
              help="shapes image side (multiple of 32, >= 64); the models' input size.")
@click.option("--config", "config", multiple=True, metavar="KEY=VALUE",
              help="Builder override, repeatable (e.g. --config width=1.0 --config fc_units=4096 for full size).")
@click.option("--hparam", "hparams", multiple=True, metavar="KEY=VALUE",
              help="Recipe hyperparameter, repeatable (e.g. --hparam stage2_steps=40000 --hparam batch_size=64).")
@click.option("--steps", type=click.IntRange(min=1), help="Run every stage for this many steps (quick runs).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Checkpoint/log chunks per stage (a stage of N steps = EPOCHS epochs of N/EPOCHS steps).")
@click.option("--budget", "budgets", multiple=True, metavar="5|10|25|all",
              help="decouplednet: annotation budget(s), repeatable; default all four (one classifier shared).")
@click.option("--init-vgg16", type=click.Path(exists=True, dir_okay=False),
              help="Initialise the VGG-16 encoder (and fc6/fc7) from ImageNet weights (.h5 or .caffemodel); "
                   "default: random initialisation.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
              show_default=True, help="tf.distribute strategy (mirrored: all GPUs, else all logical CPUs).")
@click.option("--logical-cpus", type=click.IntRange(min=1),
              help="Split the CPU into N logical devices before TensorFlow starts (test --strategy mirrored on a CPU).")
@click.option("--export", "export_prefix", metavar="PREFIX",
              help="Also copy the inference weights to PREFIX.<tag>.weights.h5 (e.g. zoo/weights/deconvnet-small).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (initialisation, data order).")
@click.option("--no-jit", is_flag=True, help="Do not compile the training steps with XLA (default: XLA without a strategy).")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress output.")
def train_command(recipe, output, resume, image_size, config, hparams, steps, epochs, budgets, init_vgg16, strategy,
                  logical_cpus, export_prefix, seed, no_jit, quiet):
    """Train RECIPE on the built-in shapes dataset, with checkpoints and resume.

    \b
    Recipes (stages; see docs for every deviation from the papers):
      deconvnet     stage1 object-centred crops -> stage2 windows; BN folded
      fcn8s         whole images (scale/crop/flip)
      decouplednet  classification (image labels) -> segmentation per budget
      transfernet   encoder -> attention (both domains) -> segmentation (source masks)

    \b
    Examples:
      nice -n 10 keras-deconv train deconvnet -o runs/deconvnet-small --export zoo/weights/deconvnet-small
      keras-deconv train decouplednet -o runs/dn --budget 5 --budget all
      keras-deconv train deconvnet -o runs/dn-full --image-size 224 \\
          --config width=1.0 --config fc_units=4096 --config fc_kernel_size=7 --init-vgg16 vgg16.h5
      keras-deconv train fcn8s -o runs/x --steps 20 --strategy mirrored --logical-cpus 2
    """
    if logical_cpus:
        import tensorflow as tf

        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    from keras_deconv import training

    config = _key_values(config, "--config")
    hparams = _key_values(hparams, "--hparam")
    kwargs = {}
    if budgets:
        if recipe != "decouplednet":
            raise click.UsageError("--budget applies to the decouplednet recipe only.")
        kwargs["budgets"] = list(budgets)
    try:
        instance = training.get_recipe(recipe)(image_size=image_size, config=config, hparams=hparams,
                                               init_vgg16=init_vgg16, seed=seed, **kwargs)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if steps:
        instance.set_steps(steps)
    command = "keras-deconv " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    try:
        run = training.train(instance, output, epochs=epochs, resume=resume, strategy=strategy,
                             verbose=0 if quiet else None, export_prefix=export_prefix, command=command,
                             jit_compile=False if no_jit else "auto")
    except FileExistsError as error:
        raise click.ClickException(str(error)) from None
    for name, stage in run["stages"].items():
        click.echo(f"{name}: {stage['steps']} steps, {stage['seconds']:.0f} s, final loss {stage.get('final_loss', float('nan')):.4f}")
    for tag, path in run.get("export", {}).get("files", {}).items():
        click.echo(f"export {tag}: {path}")
    click.echo(f"total: {run['total_seconds']:.0f} s; run directory {os.path.abspath(output)}")
