"""The one run loop of both training backends (``run_loop``), and what it needs from a backend.

A backend gives ``run_loop`` a trainer (``RunTrainer``), a checkpoint store (``RunStore``) and a
log writer (``RunLogWriter``), bundled as a ``BackendRun`` with the store and log still to be made
in the run folder. The loop restores the latest checkpoint, trains batch by batch with the shared
NaN guard (``core.check_finite``), writes the TensorBoard scalars and image grids (``image_grid``),
shows progress and saves checkpoints, also when stopped by Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from mefgan_tf.config import MEFGANConfig
from mefgan_tf.data import split_channels
from mefgan_tf.signals import handled
from mefgan_tf.training.core import batch_positions, check_finite


@dataclass
class BackendRun:
    """What ``run_loop`` needs from a backend (its store and log are made in the run folder only
    once it is locked), and what ``run.describe`` says of it."""

    trainer: Any
    store: Callable[[Path], Any]
    log: Callable[[Path | None], Any]
    replicas: int = 1
    precision: str | None = None


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
