"""``mefgan patches``: cut an HDF5 file of training patches from SICE, brackets or photos.

Every scene gives (over, under, ground truth) images: SICE uses its brightest and darkest
exposures and its label; a bracket uses its brightest and darkest exposures and the exposure
fusion of all of them; a photo is the ground truth of a simulated under/over pair. Scenes are
cut into patches on a regular grid. With ``--val-fraction`` whole scenes go to a second file.
"""
from __future__ import annotations

import argparse
import contextlib
import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_prep.patches import PatchWriter, cut_patches
from data_prep.references import CANDIDATES, REFERENCES
from data_prep.sources import (
    Loaded,
    LoadOptions,
    Scene,
    SkippedScene,
    scan_brackets,
    scan_photos,
    scan_sample_photos,
    scan_sice,
)
from data_prep.synth import ExposureModel
from mefgan_tf import __version__
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.errors import CommandError
from mefgan_tf.files import atomic_path, check_file_target, remove_stale_temporaries

SAMPLE_VARIANTS = 4


@dataclass
class Summary:
    """What a run did: scenes and patches per split, and the skipped scenes with reasons."""

    scenes: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    patches: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    skipped: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    removed: list[Path] = field(default_factory=list)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``mefgan patches``."""
    parser.description = (
        "Cut an HDF5 file of training patches (uint8 [N, size, size, 9]: over | under | ground truth). "
        "Sources may be combined and repeated. With no source, a small sample set is built from the "
        "photos bundled with scikit-image, so training can be tried without any download."
    )
    src = parser.add_argument_group("sources (each may be repeated)")
    src.add_argument("--sice", action="append", default=[], metavar="DIR",
                     help="SICE folder: scene folders of exposures and Label/<scene>.<ext> (a Part or a parent of "
                     "Parts); the brightest and darkest exposure by mean luminance, the label is the ground truth")
    src.add_argument("--brackets", action="append", default=[], metavar="DIR",
                     help="folder of aligned exposure brackets, one sub-folder per scene; the ground truth is the "
                     "Mertens exposure fusion of the whole bracket")
    src.add_argument("--reference", choices=tuple(REFERENCES), default="mertens",
                     help="ground truth of --brackets scenes: 'mertens' is the Mertens exposure fusion of the whole "
                     "bracket; 'best' makes several candidates from the whole bracket (" + ", ".join(CANDIDATES) +
                     ") and keeps, per scene, the one with the highest MEF-SSIM against all its frames, as SICE "
                     "picked its labels among many methods (slower; the choice is recorded per scene) "
                     "(default: %(default)s)")
    src.add_argument("--extra-pairs", type=float, default=None, metavar="STOPS",
                     help="--brackets augmentation: besides (brightest, darkest), also cut (second brightest, "
                     "darkest) and (brightest, second darkest) where their exposure gap, estimated from the "
                     "frames, is at least STOPS (default: off)")
    src.add_argument("--photos", action="append", default=[], metavar="DIR",
                     help="folder of well-exposed photos; under- and over-exposures are simulated")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="data/patches.h5", metavar="FILE",
                     help="output HDF5 file; held-out scenes go to <stem>_val.h5 (default: %(default)s)")
    out.add_argument("--size", type=int, default=MEFGANConfig.patch_size, metavar="N",
                     help="patch size in pixels (default: %(default)s)")
    out.add_argument("--stride", type=int, default=None, metavar="N",
                     help="distance between patches in pixels (default: half of --size)")
    out.add_argument("--scale", type=float, default=1.0, metavar="F",
                     help="resize factor applied to every image before cutting; SICE frames are up to 6000x4000, "
                     "and 0.25 gives a few hundred patches per scene (default: %(default)s)")
    out.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                     help="leave out every scene whose folder or photo name matches this shell pattern (case "
                     "ignored; repeatable), e.g. --exclude House to keep a public test sequence out of training")
    out.add_argument("--val-fraction", type=float, default=0.0, metavar="F",
                     help="fraction of whole scenes held out into the validation file (default: %(default)s)")
    out.add_argument("--seed", type=int, default=0, metavar="N",
                     help="seed of the scene split and of the simulated exposures (default: %(default)s)")
    syn = parser.add_argument_group("simulated exposures (--photos and the sample set)")
    syn.add_argument("--ev-range", type=float, nargs=2, default=[1.0, 3.0], metavar=("LO", "HI"),
                     help="exposure offsets in stops, drawn uniformly for the under and for the over image "
                     "(default: 1.0 3.0)")
    syn.add_argument("--camera", action="store_true",
                     help="make the pairs look like real camera brackets: a random camera response curve per "
                     "pair instead of sRGB's, and JPEG compression (quality 75-95); use with e.g. --ev-range 1 4 "
                     "(default: off)")
    syn.add_argument("--photo-variants", type=int, default=None, metavar="K",
                     help=f"exposure pairs per photo (default: 1; {SAMPLE_VARIANTS} for the sample set)")
    syn.add_argument("--shot-noise", type=float, default=0.0005, metavar="A",
                     help="shot-noise variance per unit of linear signal (default: %(default)s)")
    syn.add_argument("--read-noise", type=float, default=0.001, metavar="B",
                     help="read-noise standard deviation in linear light (default: %(default)s)")
    run_ = parser.add_argument_group("behaviour")
    run_.add_argument("--strict", action="store_true",
                      help="stop at the first bad scene (unreadable, mismatched, no label) instead of skipping it")
    run_.add_argument("-y", "--overwrite", action="store_true",
                      help="replace --out (and <stem>_val.h5) if they exist; a validation file left by an earlier "
                      "run is removed when this run makes none (default: refuse, naming the file)")
    run_.add_argument("--quiet", action="store_true", help="no progress bar")


def validate(args: argparse.Namespace) -> None:
    """CommandError for option values that cannot work."""
    lo, hi = args.ev_range
    checks = [
        (args.size >= 8, f"--size {args.size}: must be at least 8"),
        (args.stride is None or args.stride >= 1, f"--stride {args.stride}: must be at least 1"),
        (args.scale > 0, f"--scale {args.scale}: must be positive"),
        (0.0 <= args.val_fraction < 1.0, f"--val-fraction {args.val_fraction}: must be in [0, 1)"),
        (0.0 <= lo <= hi, f"--ev-range {lo} {hi}: need 0 <= LO <= HI"),
        (args.photo_variants is None or args.photo_variants >= 1,
         f"--photo-variants {args.photo_variants}: must be at least 1"),
        (args.shot_noise >= 0 and args.read_noise >= 0, "--shot-noise and --read-noise must not be negative"),
        (args.extra_pairs is None or args.extra_pairs > 0, f"--extra-pairs {args.extra_pairs}: must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise CommandError(message)


def collect_scenes(args: argparse.Namespace) -> tuple[list[Scene], list[str]]:
    """All scenes of all sources, and the source descriptions recorded in the file."""
    scenes: list[Scene] = []
    sources: list[str] = []
    for kind, scan in (("sice", scan_sice), ("brackets", scan_brackets), ("photos", scan_photos)):
        for folder in getattr(args, kind):
            scenes += scan(folder)
            sources.append(f"{kind}:{Path(folder).resolve()}")
    if not sources:
        scenes = scan_sample_photos()
        sources = ["photos:skimage.data"]
    return exclude_scenes(scenes, getattr(args, "exclude", [])), sources


def scene_stem(scene: Scene) -> str:
    """The scene's own folder or photo name, without its source prefix and extension."""
    return Path(scene.name.split(":", 1)[-1]).stem


