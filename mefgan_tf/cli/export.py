"""`mefgan export`: a SavedModel of the generator for TensorFlow Serving (``export``), or with
``--tflite`` a LiteRT file for devices (``tflite``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from mefgan_tf import tflite
from mefgan_tf.checkpoint import load_generator
from mefgan_tf.cli.types import add_fusion_options, fusion_options
from mefgan_tf.config import ATTENTION_BLOCKS
from mefgan_tf.errors import CommandError
from mefgan_tf.export import BYTES_SIGNATURE, FLOAT_SIGNATURE, check_version_folder, export_saved_model
from mefgan_tf.files import check_file_target, check_folder_target
from mefgan_tf.models import resolve_model

# TensorFlow starts in ``export`` and ``tflite`` when a model is written, after ``check``: nothing here imports it.


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="mefgan-tf checkpoint folder or prefix to export (default: shipped, the generator that comes with mefgan-tf)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="new numbered version folder in TensorFlow Serving's layout, e.g. export/mefgan/1; "
        "with --tflite, the .tflite file to write",
    )
    parser.add_argument(
        "--attention-chunk",
        type=int,
        default=None,
        metavar="N",
        help="attention query rows computed at once in the exported graph "
        "(default: the model config's value; with --tflite, 256)",
    )
    add_fusion_options(parser, tile=False, multi=False,
                       applies="for the fuse_images signature, as for `mefgan fuse` (serving_default and LiteRT "
                               "models give the network's own fusion): ")
    parser.add_argument(
        "--tflite",
        action="store_true",
        help="write a LiteRT (TFLite) model for devices instead: over, under float32 [1, H, W, 3] in [0, 1], "
        "H and W multiples of 8 (the caller pads and crops)",
    )
    parser.add_argument(
        "--quantize",
        choices=("none", "float16", "int8"),
        default=None,
        help="with --tflite: float16 weights, or int8 weights and activations (post-training, calibrated) "
        "(default: none)",
    )
    parser.add_argument(
        "--calibration",
        metavar="DIR",
        help="with --quantize int8: exposure pairs to calibrate on (uN/oN files or one folder per scene; "
        "default: pairs made from the bundled demo photos)",
    )
    parser.add_argument(
        "-y", "--overwrite", action="store_true",
        help="with --tflite: replace the .tflite file if it exists (default: refuse). A SavedModel version "
        "folder is never replaced: TensorFlow Serving may be serving it; export a new version number",
    )


def check_options(args: argparse.Namespace) -> None:
    """CommandError for option values and combinations that do not go together (before any model is loaded)."""
    if args.attention_chunk is not None:
        tflite.check_chunk(args.attention_chunk)
    if not args.tflite:
        args.fusion = fusion_options(args)
        if args.quantize is not None or args.calibration is not None:
            given = "--quantize" if args.quantize is not None else "--calibration"
            raise CommandError(f"{given} applies to LiteRT exports only; add --tflite")
        return
    for option, value in (("--detail-levels", args.detail_levels), ("--work-size", args.work_size),
                          ("--tone-guard" if args.tone_guard else "--no-tone-guard", args.tone_guard)):
        if value is not None:
            raise CommandError(f"{option} applies to SavedModels (the fuse_images signature); a LiteRT model "
                               "gives the network's own fusion")
    if args.calibration is not None:
        if args.quantize != "int8":
            raise CommandError("--calibration is used by --quantize int8 only")
        if not Path(args.calibration).is_dir():
            raise CommandError(f"--calibration {args.calibration}: no such folder")


check = check_options  # called before TensorFlow starts


def run_tflite(args: argparse.Namespace) -> int:
    out = Path(args.out)
    tflite.check_tflite_path(out)
    check_file_target(out, args.overwrite)
    chunk = tflite.check_chunk(ATTENTION_BLOCKS.litert if args.attention_chunk is None else args.attention_chunk)
    generator = load_generator(resolve_model(args.checkpoint))
    quantize = args.quantize or "none"
    tflite.export_tflite(generator, out, quantize, args.calibration, chunk)
    size = out.stat().st_size / 2**20
    print(f"LiteRT model written to {out} ({size:.1f} MiB, quantization: {quantize}; signatures: {', '.join(tflite.SIGNATURES)})")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.tflite:
        return run_tflite(args)
    out = Path(args.out)
    check_version_folder(out)
    check_folder_target(out.parent, out)
    model = resolve_model(args.checkpoint)
    generator = load_generator(model, attention_chunk=args.attention_chunk)
    export_saved_model(generator, out, source=str(model), options=args.fusion)
    print(f"SavedModel written to {out} (signatures: {FLOAT_SIGNATURE}, {BYTES_SIGNATURE})")
    return 0
