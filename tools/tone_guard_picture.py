"""Make the model card's tone-guard picture: under | over | Mertens | ours without the guard | ours.

    python tools/tone_guard_picture.py --out docs/tone_guard.jpg

Two of scikit-image's bundled photos without copyright restrictions, exposed as `mefgan demo` exposes
its sample (``samples.exposed``): a slide whose brighter frame is nearly white (the network lifts its
blacks: a veil) and a launch photo that the network darkens. Each label gives the image's black
level / mean level (``tone.tone_stats``); the shipped generator fuses at the photos' own size.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from mefgan_tf.api import load_model
from mefgan_tf.baselines import mertens
from mefgan_tf.files import atomic_path
from mefgan_tf.images import to_float, to_uint8
from mefgan_tf.samples import exposed
from mefgan_tf.sheets import Style, side_by_side, to_height
from mefgan_tf.tone import tone_stats

# (photo, stops below, stops above): where the guard acts on the shipped generator's fusion
SCENES = (("immunohistochemistry", -1.0, 3.0), ("rocket", -2.0, 3.0))
STYLE = Style(strip=26, gap=6, font_scale=0.45, left=4, above=8)
PANELS = 5


def label(name: str, image: np.ndarray) -> str:
    stats = tone_stats(image)
    return f"{name}: {stats.black:.0f} / {stats.mean:.0f}"


def row(photo: str, below: float, above: float, width: int) -> np.ndarray:
    """The row of one photo, its five panels scaled to fill ``width`` pixels with the gaps."""
    picture = getattr(skimage.data, photo)()[..., :3]
    under, over = to_float(exposed(picture, below)), to_float(exposed(picture, above))
    results = {
        "Mertens": mertens([under, over]),
        "ours, no guard": load_model("shipped", tone_guard=False)([under, over]),
        "ours": load_model("shipped")([under, over]),
    }
    panels = [(f"under ({below:+g} stops)", under), (f"over ({above:+g} stops)", over)]
    panels += [(label(name, image), image) for name, image in results.items()]
    height = round((width - (PANELS - 1) * STYLE.gap) * under.shape[0] / (PANELS * under.shape[1]))
    return side_by_side([(text, to_height(to_uint8(image), height)) for text, image in panels], STYLE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()
    rows = [row(*scene, args.width) for scene in SCENES]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, STYLE.gap), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    with atomic_path(args.out) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(rows)[:-STYLE.gap], cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(args.out)


if __name__ == "__main__":
    main()
