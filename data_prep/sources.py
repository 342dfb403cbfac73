"""Where training scenes come from: SICE folders, exposure brackets and single photos.

Scanning only lists files: scene folders are found by ``mefgan_tf.scenes.find_scenes``, as every
command finds them (for SICE, in each part: the folder holding ``Label``). Each ``SourceScene`` is
loaded later, one at a time, into "stacks": uint8 arrays (H, W, 9) holding the over-exposed,
under-exposed and ground-truth images in that order. A scene that cannot be used raises
``SkippedScene`` with a message naming the file.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mefgan_tf.data_prep.references import EXTREME, MIX, exposure_pairs, pair_references
from mefgan_tf.data_prep.synth import ExposureModel, exposure_pair
from mefgan_tf.errors import CommandError
from mefgan_tf.images import is_image, read_image_uint8
from mefgan_tf.scenes import Scene, darkest_and_brightest, entries, find_label_folder, find_scenes

# Colour photos bundled inside scikit-image (no download needed).
SAMPLE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


class SkippedScene(Exception):
    """A scene that cannot be used (bad or missing file); the message names the file."""


@dataclass(frozen=True)
class LoadOptions:
    """Settings applied while loading every scene."""

    scale: float = 1.0
    seed: int = 0
    photo_variants: int = 1
    exposure: ExposureModel = field(default_factory=ExposureModel)
    reference: str = "mertens"  # one of references.REFERENCE_CHOICES: how a bracket's ground truth is made
    extra_pairs_ev: float | None = None  # also pair nearer frames of a bracket this many stops apart
    pairings: tuple[str, ...] = (EXTREME,)  # which frames of a bracket are paired: references.PAIRINGS
    align: bool = False  # a bracket's frames aligned to its best-exposed one first (``align.prepare``)


@dataclass
class Loaded:
    """A loaded scene: its stacks, and a note on how its reference was made (brackets)."""

    stacks: list[np.ndarray]
    note: str = ""


@dataclass(frozen=True)
class SourceScene:
    """One scene of a source: a unique ``name`` and a loader returning its stacks."""

    name: str
    loader: Callable[[LoadOptions], Loaded]

    def load(self, options: LoadOptions) -> Loaded:
        return self.loader(options)


def require_dir(path: str | Path, flag: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise CommandError(f"{path}: {flag} needs a directory, and this is {'a file' if path.exists() else 'missing'}")
    return path


# ---- loading helpers ---------------------------------------------------------------------------


def read_frame(path: Path) -> np.ndarray:
    """RGB uint8; unreadable files become ``SkippedScene``."""
    try:
        return read_image_uint8(path)
    except CommandError as err:
        raise SkippedScene(str(err)) from None


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def size_text(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}"


def check_same_size(path: Path, image: np.ndarray, ref_path: Path, ref_shape: tuple[int, ...]) -> None:
    if image.shape[:2] != ref_shape[:2]:
        raise SkippedScene(f"{path}: is {size_text(image.shape)} but {ref_path.name} is {size_text(ref_shape)}")


def require_frames(folder: Path, frames: list[Path]) -> None:
    if len(frames) < 2:
        raise SkippedScene(f"{folder}: {len(frames)} exposure(s), need at least 2")


def brightest_and_darkest(frames: list[Path], scale: float) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(brightest, darkest) of equally sized frames (``scenes.darkest_and_brightest``), resized; and
    the full size. Frames are read one at a time, so memory holds at most three of them."""
    shape: list[tuple[int, ...]] = []

    def resized():
        for path in frames:
            image = read_frame(path)
            shape.append(shape[0] if shape else image.shape)
            check_same_size(path, image, frames[0], shape[0])
            yield resize(image, scale)

    dark, bright = darkest_and_brightest(resized())
    return bright, dark, shape[0]


def stack(over: np.ndarray, under: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate([over, under, gt], axis=-1))


# ---- SICE ----------------------------------------------------------------------------------------


def sice_parts(root: Path) -> list[Path]:
    """The folders holding a ``Label`` folder: ``root`` itself or its children (Part1, Part2)."""
    if find_label_folder(root) is not None:
        return [root]
    parts = [d for d in entries(root) if d.is_dir() and find_label_folder(d) is not None]
    if not parts:
        raise CommandError(f"{root}: not a SICE folder (no Label folder in it or in its sub-folders)")
    return parts


def load_sice(scene: Scene, label_dir: Path, options: LoadOptions) -> Loaded:
    frames = scene.exposures
    require_frames(scene.folder, frames)
    if scene.gt is None:
        raise SkippedScene(f"{scene.folder}: no reference image {label_dir / scene.name}.<ext>")
    over, under, shape = brightest_and_darkest(frames, options.scale)
    gt = read_frame(scene.gt)
    check_same_size(scene.gt, gt, frames[0], shape)
    return Loaded([stack(over, under, resize(gt, options.scale))])


