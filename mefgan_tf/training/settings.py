"""What a `mefgan train` run is asked to do (``TrainOptions``) and the rules its run folder keeps.

The run folder holds the checkpoints, ``mefgan.json`` (the config and the backend, so a resumed run
continues with the same settings) and TensorBoard logs under ``logs/``. Training into the same
folder again resumes where it stopped: the config comes from ``mefgan.json`` with this command's
changes (``resolve_config``), but never of the settings that fix the meaning of the saved data
position (``FIXED_ON_RESUME``), the backend or the patch file; changes are noted in its history.
"""
from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mefgan_tf.checkpoint import METADATA_FILE, read_config
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.errors import CommandError
from mefgan_tf.files import LOCK_NAME, check_folder_target

BACKENDS = ("tensorflow", "jax")
DEFAULT_DATA = "data/patches.h5"
DEFAULT_OUT = "checkpoints/run"
# Settings that fix the meaning of a saved data position or model: a resumed run must keep them.
FIXED_ON_RESUME = ("batch_size", "seed", "patch_size")


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


def check_backend(out: Path, metadata: dict, options: TrainOptions, multi_worker: bool) -> None:
    """A resumed run keeps its backend; the JAX backend runs on one machine in float32."""
    if options.backend not in BACKENDS:
        raise CommandError(f"--backend {options.backend}: choose one of {', '.join(BACKENDS)}")
    saved = metadata.get("backend", "tensorflow") if metadata else None
    if saved is not None and saved != options.backend:
        raise CommandError(f"{out}: this run was trained with --backend {saved}; resume it with the same backend")
    if options.backend == "jax" and (multi_worker or options.mixed_precision):
        raise CommandError("--backend jax trains on one machine in float32 (no TF_CONFIG, no --mixed-precision)")


def checkpoint_step(out: Path) -> int:
    """The step of the latest checkpoint in the run folder ``out`` (0 when there is none)."""
    import tensorflow as tf  # lazy: only a resumed run's notice needs it; `mefgan train --help` and JAX runs do not

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
