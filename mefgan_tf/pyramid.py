"""Laplacian pyramids on RGB float32 images in [0, 1]: Mertens's exposure weights and blending,
and the transfer of the exposures' fine detail onto a fusion.

``blend`` (``fusion.steps.Blend``) blends pair fusions with ``pyramid_blend``; every fusion
of ``fusion.Fuser`` ends with ``transfer_detail``: the network decides tone and colour (the coarse
levels), the exposures give the fine detail where each is well exposed (Mertens's weights). A
photo given twice then keeps its own detail exactly, and the network's softening of fine texture
is gone. Images are whole arrays here, but the detail step takes a photo of more than
``DETAIL_STRIP_PIXELS`` in strips of rows (the same image): its memory stays that of a strip. The
memory and time each step needs (``blend_memory``, ``detail_memory``, ``DETAIL_COST``) are what
``fusion`` plans with.

The graph versions (``graph_*``) are the same arithmetic in TensorFlow ops, for the SavedModel; they
import TensorFlow when called, so that the NumPy fusion never loads it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
CHANNEL_MEAN = np.full((3, 3), 1 / 3, np.float32)  # cv2.transform: every channel becomes the mean of R, G, B
WEIGHT_ROWS = 256  # rows of ``exposure_weight``'s per-pixel terms taken at a time
# Peak bytes per pixel that ``pyramid_blend`` holds beside its inputs: one fusion, its pyramids, the
# blended pyramid and one weight map per fusion (measured at 6 MP: 103, 127 and 151 B/px for 2, 4 and
# 6 fusions; planned with headroom).
BLEND_BYTES_PER_FUSION, BLEND_BYTES_BASE = 16, 96
# Peak bytes per pixel that ``detail_onto`` holds beside its inputs, its output included, with a weight
# map per exposure (measured at 6 MP: 39, 47 and 55 B/px for 2, 4 and 6 exposures, at 4 to 8 levels;
# planned with headroom); its time in network pixels of a fusion's progress (measured at 12 MP: about
# 1/80 of a pixel the network fuses).
DETAIL_BYTES_PER_FRAME, DETAIL_BYTES_BASE, DETAIL_COST = 6, 36, 0.0125
# Larger photos take the detail step in strips of rows of at most this many output pixels, each strip
# taking STRIP_HALO * 2**levels rows more on either side: the same image within float rounding (two
# leave errors of 1e-4 at the strip edges, three 6e-8), for 15-30% more work in that step.
DETAIL_STRIP_PIXELS, STRIP_HALO = 16_000_000, 3


@dataclass(frozen=True)
class MertensWeights:
    """Mertens, Kautz & Van Reeth's per-pixel quality of an exposure: contrast (absolute Laplacian of
    the grey image) x saturation (standard deviation of R, G, B) x well-exposedness (a Gaussian of
    each channel around 0.5 of width ``sigma``), each raised to its exponent. The one definition that
    ``exposure_weight`` (OpenCV) and the SavedModel's graph (``graph_weight``) compute."""

    contrast: float = 1.0
    saturation: float = 1.0
    exposedness: float = 1.0
    sigma: float = 0.2


MERTENS = MertensWeights()  # the paper's: every exponent 1
GREY_WEIGHTS = np.float32([0.299, 0.587, 0.114])  # cv2.COLOR_RGB2GRAY: the grey image of the contrast term


def raised(term: np.ndarray, exponent: float) -> np.ndarray:
    """``term`` to the power ``exponent`` (left as it is for 1, the paper's exponent)."""
    return term if exponent == 1 else cv2.pow(term, exponent)


