"""Turn a `jax_trainer` run (weights + history.json) into the shipped generator and its TensorBoard log.

    python tools/reference_model.py RUN_DIR --out checkpoints/reference

Writes the generator-only checkpoint (the discriminator is not needed for fusion and would triple
the size), `training_log.json` (the run's history) and `tensorboard/` event files beside it.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import tensorflow as tf

from mefgan_tf.checkpoint import import_keras_weights
from mefgan_tf.config import MEFGANConfig

SCALARS = ("d_loss", "d_real", "d_fake", "g_total", "g_adversarial", "g_content", "g_mse", "g_gradient", "lr")


def write_tensorboard(history: dict, logdir: Path) -> None:
    """The logged scalars per step, and the validation content loss per epoch."""
    with tf.summary.create_file_writer(str(logdir)).as_default():
        for entry in history["log"]:
            for key in SCALARS:
                tf.summary.scalar(f"train/{key}", entry[key], step=entry["step"])
        for entry in history["epochs"]:
            if entry.get("val_content") is not None:
                tf.summary.scalar("val/content", entry["val_content"], step=entry["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="folder with generator.weights.h5 and history.json")
    parser.add_argument("--out", type=Path, default=Path("checkpoints/reference"))
    args = parser.parse_args()
    history = json.loads((args.run / "history.json").read_text())
    config = MEFGANConfig.from_dict(history["config"])
    import_keras_weights(args.out, args.run / "generator.weights.h5", None, step=history["step"], config=config)
    shutil.copy(args.run / "history.json", args.out / "training_log.json")
    write_tensorboard(history, args.out / "tensorboard")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
