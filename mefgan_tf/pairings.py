"""A scene read from disk as a pairing sees it (``load_scene``): `mefgan evaluate` scores it and
`mefgan export --calibration` calibrates on it.

``scenes`` finds the scenes and orders their exposures; a pairing (``scenes.PAIRINGS``) names which
exposures go together. This module reads a scene's files, checks that they fit, orders them darkest
first, aligns and/or deghosts the bracket when asked (``align.prepare``) and takes the pairing's view
of it (``LoadedScene``). It sits above ``scenes`` and ``align`` because ``align`` itself uses the
exposure order of ``scenes``.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mefgan_tf.align import best_exposed, prepare
from mefgan_tf.data_prep.handheld import corner_error, crop_box, random_handheld
from mefgan_tf.errors import CommandError
from mefgan_tf.images import read_image_original_raw, read_image_uint8, to_float, to_uint8
from mefgan_tf.scenes import ADJACENT, ALL, EXTREME, SAME, Scene, exposure_order, middle

PAIRING_HELP = {
    EXTREME: "the darkest and the brightest exposure (SICE's pairs); ground truth: the scene's label, where it has one",
    ADJACENT: "the middle exposure and the next brighter one (a close pair, as phones shoot)",
    SAME: "the middle exposure twice: a fusion of x with x should be x (its ground truth)",
    ALL: "every exposure of scenes with three or more; MEF-SSIM against all of them; ground truth: the label, where there is one",
}


@dataclass
class LoadedScene:
    """Full-resolution uint8 RGB sources of a scene as one pairing sees them: the exposures a method
    fuses (``inputs``), the pair the pair metrics use (``under``, ``over``), the exposures MEF-SSIM is
    scored against (``frames``: all of them with ``ALL``, else the pair) and the ground truth if any."""

    under: np.ndarray
    over: np.ndarray
    gt: np.ndarray | None
    note: str = ""
    inputs: list[np.ndarray] = field(default_factory=list)
    frames: list[np.ndarray] | None = None
    still: list[np.ndarray] | None = None  # ``handheld``: the inputs as they were before the motion (the answer)
    motion_error: float = math.nan  # ``handheld``: the largest error of the motion recovered for the inputs, at the corners (px)


def pairing_heading(pairing: str) -> str:
    """The Markdown heading of a pairing's section in a report of several."""
    return f"## Pairing '{pairing}': {PAIRING_HELP[pairing]}\n\n"


def pairing_frames(count: int, pairing: str) -> list[int]:
    """Which of a scene's ``count`` exposures (ordered darkest first) ``pairing`` fuses. CommandError
    when the scene cannot give it (``ALL`` needs three exposures: with two it is ``EXTREME``)."""
    m = middle(count)
    if pairing == ALL and count < 3:
        raise CommandError(f"{count} exposures: pairing '{ALL}' scores scenes of three or more")
    return {EXTREME: [0, count - 1], ADJACENT: [m, m + 1], SAME: [m, m], ALL: list(range(count))}[pairing]


def pairing_view(images: list[np.ndarray], gt: np.ndarray | None, pairing: str) -> LoadedScene:
    """What ``pairing`` takes of a scene's exposures (ordered darkest first; ``pairing_frames``): the
    darkest and brightest of them are ``under`` and ``over``; ground truth with ``EXTREME`` and ``ALL``,
    the middle exposure itself with ``SAME``."""
    inputs = [images[i] for i in pairing_frames(len(images), pairing)]
    truth = {EXTREME: gt, ALL: gt, SAME: inputs[0], ADJACENT: None}[pairing]
    return LoadedScene(inputs[0], inputs[-1], truth, inputs=inputs, frames=list(inputs) if pairing == ALL else None)


