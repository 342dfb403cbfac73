"""`mefgan fuse`: fuse exposures at full resolution, one scene or a folder of scenes.

Inputs may come in any order and any size (see ``fusion`` for the order in which more than two
exposures are fused and for the exact tiled inference, ``fusion_io`` for the files). A folder of
scenes is read by ``scenes.find_scenes``, as every command reads one. Nothing is written unless
the fusion succeeds, and every problem is one line naming the file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from mefgan_tf.cli.types import add_align_options, add_fusion_options, fusion_options
from mefgan_tf.environment import import_tensorflow_quietly
from mefgan_tf.errors import CommandError
from mefgan_tf.files import check_folder_target, check_new_files, check_outside
from mefgan_tf.fusion import exposure_bands
from mefgan_tf.fusion_io import (
    check_inputs_and_output,
    check_output_extension,
    check_writable,
    extension_problem,
    fuse_files,
    prepare_exposures,
    read_exposures,
    read_exposures_original,
    write_fused,
)
from mefgan_tf.models import load_fuser
from mefgan_tf.scenes import find_scenes, layout_notes

# TensorFlow starts in the background after ``check`` (``cli.Command.import_while_reading``) while the
# inputs are read and aligned; ``import_tensorflow_quietly`` waits for it before the model loads.

def configure(parser: argparse.ArgumentParser) -> None:
    parser.usage = "mefgan fuse IMAGE IMAGE [IMAGE ...] -o OUT | mefgan fuse --pairs DIR -o OUTDIR"
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="two or more exposures of one scene, in any order")
    parser.add_argument(
        "-o", "--out", required=True, metavar="PATH",
        help="output image (format from the extension: .png, .jpg, .tif, ...); with --pairs, the output folder",
    )
    parser.add_argument(
        "--pairs", metavar="DIR",
        help="fuse every scene of DIR (one subfolder of exposures per scene, or uN/oN pairs, as `mefgan "
        "evaluate` reads them) into OUTDIR/<scene>.<format>",
    )
    parser.add_argument(
        "--model", metavar="PATH",
        help="mefgan-tf checkpoint folder/prefix, SavedModel folder from `mefgan export` (or a folder of "
        "numbered versions of it: the newest is used) or .tflite file; 'shipped' (the default) names the shipped "
        "generator, which comes with mefgan-tf",
    )
    add_fusion_options(parser, original_io=True)
    add_align_options(parser)
    parser.add_argument(
        "--bit-depth", choices=("auto", "8", "16"), default="auto",
        help="bits per channel of the output; 'auto' writes 16 when an input has 16 bits and the "
        "format (PNG, TIFF) allows it (default: %(default)s)",
    )
    parser.add_argument(
        "--format", metavar="EXT",
        help="with --pairs: extension of the fused images (default: png; jpg with --original-io)",
    )
    parser.add_argument(
        "--original-io", action="store_true",
        help="the authors' test-time I/O, for like-for-like comparisons with their results: inputs read "
        "by PIL without EXIF rotation and cropped at the top-left to multiples of 8 (the output is up to "
        "7 rows/columns smaller), output min-max stretched to 0-255 (scipy's bytescale) and written "
        "8-bit by PIL, as JPEG at quality 75 for .jpg (other extensions keep their format)",
    )
    parser.add_argument(
        "-y", "--overwrite", action="store_true",
        help="replace output files that exist (default: refuse, naming the file)",
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", action="store_true",
        help="show the progress bars (with an ETA) even when stderr is not a terminal (default: on a terminal only)",
    )
    shown.add_argument("-q", "--quiet", action="store_true", help="no progress bars, even on a terminal")


def progress_setting(args: argparse.Namespace) -> bool | None:
    """Progress bars: forced on (--progress), off (--quiet), or None: on when stderr is a terminal."""
    return True if args.progress else False if args.quiet else None


def check_original_io(original_io: bool, bit_depth: str) -> None:
    if original_io and bit_depth == "16":
        raise CommandError("--original-io writes 8-bit images (scipy's bytescale); drop --bit-depth 16")


def check(args: argparse.Namespace) -> None:
    """What needs no model, before TensorFlow starts: the options (``args.fusion``), the inputs' count."""
    args.fusion = fusion_options(args, args.original_io)
    check_original_io(args.original_io, args.bit_depth)
    if args.pairs:
        if args.images:
            raise CommandError("give either IMAGE files or --pairs DIR, not both")
        check_outside(args.out, args.pairs, "--pairs folder")
    elif len(args.images) < 2:
        raise CommandError(f"need at least two exposures to fuse, got {len(args.images)}")


def run_pairs(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"{out_dir}: exists and is not a folder (with --pairs, -o names the output folder)")
    ext = (args.format or ("jpg" if args.original_io else "png")).lstrip(".")
    problem = extension_problem("." + ext, args.bit_depth)
    if problem:
        raise CommandError(f"--format {args.format or ext}: {problem}")
    root = Path(args.pairs)
    scenes = find_scenes(root)
    for note in layout_notes(root, scenes):
        print(f"note: {note}", file=sys.stderr)
    check_folder_target(out_dir)
    outputs = [out_dir / f"{scene.name}.{ext}" for scene in scenes]
    check_new_files(outputs, args.overwrite)
    progress = progress_setting(args)
    import_tensorflow_quietly()
    fuser = load_fuser(args.model, args.fusion, progress)
    failed = []
    hidden = None if progress is None else not progress
    for scene, out in tqdm(list(zip(scenes, outputs)), desc="scenes", unit="scene", disable=hidden):
        if scene.ignored:
            tqdm.write(f"note: {scene.name}: ignoring non-image file(s) {', '.join(scene.ignored)}", file=sys.stderr)
        try:
            fuse_files(fuser, scene.exposures, out, args.bit_depth, args.original_io, args.align, args.deghost,
                       report=lambda note, name=scene.name: tqdm.write(f"note: {name}: {note}", file=sys.stderr))
        except CommandError as err:
            failed.append(scene.name)
            tqdm.write(f"mefgan fuse: {scene.name}: {err}", file=sys.stderr)
    done = len(scenes) - len(failed)
    print(f"fused {done} of {len(scenes)} scenes into {out_dir}")
    if failed:
        raise CommandError(f"{len(failed)} of {len(scenes)} scenes failed: {', '.join(failed)} (reasons above)")
    return 0


def run(args: argparse.Namespace) -> int:
    """Fuse, after ``check`` (which ``cli.main`` calls first)."""
    if args.pairs:
        return run_pairs(args)
    paths, out = [Path(p) for p in args.images], Path(args.out)
    if len(paths) < 2:
        raise CommandError(f"need at least two exposures to fuse, got {len(paths)}")
    check_output_extension(out, args.original_io, args.bit_depth)
    check_inputs_and_output(paths, out)
    check_writable(out, args.overwrite)
    images, depth = read_exposures_original(paths) if args.original_io else read_exposures(paths)
    images = prepare_exposures(images, paths, args.align, args.deghost)
    bands = exposure_bands(images, args.fusion)  # while TensorFlow starts
    import_tensorflow_quietly()
    fuser = load_fuser(args.model, args.fusion, progress_setting(args), once=True)
    write_fused(out, fuser(images, bands=bands), depth, args.bit_depth, args.original_io)
    print(f"fused {len(paths)} exposures into {out}")
    return 0
