"""A `mefgan train` run: its folder, its config (new or resumed), the resume rules, the cluster,
and the one run loop of both backends (``run_loop``, started by ``train_run``).

The run folder holds the checkpoints (G, D, both optimizers, the step counter, the data position),
``mefgan.json`` (the config and the backend, so a resumed run continues with the same settings) and
TensorBoard logs under ``logs/``. Training into the same folder again resumes where it stopped.
The folder is also a generator that ``mefgan fuse`` and ``mefgan export`` load.

Two backends train with the same recipe, data order, loop, logs and resume rules:

- ``tensorflow`` (``trainer.Trainer``): ``tf.function`` steps under ``tf.distribute``; TensorFlow
  checkpoints ``ckpt-N``;
- ``jax`` (``jax_trainer.JaxTrainer``): Keras's stateless API under ``jax.jit``, for accelerator
  machines with JAX but no TensorFlow; checkpoints ``ckpt-N.npz`` (every array, optimizers
  included) and ``generator.weights.h5``, the latest generator as a Keras weight file.

A backend gives ``run_loop`` a trainer (``RunTrainer``), a checkpoint store (``RunStore``) and a
log writer (``RunLogWriter``).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mefgan_tf.checkpoint import METADATA_FILE, read_config, read_metadata, write_metadata
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.errors import CommandError, require
from mefgan_tf.files import LOCK_NAME, check_folder_target, exclusive
from mefgan_tf.signals import interrupts_noticed

BACKENDS = ("tensorflow", "jax")
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
    backend: str = "tensorflow"


def prepare(options: TrainOptions, draw_seed: bool = True) -> tuple[MEFGANConfig, bool]:
    """The run's config and whether it resumes, checked (before anything is built or written)."""
    if options.max_steps is not None and options.max_steps < 1:
        raise CommandError(f"--max-steps {options.max_steps}: must be at least 1")
    return resolve_config(options.overrides, options.out, draw_seed)


def train_run(options: TrainOptions) -> None:
    """Train into the run folder ``options.out``: a new run, or the rest of an interrupted one."""
    out = options.out
    multi_worker, chief, index = cluster()
    metadata = read_metadata(out)
    check_backend(out, metadata, options, multi_worker)
    config, resuming = prepare(options)
    check_out_folder(out)
    started = metadata.get("init_generator")
    if resuming and options.init_generator and options.init_generator != started:
        raise CommandError(f"--init-generator {options.init_generator}: {out} is a run already, started from "
                           f"{started or 'random weights'}, which resumes from its own checkpoint; drop --init-generator "
                           "to resume it, or give a new --out to start from that generator")
    if multi_worker and "seed" not in options.overrides and not resuming:
        raise CommandError("multi-worker training needs --seed (the same on every worker) so all read the same batches")
    from mefgan_tf.pipeline import open_batches

    batches = open_batches(options.data, config, config.seed)
    check_data(out, metadata, batches)
    history = metadata.get("history", [])
    if resuming:
        history = history + note_changes(out, read_config(out), config)
    directory = out if chief else out / f"worker-{index}"
    build = build_tensorflow_run if options.backend == "tensorflow" else build_jax_run
    run = build(config, options, batches, not resuming)
    init = metadata.get("init_generator") if resuming else options.init_generator
    with contextlib.ExitStack() as held:
        if chief:  # one run at a time in a folder: a second one is refused, naming the first
            held.enter_context(exclusive(out, "run folder"))
            extra = {"history": history} if history else {}
            write_metadata(out, config, data=str(options.data), patches=len(batches.patches), init_generator=init,
                           backend=options.backend, **extra)
        describe(config, batches, run.replicas, run.precision, out, resuming, options.quiet, options.backend)
        with interrupts_noticed(terminate=True):  # SIGTERM stops a run as Ctrl-C does: finished batches kept
            store, log = run.store(directory), run.log(directory / "logs" if chief else None)
            report = run_loop(run.trainer, store, log, batches, options.max_steps, is_chief=chief, progress=not options.quiet)
    if chief and not options.quiet:
        print(
            f"trained {report.steps_done}/{report.total_steps} steps; checkpoint {report.last_checkpoint}; "
            f"`mefgan fuse` and `mefgan export` load {out}",
            file=sys.stderr,
        )


def check_backend(out: Path, metadata: dict, options: TrainOptions, multi_worker: bool) -> None:
    """A resumed run keeps its backend; the JAX backend runs on one machine in float32."""
    if options.backend not in BACKENDS:
        raise CommandError(f"--backend {options.backend}: choose one of {', '.join(BACKENDS)}")
    saved = metadata.get("backend", "tensorflow") if metadata else None
    if saved is not None and saved != options.backend:
        raise CommandError(f"{out}: this run was trained with --backend {saved}; resume it with the same backend")
    if options.backend == "jax" and (multi_worker or options.mixed_precision):
        raise CommandError("--backend jax trains on one machine in float32 (no TF_CONFIG, no --mixed-precision)")


