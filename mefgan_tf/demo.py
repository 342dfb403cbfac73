"""`mefgan demo` (run by `make demo`): fuse a generated sample pair with the shipped generator.

Writes ``under.png``, ``over.png``, ``fused.png`` and ``compare.png`` (under | over | fused, side
by side, labelled) into ``--out``. The pair is made from a photo scikit-image ships (no network).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

GAP = 8  # white pixels between the panels of compare.png
FILES = ("under.png", "over.png", "fused.png", "compare.png")
LABEL_HEIGHT = 28


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` (uint8 RGB) under a white strip carrying ``text``."""
    import cv2

    strip = np.full((LABEL_HEIGHT, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (6, LABEL_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def side_by_side(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Labelled uint8 panels of one height, left to right, with white gaps."""
    gap = np.full((panels[0][1].shape[0] + LABEL_HEIGHT, GAP, 3), 255, np.uint8)
    parts = []
    for i, (text, image) in enumerate(panels):
        parts += ([gap] if i else []) + [labelled(image, text)]
    return np.concatenate(parts, axis=1)


def configure(parser: argparse.ArgumentParser) -> None:
    from mefgan_tf.samples import DEFAULT_EV, SAMPLE_IMAGES

    parser.add_argument("--out", default="demo", metavar="DIR", help="folder for the four images (default: %(default)s)")
    parser.add_argument(
        "--model", metavar="PATH",
        help="checkpoint or SavedModel to fuse with (default: the shipped generator in checkpoints/reference)",
    )
    parser.add_argument(
        "--image", choices=SAMPLE_IMAGES, default=SAMPLE_IMAGES[0],
        help="scikit-image photo the pair is made from (default: %(default)s)",
    )
    parser.add_argument(
        "--ev", type=float, default=DEFAULT_EV,
        help="stops below and above the photo for the under- and over-exposure (default: %(default)s)",
    )
    parser.add_argument(
        "--max-side", type=int, default=512, metavar="PX",
        help="shrink the photo so its longer side is at most PX (default: %(default)s)",
    )
    parser.add_argument(
        "-y", "--overwrite", action="store_true",
        help="replace the four images if --out holds them already, as `make demo` does (default: refuse)",
    )


def run(args: argparse.Namespace) -> int:
    from mefgan_tf.files import check_folder_target, check_new_files
    from mefgan_tf.fusion import load_fuser
    from mefgan_tf.images import to_float, to_uint8, write_image
    from mefgan_tf.samples import sample_pair

    out = Path(args.out)
    check_folder_target(out)
    check_new_files([out / name for name in FILES], args.overwrite)
    fuser = load_fuser(args.model)  # first: a missing model must not leave half a demo behind
    under, over = sample_pair(args.image, args.ev, args.max_side)
    fused = to_uint8(fuser([to_float(under), to_float(over)]))
    for name, image in (("under", under), ("over", over), ("fused", fused)):
        write_image(out / f"{name}.png", image)
    compare = side_by_side([("under-exposed", under), ("over-exposed", over), ("MEF-GAN fused", fused)])
    write_image(out / "compare.png", compare)
    print(f"demo written to {out}/ (under.png, over.png, fused.png, compare.png)")
    return 0
