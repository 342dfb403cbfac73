"""`mefgan train`: train MEF-GAN on a patch file with the original recipe; resumable and distributable.

The run folder ``--out`` holds the checkpoints (G, D, both optimizers, the step counter, the data
position), ``mefgan.json`` (the config, so a resumed run continues with the same settings) and
TensorBoard logs under ``logs/``. Running the same command again resumes where it stopped. The
folder is also a generator checkpoint that ``mefgan fuse`` and ``mefgan export`` load.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from mefgan_tf.checkpoint import METADATA_FILE, read_config, read_metadata, write_metadata
from mefgan_tf.config import MEFGANConfig, field_value
from mefgan_tf.errors import CommandError
from mefgan_tf.files import check_folder_target

DEFAULT_DATA = "data/patches.h5"
DEFAULT_OUT = "checkpoints/run"
# Settings that fix the meaning of a saved data position or model: a resumed run must keep them.
FIXED_ON_RESUME = ("batch_size", "seed", "patch_size")
# Flag -> config field for the flags that override the config.
FLAG_FIELDS = {
    "batch_size": "batch_size",
    "epochs": "epochs",
    "learning_rate": "learning_rate",
    "seed": "seed",
    "checkpoint_every": "checkpoint_every",
    "random_flips": "random_flips",
}


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = MEFGANConfig()
    parser.add_argument("--data", default=DEFAULT_DATA, help="HDF5 patch file from `mefgan patches` (default: %(default)s)")
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help="run folder; an existing one is resumed where it stopped (default: %(default)s)"
    )
    parser.add_argument("--config", help="YAML or JSON file of config overrides (see --print-config for the keys)")
    parser.add_argument(
        "--paper", action="store_true", help="the paper's variant: learning rate 6e-4 and 2 epochs (code: 3e-4, 4)"
    )
    parser.add_argument("--batch-size", type=int, help=f"global batch size (default: {defaults.batch_size})")
    parser.add_argument("--epochs", type=int, help=f"epochs over the patch file (default: {defaults.epochs})")
    parser.add_argument("--learning-rate", type=float, help=f"base learning rate of G; D uses 2x (default: {defaults.learning_rate})")
    parser.add_argument(
        "--max-steps", type=int, help="stop (after a checkpoint) once this many batches are trained in total (default: all epochs)"
    )
    parser.add_argument(
        "--checkpoint-every", type=int, help=f"checkpoint every N steps, and at each epoch end (default: {defaults.checkpoint_every})"
    )
    parser.add_argument(
        "--seed", type=int, help="seed of weights, shuffling and flips: same seed, same losses on CPU (default: random, saved)"
    )
    parser.add_argument(
        "--random-flips", action="store_true", default=None,
        help="randomly flip patches left-right and up-down (default: off, as the original)",
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
        help="start G from this mefgan-tf checkpoint (e.g. checkpoints/reference) instead of random weights, to "
        "fine-tune it on your data; D starts fresh. Only for a new run: a resumed run continues from its own checkpoint",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as config values (YAML syntax), each checked against its field's type."""
    import yaml

    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set {item}: expected KEY=VALUE")
        try:
            values[key.strip()] = field_value(key.strip(), yaml.safe_load(text))
        except yaml.YAMLError:
            raise CommandError(f"--set {item}: {text!r} is not a valid value") from None
        except CommandError as err:
            raise CommandError(f"--set {item}: {err}") from None
    return values


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Config values the user asked for on this command line (file, flags, --set), in that order."""
    values: dict[str, Any] = {}
    if args.paper:
        values.update(learning_rate=6e-4, epochs=2)
    if args.config:
        from_file, defaults = MEFGANConfig.from_file(args.config).to_dict(), MEFGANConfig().to_dict()
        values.update({k: v for k, v in from_file.items() if v != defaults[k]})
    values.update({field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None})
    values.update(parse_set(args.set))
    return values


def resolve_config(args: argparse.Namespace, out: Path) -> tuple[MEFGANConfig, bool]:
    """The run's config and whether it resumes a folder with a saved config."""
    wanted = overrides(args)
    resuming = (out / METADATA_FILE).exists()
    if not resuming:
        config = MEFGANConfig().replace(**wanted)
        return (config if config.seed is not None else config.replace(seed=secrets.randbelow(2**31))), False
    saved = read_config(out)
    changed = [k for k in FIXED_ON_RESUME if k in wanted and wanted[k] != getattr(saved, k)]
    if changed:
        was = ", ".join(f"{k} {getattr(saved, k)}" for k in changed)
        raise CommandError(f"{out}: this run was started with {was}; resume with the same values or choose a new --out")
    return saved.replace(**wanted), True


def config_changes(saved: MEFGANConfig, config: MEFGANConfig) -> dict[str, list]:
    """The settings that differ between a run's saved config and the one it resumes with: key -> [old, new]."""
    old, new = saved.to_dict(), config.to_dict()
    return {k: [old[k], new[k]] for k in new if new[k] != old[k]}