@dataclass
class BackendRun:
    """What ``run_loop`` needs from a backend (its store and log are made in the run folder only
    once it is locked), and what ``describe`` says of it."""

    trainer: Any
    store: Callable[[Path], Any]
    log: Callable[[Path | None], Any]
    replicas: int = 1
    precision: str | None = None


def build_tensorflow_run(config: MEFGANConfig, options: TrainOptions, batches, new: bool) -> BackendRun:
    """The TensorFlow trainer under the cluster's strategy, its checkpoint manager and TensorBoard log."""
    strategy = make_strategy(cluster()[0])
    import keras
    import tensorflow as tf

    from mefgan_tf.trainer import RunLog, TensorFlowStore, Trainer

    precision = ("float16" if tf.config.list_physical_devices("GPU") else "bfloat16") if options.mixed_precision else None
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same losses (no measurable cost on CPU)
    trainer = Trainer(config, len(batches), strategy, precision)
    if options.init_generator and new:
        initialize_generator(trainer.generator, options.init_generator, trainer.strategy.scope())
    return BackendRun(trainer, lambda folder: TensorFlowStore(trainer, folder), lambda logs: RunLog(logs, config),
                      strategy.num_replicas_in_sync, precision)


def build_jax_run(config: MEFGANConfig, options: TrainOptions, batches, new: bool) -> BackendRun:
    """The JAX trainer, its ``.npz`` checkpoints and TensorBoard log (Keras must run on JAX: see ``cli``)."""
    require("jax", "mefgan train --backend jax")
    try:
        from mefgan_tf.jax_trainer import JaxLog, JaxStore, JaxTrainer
    except ImportError as err:
        raise CommandError(f"--backend jax: {err}") from None

    from mefgan_tf.checkpoint import keras_generator_weights

    if options.init_generator and new and keras_generator_weights(options.init_generator) is None:
        raise CommandError(f"--init-generator {options.init_generator}: no JAX run folder or Keras .weights.h5 file "
                           "(under --backend jax; a TensorFlow checkpoint needs TensorFlow to read: see docs/training.md)")
    trainer = JaxTrainer(config, len(batches))
    if options.init_generator and new:
        initialize_generator(trainer.g.model, options.init_generator)
        trainer.g.read_back()
    return BackendRun(trainer, lambda folder: JaxStore(trainer, folder), lambda logs: JaxLog(logs, config))


def initialize_generator(generator, path: str, scope=None) -> None:
    """Copy the generator weights of the model ``path`` (a run folder of either backend, a checkpoint
    or a Keras ``.weights.h5`` file) into ``generator`` (D stays fresh)."""
    from mefgan_tf.checkpoint import load_generator

    source = load_generator(path)
    with scope or contextlib.nullcontext():
        for variable, value in zip(generator.weights, source.weights, strict=True):
            variable.assign(np.asarray(value))


class RunTrainer(Protocol):
    """A backend's trainer, as ``run_loop`` drives it."""

    config: MEFGANConfig
    batches_per_epoch: int

    @property
    def steps_done(self) -> int: ...

    def set_position(self, steps_done: int) -> None: ...

    def batch_stream(self, batches, epoch: int, start: int) -> Iterator: ...

    def train_batch(self, batch, index: int) -> tuple[Any, Any]: ...

    def local_slices(self, batch) -> list[np.ndarray]: ...

    def current_learning_rate(self) -> float: ...


class RunStore(Protocol):
    """A backend's checkpoints in the run folder."""

    @property
    def latest(self) -> str | None: ...

    def restore_latest(self) -> None: ...

    def save(self, steps_done: int) -> None: ...


class RunLogWriter(Protocol):
    """A backend's TensorBoard log."""

    def write(self, step: int, result, lr: float, patches_per_second: float, images=None) -> None: ...

    def close(self) -> None: ...


@dataclass
class RunReport:
    """How a call of ``run_loop`` ended."""

    steps_done: int
    total_steps: int
    resumed_from: int
    last_checkpoint: str | None
    last: Any


