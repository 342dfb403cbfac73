"""The Python API: fuse exposures in a few lines, as `mefgan fuse` does.

    import mefgan_tf

    fused = mefgan_tf.fuse(["dark.jpg", "bright.jpg"])       # float32 RGB in [0, 1]
    mefgan_tf.write_image("fused.png", fused)

    model = mefgan_tf.load_model("export/mefgan")            # a checkpoint, SavedModel or .tflite
    fused = model([mefgan_tf.read_image(p) for p in paths])  # any number of exposures, any order

Exposures are paths or arrays (uint8, uint16, or float in [0, 1]) of one size, in any order.
The first call loads TensorFlow with its start-up messages hidden.
"""
from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.images import InputNote, read_image, to_float, write_image

__all__ = ["fuse", "load_model", "read_image", "write_image"]

Exposure = str | os.PathLike | np.ndarray


def load_model(model: str | os.PathLike | None = None, tile: int | str | None = "auto", progress: bool | None = False,
               multi: str | None = None, detail: int | None = None):
    """A ``Fuser`` (call it with a list of exposures) for ``model``: the shipped generator (None), a
    mefgan-tf checkpoint folder, a SavedModel from ``mefgan export`` (or its folder of numbered
    versions) or a ``.tflite`` file. ``tile``: "auto" (bounded memory), None (whole image) or a side
    in pixels; ``progress``: show a progress bar (None: on a terminal only); ``multi``: how three or
    more exposures are fused (``fusion.MULTI``; None: the default, as `mefgan fuse`); ``detail``: the
    finest pyramid levels taken from the exposures (``pyramid.DETAIL_LEVELS`` when None; 0: the network's
    own fusion)."""
    from mefgan_tf.environment import import_tensorflow_quietly, set_environment

    set_environment()
    import_tensorflow_quietly()
    from mefgan_tf.fusion import DEFAULT_MULTI, load_fuser, resolve_detail

    return load_fuser(model, tile, progress, multi or DEFAULT_MULTI, resolve_detail(detail))


def prepare(exposures: Sequence[Exposure], align: bool | None = None, deghost: bool | None = None) -> list[np.ndarray]:
    """The exposures as arrays, aligned and deghosted as asked (``align.prepare``), each note an ``InputNote``."""
    from mefgan_tf import align as aligning

    images = [as_exposure(e) for e in exposures]
    if align is None:
        align = aligning.ALIGN_BY_DEFAULT
    if deghost is None:
        deghost = aligning.DEGHOST_BY_DEFAULT
    names = [Path(e).name if isinstance(e, (str, os.PathLike)) else f"exposure {i + 1}" for i, e in enumerate(exposures)]
    images, notes = aligning.prepare(images, align, deghost, names)
    for note in notes:
        warnings.warn(note, InputNote, stacklevel=3)
    return images


@functools.cache
def _default_model():
    return load_model()


def as_exposure(exposure: Exposure) -> np.ndarray:
    """RGB float32 [0, 1] of a path (read as `mefgan fuse` reads it) or an array."""
    if isinstance(exposure, (str, os.PathLike)):
        return read_image(Path(exposure))
    image = np.asarray(exposure)
    if image.ndim != 3 or image.shape[2] != 3:
        raise CommandError(f"an exposure has shape {list(image.shape)}; expected (height, width, 3) RGB")
    if image.dtype in (np.uint8, np.uint16):
        return to_float(image)
    if not np.issubdtype(image.dtype, np.floating):
        raise CommandError(f"an exposure is {image.dtype}; expected uint8, uint16 or floats in [0, 1]")
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def fuse(exposures: Sequence[Exposure], model=None, tile: int | str | None = "auto", align: bool | None = None,
         deghost: bool | None = None) -> np.ndarray:
    """Fuse two or more exposures of one scene (paths or arrays, any order) into one RGB float32
    image in [0, 1]. ``model``: None for the shipped generator (loaded once), a model path, or a
    model from ``load_model``. ``align``, ``deghost``: align the exposures to the best-exposed one
    and keep moving things from doubling first, as `mefgan fuse` (``align.prepare``; None: its
    defaults); what was done comes as ``InputNote`` warnings."""
    images = prepare(exposures, align, deghost)
    if model is None:
        fuser = _default_model() if tile == "auto" else load_model(tile=tile)
    elif isinstance(model, (str, os.PathLike)):
        fuser = load_model(model, tile)
    else:
        fuser = model
    return fuser(images)
