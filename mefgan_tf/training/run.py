"""A `mefgan train` run (``train_run``): the cluster, the run folder's rules, a backend, the loop.

Two backends train with the same recipe, data order, loop, logs and resume rules:

- ``tensorflow`` (``tensorflow_backend.Trainer``): ``tf.function`` steps under ``tf.distribute``;
  TensorFlow checkpoints ``ckpt-N``;
- ``jax`` (``jax_backend.JaxTrainer``): Keras's stateless API under ``jax.jit``, for accelerator
  machines with JAX but no TensorFlow; checkpoints ``ckpt-N.npz`` (every array, optimizers
  included) and ``generator.weights.h5``, the latest generator as a Keras weight file.

The run folder is also a generator that ``mefgan fuse`` and ``mefgan export`` load. Its rules
(new or resumed config, what a resumed run keeps) are ``settings``; the loop is ``loop.run_loop``.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from mefgan_tf.checkpoint import read_config, read_metadata, write_metadata
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.errors import CommandError, require
from mefgan_tf.files import exclusive
from mefgan_tf.pipeline import open_batches
from mefgan_tf.signals import interrupts_noticed
from mefgan_tf.training.loop import BackendRun, run_loop
from mefgan_tf.training.settings import TrainOptions, check_backend, check_data, check_out_folder, note_changes, prepare


def cluster() -> tuple[bool, bool, int]:
    """(multi-worker, is chief, task index) from TF_CONFIG."""
    spec = json.loads(os.environ.get("TF_CONFIG") or "{}")
    tasks = sum(len(v) for v in spec.get("cluster", {}).values())
    task = spec.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in spec.get("cluster", {}))
    return tasks > 1, chief, index


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
    batches = open_batches(options.data, config, config.seed)
    check_data(out, metadata, batches)
    history = metadata.get("history", [])
    if resuming:
        history = history + note_changes(out, read_config(out), config)
    directory = out if chief else out / f"worker-{index}"
    run = build_backend(options, config, len(batches), None if resuming else options.init_generator, multi_worker)
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


def build_backend(options: TrainOptions, config: MEFGANConfig, batches_per_epoch: int, init_generator: str | None,
                  multi_worker: bool) -> BackendRun:
    """The trainer of ``options.backend``, started from ``init_generator``'s weights if given. Each
    backend is imported here, once chosen: TensorFlow and JAX are heavy, and the JAX backend refuses
    to load unless Keras runs on JAX (set by ``cli`` before Keras is imported)."""
    if options.backend == "jax":
        require("jax", "mefgan train --backend jax")
        try:
            from mefgan_tf.training.jax_backend import build_run
        except ImportError as err:
            raise CommandError(f"--backend jax: {err}") from None
    else:
        from mefgan_tf.training.tensorflow_backend import build_run
    return build_run(config, batches_per_epoch, init_generator, options.mixed_precision, multi_worker)


def describe(config, batches, replicas: int, precision, out: Path, resuming: bool, quiet: bool, backend: str) -> None:
    """One line on standard error: what the run trains on, and how (unless ``quiet``)."""
    if quiet:
        return
    action = "resuming" if resuming else "starting"
    print(
        f"{action} {out}: {len(batches.patches)} patches, {len(batches)} batches of {config.batch_size} per epoch, "
        f"{config.epochs} epochs, {backend}, {replicas} replica(s), {precision or 'float32'}, seed {config.seed}",
        file=sys.stderr,
    )