def exposure_weight(image: np.ndarray, weights: MertensWeights = MERTENS) -> np.ndarray:
    """Mertens's per-pixel quality (``MertensWeights``) of an RGB float image in [0, 1]; [H, W] float32.

    OpenCV's per-pixel functions throughout (threaded, vectorised): this is part of every fusion's
    hot path. The deviation from the channel mean is taken before squaring, so that near-grey pixels
    get their small saturation exactly (no cancellation against the floor ``WEIGHT_FLOOR``). The
    per-pixel terms are taken ``WEIGHT_ROWS`` rows at a time, so that their three-channel temporaries
    stay small at any size (whole, they were 48 bytes a pixel: most of a large fusion's peak)."""
    rgb = np.asarray(image, np.float32)
    contrast = np.abs(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_32F))
    weight = raised(contrast, weights.contrast)
    spread = np.full((1, 3), -0.5 / weights.sigma**2, np.float32)
    for top in range(0, rgb.shape[0], WEIGHT_ROWS):
        rows = slice(top, top + WEIGHT_ROWS)
        part = rgb[rows]
        deviation = cv2.subtract(part, cv2.transform(part, CHANNEL_MEAN))
        saturation = cv2.sqrt(cv2.transform(cv2.multiply(deviation, deviation), CHANNEL_MEAN[:1]))
        centred = cv2.subtract(part, (0.5, 0.5, 0.5, 0.0))
        exposedness = cv2.exp(cv2.transform(cv2.multiply(centred, centred), spread))
        weight[rows] = cv2.multiply(cv2.multiply(weight[rows], raised(saturation, weights.saturation)),
                                    raised(exposedness, weights.exposedness))
    return weight


def blend_memory(height: int, width: int, fusions: int) -> int:
    """Bytes ``pyramid_blend`` needs beyond its inputs for ``fusions`` images of ``height`` x ``width``."""
    return (BLEND_BYTES_BASE + BLEND_BYTES_PER_FUSION * fusions) * height * width


def detail_memory(height: int, width: int, frames: int, levels: int) -> int:
    """Bytes ``detail_onto`` needs beyond its inputs and the fusion, for ``frames`` exposures: one
    strip's (``detail_strip_rows``), and the whole output beside it where there are several."""
    if levels <= 0:
        return 0
    rows = detail_strip_rows(height, width, levels)
    per_pixel = DETAIL_BYTES_BASE + DETAIL_BYTES_PER_FRAME * frames
    if rows >= height:
        return per_pixel * height * width
    return (per_pixel * min(height, rows + 2 * strip_halo(levels)) + 3 * 4 * height) * width


def strip_halo(levels: int) -> int:
    """Rows a strip of the detail step takes beyond its own on either side (``STRIP_HALO``)."""
    return STRIP_HALO * 2**levels


def detail_strip_rows(height: int, width: int, levels: int) -> int:
    """Output rows per strip of ``detail_onto`` (``height``: one strip): as many strips as
    ``DETAIL_STRIP_PIXELS`` asks for, of about equal rows, each a multiple of 2**levels."""
    count = math.ceil(height * width / DETAIL_STRIP_PIXELS)
    if count <= 1:
        return height
    step = 2**levels
    return min(height, math.ceil(math.ceil(height / count) / step) * step)


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


def normalised_weights(weights: Sequence[np.ndarray], in_place: bool = False) -> list[np.ndarray]:
    """``weights`` (each [H, W]) floored by ``WEIGHT_FLOOR`` and scaled to sum to 1 at every pixel;
    ``in_place``: float32 weights are overwritten rather than copied (4 bytes a pixel less per image)."""
    floored = [np.asarray(w, np.float32) for w in weights]
    floored = [cv2.add(w, WEIGHT_FLOOR, dst=w if in_place else None) for w in floored]
    total = functools.reduce(cv2.add, floored)
    return [cv2.divide(w, total, dst=w) for w in floored]