def exclude_scenes(scenes: list[Scene], patterns: list[str]) -> list[Scene]:
    """``scenes`` without those whose name matches one of the shell ``patterns`` (case-insensitive)."""
    def excluded(scene: Scene) -> bool:
        return any(fnmatch.fnmatch(scene_stem(scene).lower(), p.lower()) for p in patterns)

    kept = [scene for scene in scenes if not excluded(scene)]
    if scenes and not kept:
        raise CommandError(f"--exclude {' '.join(patterns)}: every one of the {len(scenes)} scene(s) is excluded")
    return kept


def split_scenes(count: int, fraction: float, seed: int) -> set[int]:
    """Indices of the scenes held out for validation: a seeded random choice of whole scenes."""
    if fraction <= 0:
        return set()
    if count < 2:
        raise CommandError(f"--val-fraction {fraction}: needs at least 2 scenes, found {count}")
    n_val = min(max(1, round(fraction * count)), count - 1)
    return {int(i) for i in np.random.default_rng(seed).permutation(count)[:n_val]}


def val_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_val{out.suffix or '.h5'}")


def check_outputs(out: Path, validation: bool, overwrite: bool) -> Path | None:
    """CommandError unless ``out`` (and its validation file) may be written, before any work.

    Returns a validation file of an earlier run that this run must remove (``overwrite``, no
    validation split this time): its scenes would otherwise also be in the new training file.
    """
    val = val_path(out)
    check_file_target(out, overwrite)
    if validation:
        check_file_target(val, overwrite)
        return None
    if val.exists() and not overwrite:
        raise CommandError(f"{val}: validation file of an earlier run, whose scenes this run puts into {out}; "
                           "pass --overwrite (-y) to remove it, or --val-fraction to remake it")
    return val if val.exists() else None


