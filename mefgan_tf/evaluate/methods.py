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
from mefgan_tf.fusion import load_fuser, resolve_detail
from mefgan_tf.resolution import WORK_SIZE
from mefgan_tf.scenes import DEFAULT_MULTI, images_by_stem

FuseFunction = Callable[[list[np.ndarray]], np.ndarray]
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


def parse_method(spec: str, multi: str | None = None, detail: int | None = None, original_io: bool = False,
                 work_size: int | None = WORK_SIZE) -> Method:
    """``mertens``, ``average``, ``[NAME=]mertens``, ``NAME=folder:PATH``, ``NAME=model:PATH`` or
    ``NAME=model-original-io:PATH``; ``multi`` and ``detail`` as ``load_fuser`` (None: the
    defaults; ``detail`` 0 for the authors' I/O, ``fusion.resolve_detail``), ``work_size`` too;
    ``original_io``: a model is run with the authors' I/O whatever its kind."""
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
    fuse = load_model(spec, path, multi, resolve_detail(detail, original_io), work_size)
    return Method(name or path.stem, "model", target, fuse=fuse, original_io=original_io)


def folder_files(spec: str, path: Path) -> dict[str, Path]:
    """The fused images of a folder method, by scene name; CommandError if ``path`` is no folder."""
    if not path.exists():
        raise CommandError(f"--method {spec!r}: {path} not found")
    if not path.is_dir():
        raise CommandError(f"--method {spec!r}: {path} is not a folder")
    return images_by_stem(path)


def load_model(spec: str, path: Path, multi: str | None, detail: int, work_size: int | None) -> FuseFunction:
    """The fusion of any model ``mefgan fuse --model`` takes (a checkpoint prefix too)."""
    try:
        return load_fuser(path, multi=multi or DEFAULT_MULTI, detail=detail, work_size=work_size)
    except CommandError as err:
        raise CommandError(f"--method {spec!r}: {err}") from None


def parse_methods(specs: Sequence[str], original_io: bool = False, multi: str | None = None,
                  detail: int | None = None, work_size: int | None = WORK_SIZE) -> list[Method]:
    """The methods of ``specs``; ``original_io`` gives every model the original's test-time I/O,
    ``multi`` their way to fuse three or more exposures (``scenes.MULTI``), ``detail`` the levels of
    detail they take from the exposures (``fusion.resolve_detail``), ``work_size`` the size their network
    fuses at (``resolution``)."""
    methods = [parse_method(s, multi, detail, original_io, work_size) for s in specs]
    if original_io and not any(m.kind == "model" for m in methods):
        raise CommandError("--original-io applies to model methods (NAME=model:PATH); none given")
    names = [m.name for m in methods]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CommandError(f"--method: name used twice: {', '.join(duplicates)} (give NAME=...)")
    return methods
