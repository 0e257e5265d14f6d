"""`keras-deconv train RECIPE`: the training recipes (DeconvNet, FCN-8s, DecoupledNet, TransferNet) on shapes,
every recipe also on your own data (``--data folder --data-dir DIR``), DeconvNet and FCN-8s also on PASCAL VOC 2012
(``--data voc2012 --data-dir DIR``) and optionally fine-tuned (``--init``)."""

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
@click.option("--data", type=click.Choice(["shapes", "folder", "voc2012", "coco"]), default="shapes", show_default=True,
              help="shapes: the built-in synthetic data; folder: your own (--data-dir; deconvnet, fcn8s, "
                   "decouplednet with image-level labels from the masks, transfernet with --source-classes); "
                   "voc2012: PASCAL VOC 2012 train.txt, val.txt scored (--data-dir; deconvnet, fcn8s, decouplednet); coco: "
                   "transfernet's COCO source domain (--data-dir) with --target-data voc2012 --target-dir.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="--data folder: the dataset (classes.txt, images/<split>/, masks/<split>/); --data voc2012: the "
                   "folder holding VOCdevkit/VOC2012/; --data coco: the folder holding annotations/ and train2017/.")
@click.option("--target-data", type=click.Choice(["voc2012"]),
              help="transfernet --data coco: the target domain (image-level labels only; its val.txt is scored).")
@click.option("--target-dir", type=click.Path(file_okay=False),
              help="--target-data voc2012: the folder holding VOCdevkit/VOC2012/.")
@click.option("--image-size", type=int, default=64, show_default=True,
              help="shapes image side / training crop side (multiple of 32, >= 64); the models' input size.")
@click.option("--config", "config", multiple=True, metavar="KEY=VALUE",
              help="Builder override, repeatable (e.g. --config width=1.0 --config fc_units=4096 for full size).")
@click.option("--hparam", "hparams", multiple=True, metavar="KEY=VALUE",
              help="Recipe hyperparameter, repeatable (e.g. --hparam stage2_steps=40000 --hparam batch_size=64).")
@click.option("--steps", type=click.IntRange(min=1), help="Run every stage for this many steps (quick runs).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Checkpoint/log chunks per stage (a stage of N steps = EPOCHS epochs of N/EPOCHS steps).")
@click.option("--budget", "budgets", multiple=True, metavar="5|10|25|all",
              help="decouplednet: annotation budget(s) (masks per class), repeatable; default all four on shapes "
                   "(one classifier shared), 'all' on folder data.")
@click.option("--source-classes", metavar="NAME[,NAME...]",
              help="transfernet --data folder: the classes whose masks it learns from (names or ids of classes.txt).")
@click.option("--target-classes", metavar="NAME[,NAME...]",
              help="transfernet --data folder: the classes it learns from image-level labels only "
                   "(default: the others).")
@click.option("--init-vgg16", type=click.Path(exists=True, dir_okay=False),
              help="Initialise the VGG-16 encoder (and fc6/fc7) from ImageNet weights (.h5 or .caffemodel); "
                   "default: random initialisation.")
@click.option("--init", "init_source", metavar="NAME|PATH|RUN_DIR",
              help="deconvnet/fcn8s: start from zoo weights (e.g. deconvnet-small), a .weights.h5/.caffemodel "
                   "file or a training run; the architecture follows it; a classifier whose class count differs "
                   "is re-initialised.")
@click.option("--freeze-encoder", is_flag=True, help="Keep the VGG-16 encoder (conv1_1 ... conv5_3) fixed.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
              show_default=True, help="tf.distribute strategy (mirrored: all GPUs, else all logical CPUs; multiworker: "
                                      "the cluster in $TF_CONFIG, the chief writes --output; see docs/training.md).")
@click.option("--logical-cpus", type=click.IntRange(min=1),
              help="Split the CPU into N logical devices before TensorFlow starts (test --strategy mirrored on a CPU).")
@click.option("--export", "export_prefix", metavar="PREFIX",
              help="Also copy the inference weights to PREFIX.<tag>.weights.h5 (e.g. zoo/weights/deconvnet-small).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (initialisation, data order).")
@click.option("--jit/--no-jit", default=None,
              help="Compile the training steps with XLA, or not (default: XLA on a GPU without --strategy; "
                   "on a CPU TensorFlow's graph is faster).")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress output.")