def scan_sice(root: str | Path) -> list[SourceScene]:
    """Scenes of a SICE folder: scene folders beside ``Label/<scene>.<ext>``, in one or more parts."""
    root = require_dir(root, "--sice")
    scenes = []
    for part in sice_parts(root):
        label_dir = find_label_folder(part)
        prefix = f"{part.name}/" if part != root else ""
        try:
            found = find_scenes(part)
        except CommandError:  # a part with nothing but its Label folder
            continue
        for scene in found:
            scenes.append(SourceScene(f"sice:{root.name}/{prefix}{scene.name}", _bind(load_sice, scene, label_dir)))
    if not scenes:
        raise CommandError(f"{root}: no scene folders beside the Label folder")
    return scenes


# ---- brackets ------------------------------------------------------------------------------------


def load_bracket(scene: Scene, options: LoadOptions) -> Loaded:
    paths = scene.exposures
    require_frames(scene.folder, paths)
    frames, shape = [], ()
    for i, path in enumerate(paths):
        image = read_frame(path)
        shape = image.shape if i == 0 else shape
        check_same_size(path, image, paths[0], shape)
        frames.append(resize(image, options.scale))
    frames, aligned = aligned_frames(frames, [p.name for p in paths]) if options.align else (frames, "")
    pairs = exposure_pairs(frames, options.pairings, options.extra_pairs_ev)
    spanning = exposure_pairs(frames, (EXTREME,), options.extra_pairs_ev)
    references = pair_references(frames, pairs, options.reference, spanning)
    first = next((ref for pair, ref in references if pair in spanning), references[0][1])
    scored = "" if math.isnan(first.score) else f" (MEF-SSIM {first.score:.4f} against the bracket)"
    method = "mertens and pair" if options.reference == MIX else first.method
    stacks = [stack(frames[over], frames[under], ref.image) for (over, under), ref in references]
    return Loaded(stacks, f"reference {method}{scored}, {len(pairs)} pair(s){aligned}")


def aligned_frames(frames: list[np.ndarray], names: list[str]) -> tuple[list[np.ndarray], str]:
    """uint8 frames aligned to the best-exposed one (``align.prepare``), and its notes for the scene's note."""
    from mefgan_tf.align import prepare

    given = [f.astype(np.float32) / 255 for f in frames]
    prepared, notes = prepare(given, align=True, deghost=False, names=names)
    kept = [f if p is g else np.round(p * 255).astype(np.uint8) for f, g, p in zip(frames, given, prepared)]
    return kept, "".join(f"; {note}" for note in notes)


def scan_brackets(root: str | Path) -> list[SourceScene]:
    """One scene per sub-folder of aligned exposures (or ``root`` itself if it holds the images), or
    per uN/oN pair: ``scenes.find_scenes``. A ``Label`` folder is not a scene (and not used)."""
    root = require_dir(root, "--brackets")
    return [SourceScene(f"brackets:{root.name}/{scene.name}", _bind(load_bracket, scene)) for scene in find_scenes(root)]


# ---- photos --------------------------------------------------------------------------------------


def photo_rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends on the seed and the photo's name only (not on the order)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def load_photo(path: Path, name: str, options: LoadOptions) -> Loaded:
    photo = resize(read_frame(path), options.scale)
    rng = photo_rng(options.seed, name)
    stacks = []
    for _ in range(options.photo_variants):
        over, under, _ = exposure_pair(photo, options.exposure, rng)
        stacks.append(stack(over, under, photo))
    return Loaded(stacks)


def photo_scenes(paths: list[Path], prefix: str, root: Path) -> list[SourceScene]:
    scenes = []
    for path in paths:
        name = f"{prefix}{path.relative_to(root).as_posix()}"
        scenes.append(SourceScene(name, _bind(load_photo, path, name)))
    return scenes


def scan_photos(root: str | Path) -> list[SourceScene]:
    """One scene per image under ``root`` (recursively)."""
    root = require_dir(root, "--photos")
    paths = sorted((p for p in root.rglob("*") if p.is_file() and is_image(p)), key=lambda p: p.as_posix().lower())
    if not paths:
        raise CommandError(f"{root}: no images found")
    return photo_scenes(paths, f"photos:{root.name}/", root)


def sample_photo_dir() -> Path:
    """scikit-image's folder of bundled images."""
    try:
        import skimage.data
    except ImportError:
        raise CommandError("no source given and scikit-image is not installed: "
                           "pass --sice, --brackets or --photos") from None
    return Path(skimage.data.__file__).parent


def scan_sample_photos() -> list[SourceScene]:
    """The built-in sample set: colour photos shipped inside scikit-image."""
    root = sample_photo_dir()
    paths = [root / name for name in SAMPLE_PHOTOS if (root / name).is_file()]
    if not paths:
        raise CommandError(f"{root}: scikit-image's bundled photos are missing: pass --sice, --brackets or --photos")
    return photo_scenes(paths, "photos:skimage.data/", root)


def _bind(func: Callable, *args) -> Callable[[LoadOptions], Loaded]:
    return lambda options: func(*args, options)
