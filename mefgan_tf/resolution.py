"""The working resolution: the network fuses a downscaled copy, the exposures give every finer level.

Every fusion ends with the exposures' own fine detail (``pyramid.detail_onto``), so the network
decides only what is coarser than ``2**DETAIL_LEVELS`` pixels of the image it sees. It therefore
need not see the photo at full size: an exposure whose long side exceeds the working size
(``WORK_SIZE``) is area-downscaled to it, the network fuses that copy, and the fused copy gives only
the low-pass residual of the full-size result; the exposures give one more level of detail per
whole halving of the side (``levels``). The cost of the network is then bounded whatever the photo's size,
and the full-size work is pyramid arithmetic, as in Mertens's fusion.

Images no larger than the working size, and ``work_size=None`` (``--work-size full``), take the exact
full-resolution path. The working copy is padded (reflected) to one of a few shapes (``padded_shape``),
so that a compiler (XLA) builds one program per shape, not one per photo size.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from mefgan_tf.pyramid import gaussian_pyramid, graph_downs, pyramid_levels, residual_size

# Long side, in pixels, of the copy the network fuses (``--work-size``). Chosen by a sweep on the
# held-out scenes and SICE pairs at full size (docs/performance.md): at 512 a 12 MP pair costs the
# network about a second, and every pairing stays within 0.002 MEF-SSIM of the full-size network.
WORK_SIZE = 512
# The working copy's short side is padded up to a multiple of this share of the long side, so that
# every photo of one orientation reaches the network in one of ``SHAPE_STEPS`` shapes.
SHAPE_STEPS = 4
MIN_WORK_SIZE, MAX_WORK_SIZE = 64, 32768  # smaller copies leave the network too little to decide tone on
# Ways to bring the network's fused copy back to full size (``residual``), measured on the held-out
# scenes: "bilinear" upsamples it to full size and takes its Gaussian pyramid there; "aligned" blurs
# it at the working size as the pyramid would and samples it where the residual's pixels lie.
UPSAMPLING = ("bilinear", "aligned")
DEFAULT_UPSAMPLING = "bilinear"


def work_problem(size: int) -> str | None:
    """Why ``size`` cannot be a working size (None when it can): the one rule of ``--work-size``."""
    if not MIN_WORK_SIZE <= size <= MAX_WORK_SIZE:
        return f"the working size must be {MIN_WORK_SIZE} to {MAX_WORK_SIZE} pixels (or 'full')"
    return None


def work_dims(height: int, width: int, work_size: int | None) -> tuple[int, int] | None:
    """(height, width) of the working copy of a ``height`` x ``width`` image, or None where the network
    fuses the image itself (``work_size`` None, or an image no larger than it)."""
    if work_size is None or max(height, width) <= work_size:
        return None
    scale = work_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def padded_shape(height: int, width: int, work_size: int, multiple: int = 8) -> tuple[int, int]:
    """The shape a ``height`` x ``width`` working copy is reflect-padded to: each side up to a multiple
    of ``work_size / SHAPE_STEPS`` (itself a multiple of ``multiple``), or of ``multiple`` where the
    side is shorter than that step (a reflection cannot be longer than the side it mirrors)."""
    step = max(multiple, work_size // SHAPE_STEPS // multiple * multiple)

    def side(length: int) -> int:
        unit = step if length >= step else multiple
        return -(-length // unit) * unit

    return side(height), side(width)


def extra_levels(height: int, width: int, work: tuple[int, int]) -> int:
    """Detail levels the exposures give beyond ``DETAIL_LEVELS``: one per whole halving from full size
    to ``work`` (rounded down: the network's copy then decides what is coarser than 8 to 16 of its
    pixels; rounding up, measured, lost 0.008 Q^AB/F on the SICE pairs and 0.001 on held-out scenes)."""
    scale = max(height / work[0], width / work[1])
    return max(0, math.floor(math.log2(scale) + 1e-9))


def levels_for(height: int, width: int, work: tuple[int, int] | None, detail: int) -> int:
    """The detail levels of a ``height`` x ``width`` fusion whose network ran at ``work`` (None: at full
    size), capped at the image's pyramid depth."""
    extra = 0 if work is None else extra_levels(height, width, work)
    return min(detail + extra, pyramid_levels(height, width))


