"""A `mefgan train` run folder: its config (new or resumed), the resume rules, the cluster, and ``train_run``.

The run folder holds the checkpoints (G, D, both optimizers, the step counter, the data position),
``mefgan.json`` (the config, so a resumed run continues with the same settings) and TensorBoard
logs under ``logs/``. Training into the same folder again resumes where it stopped. The folder is
also a generator checkpoint that ``mefgan fuse`` and ``mefgan export`` load.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mefgan_tf.checkpoint import METADATA_FILE, read_config, read_metadata, write_metadata
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.errors import CommandError
from mefgan_tf.files import LOCK_NAME, check_folder_target, exclusive

DEFAULT_DATA = "data/patches.h5"
DEFAULT_OUT = "checkpoints/run"
# Settings that fix the meaning of a saved data position or model: a resumed run must keep them.
FIXED_ON_RESUME = ("batch_size", "seed", "patch_size")


def resolve_config(wanted: dict[str, Any], out: Path, draw_seed: bool = True) -> tuple[MEFGANConfig, bool]:
    """The run's config, from the settings ``wanted`` on this command line, and whether it resumes a
    folder with a saved config (whose settings it keeps unless ``wanted`` changes them). A new run
    without a seed gets a random one (``draw_seed``; else its seed stays None)."""
    resuming = (out / METADATA_FILE).exists()
    if not resuming:
        config = MEFGANConfig().replace(**wanted)
        if config.seed is None and draw_seed:
            config = config.replace(seed=secrets.randbelow(2**31))
        return config, False
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


def check_out_folder(out: Path) -> None:
    """An existing --out must be a run folder (or empty) where we may write; never train into someone
    else's files."""
    check_folder_target(out)
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()) and not (out / METADATA_FILE).exists():
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


@dataclass(frozen=True)
class TrainOptions:
    """What ``mefgan train`` is asked to do, besides the config settings (``overrides``)."""

    data: Path = Path(DEFAULT_DATA)
    out: Path = Path(DEFAULT_OUT)
    overrides: dict[str, Any] = field(default_factory=dict)  # config values from --paper, --config, flags, --set
    max_steps: int | None = None
    init_generator: str | None = None
    mixed_precision: bool = False
    quiet: bool = False


def prepare(options: TrainOptions, draw_seed: bool = True) -> tuple[MEFGANConfig, bool]:
    """The run's config and whether it resumes, checked (before anything is built or written)."""
    if options.max_steps is not None and options.max_steps < 1:
        raise CommandError(f"--max-steps {options.max_steps}: must be at least 1")
    return resolve_config(options.overrides, options.out, draw_seed)


def train_run(options: TrainOptions) -> None:
    """Train into the run folder ``options.out``: a new run, or the rest of an interrupted one."""
    out = options.out
    config, resuming = prepare(options)
    check_out_folder(out)
    multi_worker, chief, index = cluster()
    if multi_worker and "seed" not in options.overrides and not resuming:
        raise CommandError("multi-worker training needs --seed (the same on every worker) so all read the same batches")

    strategy = make_strategy(multi_worker)
    import keras
    import tensorflow as tf

    from mefgan_tf.pipeline import open_batches
    from mefgan_tf.signals import interrupts_noticed
    from mefgan_tf.trainer import Trainer, train

    batches = open_batches(options.data, config, config.seed)
    metadata = read_metadata(out)
    check_data(out, metadata, batches)
    history = metadata.get("history", [])
    if resuming:
        history = history + note_changes(out, read_config(out), config)
    precision = ("float16" if tf.config.list_physical_devices("GPU") else "bfloat16") if options.mixed_precision else None
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same losses (no measurable cost on CPU)
    trainer = Trainer(config, len(batches), strategy, precision)
    init = metadata.get("init_generator") if resuming else options.init_generator
    if options.init_generator and not resuming:
        initialize_generator(trainer, options.init_generator)
    with contextlib.ExitStack() as held:
        if chief:  # one run at a time in a folder: a second one is refused, naming the first
            held.enter_context(exclusive(out, "run folder"))
            extra = {"history": history} if history else {}
            write_metadata(out, config, data=str(options.data), patches=len(batches.patches), init_generator=init, **extra)
        directory = out if chief else out / f"worker-{index}"
        describe(config, batches, strategy, precision, out, resuming, options.quiet)
        with interrupts_noticed(terminate=True):  # SIGTERM stops a run as Ctrl-C does: finished batches kept
            report = train(trainer, batches, directory, options.max_steps, is_chief=chief, progress=not options.quiet)
    if chief and not options.quiet:
        print(
            f"trained {report.steps_done}/{report.total_steps} steps; checkpoint {report.last_checkpoint}; "
            f"`mefgan fuse` and `mefgan export` load {out}",
            file=sys.stderr,
        )


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