def validate(config: MEFGANConfig, args: argparse.Namespace) -> None:
    if config.batch_size < 1 or config.epochs < 1 or config.checkpoint_every < 1:
        raise CommandError("--batch-size, --epochs and --checkpoint-every must be at least 1")
    if args.max_steps is not None and args.max_steps < 1:
        raise CommandError("--max-steps must be at least 1")
    if config.learning_rate <= 0:
        raise CommandError(f"--learning-rate {config.learning_rate:g}: must be positive")
    if config.lr_decay_rate <= 0 or config.d_lr_factor <= 0:
        raise CommandError("lr_decay_rate and d_lr_factor must be positive")


def check_out_folder(out: Path) -> None:
    """An existing --out must be a run folder (or empty) where we may write; never train into someone
    else's files."""
    check_folder_target(out)
    if out.is_dir() and any(out.iterdir()) and not (out / METADATA_FILE).exists():
        raise CommandError(f"{out}: folder is not empty and holds no mefgan run ({METADATA_FILE}); choose a new --out")


def cluster() -> tuple[bool, bool, int]:
    """(multi-worker, is chief, task index) from TF_CONFIG."""
    spec = json.loads(os.environ.get("TF_CONFIG") or "{}")
    tasks = sum(len(v) for v in spec.get("cluster", {}).values())
    task = spec.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in spec.get("cluster", {}))
    return tasks > 1, chief, index


def make_strategy(multi_worker: bool):
    """MultiWorkerMirrored with TF_CONFIG, Mirrored on several local GPUs, else the default (one device)."""
    import tensorflow as tf

    if multi_worker:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    config, resuming = resolve_config(args, out)
    validate(config, args)
    if args.print_config:
        print(config.to_json())
        return 0
    check_out_folder(out)
    multi_worker, chief, index = cluster()
    if multi_worker and args.seed is None and not resuming:
        raise CommandError("multi-worker training needs --seed (the same on every worker) so all read the same batches")

    strategy = make_strategy(multi_worker)
    import keras
    import tensorflow as tf

    from mefgan_tf.pipeline import open_batches
    from mefgan_tf.trainer import Trainer, train

    batches = open_batches(args.data, config, config.seed)
    metadata = read_metadata(out)
    check_data(out, metadata, batches)
    history = metadata.get("history", [])
    if resuming:
        history = history + note_changes(out, read_config(out), config)
    precision = ("float16" if tf.config.list_physical_devices("GPU") else "bfloat16") if args.mixed_precision else None
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same losses (no measurable cost on CPU)
    trainer = Trainer(config, len(batches), strategy, precision)
    init = metadata.get("init_generator") if resuming else args.init_generator
    if args.init_generator and not resuming:
        initialize_generator(trainer, args.init_generator)
    out.mkdir(parents=True, exist_ok=True)
    if chief:
        extra = {"history": history} if history else {}
        write_metadata(out, config, data=str(args.data), patches=len(batches.patches), init_generator=init, **extra)
    directory = out if chief else out / f"worker-{index}"
    describe(config, batches, strategy, precision, out, resuming, args.quiet)
    report = train(trainer, batches, directory, args.max_steps, is_chief=chief, progress=not args.quiet)
    if chief and not args.quiet:
        print(
            f"trained {report.steps_done}/{report.total_steps} steps; checkpoint {report.last_checkpoint}; "
            f"`mefgan fuse` and `mefgan export` load {out}",
            file=sys.stderr,
        )
    return 0


def initialize_generator(trainer, path: str) -> None:
    """Copy the generator weights of the checkpoint ``path`` into the trainer's G (D stays fresh)."""
    from mefgan_tf.checkpoint import load_generator

    source = load_generator(path)
    with trainer.strategy.scope():
        for variable, value in zip(trainer.generator.weights, source.weights, strict=True):
            variable.assign(value)


def checkpoint_step(out: Path) -> int:
    """The step of the latest checkpoint in the run folder ``out`` (0 when there is none)."""
    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(str(out))
    return int(prefix.rsplit("-", 1)[1]) if prefix else 0


def note_changes(out: Path, saved: MEFGANConfig, config: MEFGANConfig) -> list[dict]:
    """Say which settings a resumed run changes; the entry recorded in its ``mefgan.json`` history."""
    changes = config_changes(saved, config)
    if not changes:
        return []
    step = checkpoint_step(out)
    listed = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changes.items())
    print(
        f"mefgan train: notice: resuming {out} at step {step} with changed settings: {listed} "
        f"(recorded in {out / METADATA_FILE}, \"history\")",
        file=sys.stderr,
    )
    return [{"step": step, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changed": changes}]


def check_data(out: Path, metadata: dict, batches) -> None:
    """A resumed run must read a patch file of the same size, or its saved data position means nothing."""
    saved = metadata.get("patches")
    if saved is not None and saved != len(batches.patches):
        raise CommandError(
            f"{batches.patches.path}: {len(batches.patches)} patches, but {out} was trained on a file of {saved}; "
            "resume with the same --data or choose a new --out"
        )


def describe(config, batches, strategy, precision, out: Path, resuming: bool, quiet: bool) -> None:
    if quiet:
        return
    action = "resuming" if resuming else "starting"
    print(
        f"{action} {out}: {len(batches.patches)} patches, {len(batches)} batches of {config.batch_size} per epoch, "
        f"{config.epochs} epochs, {strategy.num_replicas_in_sync} replica(s), {precision or 'float32'}, seed {config.seed}",
        file=sys.stderr,
    )