def file_attrs(args: argparse.Namespace, sources: list[str], options: LoadOptions) -> dict:
    return {
        "version": __version__,
        "sources": sources,
        "size": args.size,
        "stride": args.stride,
        "scale": args.scale,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "exclude": list(args.exclude),
        "ev_range": np.asarray(options.exposure.ev_range, np.float64),
        "shot_noise": options.exposure.shot_noise,
        "read_noise": options.exposure.read_noise,
        "camera": options.exposure.camera,
        "photo_variants": options.photo_variants,
        "reference": options.reference,
        "extra_pairs_ev": -1.0 if options.extra_pairs_ev is None else options.extra_pairs_ev,
    }


def skip(scene: Scene, reason: str, args: argparse.Namespace, summary: Summary, bar: tqdm) -> None:
    if args.strict:
        raise CommandError(f"{reason} (scene {scene.name}; without --strict it would be skipped)")
    summary.skipped.append(reason)
    bar.write(f"mefgan patches: warning: skipped: {reason}", file=sys.stderr)


def add_scene(scene: Scene, loaded: Loaded, writer: PatchWriter, args: argparse.Namespace) -> int:
    """Cut and append every stack of ``scene``; the number of patches written."""
    before = len(writer)
    for image in loaded.stacks:
        for batch in cut_patches(image, args.size, args.stride):
            writer.add(scene.name, batch)
    if loaded.note:
        writer.note(scene.name, loaded.note)
    return len(writer) - before


def process(scenes: list[Scene], held_out: set[int], writers: dict[str, PatchWriter],
            options: LoadOptions, args: argparse.Namespace, summary: Summary) -> None:
    """Load, cut and write every scene, with a progress bar; bad scenes are skipped or fatal."""
    with tqdm(scenes, desc="scenes", unit="scene", file=sys.stderr, disable=args.quiet or None, leave=False) as bar:
        for index, scene in enumerate(bar):
            split = "val" if index in held_out else "train"
            try:
                loaded = scene.load(options)
            except SkippedScene as err:
                skip(scene, str(err), args, summary, bar)
                continue
            height, width = loaded.stacks[0].shape[:2]
            if min(height, width) < args.size:
                skip(scene, f"{scene.name}: {width}x{height} after --scale {args.scale} is smaller than "
                     f"--size {args.size}", args, summary, bar)
                continue
            summary.patches[split] += add_scene(scene, loaded, writers[split], args)
            summary.scenes[split] += 1


def build(args: argparse.Namespace) -> Summary:
    """Build the patch file(s) described by ``args``; nothing appears at ``--out`` unless all succeeds."""
    validate(args)
    out = Path(args.out)
    stale_val = check_outputs(out, args.val_fraction > 0, getattr(args, "overwrite", False))
    for path in (out, val_path(out)):
        remove_stale_temporaries(path)
    args.stride = args.stride or args.size // 2
    sample = not (args.sice or args.brackets or args.photos)
    variants = args.photo_variants or (SAMPLE_VARIANTS if sample else 1)
    exposure = ExposureModel(tuple(args.ev_range), args.shot_noise, args.read_noise, args.camera)
    options = LoadOptions(args.scale, args.seed, variants, exposure, args.reference, args.extra_pairs)
    scenes, sources = collect_scenes(args)
    if sample:
        print("mefgan patches: no source given: building the sample set from scikit-image's bundled photos "
              f"into {args.out}")
    held_out = split_scenes(len(scenes), args.val_fraction, args.seed)
    paths = {"train": out} | ({"val": val_path(out)} if held_out else {})
    summary = Summary()
    attrs = file_attrs(args, sources, options)
    with contextlib.ExitStack() as stack:
        writers = {}
        for split, path in paths.items():
            tmp = stack.enter_context(atomic_path(path))
            writers[split] = stack.enter_context(PatchWriter(tmp, args.size, {**attrs, "split": split}))
        process(scenes, held_out, writers, options, args, summary)
        if summary.patches["train"] == 0:
            raise CommandError(f"no training patches from {len(scenes)} scene(s) ({len(summary.skipped)} skipped): "
                               f"nothing written to {out}")
    if stale_val is not None:  # only once the new training file is in place
        stale_val.unlink(missing_ok=True)
        summary.removed.append(stale_val)
    summary.outputs = paths
    return summary


def report(summary: Summary, args: argparse.Namespace) -> str:
    """The closing summary: scenes, patches, files and skipped items."""
    s, p = summary.scenes, summary.patches
    lines = [
        f"mefgan patches: {s['train'] + s['val']} scenes ({s['train']} train, {s['val']} val), "
        f"{p['train'] + p['val']} patches ({p['train']} train, {p['val']} val) of {args.size}x{args.size}, "
        f"stride {args.stride}, scale {args.scale:g}",
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


def run(args: argparse.Namespace) -> int:
    summary = build(args)
    print(report(summary, args))
    return 0