def load_scene(scene: Scene, original_io: bool = False, pairing: str = EXTREME, align: bool = False,
               deghost: bool = False, handheld: int | None = None) -> LoadedScene:
    """Read a scene as ``pairing`` sees it (``pairing_view``); with ``EXTREME`` the darkest exposure
    is ``under``, the brightest ``over``. CommandError if unusable.

    ``original_io``: read every file as the original's ``generate.py`` does (``read_image_original_raw``).
    ``align``, ``deghost``: the whole bracket aligned and/or deghosted first (``align.prepare``), its
    notes kept as the scene's note; every method fuses, and is scored against, those frames.
    ``handheld``: a seed; before that, every exposure but the best-exposed one is moved by a random
    hand-held motion (``moved_by_hand``), and the view keeps the frames as they were (``still``) and
    how far alignment's motion is from the true one (``motion_error``).
    """
    read = read_image_original_raw if original_io else read_image_uint8
    images = [read(p) for p in scene.exposures]
    sizes = {im.shape[:2] for im in images}
    if len(sizes) != 1:
        raise CommandError(f"exposures differ in size: {', '.join(size_text(s) for s in sorted(sizes))}")
    order = exposure_order(images)
    images = [images[i] for i in order]
    gt = read(scene.gt) if scene.gt is not None and pairing in (EXTREME, ALL) else None
    still = true_motions = reference = None
    if handheld is not None:
        images, still, true_motions, reference, gt = moved_by_hand(images, zlib.crc32(f"{handheld}:{scene.name}".encode()), gt)
    warps: dict[int, np.ndarray] = {}
    images, notes = prepare_scene(images, align, deghost, [scene.exposures[i].name for i in order], warps, reference)
    note = "; ".join(notes)
    if gt is not None and gt.shape[:2] != images[0].shape[:2]:
        note = "; ".join(filter(None, [note, f"ground truth {size_text(gt.shape)} differs from the exposures' "
                                             f"{size_text(images[0].shape)}: not used"]))
        gt = None
    view = pairing_view(images, gt, pairing)
    view.note = note
    if still is not None:
        view.still = pairing_view(still, gt, pairing).inputs
        height, width = images[0].shape[:2]
        view.motion_error = max(corner_error(warps.get(i, np.eye(3)), true_motions[i], height, width)
                                for i in pairing_frames(len(images), pairing))
    return view


def moved_by_hand(images: list[np.ndarray], seed: int, gt: np.ndarray | None
                  ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], int, np.ndarray | None]:
    """uint8 exposures moved as a hand-held camera would move them (``data_prep.handheld``: up to 5%
    of the side and 3 degrees, the best-exposed frame still, all cropped to the central part every
    frame sees): the moved frames, the frames as they were (cropped), each frame's true motion, the
    index of the still one (alignment's reference: the motions are measured against it) and the
    ground truth cropped alike."""
    frames = [to_float(im) for im in images]
    hand = random_handheld(frames, best_exposed(frames), seed=seed)
    if gt is not None and gt.shape[:2] == images[0].shape[:2]:
        top, left, rows, cols = crop_box(*gt.shape[:2])
        gt = np.ascontiguousarray(gt[top : top + rows, left : left + cols])
    return [to_uint8(f) for f in hand.frames], [to_uint8(f) for f in hand.aligned], hand.matrices, hand.reference, gt


def prepare_scene(images: list[np.ndarray], align: bool, deghost: bool, names: list[str],
                  warps: dict[int, np.ndarray] | None = None, reference: int | None = None
                  ) -> tuple[list[np.ndarray], list[str]]:
    """uint8 exposures (named ``names``) aligned and/or deghosted (``align.prepare``, to ``reference``
    if given; ``warps`` receives each aligned frame's warp), and its notes."""
    if not (align or deghost):
        return images, []
    given = [to_float(im) for im in images]
    prepared, notes = prepare(given, align, deghost, names, reference=reference, warps=warps)
    return [im if p is g else to_uint8(p) for im, g, p in zip(images, given, prepared)], notes


def size_text(shape: Sequence[int]) -> str:
    """An image's size as WxH, from its shape (rows first)."""
    return f"{shape[1]}x{shape[0]}"
