"""Contact sheets: uint8 RGB images of one height side by side, each under a white strip carrying its label.

`mefgan demo` writes one (``compare.png``: under | over | fused) and `mefgan evaluate --save-fused`
one per scene (the inputs, then each method's result); each command has its own ``Style``. A label
wider than its image is cut at the image's edge.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Style:
    """How a sheet looks: the label strip's height and the white gap between images (pixels), the
    text's scale, and where the text starts: ``left`` of the image's edge, ``above`` the strip's bottom."""

    strip: int
    gap: int
    font_scale: float
    left: int
    above: int


def labelled(image: np.ndarray, text: str, style: Style) -> np.ndarray:
    """``image`` (uint8 RGB) under a white strip carrying ``text``."""
    strip = np.full((style.strip, image.shape[1], 3), 255, np.uint8)
    origin = (style.left, style.strip - style.above)
    cv2.putText(strip, text, origin, cv2.FONT_HERSHEY_SIMPLEX, style.font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def side_by_side(panels: Sequence[tuple[str, np.ndarray]], style: Style) -> np.ndarray:
    """Labelled uint8 images of one height (``(label, image)`` pairs), left to right, with white gaps."""
    gap = np.full((panels[0][1].shape[0] + style.strip, style.gap, 3), 255, np.uint8)
    parts = []
    for i, (text, image) in enumerate(panels):
        parts += ([gap] if i else []) + [labelled(image, text, style)]
    return np.concatenate(parts, axis=1)


def to_height(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` scaled to ``height`` rows, its aspect kept (area interpolation)."""
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
