"""A sample exposure pair made from a photo that scikit-image ships, so demos need no download.

The photo is taken to linear light, scaled by 2^-EV (under) and 2^+EV (over), clipped at white and
encoded back to sRGB 8 bits: a noiseless version of ``data_prep.synth``'s exposure model.
"""
from __future__ import annotations

import cv2
import numpy as np

from data_prep.synth import linear_to_srgb, srgb_to_linear
from mefgan_tf.errors import CommandError

# Colour photos bundled inside scikit-image's package (skimage/data/*.png): no network needed.
SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea")
DEFAULT_EV = 2.0


def sample_photo(name: str = "astronaut", max_side: int | None = None) -> np.ndarray:
    """A bundled RGB uint8 photo, shrunk (area filter) so its longer side is at most ``max_side``."""
    if name not in SAMPLE_IMAGES:
        raise CommandError(f"unknown sample image {name!r} (choose from {', '.join(SAMPLE_IMAGES)})")
    import skimage.data

    photo = getattr(skimage.data, name)()
    height, width = photo.shape[:2]
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(photo)


def expose(photo: np.ndarray, ev: float) -> np.ndarray:
    """``photo`` (uint8 sRGB) as captured ``ev`` stops brighter (negative: darker), uint8 sRGB."""
    linear = srgb_to_linear(photo.astype(np.float32) / 255.0)
    return np.round(linear_to_srgb(np.clip(linear * np.float32(2.0**ev), 0.0, 1.0)) * 255.0).astype(np.uint8)


def sample_pair(name: str = "astronaut", ev: float = DEFAULT_EV, max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(under, over) uint8 RGB exposures, ``ev`` stops below and above the bundled photo ``name``."""
    photo = sample_photo(name, max_side)
    return expose(photo, -ev), expose(photo, ev)
