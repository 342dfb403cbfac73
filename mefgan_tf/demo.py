"""The demo of `mefgan demo` (run by `make demo`): fuse a generated sample pair with the shipped generator.

``write_demo`` writes ``under.png``, ``over.png``, ``fused.png`` and ``compare.png`` (under | over |
fused, side by side, labelled). The pair is made from a photo scikit-image ships (no network).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mefgan_tf.samples import DEFAULT_EV, SAMPLE_IMAGES

DEFAULT_MAX_SIDE = 512  # the photo is shrunk to this longer side
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


def write_demo(
    out: Path, model: str | Path | None = None, image: str = SAMPLE_IMAGES[0], ev: float = DEFAULT_EV,
    max_side: int | None = DEFAULT_MAX_SIDE, overwrite: bool = False,
) -> list[Path]:
    """Fuse the sample pair of ``image`` (``ev`` stops each way, shrunk to ``max_side``) with ``model``
    (default: the shipped generator) and write ``FILES`` into ``out``; returns their paths."""
    from mefgan_tf.files import check_folder_target, check_new_files
    from mefgan_tf.fusion import load_fuser
    from mefgan_tf.images import to_float, to_uint8, write_image
    from mefgan_tf.samples import sample_pair

    out = Path(out)
    paths = [out / name for name in FILES]
    check_folder_target(out)
    check_new_files(paths, overwrite)
    fuser = load_fuser(model)  # first: a missing model must not leave half a demo behind
    under, over = sample_pair(image, ev, max_side)
    fused = to_uint8(fuser([to_float(under), to_float(over)]))
    for name, picture in (("under", under), ("over", over), ("fused", fused)):
        write_image(out / f"{name}.png", picture)
    compare = side_by_side([("under-exposed", under), ("over-exposed", over), ("MEF-GAN fused", fused)])
    write_image(out / "compare.png", compare)
    return paths
