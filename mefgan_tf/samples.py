"""A sample exposure pair made from a photo that scikit-image ships, so demos need no download.

The photo is taken to linear light, scaled by 2^-EV (under) and 2^+EV (over), clipped at white and
encoded back to sRGB 8 bits: ``data_prep.synth``'s exposure model without noise.
"""
from __future__ import annotations

import numpy as np

from mefgan_tf.data_prep.synth import ExposureModel, expose, srgb_to_linear
from mefgan_tf.errors import CommandError
from mefgan_tf.images import shrink

# Colour photos bundled inside scikit-image's package (skimage/data/*.png): no network needed.
SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea")
DEFAULT_EV = 2.0


def sample_photo(name: str = "astronaut", max_side: int | None = None) -> np.ndarray:
    """A bundled RGB uint8 photo, shrunk (area filter) so its longer side is at most ``max_side``."""
    if name not in SAMPLE_IMAGES:
        raise CommandError(f"unknown sample image {name!r} (choose from {', '.join(SAMPLE_IMAGES)})")
    import skimage.data

    return np.ascontiguousarray(shrink(getattr(skimage.data, name)(), max_side))


def exposed(photo: np.ndarray, ev: float) -> np.ndarray:
    """``photo`` (uint8 sRGB) as captured ``ev`` stops brighter (negative: darker), without noise: uint8 sRGB."""
    return expose(srgb_to_linear(photo.astype(np.float32) / 255.0), ev, ExposureModel())


def sample_pair(name: str = "astronaut", ev: float = DEFAULT_EV, max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(under, over) uint8 RGB exposures, ``ev`` stops below and above the bundled photo ``name``."""
    photo = sample_photo(name, max_side)
    return exposed(photo, -ev), exposed(photo, ev)
