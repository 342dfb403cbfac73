"""``python -m mefgan_tf.jax_trainer``: train MEF-GAN under Keras's JAX backend (``jax_trainer.train``)."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mefgan_tf.errors import CommandError


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
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is imported
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.jax_trainer import train

    try:
        config = MEFGANConfig.from_file(args.config) if args.config else MEFGANConfig()
        overrides = {"seed": args.seed, "random_flips": args.flips or config.random_flips}
        if args.epochs:
            overrides["epochs"] = args.epochs
        train(config.replace(**overrides), args.data, args.val, args.out)
    except CommandError as err:
        print(f"jax_trainer: error: {err}", file=sys.stderr)
        return 1
    return 0
