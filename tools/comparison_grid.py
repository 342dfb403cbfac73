"""Make the README's comparison picture: under | over | authors' MEF-GAN | Mertens | ours, one row per pair.

    python tools/comparison_grid.py ../shared/data/original_mefgan --pairs 1 2 4 \
        --model checkpoints/reference --out docs/sice_comparison.jpg

Every method fuses at full resolution; the rows are then shrunk to ``--height`` pixels.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from mefgan_tf.baselines import mertens
from mefgan_tf.files import atomic_path
from mefgan_tf.images import read_image_uint8, to_float, to_uint8
from mefgan_tf.models import load_fuser


def thumbnail(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` shrunk to a 3:2 cell of ``height`` rows (SICE's pairs are 3:2 to within 1%)."""
    return cv2.resize(image, (height * 3 // 2, height), interpolation=cv2.INTER_AREA)


def row(folder: Path, pair: int, fuser, height: int) -> np.ndarray:
    under = read_image_uint8(folder / "test_imgs" / f"u{pair}.JPG")
    over = read_image_uint8(folder / "test_imgs" / f"o{pair}.JPG")
    theirs = read_image_uint8(folder / "results" / f"{pair}.JPG")
    classic = to_uint8(mertens([to_float(under), to_float(over)]))
    ours = to_uint8(fuser([to_float(under), to_float(over)]))
    return np.concatenate([thumbnail(im, height) for im in (under, over, theirs, classic, ours)], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the original's folder with test_imgs/ and results/")
    parser.add_argument("--pairs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--model", default=None, help="checkpoint or SavedModel (default: the shipped generator)")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--out", type=Path, default=Path("docs/sice_comparison.jpg"))
    args = parser.parse_args()
    fuser = load_fuser(args.model, progress=False)
    grid = np.concatenate([row(args.folder, pair, fuser, args.height) for pair in args.pairs], axis=0)
    with atomic_path(args.out) as tmp:
        cv2.imwrite(str(tmp), np.ascontiguousarray(grid[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