def train_command(recipe, output, resume, data, data_dir, target_data, target_dir, image_size, config, hparams, steps,
                  epochs, budgets, source_classes, target_classes, init_vgg16, init_source, freeze_encoder, strategy,
                  logical_cpus, export_prefix, seed, jit, quiet):
    """Train RECIPE on the built-in shapes dataset or your own data, with checkpoints and resume.

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
      keras-deconv train deconvnet -o runs/mine --data folder --data-dir my-data --init deconvnet-small
      keras-deconv train fcn8s -o runs/voc --data voc2012 --data-dir ~/data/voc --image-size 224
      keras-deconv train transfernet -o runs/tn-voc --data coco --data-dir ~/data/coco \\
          --target-data voc2012 --target-dir ~/data/voc
      keras-deconv train decouplednet -o runs/dn5 --data folder --data-dir my-data --budget 5
      keras-deconv train transfernet -o runs/tn --data folder --data-dir my-data --source-classes cat,dog
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
    if (source_classes or target_classes) and not (recipe == "transfernet" and data == "folder"):
        raise click.UsageError("--source-classes and --target-classes apply to transfernet --data folder only.")
    if source_classes or target_classes:
        kwargs.update(source_classes=source_classes, target_classes=target_classes)
    if data in ("folder", "voc2012", "coco") and not data_dir:
        raise click.UsageError(f"--data {data} needs --data-dir DIR.")
    if data == "shapes" and data_dir:
        raise click.UsageError("--data-dir applies to --data folder, voc2012 and coco only.")
    if data == "coco" and (recipe != "transfernet" or target_data != "voc2012" or not target_dir):
        raise click.UsageError("--data coco trains transfernet, with --target-data voc2012 --target-dir DIR.")
    if data != "coco" and (target_data or target_dir):
        raise click.UsageError("--target-data and --target-dir apply to transfernet --data coco only.")
    if data == "voc2012" and recipe not in ("deconvnet", "fcn8s", "decouplednet"):
        raise click.UsageError(f"--data voc2012 trains deconvnet, fcn8s and decouplednet; {recipe} is not "
                               "implemented on it (transfernet: --data coco --target-data voc2012).")
    if (init_source or freeze_encoder) and recipe not in ("deconvnet", "fcn8s"):
        raise click.UsageError("--init and --freeze-encoder apply to the deconvnet and fcn8s recipes.")
    from keras_deconv.datasets.folder import FolderDatasetError

    try:
        if init_source:
            kwargs["init_model"], config = _start_model(init_source, recipe, data, data_dir, config, image_size)
        kwargs["freeze_encoder"] = freeze_encoder
        options = dict(image_size=image_size, config=config, hparams=hparams, init_vgg16=init_vgg16, seed=seed,
                       **kwargs)
        if data == "folder":
            from keras_deconv.training.folder_recipes import folder_recipe

            instance = folder_recipe(recipe, data_dir, **options)
        elif data == "voc2012":
            from keras_deconv.datasets.voc_files import voc_dataset
            from keras_deconv.training.folder_recipes import folder_recipe

            instance = folder_recipe(recipe, voc_dataset(data_dir), **options)
        elif data == "coco":
            from keras_deconv.datasets.coco import transfer_dataset
            from keras_deconv.training.folder_recipes import folder_recipe
            from keras_deconv.zoo.cache import cache_dir

            dataset = transfer_dataset(data_dir, target_dir, cache_dir() / "coco-masks")
            instance = folder_recipe(recipe, dataset, **options)
        else:
            instance = training.get_recipe(recipe)(**options)
    except FolderDatasetError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if steps:
        instance.set_steps(steps)
    command = "keras-deconv " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    try:
        run = training.train(instance, output, epochs=epochs, resume=resume, strategy=strategy,
                             verbose=0 if quiet else None, export_prefix=export_prefix, command=command,
                             jit_compile="auto" if jit is None else jit)
    except FileExistsError as error:
        raise click.ClickException(str(error)) from None
    if run.get("worker"):  # a multi-worker run's non-chief task: it wrote nothing
        click.echo(f"{run['worker']['task']}: trained {sum(s['steps'] for s in run['stages'].values())} steps in "
                   f"sync with the chief, which writes the run directory {os.path.abspath(output)}")
        return
    if instance.reinitialised:
        click.echo(f"--init {init_source}: re-initialised (class count or shape differs): "
                   f"{', '.join(instance.reinitialised)}", err=True)
    for name, stage in run["stages"].items():
        click.echo(f"{name}: {stage['steps']} steps, {stage['seconds']:.0f} s, final loss {stage.get('final_loss', float('nan')):.4f}")
    for tag, path in run.get("export", {}).get("files", {}).items():
        click.echo(f"export {tag}: {path}")
    for metric in run.get("val_metrics", []):
        click.echo(f"val ({metric['images']} images): mIoU {metric['value']:.2f}, pixel accuracy "
                   f"{metric['pixel_accuracy']:.2f}")
    click.echo(f"total: {run['total_seconds']:.0f} s; run directory {os.path.abspath(output)}")


def _start_model(source, recipe, data, data_dir, config, image_size):
    """``--init``: the start model (through the zoo) and the recipe config that fits it (user --config wins)."""
    from keras_deconv import training
    from keras_deconv.datasets import folder, shapes, voc_files
    from keras_deconv.training.run_card import ARCHITECTURES
    from keras_deconv.zoo import registry

    num_classes = {"folder": lambda: len(folder.read_classes(data_dir)), "voc2012": lambda: len(voc_files.CLASS_NAMES),
                   "shapes": lambda: shapes.NUM_CLASSES}[data]()
    base = training.get_recipe(recipe)(image_size=image_size).default_config()
    model, start_config = registry.start_model(source, ARCHITECTURES[recipe][0], num_classes,
                                               dict(base, **config))
    return model, dict(start_config, **config)
