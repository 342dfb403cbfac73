"""`mefgan evaluate`: score fusion methods on a folder of scenes with the paper's and MEFB's metrics (the ``evaluate`` package)."""
from __future__ import annotations

import argparse
from pathlib import Path

from mefgan_tf.cli.types import add_fusion_options, fusion_options
from mefgan_tf.errors import CommandError
from mefgan_tf.scenes import PAIRINGS

# The scorer and its metrics (scikit-image, the model loader) are imported inside check() and run(),
# deliberately: every `mefgan` call builds every command's parser, and these would slow them all.


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenes", type=Path, metavar="SCENES_DIR",
                        help="one subfolder of exposures per scene, or uN/oN image pairs (the original test_imgs layout)")
    parser.add_argument("--method", action="append", required=True, metavar="SPEC",
                        help="repeatable: mertens | average | NAME=folder:PATH (fused images named <scene>.<ext>) "
                             "| NAME=model:PATH (checkpoint or SavedModel; shipped: the generator that comes with mefgan-tf) "
                             "| NAME=model-original-io:PATH (a model "
                             "with the authors' test-time I/O, see --original-io)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="writes per_image.csv, summary.csv, summary.json, summary.md and metrics.png here")
    parser.add_argument("--gt", type=Path, metavar="DIR",
                        help="ground truth as <scene>.<ext> (default: SCENES_DIR/Label if present)")
    parser.add_argument("--resize-max", type=int, metavar="PIXELS",
                        help="shrink every image of a scene identically so its longer side is at most PIXELS "
                             "(after the crop rule; faster, but the numbers are not the full-resolution ones)")
    parser.add_argument("--original-io", action="store_true",
                        help="run every model: method with the authors' test-time I/O, as `mefgan fuse "
                             "--original-io` writes it, to compare like for like with their results: sources "
                             "read by PIL without EXIF rotation and cropped at the top-left to multiples of 8, "
                             "fused image min-max stretched (scipy's bytescale) and passed through a quality-75 "
                             "JPEG; it is scored against sources and ground truth cropped the same way "
                             "(NAME=model-original-io:PATH does this for one method only)")
    parser.add_argument("--pairing", action="append", choices=PAIRINGS, metavar="PAIRING",
                        help="which exposures of each scene are fused and scored (repeatable; each is reported "
                             "apart, in OUT/<pairing>/ when several are given): 'extreme' the darkest and the "
                             "brightest (SICE's pairs; ground truth: the label); 'adjacent' the middle exposure and "
                             "the next brighter one (a close pair, as phones shoot); 'same' the middle exposure twice "
                             "(a fusion of x with x should be x: it is the ground truth, PSNR measures how close it "
                             "comes back); 'all' every exposure of scenes with three or more, MEF-SSIM against all of "
                             "them (default: extreme)")
    add_fusion_options(parser, tile=False, original_io=True, applies="for model methods, as for `mefgan fuse`: ")
    parser.add_argument("--align", action="store_true",
                        help="align each scene's exposures to its best-exposed one first, as `mefgan fuse --align` "
                             "(hand-held brackets); every method fuses, and is scored against, the aligned frames; "
                             "what was done is a note in the report")
    parser.add_argument("--deghost", action="store_true",
                        help="take moving things from the reference frame first, as `mefgan fuse --deghost`")
    parser.add_argument("--handheld", type=int, metavar="SEED",
                        help="measure alignment on a hand-held version of each scene: every exposure but the "
                             "best-exposed one is first moved by a random hand-held motion (seeded by SEED and the "
                             "scene's name: a shift of up to 5%% of the side, a turn of up to 3 degrees, a little "
                             "zoom and tilt), all cropped to the part every frame sees (use it with --align); the report adds "
                             "motion_error_px (the largest error at the corners of the motion recovered; without "
                             "--align, the motion itself) and PSNR_vs_still (each method's fusion against its fusion "
                             "of the frames before they moved)")
    parser.add_argument("--save-fused", action="store_true",
                        help="also keep every fused image (OUT/fused/[<pairing>/]<method>/<scene>.png), a contact "
                             "sheet per scene (OUT/fused/[<pairing>/]<scene>.jpg: the inputs, then each method) and "
                             "one of every scene, the most lifted blacks against mertens first (by_veil.jpg)")
    parser.add_argument("-y", "--overwrite", action="store_true",
                        help="replace the report files if --out holds them already (default: refuse, naming the file)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table on stdout")


def check(args: argparse.Namespace) -> None:
    """What needs no model, before TensorFlow starts: numbers, the fusion's options (``args.fusion``, by
    whether a model runs with the authors' I/O), and a report outside every folder read."""
    from mefgan_tf import metrics
    from mefgan_tf.files import check_outside

    args.fusion = {original_io: fusion_options(args, original_io) for original_io in (False, True)}
    if args.resize_max is not None and not 2 * metrics.WINDOW <= args.resize_max <= 2**16:
        raise CommandError(f"--resize-max {args.resize_max}: must be from {2 * metrics.WINDOW} to {2**16}")
    check_outside(args.out, args.scenes, "scenes folder")
    if args.gt is not None:
        check_outside(args.out, args.gt, "--gt folder")
    for spec in args.method:
        name, _, source = spec.partition("=folder:")
        if source:
            check_outside(args.out, source, f"folder of method {name}")


def run(args: argparse.Namespace) -> int:
    from mefgan_tf.evaluate.fused import FusedSaver
    from mefgan_tf.evaluate.methods import parse_methods
    from mefgan_tf.evaluate.report import check_out, check_scored, veil_order, write_report
    from mefgan_tf.evaluate.scoring import score_scenes
    from mefgan_tf.files import atomic_path
    from mefgan_tf.pairings import pairing_heading
    from mefgan_tf.scenes import find_scenes

    pairings = list(dict.fromkeys(args.pairing or ["extreme"]))
    folders = {p: args.out / p if len(pairings) > 1 else args.out for p in pairings}
    for folder in folders.values():
        check_out(folder, args.overwrite)
    methods = parse_methods(args.method, args.original_io, args.fusion.__getitem__)
    scenes = find_scenes(args.scenes, args.gt)
    sections = []
    for pairing, folder in folders.items():
        keep = FusedSaver(args.out / "fused" / (pairing if len(pairings) > 1 else "")) if args.save_fused else None
        rows = score_scenes(scenes, methods, args.resize_max, progress=not args.quiet, pairing=pairing, keep=keep,
                            align=args.align, deghost=args.deghost, handheld=args.handheld)
        check_scored(rows, args.scenes)
        if keep is not None:
            keep.write_by_veil(veil_order(rows, methods))
        options = {"scenes": str(args.scenes), "methods": args.method, "gt": str(args.gt) if args.gt else None,
                   "resize_max": args.resize_max, "original_io": args.original_io, "pairing": pairing,
                   "align": args.align, "deghost": args.deghost, "handheld": args.handheld,
                   "work_size": args.fusion[False].work_size or "full"}
        markdown = write_report(folder, rows, methods, options)
        sections.append(pairing_heading(pairing) + markdown if len(pairings) > 1 else markdown)
    text = "\n".join(sections)
    if len(pairings) > 1:
        with atomic_path(args.out / "summary.md") as tmp:
            tmp.write_text(text)
    if not args.quiet:
        print(text, end="")
    return 0
