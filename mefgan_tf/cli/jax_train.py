"""``python -m mefgan_tf.jax_trainer``: train MEF-GAN under Keras's JAX backend (``jax_trainer.train``)."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mefgan_tf.cli.types import finite_float
from mefgan_tf.errors import CommandError, require


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mefgan_tf.jax_trainer", description="Train MEF-GAN under Keras's JAX backend (no TensorFlow needed)."
    )
    parser.add_argument("--data", required=True, help="training patches (HDF5, from `mefgan patches`)")
    parser.add_argument("--val", help="validation patches (content loss per epoch)")
    parser.add_argument("--out", required=True, type=Path, help="folder for weights, history.json and logs/")
    parser.add_argument("--config", help="YAML/JSON file of MEFGANConfig overrides")
    parser.add_argument("--epochs", type=int, help="override config.epochs")
    parser.add_argument("--flips", action="store_true", help="random flips (config.random_flips)")
    parser.add_argument("--seed", type=int, default=None, help="seed of weights, order and flips (default: the config's, else 0)")
    parser.add_argument("--learning-rate", type=finite_float, help="override config.learning_rate (G's Adam; D's SGD runs at twice it)")
    parser.add_argument(
        "--init-generator", type=Path, metavar="WEIGHTS",
        help="start G from this Keras weight file (a generator.weights.h5); D starts fresh",
    )
    parser.add_argument(
        "--mef-ssim-weight", type=finite_float, metavar="MU",
        help="add MU * (1 - MEF-SSIM against the inputs) to G's loss (config.mef_ssim_weight; 0: the original)",
    )
    parser.add_argument(
        "--keep-epochs", action="store_true", help="also keep every epoch's generator as generator-epochNN.weights.h5"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        require("jax", "the JAX trainer")
    except CommandError as err:
        print(f"mefgan_tf.jax_trainer: error: {err}", file=sys.stderr)
        return 1
    os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is imported
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.jax_trainer import train

    try:
        config = MEFGANConfig.from_file(args.config) if args.config else MEFGANConfig()
        seed = args.seed if args.seed is not None else config.seed if config.seed is not None else 0
        overrides = {"seed": seed, "random_flips": args.flips or config.random_flips}
        if args.epochs:
            overrides["epochs"] = args.epochs
        if args.learning_rate:
            overrides["learning_rate"] = args.learning_rate
        if args.mef_ssim_weight is not None:
            overrides["mef_ssim_weight"] = args.mef_ssim_weight
        if args.init_generator is not None and not args.init_generator.is_file():
            raise CommandError(f"{args.init_generator}: no such generator weight file")
        train(config.replace(**overrides), args.data, args.val, args.out,
              init_generator=args.init_generator, keep_epochs=args.keep_epochs)
    except CommandError as err:
        print(f"jax_trainer: error: {err}", file=sys.stderr)
        return 1
    return 0
