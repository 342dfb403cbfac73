"""Classical fusion baselines for `mefgan evaluate`: Mertens exposure fusion and plain averaging.

Each baseline takes the exposures as a list of RGB float32 arrays in [0, 1] (same size, any order)
and returns the fused RGB float32 image in [0, 1].
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np


def _check(images: Sequence[np.ndarray]) -> None:
    if len(images) < 2:
        raise ValueError(f"fusion needs at least 2 exposures, got {len(images)}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"exposures differ in size: {sorted(shapes)}")


def mertens(images: Sequence[np.ndarray], contrast: float = 1.0, saturation: float = 1.0, exposure: float = 0.0) -> np.ndarray:
    """Mertens, Kautz & Van Reeth (2007) exposure fusion by OpenCV (Laplacian-pyramid blending),
    clipped to [0, 1]. ``contrast``, ``saturation`` and ``exposure`` are the exponents of the
    contrast, saturation and well-exposedness weights; the defaults are OpenCV's (1, 1 and 0: no
    well-exposedness weight). Also takes RGB uint8 exposures (``data_prep.references`` varies them)."""
    _check(images)
    # MergeMertens scales its input by 1/255 whatever the type: hand it uint8 or float 0-255 BGR.
    if all(im.dtype == np.uint8 for im in images):
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]
    else:
        bgr = [np.ascontiguousarray(im[..., ::-1], np.float32) * np.float32(255.0) for im in images]
    fused = cv2.createMergeMertens(contrast, saturation, exposure).process(bgr)
    return np.clip(fused[..., ::-1], 0.0, 1.0).astype(np.float32)


def exposure_weight(image: np.ndarray, sigma: float = 0.2) -> np.ndarray:
    """Mertens's per-pixel quality of an RGB float image in [0, 1]: contrast (absolute Laplacian of
    the grey image) x saturation (standard deviation of R, G, B) x well-exposedness (a Gaussian of
    each channel around 0.5, ``sigma``), all exponents 1 as in the paper; [H, W] float32."""
    rgb = np.asarray(image, np.float32)
    contrast = np.abs(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_32F))
    saturation = rgb.std(axis=-1)
    exposedness = np.exp(-np.sum((rgb - 0.5) ** 2, axis=-1) / np.float32(2 * sigma**2))
    return contrast * saturation * exposedness


def pyramid_levels(height: int, width: int) -> int:
    """Laplacian-pyramid levels for an image: halving until the smallest side is 2-3 pixels."""
    return max(1, int(np.log2(max(min(height, width), 2))) - 1)


def pyramid_blend(images: Iterable[np.ndarray], weights: Sequence[np.ndarray]) -> np.ndarray:
    """Mertens's Laplacian-pyramid blending of ``images`` (RGB float32 [0, 1], taken one at a time, so
    an iterator holds only one of them) with per-pixel ``weights`` [H, W] (normalised here to sum to 1
    at every pixel; a floor of 1e-12 makes pixels that no image weighs an even mix). Clipped to [0, 1]."""
    floored = [np.asarray(w, np.float32) + np.float32(1e-12) for w in weights]
    total = np.sum(floored, axis=0)
    levels = pyramid_levels(*total.shape)
    blended = None
    for image, weight in zip(images, floored, strict=True):
        gauss, laplace = _gaussian_pyramid(weight / total, levels), _laplacian_pyramid(image, levels)
        terms = [band * g[..., None] for band, g in zip(laplace, gauss)]
        blended = terms if blended is None else [a + b for a, b in zip(blended, terms)]
    image = blended[-1]
    for band in reversed(blended[:-1]):
        image = cv2.pyrUp(image, dstsize=band.shape[1::-1]) + band
    return np.clip(image, 0.0, 1.0)


def _gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    pyramid = [image]
    for _ in range(levels):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    return pyramid


def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    gauss = _gaussian_pyramid(np.asarray(image, np.float32), levels)
    return [g - cv2.pyrUp(smaller, dstsize=g.shape[1::-1]) for g, smaller in zip(gauss, gauss[1:])] + [gauss[-1]]


def average(images: Sequence[np.ndarray]) -> np.ndarray:
    """Pixel-wise mean of the exposures: the floor any fusion method should beat."""
    _check(images)
    return np.mean(np.stack(images).astype(np.float32), axis=0)


BASELINES: dict[str, Callable[[Sequence[np.ndarray]], np.ndarray]] = {
    "mertens": mertens,
    "average": average,
}
