"""`mefgan demo` (run by `make demo`): fuse a generated sample pair with the shipped generator (``demo.write_demo``)."""
from __future__ import annotations

import argparse

from mefgan_tf.cli.types import finite_float


def configure(parser: argparse.ArgumentParser) -> None:
    from mefgan_tf.demo import DEFAULT_MAX_SIDE
    from mefgan_tf.samples import DEFAULT_EV, SAMPLE_IMAGES

    parser.add_argument("--out", default="demo", metavar="DIR", help="folder for the four images (default: %(default)s)")
    parser.add_argument(
        "--model", metavar="PATH",
        help="checkpoint or SavedModel to fuse with (default: shipped, the generator that comes with mefgan-tf)",
    )
    parser.add_argument(
        "--image", choices=SAMPLE_IMAGES, default=SAMPLE_IMAGES[0],
        help="scikit-image photo the pair is made from (default: %(default)s)",
    )
    parser.add_argument(
        "--ev", type=finite_float, default=DEFAULT_EV,
        help="stops below and above the photo for the under- and over-exposure (default: %(default)s)",
    )
    parser.add_argument(
        "--max-side", type=int, default=DEFAULT_MAX_SIDE, metavar="PX",
        help="shrink the photo so its longer side is at most PX (default: %(default)s)",
    )
    parser.add_argument(
        "-y", "--overwrite", action="store_true",
        help="replace the four images if --out holds them already, as `make demo` does (default: refuse)",
    )


MAX_EV = 8.0  # stops: past this the simulated exposures are flat black and white
MAX_SIDE = (16, 8192)  # pixels: the demo is a small picture


def run(args: argparse.Namespace) -> int:
    from mefgan_tf.demo import write_demo
    from mefgan_tf.errors import CommandError

    if not 0 < args.ev <= MAX_EV:
        raise CommandError(f"--ev {args.ev:g}: must be more than 0 and at most {MAX_EV:g} stops "
                           "(the under-exposure is that many stops below the photo, the over-exposure above)")
    if not MAX_SIDE[0] <= args.max_side <= MAX_SIDE[1]:
        raise CommandError(f"--max-side {args.max_side}: must be from {MAX_SIDE[0]} to {MAX_SIDE[1]} pixels")

    write_demo(args.out, args.model, args.image, args.ev, args.max_side, args.overwrite)
    print(f"demo written to {args.out}/ (under.png, over.png, fused.png, compare.png)")
    return 0
