"""Turn a training run into the shipped generator, with its training log and TensorBoard scalars.

    python tools/reference_model.py RUN_DIR --out checkpoints/reference [--val VAL.h5] [--step N]

RUN_DIR is a `mefgan train` run folder of either backend (its latest checkpoint, or ckpt-N with
--step for TensorFlow runs) or a run of the earlier JAX trainer program (generator.weights.h5 +
history.json). Writes the generator-only checkpoint
(the discriminator is not needed for fusion and would triple the size), `training_log.json` and
`tensorboard/` (its scalars up to that checkpoint) into a new folder ``--out``. With ``--val`` the validation content loss (MSE + 0.6
gradient loss, G in inference mode) of the run's starting generator, if any, and of the result is
recorded too.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from mefgan_tf.checkpoint import (
    METADATA_FILE,
    import_keras_weights,
    load_generator,
    read_config,
    resolve_checkpoint,
    save_model_checkpoint,
)
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.data import open_patches, split_channels
from mefgan_tf.losses import content_loss
from mefgan_tf.models import named_model

SCALARS = ("d_loss", "d_real", "d_fake", "g_total", "g_adversarial", "g_content", "g_mse", "g_gradient", "g_structure", "lr")
VAL_BATCH = 19


def write_tensorboard(history: dict, logdir: Path) -> None:
    """The logged scalars per step, and the validation content loss per epoch."""
    with tf.summary.create_file_writer(str(logdir)).as_default():
        for entry in history["log"]:
            for key in SCALARS:
                if key in entry:  # g_structure: runs since the MEF-SSIM loss
                    tf.summary.scalar(f"train/{key}", entry[key], step=entry["step"])
        for entry in history["epochs"]:
            if entry.get("val_content") is not None:
                tf.summary.scalar("val/content", entry["val_content"], step=entry["step"])


def validation_content(generator, path: Path, config: MEFGANConfig) -> float:
    """Mean content loss of ``generator`` (inference mode) over the patches of ``path``."""
    losses = []
    with open_patches(path) as patches:
        for batch in patches.batches(VAL_BATCH):
            over, under, gt = split_channels(batch)
            losses.append(float(content_loss(gt, generator((over, under), training=False), config)) * len(batch))
        return float(np.sum(losses) / len(patches))


def event_scalars(logdir: Path) -> list[dict]:
    """Every scalar of a run's TensorBoard event files as {"step", tag: value, ...} per step."""
    steps: dict[int, dict] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    number = float(tf.make_ndarray(value.tensor))
                    steps.setdefault(int(event.step), {"step": int(event.step)})[value.tag] = number
    return [steps[s] for s in sorted(steps)]


def write_event_scalars(log: list[dict], logdir: Path) -> None:
    """The scalars of ``log`` (from :func:`event_scalars`) as a fresh TensorBoard event file."""
    with tf.summary.create_file_writer(str(logdir)).as_default():
        for entry in log:
            for tag, number in entry.items():
                if tag != "step":
                    tf.summary.scalar(tag, number, step=entry["step"])


def from_run(run: Path, out: Path, step: int | None, val: Path | None) -> None:
    """A `mefgan train` run folder: its generator, a log of its scalars and the validation loss."""
    meta = json.loads((run / METADATA_FILE).read_text())
    config = read_config(run)
    if meta.get("backend") == "jax":
        if step is not None:
            raise SystemExit("--step: a JAX run keeps its latest generator only")
        generator = load_generator(run)
        with np.load(max(run.glob("ckpt-*.npz"), key=lambda p: int(p.stem.split("-")[1]))) as saved:
            updates, batches = int(saved["step"]), int(saved["done"])
    else:
        prefix = str(run / f"ckpt-{step}") if step is not None else resolve_checkpoint(run)
        generator = load_generator(prefix)
        updates = int(tf.train.load_variable(prefix, "step/.ATTRIBUTES/VARIABLE_VALUE"))
        batches = int(prefix.rsplit("-", 1)[-1])
    save_model_checkpoint(out, generator, step=updates)
    history = {"config": config.to_dict(), "step": updates, "batches": batches, "data": meta.get("data"),
               "patches": meta.get("patches"), "init_generator": meta.get("init_generator"),
               "log": [e for e in event_scalars(run / "logs") if e["step"] <= batches], "epochs": []}
    if val is not None:
        if meta.get("init_generator"):
            start = validation_content(load_generator(named_model(meta["init_generator"])), val, config)
            history["epochs"].append({"epoch": 0.0, "step": 0, "val_content": start})
        end = validation_content(generator, val, config)
        history["epochs"].append({"epoch": round(batches / (meta["patches"] // config.batch_size), 3),
                                  "step": updates, "val_content": end})
    (out / "training_log.json").write_text(json.dumps(history, indent=1))
    write_event_scalars(history["log"], out / "tensorboard")


def from_jax_program_run(run: Path, out: Path) -> None:
    """A run of the earlier JAX trainer program: its Keras weights and history.json."""
    history = json.loads((run / "history.json").read_text())
    config = MEFGANConfig.from_dict(history["config"])
    import_keras_weights(out, run / "generator.weights.h5", None, step=history["step"], config=config)
    shutil.copy(run / "history.json", out / "training_log.json")
    write_tensorboard(history, out / "tensorboard")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `mefgan train` run folder (either backend) or an earlier JAX program run")
    parser.add_argument("--out", type=Path, default=Path("checkpoints/reference"))
    parser.add_argument("--step", type=int, help="TensorFlow runs: use ckpt-STEP (default: the latest)")
    parser.add_argument("--val", type=Path, help="`mefgan train` runs: validation patches for the content loss")
    args = parser.parse_args()
    if (args.run / "history.json").exists():
        from_jax_program_run(args.run, args.out)
    else:
        from_run(args.run, args.out, args.step, args.val)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
