"""`mefgan fuse`: fuse exposures at full resolution, one scene or a folder of scenes.

Inputs may come in any order and any size (see ``fusion.py`` for the order in which more than two
exposures are fused and for the exact tiled inference). Nothing is written unless the fusion
succeeds, and every problem is one line naming the file.

``--original-io`` swaps the I/O for that of the authors' ``generate.py`` (see ``images.py``):
inputs cropped at the top-left to multiples of 8 instead of padded, no EXIF rotation, output
min-max stretched by ``bytescale`` and written by PIL (JPEG at quality 75).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mefgan_tf.errors import CommandError
from mefgan_tf.files import check_file_target, check_folder_target, check_new_files

SICE_LABEL_FOLDER = "Label"  # SICE keeps reference images here, beside the scene folders


def parse_tile(value: str) -> int | str | None:
    """``auto``, ``0`` (untiled) or a tile side in pixels."""
    if value == "auto":
        return "auto"
    try:
        tile = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto', 0 or a side in pixels, got {value!r}") from None
    if tile == 0:
        return None
    if tile < 16 or tile % 8:
        raise argparse.ArgumentTypeError(f"tile side must be a multiple of 8 and at least 16, got {tile}")
    return tile


def configure(parser: argparse.ArgumentParser) -> None:
    parser.usage = "mefgan fuse IMAGE IMAGE [IMAGE ...] -o OUT | mefgan fuse --pairs DIR -o OUTDIR"
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="two or more exposures of one scene, in any order")
    parser.add_argument(
        "-o", "--out", required=True, metavar="PATH",
        help="output image (format from the extension: .png, .jpg, .tif, ...); with --pairs, the output folder",
    )
    parser.add_argument(
        "--pairs", metavar="DIR",
        help="fuse every scene of DIR (one subfolder of exposures per scene) into OUTDIR/<scene>.<format>",
    )
    parser.add_argument(
        "--model", metavar="PATH",
        help="mefgan-tf checkpoint folder/prefix or SavedModel folder from `mefgan export` "
        "(default: the shipped generator in checkpoints/reference)",
    )
    parser.add_argument(
        "--tile", type=parse_tile, default="auto", metavar="SIZE",
        help="side of the full-resolution tiles in pixels (multiple of 8); 0 = whole image at once; "
        "'auto' picks it from available memory (default: %(default)s). Results are identical either way.",
    )
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def check_writable(path: Path, overwrite: bool = False) -> None:
    """CommandError unless the file ``path`` could be written (checked before minutes of fusion)."""
    if path.is_dir():
        raise CommandError(f"{path}: is a folder; give an image file name such as {path / 'fused.png'}")
    check_file_target(path, overwrite)


def output_depth(input_depth: int, bit_depth: str) -> int:
    """Bits per channel to write: the inputs' (``auto``) or the one asked for."""
    return input_depth if bit_depth == "auto" else int(bit_depth)


def extension_problem(ext: str, bit_depth: str = "auto") -> str | None:
    """Why fused images cannot be written with extension ``ext`` at ``bit_depth`` (None when they can)."""
    from mefgan_tf.images import SIXTEEN_BIT_EXTENSIONS, output_extension_problem

    problem = output_extension_problem(ext)
    if problem is None and bit_depth == "16" and ext.lower() not in SIXTEEN_BIT_EXTENSIONS:
        problem = f"{ext} holds 8 bits per channel; --bit-depth 16 needs {', '.join(SIXTEEN_BIT_EXTENSIONS)}"
    return problem


def check_output_extension(path: Path, original_io: bool = False, bit_depth: str = "auto") -> None:
    from mefgan_tf.images import pil_format

    problem = extension_problem(path.suffix, bit_depth)
    if problem:
        raise CommandError(f"{path}: {problem}")
    if original_io:
        pil_format(path)


def same_file(a: Path, b: Path) -> bool:
    """True if ``a`` and ``b`` name one file (also through other paths or links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_inputs_and_output(paths: list[Path], out: Path) -> None:
    """CommandError if an exposure is given twice or the output is one of the exposures."""
    for i, path in enumerate(paths):
        if same_file(out, path):
            raise CommandError(f"{out}: is the input exposure {path}; choose another output file")
        for earlier in paths[:i]:
            if same_file(path, earlier):
                raise CommandError(f"{path}: the same file as {earlier}; give each exposure once")


def read_exposures(paths: list[Path]):
    """(float images, bit depth 8/16) of a scene's files; CommandError on unreadable or mismatched files."""
    import numpy as np

    from mefgan_tf.fusion import check_exposures
    from mefgan_tf.images import read_image_raw, to_float

    raw = [read_image_raw(path) for path in paths]
    check_exposures(raw, [str(path) for path in paths])
    depth = 16 if any(image.dtype == np.uint16 for image in raw) else 8
    return [to_float(image) for image in raw], depth


