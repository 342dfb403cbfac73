"""Folders of scenes and the order of exposures: one set of rules for every command.

`mefgan fuse --pairs`, `mefgan evaluate`, `mefgan patches` (``--brackets``, and each part of
``--sice``) and `mefgan export --calibration` read a scenes folder with ``find_scenes``, so they
accept exactly the same layouts:

* the flat layout of the original release's ``test_imgs``: ``uN.<ext>`` / ``oN.<ext>`` pairs
  directly in the folder (N a number, any case), scene name ``N``;
* otherwise one subfolder of exposures per scene, named after it;
* otherwise, a folder that holds exposures itself is one scene, named after the folder.

A folder named ``Label`` (any case) beside the scene folders holds SICE's reference images,
``Label/<scene>.<ext>`` (names and extensions in any case); it is never a scene. Entries whose
name starts with ``.`` are ignored, and so are files that are not images (``images.is_image``).
Scenes and files are listed in natural order: "2" before "10", case ignored.

Pairings name which exposures of a scene go together (``PAIRINGS``): ``mefgan patches --pairing``
cuts training pairs by them and ``mefgan evaluate --pairing`` scores by them.

Exposures are ordered by mean BT.601 luminance (``images.luminance``), darkest first, ties keeping
the given order: the darkest is the under-exposed input, the brightest the over-exposed one, and
of two images the brighter one is "over" (the first one when they are equally bright).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.images import is_image, luminance

LABEL_FOLDER = "Label"  # SICE keeps its reference images here, beside the scene folders
FLAT_NAME = re.compile(r"^([uo])(\d+)$", re.IGNORECASE)
MIN_EXPOSURES = 2


@dataclass
class Scene:
    """One scene of a scenes folder: its exposure files, its ground truth if any, and why it cannot be
    used (``problem``) if it cannot. ``ignored``: names of its files that are not images."""

    name: str
    exposures: list[Path] = field(default_factory=list)
    gt: Path | None = None
    problem: str | None = None
    folder: Path | None = None
    ignored: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- names
def natural_key(name: str) -> tuple:
    """Sort key putting "2" before "10", case ignored."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def is_label_folder(path: Path) -> bool:
    """True for SICE's reference folder, ``Label`` in any case."""
    return path.name.lower() == LABEL_FOLDER.lower()


def entries(folder: Path) -> list[Path]:
    """The entries of ``folder`` that are not hidden, in natural order."""
    return sorted((p for p in folder.iterdir() if not is_hidden(p)), key=lambda p: natural_key(p.name))


def image_files(folder: Path) -> list[Path]:
    """The image files of ``folder``, in natural order (a FIFO or device named as an image too: reading
    it is refused in one line, ``files.check_regular``, rather than skipped without a word)."""
    return [p for p in entries(folder) if is_image(p) and p.exists() and not p.is_dir()]


def other_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that are not images (ignored; commands may say so)."""
    return [p for p in entries(folder) if p.is_file() and not is_image(p)]


def scene_folders(root: Path) -> list[Path]:
    """The scene subfolders of ``root``: every subfolder except ``Label``, in natural order."""
    return [p for p in entries(root) if p.is_dir() and not is_label_folder(p)]


def find_label_folder(root: Path) -> Path | None:
    """``root``'s ``Label`` folder (any case), or None."""
    return next((p for p in entries(root) if p.is_dir() and is_label_folder(p)), None)


