"""`mefgan train`: train MEF-GAN on a patch file with the original recipe; resumable and distributable.

The options become a ``training.settings.TrainOptions``: the config values asked for (``--paper``,
``--config``, the flags, ``--set``, in that order) and what to train from and into;
``training.run.train_run`` trains.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mefgan_tf.cli.types import finite_float
from mefgan_tf.config import PAPER, MEFGANConfig, checked_value, file_settings, load_yaml, range_problem
from mefgan_tf.errors import QUOTE_LIMIT, CommandError
from mefgan_tf.training.settings import BACKENDS, DEFAULT_DATA, DEFAULT_OUT, TrainOptions, prepare

# Flag -> config field for the flags that override the config.
FLAG_FIELDS = {
    "batch_size": "batch_size",
    "epochs": "epochs",
    "learning_rate": "learning_rate",
    "seed": "seed",
    "checkpoint_every": "checkpoint_every",
    "random_flips": "random_flips",
    "mef_ssim_weight": "mef_ssim_weight",
    "grey_fraction": "grey_fraction",
    "freeze_batch_norm": "frozen_statistics",
    "checkpoint_minutes": "checkpoint_minutes",
}


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = MEFGANConfig()
    paper = ", ".join(f"{k} {v:g}" for k, v in PAPER.items())
    parser.add_argument("--data", default=DEFAULT_DATA, help="HDF5 patch file from `mefgan patches` (default: %(default)s)")
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help="run folder; an existing one is resumed where it stopped (default: %(default)s)"
    )
    parser.add_argument("--config", help="YAML or JSON file of config overrides (see --print-config for the keys)")
    parser.add_argument(
        "--paper", action="store_true",
        help=f"the paper's variant: {paper} (code: {', '.join(f'{k} {getattr(defaults, k):g}' for k in PAPER)})"
    )
    parser.add_argument("--batch-size", type=int, help=f"global batch size (default: {defaults.batch_size})")
    parser.add_argument("--epochs", type=int, help=f"epochs over the patch file (default: {defaults.epochs})")
    parser.add_argument("--learning-rate", type=finite_float,
                        help=f"base learning rate of G; D uses 2x (default: {defaults.learning_rate})")
    parser.add_argument(
        "--max-steps", type=int, help="stop (after a checkpoint) once this many batches are trained in total (default: all epochs)"
    )
    parser.add_argument(
        "--checkpoint-every", type=int, help=f"checkpoint every N steps, and at each epoch end (default: {defaults.checkpoint_every})"
    )
    parser.add_argument(
        "--checkpoint-minutes", type=finite_float, metavar="M",
        help="also checkpoint when M minutes have passed since the last checkpoint; Ctrl-C and SIGTERM always keep "
        "the finished batches (default: 0, off)",
    )
    parser.add_argument(
        "--seed", type=int, help="seed of weights, shuffling and flips: same seed, same losses on CPU (default: random, saved)"
    )
    parser.add_argument(
        "--random-flips", action="store_true", default=None,
        help="randomly flip patches left-right and up-down (default: off, as the original)",
    )
    parser.add_argument(
        "--mef-ssim-weight", type=finite_float, metavar="MU",
        help="also train G to raise MEF-SSIM against its two inputs: adds MU * (1 - multi-scale MEF-SSIM) to G's "
        "loss, as MEF-Net and DeepFuse train; the content loss still sets colour and brightness, which MEF-SSIM "
        "ignores (default: 0, the original recipe)",
    )
    parser.add_argument(
        "--grey-fraction", type=finite_float, metavar="F",
        help="turn this share of the training patches grey (each image its BT.601 luma), so that neutral inputs "
        "fuse to neutral output (default: 0, as the original)",
    )
    parser.add_argument(
        "--freeze-batch-norm", action="store_true", default=None,
        help="G's batch norm normalises with its moving statistics while training, as it does when it fuses, "
        "and leaves them as they are: for fine-tuning a trained G, so that it learns what inference computes "
        "(default: off, batch statistics as the original)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any config key, e.g. --set content_weight=100 (repeatable)",
    )
    parser.add_argument(
        "--mixed-precision", action="store_true", help="compute in bfloat16 on CPU, float16 with loss scaling on GPU (default: float32)"
    )
    parser.add_argument(
        "--init-generator", metavar="PATH",
        help="start G from this generator (a run folder or checkpoint, e.g. shipped (the generator that comes with mefgan-tf), or a Keras "
        ".weights.h5 file; with --backend jax, a JAX run folder or a .weights.h5 file) instead of random weights, to "
        "fine-tune it on your data; D starts fresh. Only for a new run: a resumed run continues from its own checkpoint",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="tensorflow",
        help="tensorflow: tf.function steps, several GPUs or workers through tf.distribute; jax: Keras's JAX "
        "backend on one device, for machines with JAX but no TensorFlow (the [jax] extra); the same recipe, "
        "data order, checkpoints every --checkpoint-every, logs and resume (default: %(default)s)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as config values (YAML syntax), each checked against its field's type."""
    import yaml

    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        shown = item if len(item) <= QUOTE_LIMIT else item[: QUOTE_LIMIT - 3] + "..."
        if not sep or not key.strip():
            raise CommandError(f"--set {shown}: expected KEY=VALUE")
        try:
            values[key.strip()] = checked_value(key.strip(), load_yaml(text))
        except yaml.YAMLError:
            raise CommandError(f"--set {shown}: not a valid value") from None
        except CommandError as err:
            raise CommandError(f"--set {shown}: {err}") from None
    return values


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config values given as flags, each in its key's range (the error names the flag)."""
    values = {}
    for flag, key in FLAG_FIELDS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        problem = range_problem(key, value)
        if problem:
            shown = f"{value:g}" if isinstance(value, float) else value
            raise CommandError(f"--{flag.replace('_', '-')} {shown}: {problem}")
        values[key] = value
    return values


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Config values the user asked for on this command line (file, flags, --set), in that order.
    A file's values count even where they equal the defaults (they may reset a resumed run's)."""
    values: dict[str, Any] = {}
    if args.paper:
        values.update(PAPER)
    if args.config:
        values.update(file_settings(args.config))
    values.update(flag_values(args))
    values.update(parse_set(args.set))
    return values


MAX_STEPS = 10**12


def check(args: argparse.Namespace) -> None:
    """The command line's numbers and settings, before TensorFlow starts (``overrides`` reads them again)."""
    if args.max_steps is not None and not 1 <= args.max_steps <= MAX_STEPS:
        raise CommandError(f"--max-steps {args.max_steps}: must be from 1 to {MAX_STEPS:.0e}")
    if args.init_generator and args.backend == "tensorflow":  # JAX runs say what they take themselves
        from mefgan_tf.checkpoint import check_generator_source
        from mefgan_tf.models import named_model

        check_generator_source(named_model(args.init_generator))
    overrides(args)


def train_options(args: argparse.Namespace) -> TrainOptions:
    return TrainOptions(
        data=Path(args.data), out=Path(args.out), overrides=overrides(args), max_steps=args.max_steps,
        init_generator=args.init_generator, mixed_precision=args.mixed_precision, quiet=args.quiet, backend=args.backend,
    )


def run(args: argparse.Namespace) -> int:
    from mefgan_tf.training.run import train_run  # lazy: imports Keras, whose backend the CLI chose first

    options = train_options(args)
    if args.print_config:
        config, resuming = prepare(options, draw_seed=False)
        print(config.to_json())
        if config.seed is None:
            print("mefgan train: note: seed null: the run draws one at random and saves it in its mefgan.json "
                  "(give --seed to fix it)", file=sys.stderr)
        return 0
    train_run(options)
    return 0