def read_exposures_original(paths: list[Path]):
    """(float images, 8) of a scene's files, read and cropped as the original's ``generate.py`` does."""
    from mefgan_tf.fusion import check_exposures, crop_to_multiple
    from mefgan_tf.images import read_image_original_raw, to_float

    raw = [read_image_original_raw(path) for path in paths]
    check_exposures(raw, [str(path) for path in paths])
    return [to_float(crop_to_multiple(image)) for image in raw], 8


def write_fused(out: Path, fused, input_depth: int, bit_depth: str, original_io: bool) -> Path:
    """Write a fused float image: ours (``write_image``) or as the original does (``write_image_original``)."""
    from mefgan_tf.images import write_image, write_image_original

    if original_io:
        return write_image_original(out, fused)
    return write_image(out, fused, bit_depth=output_depth(input_depth, bit_depth))


def fuse_files(fuser, paths: list[Path], out: Path, bit_depth: str, original_io: bool = False) -> Path:
    """Read, fuse and write one scene (with ``original_io``, the way the original does)."""
    check_inputs_and_output(paths, out)
    images, depth = read_exposures_original(paths) if original_io else read_exposures(paths)
    return write_fused(out, fuser(images), depth, bit_depth, original_io)


def check_original_io(args: argparse.Namespace) -> None:
    if args.original_io and args.bit_depth == "16":
        raise CommandError("--original-io writes 8-bit images (scipy's bytescale); drop --bit-depth 16")


def scene_folders(root: Path) -> list[Path]:
    """The scene subfolders of ``root``, saying what is left out and why."""
    if not root.is_dir():
        raise CommandError(f"{root}: not a folder of scenes")
    entries = sorted(root.iterdir())
    scenes = [p for p in entries if p.is_dir() and not p.name.startswith(".") and p.name != SICE_LABEL_FOLDER]
    if any(p.name == SICE_LABEL_FOLDER for p in entries):
        print(f"note: skipping {root / SICE_LABEL_FOLDER} (SICE reference images, not a scene)", file=sys.stderr)
    loose = [p.name for p in entries if p.is_file() and not p.name.startswith(".")]
    if loose:
        print(f"note: ignoring {len(loose)} file(s) directly in {root} (scenes are subfolders): {', '.join(loose[:5])}", file=sys.stderr)
    if not scenes:
        raise CommandError(f"{root}: no scene subfolders (expected one folder of exposures per scene)")
    return scenes


def scene_images(scene: Path) -> list[Path]:
    from mefgan_tf.images import is_image

    files = sorted(p for p in scene.iterdir() if p.is_file() and not p.name.startswith("."))
    others = [p.name for p in files if not is_image(p)]
    if others:
        print(f"note: {scene.name}: ignoring non-image file(s) {', '.join(others)}", file=sys.stderr)
    return [p for p in files if is_image(p)]


def run_pairs(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mefgan_tf.fusion import load_fuser

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"{out_dir}: exists and is not a folder (with --pairs, -o names the output folder)")
    ext = (args.format or ("jpg" if args.original_io else "png")).lstrip(".")
    problem = extension_problem("." + ext, args.bit_depth)
    if problem:
        raise CommandError(f"--format {args.format or ext}: {problem}")
    scenes = scene_folders(Path(args.pairs))
    check_folder_target(out_dir)
    outputs = [out_dir / f"{scene.name}.{ext}" for scene in scenes]
    check_new_files(outputs, args.overwrite)
    fuser = load_fuser(args.model, tile=args.tile, progress=not args.quiet)
    failed = []
    for scene, out in tqdm(list(zip(scenes, outputs)), desc="scenes", unit="scene", disable=args.quiet):
        try:
            fuse_files(fuser, scene_images(scene), out, args.bit_depth, args.original_io)
        except CommandError as err:
            failed.append(scene.name)
            tqdm.write(f"mefgan fuse: {scene.name}: {err}", file=sys.stderr)
    done = len(scenes) - len(failed)
    print(f"fused {done} of {len(scenes)} scenes into {out_dir}")
    if failed:
        raise CommandError(f"{len(failed)} of {len(scenes)} scenes failed: {', '.join(failed)} (reasons above)")
    return 0


def run(args: argparse.Namespace) -> int:
    check_original_io(args)
    if args.pairs:
        if args.images:
            raise CommandError("give either IMAGE files or --pairs DIR, not both")
        return run_pairs(args)
    from mefgan_tf.fusion import load_fuser

    paths, out = [Path(p) for p in args.images], Path(args.out)
    if len(paths) < 2:
        raise CommandError(f"need at least two exposures to fuse, got {len(paths)}")
    check_output_extension(out, args.original_io, args.bit_depth)
    check_inputs_and_output(paths, out)
    check_writable(out, args.overwrite)
    images, depth = read_exposures_original(paths) if args.original_io else read_exposures(paths)
    fuser = load_fuser(args.model, tile=args.tile, progress=not args.quiet)
    write_fused(out, fuser(images), depth, args.bit_depth, args.original_io)
    print(f"fused {len(paths)} exposures into {out}")
    return 0
