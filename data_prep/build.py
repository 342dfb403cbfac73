"""Building the patch file of ``mefgan patches`` from SICE, brackets or photos: ``build(PatchOptions)``.

Every scene gives (over, under, ground truth) images: SICE uses its brightest and darkest
exposures and its label; a bracket uses its brightest and darkest exposures and the exposure
fusion of all of them; a photo is the ground truth of a simulated under/over pair. Scenes are
cut into patches on a regular grid. With ``--val-fraction`` whole scenes go to a second file.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mefgan_tf import __version__
from mefgan_tf.config import NetworkConfig
from mefgan_tf.data_prep.patches import PatchWriter, cut_patches
from mefgan_tf.data_prep.references import EXTREME, PAIRINGS
from mefgan_tf.data_prep.sources import (
    Loaded,
    LoadOptions,
    SkippedScene,
    SourceScene,
    scan_brackets,
    scan_photos,
    scan_sample_photos,
    scan_sice,
)
from mefgan_tf.data_prep.synth import ExposureModel
from mefgan_tf.errors import CommandError
from mefgan_tf.files import atomic_path, check_file_target, check_outside, exclusive, remove_stale_temporaries
from mefgan_tf.fusion_io import resolved

SAMPLE_VARIANTS = 4
MAX_SCALE = 4.0  # enlarging frames more than this adds no detail, only memory
MAX_SIZE = 4096  # a patch side: D's dense layer grows with its square
MAX_STOPS = 10.0  # exposure offsets: 2**10 past the photo, every simulated frame is black or white
MAX_VARIANTS = 1000  # exposure pairs per photo
PATCH_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class PatchOptions:
    """What ``mefgan patches`` is asked to build (its options, one field each)."""

    sice: tuple[str, ...] = ()
    brackets: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()
    reference: str = "mertens"  # one of references.REFERENCE_CHOICES
    extra_pairs: float | None = None
    pairing: tuple[str, ...] = ()  # () means (EXTREME,): references.PAIRINGS, for --brackets
    align: bool = False  # --brackets: frames aligned first (align.prepare)
    out: str = "data/patches.h5"
    size: int = NetworkConfig.patch_size
    stride: int | None = None  # None: half of ``size``
    scale: float = 1.0
    exclude: tuple[str, ...] = ()
    val_fraction: float = 0.0
    seed: int = 0
    ev_range: tuple[float, float] = (1.0, 3.0)
    camera: bool = False
    photo_variants: int | None = None  # None: 1, SAMPLE_VARIANTS for the sample set
    shot_noise: float = 0.0005
    read_noise: float = 0.001
    strict: bool = False
    overwrite: bool = False
    quiet: bool = False

    @property
    def sample(self) -> bool:
        """No source given: the sample set of scikit-image's photos."""
        return not (self.sice or self.brackets or self.photos)

    def resolved(self) -> PatchOptions:
        """These options with the defaults that depend on others filled in (stride, photo variants)."""
        variants = self.photo_variants or (SAMPLE_VARIANTS if self.sample else 1)
        return dataclasses.replace(self, stride=self.stride or self.size // 2, photo_variants=variants)


@dataclass
class Summary:
    """What a run did: scenes and patches per split, and the skipped scenes with reasons."""

    scenes: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    patches: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    skipped: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    removed: list[Path] = field(default_factory=list)
    options: PatchOptions | None = None  # the resolved options of the run


def validate(options: PatchOptions) -> None:
    """CommandError for option values that cannot work."""
    lo, hi = options.ev_range
    checks = [
        (8 <= options.size <= MAX_SIZE, f"--size {options.size}: must be from 8 to {MAX_SIZE}"),
        (options.stride is None or 1 <= options.stride <= MAX_SIZE, f"--stride {options.stride}: must be from 1 to {MAX_SIZE}"),
        (0 <= options.seed < 2**32, f"--seed {options.seed}: must be in [0, 2**32)"),
        (0 < options.scale <= MAX_SCALE, f"--scale {options.scale:g}: must be more than 0 and at most {MAX_SCALE:g} "
         "(it resizes every image before cutting)"),
        (Path(options.out).suffix.lower() in PATCH_SUFFIXES,
         f"--out {options.out}: a patch file is HDF5; give a name ending in {' or '.join(PATCH_SUFFIXES)}"),
        (0.0 <= options.val_fraction < 1.0, f"--val-fraction {options.val_fraction}: must be in [0, 1)"),
        (0.0 <= lo <= hi <= MAX_STOPS, f"--ev-range {lo:g} {hi:g}: need 0 <= LO <= HI <= {MAX_STOPS:g} stops"),
        (options.photo_variants is None or 1 <= options.photo_variants <= MAX_VARIANTS,
         f"--photo-variants {options.photo_variants}: must be from 1 to {MAX_VARIANTS}"),
        (0 <= options.shot_noise <= 1 and 0 <= options.read_noise <= 1, "--shot-noise and --read-noise must be in [0, 1]"),
        (options.extra_pairs is None or options.extra_pairs > 0, f"--extra-pairs {options.extra_pairs}: must be positive"),
        (options.extra_pairs is None or options.extra_pairs <= MAX_STOPS,
         f"--extra-pairs {options.extra_pairs}: must be at most {MAX_STOPS:g} stops"),
        (all(p in PAIRINGS for p in options.pairing),
         f"--pairing {' '.join(options.pairing)}: expected one of {', '.join(PAIRINGS)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise CommandError(message)


def collect_scenes(options: PatchOptions) -> tuple[list[SourceScene], list[str]]:
    """All scenes of all sources, and the source descriptions recorded in the file."""
    scenes: list[SourceScene] = []
    sources: list[str] = []
    for kind, scan in (("sice", scan_sice), ("brackets", scan_brackets), ("photos", scan_photos)):
        for folder in getattr(options, kind):
            source = f"{kind}:{resolved(Path(folder))}"
            if source in sources:  # once: twice would put the same scenes in training and validation
                print(f"mefgan patches: note: --{kind} {folder} is given more than once; its scenes are read once",
                      file=sys.stderr)
                continue
            scenes += scan(folder)
            sources.append(source)
    if not sources:
        scenes = scan_sample_photos()
        sources = ["photos:skimage.data"]
    return exclude_scenes(scenes, list(options.exclude)), sources


def scene_stem(scene: SourceScene) -> str:
    """The scene's own folder or photo name, without its source prefix and extension."""
    return Path(scene.name.split(":", 1)[-1]).stem


def exclude_scenes(scenes: list[SourceScene], patterns: list[str]) -> list[SourceScene]:
    """``scenes`` without those whose name matches one of the shell ``patterns`` (case-insensitive)."""
    def excluded(scene: SourceScene) -> bool:
        return any(fnmatch.fnmatch(scene_stem(scene).lower(), p.lower()) for p in patterns)

    kept = [scene for scene in scenes if not excluded(scene)]
    if scenes and not kept:
        raise CommandError(f"--exclude {' '.join(patterns)}: every one of the {len(scenes)} scene(s) is excluded")
    return kept


def validation_count(count: int, fraction: float) -> int:
    """How many of ``count`` usable scenes are held out: ``fraction`` of them, at least one, never all."""
    if fraction <= 0 or count < 2:
        return 0
    return min(max(1, round(fraction * count)), count - 1)


def held_out_order(count: int, fraction: float, seed: int) -> list[int]:
    """The candidates for validation, in the order they are taken: a seeded permutation of the scenes
    (none without a split). The first usable ones are held out, so a scene that turns out unusable
    hands its place to the next one."""
    if fraction <= 0:
        return []
    if count < 2:
        raise CommandError(f"--val-fraction {fraction}: needs at least 2 scenes, found {count}")
    return [int(i) for i in np.random.default_rng(seed).permutation(count)]


def split_scenes(count: int, fraction: float, seed: int) -> set[int]:
    """Indices of the scenes held out for validation when every scene is usable."""
    return set(held_out_order(count, fraction, seed)[:validation_count(count, fraction)])


def val_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_val{out.suffix or '.h5'}")


def check_outputs(out: Path, validation: bool, overwrite: bool) -> Path | None:
    """CommandError unless ``out`` (and its validation file) may be written, before any work.

    Returns a validation file of an earlier run that this run must remove (``overwrite``, no
    validation split this time): its scenes would otherwise also be in the new training file.
    """
    val = val_path(out)
    check_file_target(out, overwrite)
    if val.is_dir():
        raise CommandError(f"{val}: is a folder, where this run would write or remove its validation file")
    if validation:
        check_file_target(val, overwrite)
        return None
    if val.exists() and not overwrite:
        raise CommandError(f"{val}: validation file of an earlier run, whose scenes this run puts into {out}; "
                           "pass --overwrite (-y) to remove it, or --val-fraction to remake it")
    return val if val.exists() else None


def load_options(options: PatchOptions) -> LoadOptions:
    """How every scene is loaded, from resolved options."""
    exposure = ExposureModel(tuple(options.ev_range), options.shot_noise, options.read_noise, options.camera)
    return LoadOptions(options.scale, options.seed, options.photo_variants, exposure, options.reference, options.extra_pairs,
                       options.pairing or (EXTREME,), align=options.align)


def file_attrs(options: PatchOptions, sources: list[str], loading: LoadOptions) -> dict:
    return {
        "version": __version__,
        "sources": sources,
        "size": options.size,
        "stride": options.stride,
        "scale": options.scale,
        "seed": options.seed,
        "val_fraction": options.val_fraction,
        "exclude": list(options.exclude),
        "ev_range": np.asarray(loading.exposure.ev_range, np.float64),
        "shot_noise": loading.exposure.shot_noise,
        "read_noise": loading.exposure.read_noise,
        "camera": loading.exposure.camera,
        "photo_variants": loading.photo_variants,
        "reference": loading.reference,
        "extra_pairs_ev": -1.0 if loading.extra_pairs_ev is None else loading.extra_pairs_ev,
        "pairing": list(loading.pairings),
    }


def skip(scene: SourceScene, reason: str, options: PatchOptions, summary: Summary, bar: tqdm) -> None:
    if options.strict:
        raise CommandError(f"{reason} (scene {scene.name}; without --strict it would be skipped)")
    summary.skipped.append(reason)
    bar.write(f"mefgan patches: warning: skipped: {reason}", file=sys.stderr)


def add_scene(scene: SourceScene, loaded: Loaded, writer: PatchWriter, options: PatchOptions) -> int:
    """Cut and append every stack of ``scene``; the number of patches written."""
    before = len(writer)
    for image in loaded.stacks:
        for batch in cut_patches(image, options.size, options.stride):
            writer.add(scene.name, batch)
    if loaded.note:
        writer.note(scene.name, loaded.note)
    return len(writer) - before


def load_usable(scene: SourceScene, loading: LoadOptions, options: PatchOptions, summary: Summary,
                bar: tqdm) -> Loaded | None:
    """The scene loaded, or None where it is skipped (unreadable, or smaller than a patch)."""
    try:
        loaded = scene.load(loading)
    except SkippedScene as err:
        skip(scene, str(err), options, summary, bar)
        return None
    height, width = loaded.stacks[0].shape[:2]
    if min(height, width) < options.size:
        skip(scene, f"{scene.name}: {width}x{height} after --scale {options.scale} is smaller than "
             f"--size {options.size}", options, summary, bar)
        return None
    return loaded


def process(scenes: list[SourceScene], candidates: list[int], writers: dict[str, PatchWriter], loading: LoadOptions,
            options: PatchOptions, summary: Summary) -> None:
    """Load, cut and write every scene, with a progress bar; bad scenes are skipped or fatal. First
    the validation file: the first usable ``candidates``, as many as the fraction of the scenes not
    skipped so far asks for; then every other scene, in the given order, into the training file."""
    done: set[int] = set()
    with tqdm(total=len(scenes), desc="scenes", unit="scene", file=sys.stderr, disable=options.quiet or None,
              leave=False) as bar:
        def write(index: int, split: str) -> None:
            done.add(index)
            loaded = load_usable(scenes[index], loading, options, summary, bar)
            if loaded is not None:
                summary.patches[split] += add_scene(scenes[index], loaded, writers[split], options)
                summary.scenes[split] += 1
            bar.update()

        for index in candidates:
            if summary.scenes["val"] >= validation_count(len(scenes) - len(summary.skipped), options.val_fraction):
                break
            write(index, "val")
        for index in range(len(scenes)):
            if index not in done:
                write(index, "train")


def build(options: PatchOptions) -> Summary:
    """Build the patch file(s) described by ``options``; nothing appears at ``out`` unless all succeeds."""
    validate(options)
    options = options.resolved()
    out = Path(options.out)
    for kind in ("sice", "brackets", "photos"):
        for folder in getattr(options, kind):
            check_outside(out, folder, f"--{kind} folder")
    stale_val = check_outputs(out, options.val_fraction > 0, options.overwrite)
    for path in (out, val_path(out)):
        remove_stale_temporaries(path)
    loading = load_options(options)
    scenes, sources = collect_scenes(options)
    if options.sample:
        print("mefgan patches: no source given: building the sample set from scikit-image's bundled photos "
              f"into {options.out}")
    candidates = held_out_order(len(scenes), options.val_fraction, options.seed)
    paths = {"train": out} | ({"val": val_path(out)} if validation_count(len(scenes), options.val_fraction) else {})
    summary = Summary(options=options)
    attrs = file_attrs(options, sources, loading)
    with contextlib.ExitStack() as stack:
        writers = {}
        stack.enter_context(exclusive(out, "patch file"))
        for split, path in paths.items():
            tmp = stack.enter_context(atomic_path(path))
            writers[split] = stack.enter_context(PatchWriter(tmp, options.size, {**attrs, "split": split}, path))
        process(scenes, candidates, writers, loading, options, summary)
        if summary.patches["train"] == 0:
            raise CommandError(f"no training patches from {len(scenes)} scene(s) ({len(summary.skipped)} skipped): "
                               f"nothing written to {out}")
        if "val" in paths and summary.patches["val"] == 0:
            raise CommandError(f"--val-fraction {options.val_fraction}: no usable scene left for validation "
                               f"({len(summary.skipped)} of {len(scenes)} skipped): nothing written to {out}")
    if stale_val is not None:  # only once the new training file is in place
        stale_val.unlink(missing_ok=True)
        summary.removed.append(stale_val)
    summary.outputs = paths
    return summary


def report(summary: Summary) -> str:
    """The closing summary: scenes, patches, files and skipped items."""
    options, s, p = summary.options, summary.scenes, summary.patches
    lines = [
        f"mefgan patches: {s['train'] + s['val']} scenes ({s['train']} train, {s['val']} val), "
        f"{p['train'] + p['val']} patches ({p['train']} train, {p['val']} val) of {options.size}x{options.size}, "
        f"stride {options.stride}, scale {options.scale:g}",
    ]
    for split, path in summary.outputs.items():
        size_mb = path.stat().st_size / 1e6 if path.exists() else 0.0
        lines.append(f"  {split}: {path} ({p[split]} patches, {size_mb:.1f} MB)")
    if "val" in summary.outputs and p["val"] == 0:
        lines.append("  warning: the validation file has no patches (its scenes were skipped or too small)")
    lines += [f"  removed {path} (validation file of an earlier run)" for path in summary.removed]
    lines.append(f"  skipped: {len(summary.skipped)}")
    lines += [f"    {reason}" for reason in summary.skipped]
    return "\n".join(lines)