def run_loop(
    trainer: RunTrainer,
    store: RunStore,
    log: RunLogWriter,
    batches,
    max_steps: int | None = None,
    is_chief: bool = True,
    progress: bool = True,
    on_step: Callable[[int, Any], None] | None = None,
) -> RunReport:
    """Train from the latest checkpoint of ``store`` (if any) to the end or ``max_steps``.

    Checkpoints every ``checkpoint_every`` steps, every ``checkpoint_minutes``, at each epoch end and
    when stopping (Ctrl-C and SIGTERM keep the finished batches). A non-finite loss raises
    ``CommandError`` without saving, so the latest checkpoint stays the last good one.
    """
    from tqdm import tqdm

    from mefgan_tf.signals import handled
    from mefgan_tf.training import batch_positions, check_finite

    config, per_epoch = trainer.config, trainer.batches_per_epoch
    if store.latest:
        store.restore_latest()
    start = done = trainer.steps_done
    total = config.epochs * per_epoch
    stop = total if max_steps is None else min(total, max_steps)
    if start >= stop and is_chief:
        limit = f"--max-steps {max_steps}" if max_steps is not None and max_steps < total else f"all {config.epochs} epochs"
        print(f"mefgan train: note: nothing to train: the run has {start} steps already ({limit}); raise --max-steps "
              "or --epochs to train on", file=sys.stderr)
    shown = None if progress and is_chief else True  # None: on a terminal only, never into files and pipes
    bar = tqdm(total=stop, initial=done, unit="step", disable=shown, dynamic_ncols=True)
    lines = ProgressLines(stop, progress and is_chief and bar.disable)  # a log file or a pipe: a line now and then
    result, stream, current = None, None, None
    saved_at, saved_time = done, time.monotonic()
    interval = 60.0 * config.checkpoint_minutes if config.checkpoint_minutes > 0 else float("inf")
    try:
        for epoch, index in batch_positions(done, stop, per_epoch):
            if epoch != current:
                stream, current = iter(trainer.batch_stream(batches, epoch, index)), epoch
            batch = next(stream)
            began, lr = time.perf_counter(), trainer.current_learning_rate()
            result, fused = trainer.train_batch(batch, index)
            local = trainer.local_slices(batch)
            check_finite(result, done + 1, store.latest, lambda local=local: local, batches.patches.path)
            rate = config.batch_size / (time.perf_counter() - began)
            done += 1
            trainer.set_position(done)
            images = image_grid(local[0], fused) if is_chief and done % config.image_summary_every == 0 else None
            log.write(done, result, lr, rate, images)
            bar.set_postfix_str(postfix(result, lr, rate), refresh=False)
            bar.update(1)
            lines.show(done, result, lr, rate)
            if on_step is not None:
                on_step(done, result)
            due = time.monotonic() - saved_time >= interval
            if done % config.checkpoint_every == 0 or index == per_epoch - 1 or done == stop or due:
                store.save(done)
                saved_at, saved_time = done, time.monotonic()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep every finished batch, then stop
        handled()
        bar.close()
        if done > saved_at:
            store.save(done)
        kept = store.latest
        if is_chief:
            print(f"stopped after batch {done}: " + (f"checkpoint {kept} holds it; run the same command to resume"
                  if kept else "no batch was finished, nothing to keep"), file=sys.stderr)
        raise
    finally:
        bar.close()
        log.close()
    return RunReport(done, total, start, store.latest, result)


GRID_IMAGES = 4


def image_grid(batch, fused, count: int = GRID_IMAGES) -> np.ndarray:
    """One row per example: over | under | fused | gt, as a [1, rows*S, 4*S, 3] image for TensorBoard."""
    from mefgan_tf.data import split_channels

    batch = np.asarray(batch)[:count]
    over, under, gt = split_channels(batch)
    rows = np.concatenate([over, under, np.asarray(fused)[:count], gt], axis=2)
    return np.concatenate(list(rows), axis=0)[None]


PROGRESS_LINE_S = 60.0  # seconds between progress lines where there is no bar


class ProgressLines:
    """Where the bar is not shown (standard error is a file or a pipe): a progress line for the
    first batch, then one every ``PROGRESS_LINE_S`` seconds and one for the last."""

    def __init__(self, stop: int, enabled: bool) -> None:
        self.stop, self.enabled, self.last = stop, enabled, -math.inf

    def show(self, done: int, result, lr: float, rate: float) -> None:
        now = time.monotonic()
        if self.enabled and (now - self.last >= PROGRESS_LINE_S or done == self.stop):
            print(f"step {done}/{self.stop}: {postfix(result, lr, rate)}", file=sys.stderr, flush=True)
            self.last = now


def postfix(result, lr: float, rate: float) -> str:
    """The progress bar's numbers for a batch."""
    structure = f", 1-MEF-SSIM {result.structure:.3g}" if result.structure else ""
    return (
        f"G {result.g_loss:.4g} (adv {result.adversarial:.3g}, content {result.content:.3g}{structure}) "
        f"D {result.d_loss:.3g} D(real) {result.d_real:.2f} D(fake) {result.d_fake:.2f} "
        f"lr {lr:.2e} {rate:.1f} patches/s"
    )


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
    trained_on = Path(metadata.get("data") or batches.patches.path)
    given = Path(batches.patches.path)
    if trained_on.exists() and not os.path.samefile(trained_on, given):
        raise CommandError(f"{given}: {out} was trained on {trained_on}, a run keeps its data; resume with "
                           f"--data {trained_on} or choose a new --out")


def describe(config, batches, replicas: int, precision, out: Path, resuming: bool, quiet: bool, backend: str) -> None:
    if quiet:
        return
    action = "resuming" if resuming else "starting"
    print(
        f"{action} {out}: {len(batches.patches)} patches, {len(batches)} batches of {config.batch_size} per epoch, "
        f"{config.epochs} epochs, {backend}, {replicas} replica(s), {precision or 'float32'}, seed {config.seed}",
        file=sys.stderr,
    )
