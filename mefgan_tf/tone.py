"""Global tone of a fusion: its measures (black level, saturation, mean level, contrast) and the tone
guard that keeps the network's fusion from a veil.

The network decides a fusion's coarse tone. Where one exposure is nearly white it can lift the blacks
(a grey veil), fade the colours or darken the scene well past what the exposures hold. The guard
compares a preview of the finished fusion (the network's tone with the exposures' detail) with the
classical fusion of the same exposures (OpenCV's Mertens, made at the photos' own size up to
``REFERENCE_SIZE``, as its tone changes with the size it runs at; of previews beyond) and, only where
the fusion is worse by more than a margin, bends its tone with one global curve: black point, then
white point (or, where whites are already white, a gamma) where it is darker with no more contrast,
then colour (chroma about the luma). A fusion within the margins is left unchanged.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mefgan_tf.baselines import mertens
from mefgan_tf.resolution import downscale, work_dims

PREVIEW_SIZE = 512  # long side of the fusion's preview the guard measures (the default working size)
REFERENCE_SIZE = 1280  # the classical fusion is made at the photos' own size up to this long side (about 0.2 s)
BLACK_PERCENTILE = 1.0  # the black level: this percentile of the luma
LUMA = np.float32([0.299, 0.587, 0.114])  # BT.601, as cv2.COLOR_RGB2GRAY
MAX_LIFT = 0.2  # the gamma lifting a dark fusion goes no lower than 0.8: more flattens its highlights
SEARCH_STEPS = 12  # bisection steps of the gamma and the chroma gain (2^-12 of their range: well under a level)


@dataclass(frozen=True)
class ToneStats:
    """An image's global tone in 8-bit levels: ``black`` (the 1st percentile of luma), ``saturation``
    (the mean of HSV S), ``mean`` (mean luma) and ``contrast`` (the tonal range: the 99th minus the 1st
    percentile of luma; a darker fusion that spans a wider range is deeper, not too dark)."""

    black: float
    saturation: float
    mean: float
    contrast: float

    def values(self) -> tuple[float, float, float, float]:
        return self.black, self.saturation, self.mean, self.contrast


def tone_stats(image: np.ndarray) -> ToneStats:
    """``ToneStats`` of an RGB image (float in [0, 1] or uint8), measured on its 8-bit form."""
    u8 = image if image.dtype == np.uint8 else (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    luma = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32)
    saturation = cv2.cvtColor(u8, cv2.COLOR_RGB2HSV)[..., 1]
    black, white = np.percentile(luma, [BLACK_PERCENTILE, 100.0 - BLACK_PERCENTILE])
    return ToneStats(float(black), float(saturation.mean()), float(luma.mean()), float(white - black))


@dataclass(frozen=True)
class ToneMargins:
    """How far (8-bit levels) a fusion may be from the classical fusion before the guard acts: blacks
    lifted by ``black``, mean saturation lower by ``saturation``, mean level darker by ``darker`` with a
    tonal range not wider by more than ``contrast``. Set inside the visible limits (10, 5, 25 and 0
    levels), for the preview's measuring error."""

    black: float = 4.0
    saturation: float = 2.0
    darker: float = 20.0
    contrast: float = 4.0

    def darker_than(self, ours: ToneStats, reference: ToneStats) -> bool:
        """Whether ``ours`` is darker than ``reference`` by more than the margin, with no more contrast."""
        return ours.mean < reference.mean - self.darker and ours.contrast <= reference.contrast + self.contrast


MARGINS = ToneMargins()


