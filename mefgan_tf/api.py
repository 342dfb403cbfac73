"""The Python API: fuse exposures in a few lines, as `mefgan fuse` does.

    import mefgan_tf

    fused = mefgan_tf.fuse(["dark.jpg", "bright.jpg"])       # float32 RGB in [0, 1]
    mefgan_tf.write_image("fused.png", fused)

    model = mefgan_tf.load_model("shipped")                  # or a checkpoint, SavedModel or .tflite
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

from mefgan_tf import align as aligning
from mefgan_tf.environment import import_tensorflow_quietly, set_environment
from mefgan_tf.errors import CommandError, quoted
from mefgan_tf.fusion import FusionOptions
from mefgan_tf.fusion_io import check_sides
from mefgan_tf.images import InputNote, read_image, to_float, write_image
from mefgan_tf.models import load_fuser, model_version

__all__ = ["fuse", "load_model", "read_image", "write_image"]

Exposure = str | os.PathLike | np.ndarray


def load_model(model: str | os.PathLike | None = None, tile: int | str | None = "auto", progress: bool | None = False,
               multi: str | None = None, detail: int | None = None, work_size: int | str | None = "default",
               tone_guard: bool = True):
    """A ``Fuser`` (call it with a list of exposures) for ``model``: the shipped generator (None), a
    mefgan-tf checkpoint folder, a SavedModel from ``mefgan export`` (or its folder of numbered
    versions) or a ``.tflite`` file. ``tile``: "auto" (bounded memory), None (whole image) or a side
    in pixels; ``progress``: show a progress bar (None: on a terminal only); ``multi``: how three or
    more exposures are fused (``fusion.STRATEGIES``; None: the default, as `mefgan fuse`); ``detail``: the
    finest pyramid levels taken from the exposures (``pyramid.DETAIL_LEVELS`` when None; 0: the network's
    own fusion); ``work_size``: the long side of the copy the network fuses (``resolution.WORK_SIZE`` by
    default; None or "full": the photos themselves); ``tone_guard``: keep the network's tone from a veil
    (``tone``). Options and model are checked before TensorFlow starts."""
    options = FusionOptions.resolve(tile, multi, detail, work_size, tone_guard=tone_guard)
    model_version(model)  # a missing or wrong model is told before TensorFlow starts
    set_environment()
    import_tensorflow_quietly()
    return load_fuser(model, options, progress)


def prepare(exposures: Sequence[Exposure], align: bool | None = None, deghost: bool | None = None) -> list[np.ndarray]:
    """The exposures as arrays, aligned and deghosted as asked (``align.prepare``), each note an ``InputNote``."""
    check_exposure_list(exposures)
    images = [as_exposure(e, f"exposure {i + 1}") for i, e in enumerate(exposures)]
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


def check_exposure_list(exposures: Sequence[Exposure]) -> None:
    """CommandError unless ``exposures`` is a list of two or more (a single path or array is not)."""
    if isinstance(exposures, (str, bytes, os.PathLike, np.ndarray)):
        raise CommandError(f"exposures must be a list of two or more paths or arrays, got one {type(exposures).__name__} "
                           f"{quoted(str(exposures)) if not isinstance(exposures, np.ndarray) else ''}".rstrip())
    if len(exposures) < 2:
        raise CommandError(f"need at least two exposures to fuse, got {len(exposures)}")


def as_exposure(exposure: Exposure, name: str = "an exposure") -> np.ndarray:
    """RGB float32 [0, 1] of a path (read as `mefgan fuse` reads it) or an array. Float arrays must
    be finite (CommandError naming ``name``); values outside [0, 1] are clipped with an ``InputNote``."""
    if isinstance(exposure, (str, os.PathLike)):
        image = read_image(Path(exposure))
        check_sides([image], [exposure])
        return image
    image = np.asarray(exposure)
    if image.ndim != 3 or image.shape[2] != 3:
        raise CommandError(f"{name} has shape {list(image.shape)}; expected (height, width, 3) RGB")
    check_sides([image], [name])
    if image.dtype in (np.uint8, np.uint16):
        return to_float(image)
    if not np.issubdtype(image.dtype, np.floating):
        raise CommandError(f"{name} is {image.dtype}; expected uint8, uint16 or floats in [0, 1]")
    image = image.astype(np.float32)
    bad = ~np.isfinite(image)
    if bad.any():
        row, column = np.argwhere(bad)[0][:2]
        raise CommandError(f"{name} holds {int(bad.sum())} NaN or infinite value(s), the first at row {row}, column "
                           f"{column}; replace them (e.g. numpy.nan_to_num) before fusing")
    low, high = float(image.min()), float(image.max())
    if low < 0.0 or high > 1.0:
        warnings.warn(f"{name}: values outside [0, 1] (from {low:g} to {high:g}) are clipped to [0, 1]", InputNote, stacklevel=3)
    return np.clip(image, 0.0, 1.0)


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
