"""Laplacian pyramids on RGB float32 images in [0, 1]: Mertens's exposure weights and blending,
and the transfer of the exposures' fine detail onto a fusion.

``blend`` (``fusion.blend_with_middle``) blends pair fusions with ``pyramid_blend``; every fusion
of ``fusion.Fuser`` ends with ``transfer_detail``: the network decides tone and colour (the coarse
levels), the exposures give the fine detail where each is well exposed (Mertens's weights). A
photo given twice then keeps its own detail exactly, and the network's softening of fine texture
is gone. Images are whole arrays here: the memory each step needs is planned in ``fusion``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

# Added to every weight: pixels that no image weighs become an even mix. Above the float32 rounding of
# the weights (about 1e-9 where contrast is nil), so that rounding (8-bit input, another backend) never
# hands such a pixel to one image; measured no worse than 1e-12 on the held-out scenes (1e-6: worse).
WEIGHT_FLOOR = 1e-8
# Finest Laplacian levels of every fusion that come from the exposures (``transfer_detail``): detail up
# to 2**DETAIL_LEVELS pixels across, the network's tone and colour above that. Chosen on the held-out
# scenes at full resolution (the model card: 3 to 5 measured; 4 is ahead of Mertens on extreme pairs
# there and on SICE); 0 gives the network's own fusion.
DETAIL_LEVELS = 4


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


def gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``image`` and ``levels`` successive halvings (OpenCV's ``pyrDown``)."""
    pyramid = [image]
    for _ in range(levels):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    return pyramid


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` band-pass images, finest first, then the low-pass residual; ``collapse`` inverts it."""
    gauss = gaussian_pyramid(np.asarray(image, np.float32), levels)
    return [g - cv2.pyrUp(smaller, dstsize=g.shape[1::-1]) for g, smaller in zip(gauss, gauss[1:])] + [gauss[-1]]


def collapse(pyramid: Sequence[np.ndarray]) -> np.ndarray:
    """The image of a Laplacian pyramid (bands finest first, the residual last)."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = cv2.pyrUp(image, dstsize=band.shape[1::-1]) + band
    return image


def normalised_weights(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``weights`` (each [H, W]) floored by ``WEIGHT_FLOOR`` and scaled to sum to 1 at every pixel."""
    floored = [np.asarray(w, np.float32) + np.float32(WEIGHT_FLOOR) for w in weights]
    total = np.sum(floored, axis=0)
    return [w / total for w in floored]


def blended_bands(images: Iterable[np.ndarray], weights: Sequence[np.ndarray], levels: int,
                  bands: int | None = None) -> list[np.ndarray]:
    """Mertens's blended Laplacian pyramid of ``images`` (taken one at a time, so an iterator holds
    only one) under ``weights``: each level is the sum of the images' bands times their weights'
    Gaussian level (weights normalised here). ``bands``: only that many finest levels (default all)."""
    kept = levels + 1 if bands is None else bands
    blended = None
    for image, weight in zip(images, normalised_weights(weights), strict=True):
        gauss, laplace = gaussian_pyramid(weight, kept - 1), laplacian_pyramid(image, min(levels, kept))
        terms = [band * g[..., None] for band, g in zip(laplace[:kept], gauss)]
        blended = terms if blended is None else [a + b for a, b in zip(blended, terms)]
    return blended


def pyramid_blend(images: Iterable[np.ndarray], weights: Sequence[np.ndarray]) -> np.ndarray:
    """Mertens's Laplacian-pyramid blending of ``images`` (RGB float32 [0, 1], taken one at a time)
    with per-pixel ``weights`` [H, W] (normalised to sum to 1 at every pixel). Clipped to [0, 1]."""
    levels = pyramid_levels(*np.shape(weights[0])[:2])
    return np.clip(collapse(blended_bands(images, weights, levels)), 0.0, 1.0)


def transfer_detail(fused: np.ndarray, frames: Sequence[np.ndarray], levels: int) -> np.ndarray:
    """``fused`` with its ``levels`` finest Laplacian levels replaced by the ``frames``' own, blended
    with Mertens's weights (``exposure_weight``): the fusion's tone and colour with the exposures'
    detail (each from where it is well exposed). ``levels`` 0 gives ``fused``; it is capped at the
    image's pyramid depth. RGB float32 [0, 1] in and out (clipped)."""
    levels = min(levels, pyramid_levels(*fused.shape[:2]))
    if levels <= 0:
        return fused
    bands = blended_bands(frames, [exposure_weight(frame) for frame in frames], levels, levels)
    residual = gaussian_pyramid(np.asarray(fused, np.float32), levels)[-1]
    return np.clip(collapse([*bands, residual]), 0.0, 1.0)


GAUSS_TAPS = np.float32([1, 4, 6, 4, 1]) / 16  # OpenCV's pyrDown / pyrUp kernel, separable
LAPLACIAN_KERNEL = np.float32([[0, 1, 0], [1, -4, 1], [0, 1, 0]])  # cv2.Laplacian's (ksize 1)
GREY_WEIGHTS = np.float32([0.299, 0.587, 0.114])  # cv2.COLOR_RGB2GRAY


def graph_transfer_detail(fused, frames, levels: int):
    """``transfer_detail`` as TensorFlow ops, for the SavedModel's graph: ``fused`` and each of
    ``frames`` [H, W, 3] float32 tensors of any size; ``levels`` is fixed, its cap at the pyramid's
    depth is taken at run time. Agrees with the OpenCV version within float rounding (a fraction of
    an 8-bit level where no image weighs a pixel)."""
    import tensorflow as tf

    def filtered(x, kernel: np.ndarray):
        """Each channel of [H, W, C] ``x`` filtered by ``kernel`` with reflected borders (OpenCV's default)."""
        pad = kernel.shape[0] // 2
        planes = tf.pad(tf.transpose(x, [2, 0, 1])[..., None], [[0, 0], [pad, pad], [pad, pad], [0, 0]], "REFLECT")
        out = tf.nn.conv2d(planes, tf.constant(kernel[:, :, None, None]), 1, "VALID")
        return tf.transpose(out[..., 0], [1, 2, 0])

    gauss_kernel = np.outer(GAUSS_TAPS, GAUSS_TAPS)

    def down(x):
        return filtered(x, gauss_kernel)[::2, ::2]

    def up(x, shape):
        rows = tf.reshape(tf.stack([x, tf.zeros_like(x)], 1), [2 * tf.shape(x)[0], tf.shape(x)[1], -1])
        both = tf.reshape(tf.stack([rows, tf.zeros_like(rows)], 2), [tf.shape(rows)[0], 2 * tf.shape(rows)[1], -1])
        return filtered(both, 4 * gauss_kernel)[: shape[0], : shape[1]]  # cropped after, as OpenCV's

    def weight(rgb):
        grey = tf.tensordot(rgb, tf.constant(GREY_WEIGHTS), 1)[..., None]
        contrast = tf.abs(filtered(grey, LAPLACIAN_KERNEL))[..., 0]
        exposedness = tf.exp(-tf.reduce_sum((rgb - 0.5) ** 2, -1) / (2 * 0.2**2))
        return contrast * tf.math.reduce_std(rgb, -1) * exposedness + WEIGHT_FLOOR

    def transfer(count: int):
        weights = [weight(frame) for frame in frames]
        total = tf.add_n(weights)
        bands = [0.0] * count
        for frame, w in zip(frames, weights):
            share, image = (w / total)[..., None], frame
            for level in range(count):
                smaller = down(image)
                bands[level] += (image - up(smaller, tf.shape(image))) * share
                image, share = smaller, down(share)
        image = fused
        for _ in range(count):
            image = down(image)
        for band in reversed(bands):
            image = up(image, tf.shape(band)) + band
        return tf.clip_by_value(image, 0.0, 1.0)

    side = tf.reduce_min(tf.shape(fused)[:2])
    depth = tf.maximum(1, tf.reduce_sum(tf.cast(side >= 2 ** tf.range(1, 31), tf.int32)) - 1)  # ``pyramid_levels``
    branches = [lambda: tf.identity(fused)] + [lambda count=count: transfer(count) for count in range(1, levels + 1)]
    return tf.switch_case(tf.minimum(levels, depth), branches)