def blended_bands(images: Iterable[np.ndarray], weights: Sequence[np.ndarray], levels: int,
                  bands: int | None = None, in_place: bool = False) -> list[np.ndarray]:
    """Mertens's blended Laplacian pyramid of ``images`` (taken one at a time, so an iterator holds
    only one) under ``weights``: each level is the sum of the images' bands times their weights'
    Gaussian level (weights normalised here; ``in_place``: in the caller's arrays, which it then
    gives up). ``bands``: only that many finest levels (default all, the blended low-pass residual last).

    One pass per level and image, in OpenCV's threaded kernels and in place: each image's Gaussian
    level is made, its band weighed and added into the blended band, and dropped, so that beside the
    blended bands (4/3 of an image) only the weights and about two images' worth of one level are held."""
    kept = levels + 1 if bands is None else bands
    blended: list[np.ndarray | None] = [None] * kept
    for image, share in zip(images, normalised_weights(weights, in_place), strict=True):
        image = np.asarray(image, np.float32)
        for level in range(kept):
            smaller = cv2.pyrDown(image) if level < levels else None
            if smaller is None:
                band = image.copy()
            else:
                band = cv2.pyrUp(smaller, dstsize=image.shape[1::-1])
                cv2.subtract(image, band, dst=band)
            np.multiply(band, share[..., None], out=band)
            blended[level] = band if blended[level] is None else cv2.add(blended[level], band, dst=blended[level])
            del band
            if level + 1 < kept:
                image, share = smaller, cv2.pyrDown(share)
    return blended


def pyramid_blend(images: Iterable[np.ndarray], weights: Sequence[np.ndarray]) -> np.ndarray:
    """Mertens's Laplacian-pyramid blending of ``images`` (RGB float32 [0, 1], taken one at a time)
    with per-pixel ``weights`` [H, W] (normalised to sum to 1 at every pixel). Clipped to [0, 1]."""
    levels = pyramid_levels(*np.shape(weights[0])[:2])
    return np.clip(collapse(blended_bands(images, weights, levels)), 0.0, 1.0)


def residual_size(height: int, width: int, levels: int) -> tuple[int, int]:
    """(height, width) of the low-pass residual after ``levels`` halvings (OpenCV's ``pyrDown`` sizes)."""
    for _ in range(levels):
        height, width = (height + 1) // 2, (width + 1) // 2
    return height, width


def transfer_detail(fused: np.ndarray, frames: Sequence[np.ndarray], levels: int) -> np.ndarray:
    """``fused`` with its ``levels`` finest Laplacian levels replaced by the ``frames``' own, blended
    with Mertens's weights (``exposure_weight``): the fusion's tone and colour with the exposures'
    detail (each from where it is well exposed). ``levels`` 0 gives ``fused``; it is capped at the
    image's pyramid depth. RGB float32 [0, 1] in and out (clipped)."""
    levels = min(levels, pyramid_levels(*fused.shape[:2]))
    if levels <= 0:
        return fused
    return detail_onto(gaussian_pyramid(np.asarray(fused, np.float32), levels)[-1], frames, levels)


def detail_bands(frames: Sequence[np.ndarray], levels: int) -> list[np.ndarray]:
    """The ``levels`` finest Laplacian levels of the ``frames``, blended with Mertens's weights: all that
    ``detail_onto`` takes from the exposures. It needs no fusion, so a caller may make it first."""
    return blended_bands(frames, [exposure_weight(frame) for frame in frames], levels, levels, in_place=True)


def detail_onto(residual: np.ndarray, frames: Sequence[np.ndarray], levels: int,
                bands: list[np.ndarray] | None = None) -> np.ndarray:
    """The image whose ``levels`` finest Laplacian levels are the ``frames``' own, blended with
    Mertens's weights, and whose low-pass residual is ``residual`` (of ``residual_size``): the core of
    ``transfer_detail``, which the working resolution (``resolution``) feeds with a residual of its own.
    Larger photos go in strips (``detail_onto_in_strips``). ``bands``: ``detail_bands(frames, levels)``
    made beforehand (one strip only); they are used up (added into)."""
    if bands is not None and len(bands) != levels:
        raise ValueError(f"{len(bands)} detail bands for {levels} levels (bands are used once)")
    height, width = frames[0].shape[:2]
    rows = detail_strip_rows(height, width, levels)
    if bands is None and rows < height:
        return detail_onto_in_strips(residual, frames, levels, rows)
    return detail_onto_whole(residual, frames, levels, bands)