@dataclass(frozen=True)
class ToneCurve:
    """One global curve: the levels ``black`` and ``white`` move to ``black_to`` and ``white_to`` (a
    straight line through both, clipped), then ``gamma``, then the chroma about the luma times
    ``chroma``. The identity by default."""

    black: float = 0.0
    black_to: float = 0.0
    gamma: float = 1.0
    chroma: float = 1.0
    white: float = 1.0
    white_to: float = 1.0

    @property
    def identity(self) -> bool:
        return self == ToneCurve()

    def gain_offset(self) -> tuple[float, float]:
        """The levels' move as ``gain * x + offset``."""
        gain = (self.white_to - self.black_to) / (self.white - self.black)
        return gain, self.black_to - self.black * gain

    def black_matrix(self) -> np.ndarray:
        """The levels' move as a 3 x 4 affine map of (R, G, B, 1)."""
        gain, offset = self.gain_offset()
        return np.hstack([np.eye(3) * gain, np.full((3, 1), offset)])

    def chroma_matrix(self) -> np.ndarray:
        """The chroma gain about the luma (BT.601) as a 3 x 4 affine map: c x + (1 - c) luma(x)."""
        return np.hstack([self.chroma * np.eye(3) + (1.0 - self.chroma) * np.tile(LUMA, (3, 1)), np.zeros((3, 1))])

    def __call__(self, image: np.ndarray, in_place: bool = False) -> np.ndarray:
        """The curve applied to an RGB float32 image in [0, 1], clipped to [0, 1]. Without a gamma the
        black point and the chroma are one affine map, one threaded pass (``cv2.transform``).
        ``in_place``: into ``image`` itself, so that a full-size fusion needs no second copy."""
        out = np.asarray(image, np.float32)
        out = out if in_place else out.copy()
        if self.gamma == 1.0:
            maps = [_compose(self.chroma_matrix(), self.black_matrix())]
        else:
            maps = [self.black_matrix(), None, self.chroma_matrix()]
        for matrix in maps:
            if matrix is None:
                cv2.pow(out, self.gamma, dst=out)
            else:
                cv2.transform(out, matrix.astype(np.float32), dst=out)
                np.clip(out, 0.0, 1.0, out=out)
        return out


