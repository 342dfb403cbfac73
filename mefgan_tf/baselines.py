"""Classical fusion baselines for `mefgan evaluate`: Mertens exposure fusion and plain averaging.

Each baseline takes the exposures as a list of RGB float32 arrays in [0, 1] (same size, any order)
and returns the fused RGB float32 image in [0, 1].
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from mefgan_tf.pyramid import MERTENS

# The baseline's well-exposedness exponent: OpenCV's default, 0 (no well-exposedness weight), unlike the
# paper's 1 (``pyramid.MERTENS``, which the detail transfer uses). The published Mertens numbers that the
# MEF-GAN paper and MEFB compare with are OpenCV's defaults, so this baseline keeps them.
OPENCV_EXPOSEDNESS = 0.0


def _check(images: Sequence[np.ndarray]) -> None:
    if len(images) < 2:
        raise ValueError(f"fusion needs at least 2 exposures, got {len(images)}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"exposures differ in size: {sorted(shapes)}")


def mertens(images: Sequence[np.ndarray], contrast: float = MERTENS.contrast, saturation: float = MERTENS.saturation,
            exposure: float = OPENCV_EXPOSEDNESS) -> np.ndarray:
    """Mertens, Kautz & Van Reeth (2007) exposure fusion by OpenCV (Laplacian-pyramid blending),
    clipped to [0, 1]. ``contrast``, ``saturation`` and ``exposure`` are the exponents of the
    contrast, saturation and well-exposedness weights; the defaults are OpenCV's (1, 1 and
    ``OPENCV_EXPOSEDNESS``). Also takes RGB uint8 exposures (``data_prep.references`` varies them)."""
    _check(images)
    # MergeMertens scales its input by 1/255 whatever the type: hand it uint8 or float 0-255 BGR.
    if all(im.dtype == np.uint8 for im in images):
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]
    else:
        bgr = [np.ascontiguousarray(im[..., ::-1], np.float32) * np.float32(255.0) for im in images]
    fused = cv2.createMergeMertens(contrast, saturation, exposure).process(bgr)
    return np.clip(fused[..., ::-1], 0.0, 1.0).astype(np.float32)


def average(images: Sequence[np.ndarray]) -> np.ndarray:
    """Pixel-wise mean of the exposures: the floor any fusion method should beat."""
    _check(images)
    return np.mean(np.stack(images).astype(np.float32), axis=0)


BASELINES: dict[str, Callable[[Sequence[np.ndarray]], np.ndarray]] = {
    "mertens": mertens,
    "average": average,
}
