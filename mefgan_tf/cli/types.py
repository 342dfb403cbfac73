"""Argument types shared by the commands: numbers are refused by argparse, in one line, unless finite."""
from __future__ import annotations

import argparse
import math


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


MAX_LEVELS = 16  # pyramid levels: 2^16 pixels across is more than any photo


def level_count(text: str) -> int:
    """A whole number of pyramid levels, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of levels, got {text!r}") from None
    if not 0 <= value <= MAX_LEVELS:
        raise argparse.ArgumentTypeError(f"expected 0 to {MAX_LEVELS} levels, got {value}")
    return value


DETAIL_HELP = (
    "finest Laplacian-pyramid levels of the fused image taken from the exposures, each from where it is well "
    "exposed (Mertens's weights): detail up to 2^N pixels across comes from the photos, tone and colour from "
    "the network; 0 gives the network's own fusion (default: {default}{original})"
)


def add_detail_option(parser: argparse.ArgumentParser, original_io: bool) -> None:
    """``--detail-levels N`` (``fusion.DETAIL_LEVELS`` unless given; 0 with ``--original-io``)."""
    from mefgan_tf.pyramid import DETAIL_LEVELS

    original = "; 0 with --original-io, as the authors fuse" if original_io else ""
    parser.add_argument("--detail-levels", type=level_count, default=None, metavar="N",
                        help=DETAIL_HELP.format(default=DETAIL_LEVELS, original=original))



WORK_SIZE_HELP = (
    "long side, in pixels, of the downscaled copy of the exposures that the network fuses; the exposures give "
    "every finer level of detail at full size (one more level per whole halving), so the cost of the network stays "
    "bounded whatever the photo's size; 'full' runs the network on the photos themselves (as --detail-levels 0 "
    "and --original-io always do) (default: {default})"
)


def work_size(text: str) -> int | None:
    """``full`` (None: the network at full size) or a working size in pixels (``resolution.work_problem``)."""
    from mefgan_tf.resolution import work_problem

    if text == "full":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'full' or a side in pixels, got {text[:40]!r}") from None
    problem = work_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}, got {value}")
    return value


def add_work_size_option(parser: argparse.ArgumentParser) -> None:
    """``--work-size N|full`` (``resolution.WORK_SIZE`` unless given)."""
    from mefgan_tf.resolution import WORK_SIZE

    parser.add_argument("--work-size", type=work_size, default=WORK_SIZE, metavar="N",
                        help=WORK_SIZE_HELP.format(default=WORK_SIZE))


def detail_levels(given: int | None, original_io: bool = False) -> int:
    """What ``--detail-levels`` means (``fusion.resolve_detail``)."""
    from mefgan_tf.fusion import resolve_detail

    return resolve_detail(given, original_io)


def add_align_options(parser: argparse.ArgumentParser) -> None:
    """``--align/--no-align`` and ``--deghost/--no-deghost`` (``align.prepare``; defaults measured there)."""
    from mefgan_tf.align import ALIGN_BY_DEFAULT, DEGHOST_BY_DEFAULT

    parser.add_argument("--align", action=argparse.BooleanOptionalAction, default=ALIGN_BY_DEFAULT,
                        help="align every exposure to the best-exposed one first (a hand-held bracket): a "
                             "homography per frame, found on exposure-matched views; frames already aligned "
                             "are left untouched, and each frame's outcome is printed as a note (default: "
                             f"{'on' if ALIGN_BY_DEFAULT else 'off'})")
    parser.add_argument("--deghost", action=argparse.BooleanOptionalAction, default=DEGHOST_BY_DEFAULT,
                        help="where a frame shows something else than the reference frame (a thing that moved), "
                             "take that region from the reference, mapped to the frame's exposure, so that "
                             f"nothing shows twice (default: {'on' if DEGHOST_BY_DEFAULT else 'off'})")