def _compose(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """The 3 x 4 affine map ``after`` o ``before``."""
    return np.hstack([after[:, :3] @ before[:, :3], after[:, :3] @ before[:, 3:] + after[:, 3:]])


def _bisect(measure: Callable[[float], float], low: float, high: float, target: float) -> float:
    """The argument in [low, high] where the increasing ``measure`` reaches ``target`` (``high`` if never)."""
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if measure(middle) < target else (low, middle)
    return high


def guard_curve(fusion: np.ndarray, reference: np.ndarray, margins: ToneMargins = MARGINS) -> ToneCurve:
    """The curve that brings ``fusion``'s tone within ``margins`` of ``reference``'s (any sizes): its black
    point down to the reference's plus the margin; then, if it is darker by more than the margin with no
    more contrast, its white point (99th percentile) up until its tonal range is wider than the
    reference's by the margin (the least stretch: more clips the highlights it recovered, and costs
    Q^AB/F), and if that cannot be done below 255 a gamma that lifts its mean to that bound (at most ``MAX_LIFT``:
    a fusion much darker than Mertens's comes only part of the way); then, if its colours are paler by
    more than the margin, a chroma gain up to that bound, with the black point lowered again where the
    gain's clipping lifted it. Identity if none applies."""
    start, ref = tone_stats(fusion), tone_stats(reference)
    curve = ToneCurve()
    if start.black > ref.black + margins.black:
        curve = ToneCurve(start.black / 255.0, (ref.black + margins.black) / 255.0)
    ours = tone_stats(curve(fusion))
    if margins.darker_than(ours, ref):
        curve = _whiter(curve, start, ours, ref, margins)
        ours = tone_stats(curve(fusion))
    if margins.darker_than(ours, ref) and curve.white_to == 1.0:  # a stretch under 255 widened the range
        def brighter(lift: float) -> float:
            return tone_stats(_with(curve, gamma=1.0 - lift)(fusion)).mean
        curve = _with(curve, gamma=1.0 - _bisect(brighter, 0.0, MAX_LIFT, ref.mean - margins.darker))
        ours = tone_stats(curve(fusion))
    if ours.saturation < ref.saturation - margins.saturation:
        def richer(gain: float) -> float:
            return tone_stats(_with(curve, chroma=gain)(fusion)).saturation
        curve = _with(curve, chroma=_bisect(richer, 1.0, 4.0, ref.saturation - margins.saturation))
        curve = _blacks_kept(curve, fusion, start, ref.black + margins.black)
    return curve


def _whiter(curve: ToneCurve, start: ToneStats, ours: ToneStats, ref: ToneStats, margins: ToneMargins) -> ToneCurve:
    """``curve`` with the fusion's white point (``start``'s 99th percentile, ``ours`` after ``curve``)
    moved up until the range is wider than the reference's by more than the margin (at most 255); the
    black level stays where ``curve`` puts it."""
    wanted = min(255.0, ours.black + ref.contrast + margins.contrast + 1.0)
    if wanted <= ours.black + ours.contrast or start.contrast <= 0:
        return curve
    black, black_to = (curve.black, curve.black_to) if curve.black else (start.black / 255.0,) * 2
    return _with(curve, black=black, black_to=black_to, white=(start.black + start.contrast) / 255.0,
                 white_to=wanted / 255.0)


BLACK_FIXES = 2  # corrections of the black point after the chroma gain


def _blacks_kept(curve: ToneCurve, fusion: np.ndarray, start: ToneStats, target: float) -> ToneCurve:
    """``curve`` with its black point lowered where the chroma gain, clipping dark saturated colours,
    lifted the black level past ``target``."""
    if curve.black == 0.0 and (curve.white, curve.white_to) == (1.0, 1.0):
        curve = _with(curve, black=start.black / 255.0, black_to=start.black / 255.0)  # the same line
    for _ in range(BLACK_FIXES):
        excess = tone_stats(curve(fusion)).black - target
        if excess <= 0 or curve.black == 0.0:
            break
        curve = _with(curve, black_to=max(0.0, curve.black_to - excess / 255.0))
    return curve


def _with(curve: ToneCurve, **changes: float) -> ToneCurve:
    return ToneCurve(**{**curve.__dict__, **changes})


def preview(image: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """``image`` area-downscaled to a long side of at most ``size`` (as the working copies are)."""
    work = work_dims(*image.shape[:2], size)
    return np.asarray(image, np.float32) if work is None else downscale(image, work)


def tone_reference(images: Sequence[np.ndarray]) -> np.ndarray:
    """The classical fusion the guard measures against: OpenCV's Mertens fusion of ``images``. Its tone
    changes with the size it is made at (on one extreme pair its black level goes from 22 to 54 between
    256 and 1200 pixels), so up to ``REFERENCE_SIZE`` it is made at the photos' own size, the one a user
    compares at. Larger photos get it at ``PREVIEW_SIZE``: any smaller size only approximates their
    own-size tone (on SICE's 1576-2000 px pairs, by up to 12 levels at 512, 640, 1024 or 1280 px alike),
    and the small one costs least."""
    size = PREVIEW_SIZE if max(images[0].shape[:2]) > REFERENCE_SIZE else REFERENCE_SIZE
    return mertens([preview(image, size) for image in images])


def tone_guard(fusion: np.ndarray, images: Sequence[np.ndarray], margins: ToneMargins = MARGINS,
               reference: np.ndarray | None = None) -> ToneCurve:
    """The guard's curve for ``fusion`` (the finished fusion, any size) of ``images`` (the exposures,
    the same size): its preview measured against ``reference`` (``tone_reference(images)`` if None)."""
    reference = tone_reference(images) if reference is None else reference
    return guard_curve(preview(fusion), reference, margins)


LIMITS = ToneMargins(black=10.0, saturation=5.0, darker=25.0, contrast=0.0)  # what a viewer sees: the report's limits
TONE_COLUMNS = {"BLACK": "black", "SATURATION": "saturation", "LEVEL": "mean", "CONTRAST": "contrast"}


def tone_columns(image: np.ndarray) -> dict[str, float]:
    """``tone_stats`` of ``image`` under the report's column names (``TONE_COLUMNS``)."""
    stats = tone_stats(image)
    return {column: getattr(stats, field) for column, field in TONE_COLUMNS.items()}


def _from_columns(columns: dict[str, float]) -> ToneStats:
    return ToneStats(**{field: columns[column] for column, field in TONE_COLUMNS.items()})


def tone_problems(ours: dict[str, float], reference: dict[str, float], limits: ToneMargins = LIMITS) -> list[str]:
    """What is visibly wrong with a fusion's tone (``tone_columns``) against a reference's: "veil"
    (blacks lifted by more than ``limits.black``), "paler" (mean saturation lower by more than
    ``limits.saturation``), "darker" (mean level lower by more than ``limits.darker`` with no more contrast)."""
    found = []
    if ours["BLACK"] - reference["BLACK"] > limits.black:
        found.append("veil")
    if reference["SATURATION"] - ours["SATURATION"] > limits.saturation:
        found.append("paler")
    if limits.darker_than(_from_columns(ours), _from_columns(reference)):
        found.append("darker")
    return found


# ------------------------------------------------------------------------------------------- graph
# The tone guard as TensorFlow ops, for the SavedModel's ``fuse_images``: the same previews (area
# downscaling), OpenCV's Mertens fusion of the exposures' previews, the same 8-bit measures (OpenCV's
# integer luma and HSV saturation), the same search and the same curve. They import TensorFlow when
# called, so that the NumPy fusion never loads it.
GRAY_15 = (9798, 19235, 3735)  # OpenCV's 8-bit RGB -> grey: (9798 R + 19235 G + 3735 B + 2^14) >> 15
SATURATION_TABLE = np.rint((255 << 12) / np.maximum(np.arange(256), 1)).astype(np.int32)  # OpenCV's HSV S
SATURATION_TABLE[0] = 0
OPENCV_MERTENS_GREY = np.float32([0.114, 0.587, 0.299])  # OpenCV's grey of the BGR images it is handed, as RGB


def graph_mertens(images):
    """``baselines.mertens`` (OpenCV's MergeMertens: contrast x saturation, no well-exposedness, a
    pyramid down to one pixel) of [H, W, 3] float tensors, clipped to [0, 1]."""
    import tensorflow as tf

    from mefgan_tf.pyramid import LAPLACIAN_KERNEL, graph_down, graph_filtered, graph_up

    weights, scaled = [], []
    for image in images:
        image = image * np.float32(255.0) * np.float32(1.0 / 255.0)  # as ``mertens`` hands it and OpenCV takes it
        grey = tf.tensordot(image, tf.constant(OPENCV_MERTENS_GREY), 1)[..., None]
        contrast = tf.abs(graph_filtered(grey, LAPLACIAN_KERNEL))[..., 0]
        weights.append(contrast * opencv_spread(image) + 1e-12)
        scaled.append(image)
    images = scaled
    total = tf.add_n(weights)
    side = tf.cast(tf.minimum(tf.shape(images[0])[0], tf.shape(images[0])[1]), tf.float32)
    levels = tf.cast(tf.math.log(side) / tf.math.log(2.0), tf.int32)

    def level_step(level, images, shares, blended):
        smaller = [graph_down(image) for image in images]
        band = tf.add_n([(image - graph_up(small, tf.shape(image))) * share[..., None]
                         for image, small, share in zip(images, smaller, shares)])
        return level + 1, smaller, [graph_down(share[..., None])[..., 0] for share in shares], blended.write(level, band)

    blended = tf.TensorArray(tf.float32, size=levels + 1, infer_shape=False, element_shape=tf.TensorShape([None, None, 3]))
    any_size = tf.TensorShape([None, None, 3])
    _, low, shares, blended = tf.while_loop(
        lambda level, *_: level < levels, level_step, (tf.constant(0), list(images), [w / total for w in weights], blended),
        shape_invariants=(tf.TensorShape([]), [any_size] * len(images), [tf.TensorShape([None, None])] * len(images),
                          tf.TensorShape(None)))
    image = tf.add_n([small * share[..., None] for small, share in zip(low, shares)])

    def collapse(level, image):
        band = blended.read(level)
        return level - 1, graph_up(image, tf.shape(band)) + band

    _, image = tf.while_loop(lambda level, _: level >= 0, collapse, (levels - 1, image),
                             shape_invariants=(tf.TensorShape([]), any_size))
    return tf.clip_by_value(image, 0.0, 1.0)


def opencv_spread(image):
    """MergeMertens's saturation of a [H, W, 3] RGB tensor, in OpenCV's order of float operations on
    its BGR planes: on grey pixels it is their rounding, which alone then weighs the exposures."""
    import tensorflow as tf

    red, green, blue = tf.unstack(image, axis=-1)
    mean = (blue + green + red) * np.float32(1.0 / 3.0)
    return tf.sqrt(tf.square(blue - mean) + tf.square(green - mean) + tf.square(red - mean))


def graph_tone_stats(image):
    """``tone_stats`` of a [H, W, 3] float tensor: (black, saturation, mean, contrast), float64 scalars."""
    import tensorflow as tf

    u8 = tf.cast(tf.clip_by_value(image, 0.0, 1.0) * 255.0 + 0.5, tf.int32)
    r, g, b = tf.unstack(u8, axis=-1)
    shift = tf.bitwise.right_shift
    luma = shift(GRAY_15[0] * r + GRAY_15[1] * g + GRAY_15[2] * b + (1 << 14), 15)
    value, low = tf.reduce_max(u8, -1), tf.reduce_min(u8, -1)
    saturation = shift((value - low) * tf.gather(tf.constant(SATURATION_TABLE), value) + (1 << 11), 12)
    counts = tf.cumsum(tf.math.bincount(tf.reshape(luma, [-1]), minlength=256, maxlength=256, dtype=tf.int64))
    count = tf.size(luma, tf.int64)

    def percentile(share: float):
        position = tf.cast(count - 1, tf.float64) * share / 100.0
        below = tf.floor(position)
        ranks = tf.stack([tf.cast(below, tf.int64), tf.minimum(tf.cast(below, tf.int64) + 1, count - 1)])
        lower, upper = tf.unstack(tf.cast(tf.searchsorted(counts, ranks, side="right"), tf.float64))
        return lower + (upper - lower) * (position - below)

    def mean(values):
        return tf.reduce_mean(tf.cast(values, tf.float64))

    black, white = percentile(BLACK_PERCENTILE), percentile(100.0 - BLACK_PERCENTILE)
    return black, mean(saturation), mean(luma), white - black


def graph_curve(image, black, black_to, gamma, chroma, white=1.0, white_to=1.0):
    """``ToneCurve(black, black_to, gamma, chroma, white, white_to)(image)`` of a [H, W, 3] float32
    tensor (float64 parameters)."""
    import tensorflow as tf

    gain = (white_to - black_to) / (white - black)
    offset = tf.cast(black_to - black * gain, tf.float32)
    gain, chroma32 = tf.cast(gain, tf.float32), tf.cast(chroma, tf.float32)

    def colour(x):
        return chroma32 * x + (1.0 - chroma32) * tf.tensordot(x, tf.constant(LUMA), 1)[..., None]

    def affine():  # levels and chroma as one map, as ``ToneCurve`` composes them
        return tf.clip_by_value(colour(image * gain + offset), 0.0, 1.0)

    def with_gamma():
        lifted = tf.pow(tf.clip_by_value(image * gain + offset, 0.0, 1.0), tf.cast(gamma, tf.float32))
        return tf.clip_by_value(colour(lifted), 0.0, 1.0)

    return tf.cond(tf.equal(gamma, 1.0), affine, with_gamma)


def _graph_bisect(measure, low: float, high: float, target):
    """``_bisect`` of a traced ``measure``."""
    import tensorflow as tf

    def step(count, low, high):
        middle = (low + high) / 2
        below = measure(middle) < target
        return count + 1, tf.where(below, middle, low), tf.where(below, high, middle)

    start = (tf.constant(0), tf.constant(low, tf.float64), tf.constant(high, tf.float64))
    return tf.while_loop(lambda count, *_: count < SEARCH_STEPS, step, start)[2]  # one loop: a small graph


def graph_guard_curve(fusion, reference, margins: ToneMargins = MARGINS):
    """``guard_curve`` of a traced preview and reference: (black, black_to, gamma, chroma, white,
    white_to), float64 scalars."""
    import tensorflow as tf

    one, zero = tf.constant(1.0, tf.float64), tf.constant(0.0, tf.float64)
    ref = ToneStats(*graph_tone_stats(reference))
    start = ToneStats(*graph_tone_stats(fusion))
    veiled = start.black > ref.black + margins.black
    black, black_to = tf.where(veiled, start.black / 255.0, zero), tf.where(veiled, (ref.black + margins.black) / 255.0, zero)

    def stats(gamma, chroma, white=one, white_to=one):
        return ToneStats(*graph_tone_stats(graph_curve(fusion, black, black_to, gamma, chroma, white, white_to)))

    def either(condition, then: Callable[[], ToneStats], otherwise: ToneStats) -> ToneStats:
        return ToneStats(*tf.cond(condition, lambda: then().values(), otherwise.values))

    ours = either(veiled, lambda: stats(one, one), start)
    wanted = tf.minimum(tf.constant(255.0, tf.float64), ours.black + ref.contrast + margins.contrast + 1.0)
    stretch = tf.logical_and(_graph_darker(margins, ours, ref),
                             tf.logical_and(wanted > ours.black + ours.contrast, start.contrast > 0))
    white = tf.where(stretch, (start.black + start.contrast) / 255.0, one)
    white_to = tf.where(stretch, wanted / 255.0, one)
    kept = tf.logical_and(stretch, tf.logical_not(veiled))  # the black level stays where it is
    black, black_to = tf.where(kept, start.black / 255.0, black), tf.where(kept, start.black / 255.0, black_to)
    ours = either(stretch, lambda: stats(one, one, white, white_to), ours)
    target = ref.mean - margins.darker
    gamma = tf.cond(tf.logical_and(_graph_darker(margins, ours, ref), tf.equal(white_to, 1.0)),
                    lambda: 1.0 - _graph_bisect(lambda lift: stats(1.0 - lift, one, white, white_to).mean, 0.0, MAX_LIFT, target),
                    lambda: one)
    saturation = tf.cond(tf.equal(gamma, 1.0), lambda: ours.saturation, lambda: stats(gamma, one, white, white_to).saturation)
    target = ref.saturation - margins.saturation
    richer = saturation < target
    chroma = tf.cond(richer, lambda: _graph_bisect(lambda gain: stats(gamma, gain, white, white_to).saturation, 1.0, 4.0, target),
                     lambda: one)
    straight = tf.logical_and(richer, tf.reduce_all(tf.stack([tf.equal(black, 0.0), tf.equal(white, 1.0), tf.equal(white_to, 1.0)])))
    black, black_to = tf.where(straight, start.black / 255.0, black), tf.where(straight, start.black / 255.0, black_to)
    for _ in range(BLACK_FIXES):  # ``_blacks_kept``
        excess = tf.cond(richer, lambda: stats(gamma, chroma, white, white_to).black, lambda: zero) - ref.black - margins.black
        fix = tf.logical_and(richer, tf.logical_and(excess > 0, tf.not_equal(black, 0.0)))
        black_to = tf.where(fix, tf.maximum(zero, black_to - excess / 255.0), black_to)
    return black, black_to, gamma, chroma, white, white_to


def _graph_darker(margins: ToneMargins, ours: ToneStats, ref: ToneStats):
    """``ToneMargins.darker_than`` of traced measures."""
    import tensorflow as tf

    return tf.logical_and(ours.mean < ref.mean - margins.darker, ours.contrast <= ref.contrast + margins.contrast)


def graph_preview(image, size: int = PREVIEW_SIZE):
    """``preview`` of a traced [H, W, 3] image."""
    import tensorflow as tf

    from mefgan_tf.resolution import graph_work_dims

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    return tf.cond(tf.maximum(height, width) > size,
                   lambda: tf.image.resize(image, tf.stack(graph_work_dims(height, width, size)), method="area"),
                   lambda: image)


def graph_tone_guard(fusion, images, margins: ToneMargins = MARGINS):
    """The finished ``fusion`` [H, W, 3] of ``images`` with the tone guard's curve applied (``tone_guard``)."""
    import tensorflow as tf

    large = tf.maximum(tf.shape(images[0])[0], tf.shape(images[0])[1]) > REFERENCE_SIZE
    previews = tf.cond(large, lambda: [graph_preview(x, PREVIEW_SIZE) for x in images], lambda: list(images))
    curve = graph_guard_curve(graph_preview(fusion), graph_mertens(previews), margins)  # ``tone_reference``
    black, black_to, gamma, chroma, white, white_to = curve
    identity = tf.reduce_all(tf.stack([tf.equal(black, 0.0), tf.equal(black_to, 0.0), tf.equal(gamma, 1.0),
                                       tf.equal(chroma, 1.0), tf.equal(white, 1.0), tf.equal(white_to, 1.0)]))
    return tf.cond(identity, lambda: fusion, lambda: graph_curve(fusion, *curve))