def detail_onto_in_strips(residual: np.ndarray, frames: Sequence[np.ndarray], levels: int, rows: int) -> np.ndarray:
    """``detail_onto`` taken ``rows`` output rows at a time (a multiple of 2**levels), each strip with
    ``strip_halo`` rows more on either side, its top on the whole image's pyramid grid."""
    height, width = frames[0].shape[:2]
    halo = strip_halo(levels)
    out = np.empty((height, width, 3), np.float32)
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        first, last = max(0, top - halo), min(height, bottom + halo)
        low = slice(first >> levels, len(residual) if last == height else last >> levels)
        strip = detail_onto_whole(residual[low], [frame[first:last] for frame in frames], levels)
        out[top:bottom] = strip[top - first : bottom - first]
        del strip  # before the next strip is made
    return out


def detail_onto_whole(residual: np.ndarray, frames: Sequence[np.ndarray], levels: int,
                      bands: list[np.ndarray] | None = None) -> np.ndarray:
    """``detail_onto`` in one piece."""
    blended = detail_bands(frames, levels) if bands is None else bands
    image = np.asarray(residual, np.float32)
    while blended:
        band = blended.pop()
        image = cv2.add(cv2.pyrUp(image, dstsize=band.shape[1::-1]), band, dst=band)
    return np.clip(image, 0.0, 1.0, out=image)


GAUSS_TAPS = np.float32([1, 4, 6, 4, 1]) / 16  # OpenCV's pyrDown / pyrUp kernel, separable
LAPLACIAN_KERNEL = np.float32([[0, 1, 0], [1, -4, 1], [0, 1, 0]])  # cv2.Laplacian's (ksize 1)


def graph_transfer_detail(fused, frames, levels: int):
    """``transfer_detail`` as TensorFlow ops, for the SavedModel's graph: ``fused`` and each of
    ``frames`` [H, W, 3] float32 tensors of any size; ``levels`` is capped at the pyramid's depth at
    run time. Agrees with the OpenCV version within float rounding (a fraction of an 8-bit level
    where no image weighs a pixel)."""
    import tensorflow as tf

    depth = graph_pyramid_levels(tf.shape(fused)[0], tf.shape(fused)[1])
    return graph_detail_onto(lambda count: graph_downs(fused, count), frames, tf.minimum(levels, depth))


def graph_pyramid_levels(height, width):
    """``pyramid_levels`` of traced int32 sides."""
    import tensorflow as tf

    side = tf.minimum(height, width)
    return tf.maximum(1, tf.reduce_sum(tf.cast(side >= 2 ** tf.range(1, 31), tf.int32)) - 1)


def _any_size(image):
    """The shape invariant of a loop over pyramid levels: any height and width, ``image``'s channels."""
    import tensorflow as tf

    return tf.TensorShape([None, None, image.shape[-1]])


def graph_downs(image, count):
    """``count`` (a traced int32) ``graph_down``s of [H, W, C] ``image``: one loop in the graph, whatever the count."""
    import tensorflow as tf

    _, image = tf.while_loop(lambda i, _: i < count, lambda i, x: (i + 1, graph_down(x)), (tf.constant(0), image),
                             shape_invariants=(tf.TensorShape([]), _any_size(image)))
    return image