def downscale(image: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """``image`` area-averaged to ``work`` (height, width): each pixel the mean of the pixels it covers."""
    return cv2.resize(np.asarray(image, np.float32), work[::-1], interpolation=cv2.INTER_AREA)


def residual(fused: np.ndarray, height: int, width: int, levels: int, method: str = DEFAULT_UPSAMPLING) -> np.ndarray:
    """The low-pass residual, after ``levels`` halvings of a ``height`` x ``width`` image, of the fused
    working copy ``fused``, brought back as ``method`` (``UPSAMPLING``) says."""
    if method == "bilinear":
        full = cv2.resize(fused, (width, height), interpolation=cv2.INTER_LINEAR)
        return gaussian_pyramid(full, levels)[-1]
    if method == "aligned":
        return aligned_residual(fused, height, width, levels)
    raise ValueError(f"unknown upsampling {method!r}; expected one of {', '.join(UPSAMPLING)}")


def aligned_residual(fused: np.ndarray, height: int, width: int, levels: int) -> np.ndarray:
    """The residual taken at the working size: ``fused`` blurred as ``levels`` ``pyrDown`` blur the full
    image (variance (4^L - 1) / 3 full-size pixels, less the area average's own), then sampled where the
    residual's pixels lie (``pyrDown`` keeps the even pixels: pixel i of level L is at 2^L i)."""
    work_h, work_w = fused.shape[:2]
    scale_y, scale_x = work_h / height, work_w / width
    variance = (4**levels - 1) / 3
    sigmas = [math.sqrt(max(s * s * variance - 1 / 12, 0.0)) for s in (scale_x, scale_y)]
    blurred = cv2.GaussianBlur(fused, (0, 0), sigmaX=max(sigmas[0], 1e-3), sigmaY=max(sigmas[1], 1e-3),
                               borderType=cv2.BORDER_REFLECT_101)
    step = 2**levels
    size = residual_size(height, width, levels)
    # Residual pixel i sits at full-size x = step * i, that is at (x + 0.5) * scale - 0.5 in the working copy.
    matrix = np.float32([[step * scale_x, 0, 0.5 * scale_x - 0.5], [0, step * scale_y, 0.5 * scale_y - 0.5]])
    return cv2.warpAffine(blurred, matrix, size[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def graph_work_dims(height, width, work_size: int):
    """``work_dims`` of traced int32 sides larger than ``work_size`` (the same float64 arithmetic and
    rounding, half to even, as Python's)."""
    import tensorflow as tf

    scale = tf.constant(float(work_size), tf.float64) / tf.cast(tf.maximum(height, width), tf.float64)

    def side(length):
        return tf.maximum(1, tf.cast(tf.round(tf.cast(length, tf.float64) * scale), tf.int32))

    return side(height), side(width)


def graph_padded_shape(height, width, work_size: int, multiple: int = 8):
    """``padded_shape`` of traced int32 sides."""
    import tensorflow as tf

    step = max(multiple, work_size // SHAPE_STEPS // multiple * multiple)

    def side(length):
        unit = tf.where(length >= step, step, multiple)
        return (length + unit - 1) // unit * unit

    return side(height), side(width)


def graph_extra_levels(height, width, work_height, work_width):
    """``extra_levels`` of traced int32 sides."""
    import tensorflow as tf

    def ratio(a, b):
        return tf.cast(a, tf.float64) / tf.cast(b, tf.float64)

    scale = tf.maximum(ratio(height, work_height), ratio(width, work_width))
    log2 = tf.math.log(scale) / tf.math.log(tf.constant(2.0, tf.float64))
    return tf.maximum(0, tf.cast(tf.math.floor(log2 + 1e-9), tf.int32))


def graph_residual(fused, height, width, levels):
    """``residual`` (the default, "bilinear") of a traced fused working copy [h, w, 3], for a traced
    count of ``levels``."""
    import tensorflow as tf

    return graph_downs(tf.image.resize(fused, tf.stack([height, width]), method="bilinear"), levels)
