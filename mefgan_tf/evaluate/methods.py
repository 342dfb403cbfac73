"""The methods `mefgan evaluate` scores (``--method``): built-in baselines, folders of fused images, models.

A model is loaded once, here, by ``load_fuser`` (what `mefgan fuse --model` takes, a checkpoint
prefix too); the scorer only calls the method's ``fuse``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mefgan_tf.baselines import BASELINES
from mefgan_tf.errors import CommandError
from mefgan_tf.fusion import FusionOptions
from mefgan_tf.models import load_fuser
from mefgan_tf.scenes import images_by_stem

FuseFunction = Callable[[list[np.ndarray]], np.ndarray]
OptionsFor = Callable[[bool], FusionOptions]  # a model's fusion options, by whether it runs with the authors' I/O
MODEL_ORIGINAL_IO = "model-original-io"


@dataclass
class Method:
    """A method to score: a built-in baseline, a folder of fused images, or a model."""

    name: str
    kind: str  # "builtin", "folder" or "model"
    target: str
    fuse: FuseFunction | None = None
    files: dict[str, Path] = field(default_factory=dict)
    original_io: bool = False  # a model run with the original's test-time I/O


def default_options(original_io: bool) -> FusionOptions:
    """`mefgan fuse`'s defaults (no detail transfer with the authors' I/O)."""
    return FusionOptions.resolve(original_io=original_io)


def parse_method(spec: str, options: OptionsFor = default_options, original_io: bool = False) -> Method:
    """``mertens``, ``average``, ``[NAME=]mertens``, ``NAME=folder:PATH``, ``NAME=model:PATH`` or
    ``NAME=model-original-io:PATH``; a model fuses as ``options`` gives for its I/O; ``original_io``:
    a model is run with the authors' I/O whatever its kind."""
    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = "", spec
    kind, colon, target = rest.partition(":")
    if not colon:
        if rest not in BASELINES:
            known = ", ".join(BASELINES)
            raise CommandError(f"--method {spec!r}: unknown method (built-ins: {known}; or NAME=folder:PATH, NAME=model:PATH)")
        return Method(name or rest, "builtin", rest, fuse=BASELINES[rest])
    if kind not in ("folder", "model", MODEL_ORIGINAL_IO) or not target:
        raise CommandError(f"--method {spec!r}: expected NAME=folder:PATH, NAME=model:PATH or NAME={MODEL_ORIGINAL_IO}:PATH")
    path = Path(target)
    if kind == "folder":
        return Method(name or path.name, kind, target, files=folder_files(spec, path))
    original_io = original_io or kind == MODEL_ORIGINAL_IO
    fuse = load_model(spec, path, options(original_io))
    return Method(name or path.stem, "model", target, fuse=fuse, original_io=original_io)


def folder_files(spec: str, path: Path) -> dict[str, Path]:
    """The fused images of a folder method, by scene name; CommandError if ``path`` is no folder."""
    if not path.exists():
        raise CommandError(f"--method {spec!r}: {path} not found")
    if not path.is_dir():
        raise CommandError(f"--method {spec!r}: {path} is not a folder")
    return images_by_stem(path)


def load_model(spec: str, path: Path, options: FusionOptions) -> FuseFunction:
    """The fusion of any model ``mefgan fuse --model`` takes (a checkpoint prefix too)."""
    try:
        return load_fuser(path, options)
    except CommandError as err:
        raise CommandError(f"--method {spec!r}: {err}") from None


def parse_methods(specs: Sequence[str], original_io: bool = False, options: OptionsFor = default_options) -> list[Method]:
    """The methods of ``specs``; ``original_io`` gives every model the original's test-time I/O,
    ``options`` their fusion options (``fusion.FusionOptions``) by whether they run with it."""
    methods = [parse_method(s, options, original_io) for s in specs]
    if original_io and not any(m.kind == "model" for m in methods):
        raise CommandError("--original-io applies to model methods (NAME=model:PATH); none given")
    names = [m.name for m in methods]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CommandError(f"--method: name used twice: {', '.join(duplicates)} (give NAME=...)")
    return methods