def graph_detail_onto(low, frames, levels):
    """``detail_onto`` as TensorFlow ops: the ``levels`` (a traced int32) finest levels of the ``frames``
    onto the residual that ``low(levels)`` gives (``low(0)``: the fusion itself). The pyramids are two
    loops (build and collapse), so the graph's size does not grow with the levels."""
    import tensorflow as tf

    weights = [graph_weight(frame) for frame in frames]
    total = tf.add_n(weights)
    shares = [(w / total)[..., None] for w in weights]

    def blend_level(level, images, shares, bands):
        band, smaller_images, smaller_shares = 0.0, [], []
        for image, share in zip(images, shares):
            smaller = graph_down(image)
            band += (image - graph_up(smaller, tf.shape(image))) * share
            smaller_images.append(smaller)
            smaller_shares.append(graph_down(share))
        return level + 1, smaller_images, smaller_shares, bands.write(level, band)

    bands = tf.TensorArray(tf.float32, size=levels, infer_shape=False, element_shape=tf.TensorShape([None, None, 3]))
    invariants = (tf.TensorShape([]), [_any_size(f) for f in frames], [_any_size(s) for s in shares], tf.TensorShape(None))
    *_, bands = tf.while_loop(lambda level, *_: level < levels, blend_level, (tf.constant(0), list(frames), shares, bands),
                              shape_invariants=invariants)

    def add_level(level, image):
        band = bands.read(level)
        return level - 1, graph_up(image, tf.shape(band)) + band

    _, image = tf.while_loop(lambda level, _: level >= 0, add_level, (levels - 1, low(levels)),
                             shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, 3])))
    return tf.cond(levels > 0, lambda: tf.clip_by_value(image, 0.0, 1.0), lambda: image)


def _reflected(x, pad: int, axis: int):
    """``x`` padded by ``pad`` on both sides of ``axis`` as OpenCV's BORDER_REFLECT_101 does, at any
    length (one pixel included, where TensorFlow's REFLECT padding fails)."""
    import tensorflow as tf

    length = tf.shape(x)[axis]
    period = tf.maximum(2 * (length - 1), 1)
    index = tf.math.floormod(tf.abs(tf.range(-pad, length + pad)), period)
    index = tf.where(index >= length, period - index, index)
    return tf.gather(x, tf.where(length > 1, index, tf.zeros_like(index)), axis=axis)


def graph_filtered(x, kernel: np.ndarray):
    """Each channel of [H, W, C] ``x`` filtered by ``kernel`` with reflected borders (OpenCV's default), at any size."""
    import tensorflow as tf

    pad = kernel.shape[0] // 2
    planes = _reflected(_reflected(tf.transpose(x, [2, 0, 1])[..., None], pad, 1), pad, 2)
    out = tf.nn.conv2d(planes, tf.constant(kernel[:, :, None, None]), 1, "VALID")
    return tf.transpose(out[..., 0], [1, 2, 0])


GAUSS_KERNEL = np.outer(GAUSS_TAPS, GAUSS_TAPS)


def graph_down(x):
    """OpenCV's ``pyrDown`` of a traced [H, W, C] tensor."""
    return graph_filtered(x, GAUSS_KERNEL)[::2, ::2]


def graph_up(x, shape):
    """OpenCV's ``pyrUp`` of a traced [H, W, C] tensor to ``shape``'s first two sides."""
    import tensorflow as tf

    rows = tf.reshape(tf.stack([x, tf.zeros_like(x)], 1), [2 * tf.shape(x)[0], tf.shape(x)[1], -1])
    both = tf.reshape(tf.stack([rows, tf.zeros_like(rows)], 2), [tf.shape(rows)[0], 2 * tf.shape(rows)[1], -1])
    return graph_filtered(both, 4 * GAUSS_KERNEL)[: shape[0], : shape[1]]  # cropped after, as OpenCV's


def graph_weight(rgb, weights: MertensWeights = MERTENS):
    """``exposure_weight`` (plus the floor) of a traced [H, W, 3] tensor."""
    import tensorflow as tf

    def power(term, exponent: float):
        return term if exponent == 1 else tf.pow(term, exponent)

    grey = tf.tensordot(rgb, tf.constant(GREY_WEIGHTS), 1)[..., None]
    contrast = tf.abs(graph_filtered(grey, LAPLACIAN_KERNEL))[..., 0]
    exposedness = tf.exp(-tf.reduce_sum((rgb - 0.5) ** 2, -1) / (2 * weights.sigma**2))
    return (power(contrast, weights.contrast) * power(tf.math.reduce_std(rgb, -1), weights.saturation)
            * power(exposedness, weights.exposedness) + WEIGHT_FLOOR)
