"""Argument types and options shared by the commands: numbers are refused by argparse, in one line, unless
finite; the fusion options are defined here once (``add_fusion_options``) and resolved into one
``fusion.FusionOptions`` (``fusion_options``), which validates them."""
from __future__ import annotations

import argparse
import math

from mefgan_tf.align import ALIGN_BY_DEFAULT, DEGHOST_BY_DEFAULT
from mefgan_tf.fusion import DEFAULT_MULTI, STRATEGIES, FusionOptions
from mefgan_tf.fusion.options import AUTO, DEFAULT, FULL, MAX_LEVELS
from mefgan_tf.pyramid import DETAIL_LEVELS
from mefgan_tf.resolution import WORK_SIZE


def finite_float(text: str) -> float:
    """A float that is neither NaN nor infinite (argparse's ``float`` accepts 'nan' and 'inf')."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (the system would silently wrap larger numbers around)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 to 65535)")
    return value


def whole_number(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None


def tile_side(text: str) -> int | str:
    """``auto``, or a tile side in pixels (0: whole image); ``FusionOptions`` says which sides are valid."""
    return AUTO if text == AUTO else whole_number(text, "'auto', 0 or a side in pixels")


def level_count(text: str) -> int:
    """A whole number of pyramid levels; ``FusionOptions`` says how many are valid."""
    return whole_number(text, "a whole number of levels")


def work_size(text: str) -> int | str:
    """``full`` (the network at full size) or a working size in pixels; ``FusionOptions`` says which are valid."""
    return FULL if text == FULL else whole_number(text, "'full' or a side in pixels")


MULTI_HELP = (
    "how three or more exposures are fused, by a model that fuses pairs: {ways} (default: {default}, the best on "
    "MEF-SSIM against all frames of the held-out scenes, ahead of Mertens, and the least washed out)"
)
DETAIL_HELP = (
    "finest Laplacian-pyramid levels of the fused image taken from the exposures, each from where it is well "
    "exposed (Mertens's weights): detail up to 2^N pixels across comes from the photos, tone and colour from "
    "the network; 0 gives the network's own fusion (0 to {most}; default: {default}{original})"
)
WORK_SIZE_HELP = (
    "long side, in pixels, of the downscaled copy of the exposures that the network fuses; the exposures give "
    "every finer level of detail at full size (one more level per whole halving), so the cost of the network stays "
    "bounded whatever the photo's size; 'full' runs the network on the photos themselves (as --detail-levels 0 "
    "and --original-io always do) (default: {default})"
)
TILE_HELP = (
    "side of the full-resolution tiles in pixels (multiple of 8); 0 = whole image at once; 'auto' picks it from "
    "available memory (default: auto). Results are identical either way."
)


TONE_GUARD_HELP = ("where the network's fusion has lifted blacks, paler colours or a darker scene than the "
                   "classical (Mertens) fusion of the same exposures by more than a few levels, bend its tone "
                   "with one global curve; with the detail step only (default: on)")


def multi_help() -> str:
    """``--multi``'s help: each strategy's name and summary (``fusion.STRATEGIES``)."""
    ways = "; ".join(f"'{name}': {way.summary}" for name, way in STRATEGIES.items())
    return MULTI_HELP.format(ways=ways, default=DEFAULT_MULTI)


def add_fusion_options(parser: argparse.ArgumentParser, tile: bool = True, multi: bool = True,
                       original_io: bool = False, applies: str = "", tone: bool = True) -> None:
    """The fusion options a command takes (``--tile``, ``--multi``, ``--detail-levels``, ``--work-size``,
    ``--tone-guard``):
    each defined here only, left None when not given; ``fusion_options`` resolves them. ``applies``:
    what the options apply to, before each help text."""
    if tile:
        parser.add_argument("--tile", type=tile_side, default=AUTO, metavar="SIZE", help=applies + TILE_HELP)
    if multi:
        parser.add_argument("--multi", default=None, metavar="WAY",
                            help=applies + multi_help())
    original = "; 0 with --original-io, as the authors fuse" if original_io else ""
    parser.add_argument("--detail-levels", type=level_count, default=None, metavar="N",
                        help=applies + DETAIL_HELP.format(most=MAX_LEVELS, default=DETAIL_LEVELS, original=original))
    parser.add_argument("--work-size", type=work_size, default=None, metavar="N",
                        help=applies + WORK_SIZE_HELP.format(default=WORK_SIZE))
    if tone:
        parser.add_argument("--tone-guard", action=argparse.BooleanOptionalAction, default=None,
                            help=applies + TONE_GUARD_HELP)


def fusion_options(args: argparse.Namespace, original_io: bool = False) -> FusionOptions:
    """The ``FusionOptions`` of a command's arguments (``add_fusion_options``); CommandError naming an
    invalid one. ``original_io``: the authors' test-time I/O (no detail transfer unless asked)."""
    size = getattr(args, "work_size", None)
    return FusionOptions.resolve(tile=getattr(args, "tile", AUTO), multi=getattr(args, "multi", None),
                                 detail=getattr(args, "detail_levels", None),
                                 work_size=DEFAULT if size is None else size, original_io=original_io,
                                 tone_guard=getattr(args, "tone_guard", None))


def add_align_options(parser: argparse.ArgumentParser) -> None:
    """``--align/--no-align`` and ``--deghost/--no-deghost`` (``align.prepare``; defaults measured there)."""
    parser.add_argument("--align", action=argparse.BooleanOptionalAction, default=ALIGN_BY_DEFAULT,
                        help="align every exposure to the best-exposed one first (a hand-held bracket): a "
                             "homography per frame, found on exposure-matched views; frames already aligned "
                             "are left untouched, and each frame's outcome is printed as a note (default: "
                             f"{'on' if ALIGN_BY_DEFAULT else 'off'})")
    parser.add_argument("--deghost", action=argparse.BooleanOptionalAction, default=DEGHOST_BY_DEFAULT,
                        help="where a frame shows something else than the reference frame (a thing that moved), "
                             "take that region from the reference, mapped to the frame's exposure, so that "
                             f"nothing shows twice (default: {'on' if DEGHOST_BY_DEFAULT else 'off'})")