def images_by_stem(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by lower-case stem (the first in natural order when several share one)."""
    found: dict[str, Path] = {}
    for path in image_files(folder):
        found.setdefault(path.stem.lower(), path)
    return found


def lookup(files: dict[str, Path], name: str) -> Path | None:
    """The file of ``images_by_stem`` named ``name`` (any case)."""
    return files.get(name.lower())


# ---------------------------------------------------------------------------------------- scenes
def find_scenes(root: Path, gt_dir: Path | None = None) -> list[Scene]:
    """The scenes under ``root`` in any of the layouts above, in natural name order.

    Ground truth comes from ``gt_dir`` (``<scene>.<ext>``) or else from ``root``'s ``Label`` folder.
    CommandError if ``root`` is not a folder or holds no scene."""
    root = Path(root)
    if not root.is_dir():
        raise CommandError(f"{root}: not a folder of scenes")
    if gt_dir is not None and not Path(gt_dir).is_dir():
        raise CommandError(f"{gt_dir}: ground-truth folder not found")
    flat = [p for p in image_files(root) if FLAT_NAME.match(p.stem)]
    if flat:
        scenes = flat_scenes(flat)
    else:
        scenes = [folder_scene(folder) for folder in scene_folders(root)]
        if not scenes and image_files(root):
            scenes = [folder_scene(root)]
    if not scenes:
        raise CommandError(f"{root}: no scenes found (expected one subfolder of exposures per scene, or uN/oN image pairs)")
    labels = gt_dir if gt_dir is not None else find_label_folder(root)
    truths = images_by_stem(Path(labels)) if labels is not None else {}
    for scene in scenes:
        scene.gt = lookup(truths, scene.name)
    return sorted(scenes, key=lambda s: natural_key(s.name))


def folder_scene(folder: Path) -> Scene:
    """The scene of one folder of exposures."""
    exposures = image_files(folder)
    problem = None
    if len(exposures) < MIN_EXPOSURES:
        problem = f"need at least {MIN_EXPOSURES} exposures, found {len(exposures)}"
    ignored = [p.name for p in other_files(folder)]
    return Scene(folder.name, exposures, problem=problem, folder=folder, ignored=ignored)


def flat_scenes(paths: list[Path]) -> list[Scene]:
    """The scenes of ``uN`` / ``oN`` files (the first in natural order when a name repeats)."""
    pairs: dict[str, dict[str, Path]] = {}
    for path in paths:
        kind, name = FLAT_NAME.match(path.stem).groups()
        pairs.setdefault(name, {}).setdefault(kind.lower(), path)
    scenes = []
    for name, pair in pairs.items():
        missing = [f"{k}{name}.*" for k in "uo" if k not in pair]
        problem = f"missing {' and '.join(missing)}" if missing else None
        scenes.append(Scene(name, [pair[k] for k in "uo" if k in pair], problem=problem, folder=paths[0].parent))
    return scenes


def layout_notes(root: Path, scenes: Sequence[Scene]) -> list[str]:
    """What ``find_scenes`` left out of ``root`` and why, as notes for the user."""
    notes = []
    label = find_label_folder(root)
    if label is not None:
        notes.append(f"skipping {label} (SICE reference images, not a scene)")
    folders = {s.folder for s in scenes}
    loose = [p.name for p in entries(root) if p.is_file() and root not in folders]
    if loose:
        notes.append(f"ignoring {len(loose)} file(s) directly in {root} (scenes are subfolders): {', '.join(loose[:5])}")
    if root in folders and any(FLAT_NAME.match(p.stem) for p in image_files(root)):
        skipped = [p.name for p in scene_folders(root)]
        if skipped:
            notes.append(f"ignoring {len(skipped)} subfolder(s) of {root}, as its uN/oN files are the scenes: "
                         f"{', '.join(skipped[:5])}")
    return notes


# ---------------------------------------------------------------------------------------- exposures
def exposure_order(images: Sequence[np.ndarray]) -> list[int]:
    """Indices of ``images`` from darkest to brightest (mean luminance; ties keep the given order)."""
    levels = [luminance(image) for image in images]
    return sorted(range(len(images)), key=levels.__getitem__)


def darkest_and_brightest(images: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(darkest, brightest) of ``images`` as ``exposure_order`` ranks them (the first and the last),
    taking one image at a time: an iterator that reads them keeps at most three in memory."""
    dark = bright = None
    for image in images:
        level = luminance(image)
        if dark is None or level < dark[0]:
            dark = (level, image)
        if bright is None or level >= bright[0]:
            bright = (level, image)
    if dark is None:
        raise ValueError("no exposures")
    return dark[1], bright[1]


def over_under(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(over, under) of two images: the brighter one is over-exposed (``first`` when equally bright)."""
    return (first, second) if luminance(first) >= luminance(second) else (second, first)


# ---------------------------------------------------------------------------------------- pairings
EXTREME, ADJACENT, SAME, ALL = "extreme", "adjacent", "same", "all"
PAIRINGS = (EXTREME, ADJACENT, SAME, ALL)


def middle(count: int) -> int:
    """Index of the middle one of ``count`` exposures ordered darkest first (the darker of two middles)."""
    return (count - 1) // 2


# Ways to fuse three or more exposures with a model of pairs (``fusion.fuse_exposures``): fold them
# in by exposure from the darkest, from the brightest or from the middle outwards, fuse only the
# darkest with the brightest, or fuse each frame with the middle one and blend those fusions, each
# where the frame it brought is well exposed (Mertens's weights of that frame). The default was
# measured best against Mertens on all frames of the held-out scenes (see the model card).
MULTI = ("darkest-first", "middle-out", "brightest-first", "extremes", "blend")
DEFAULT_MULTI = "blend"
