"""Hand-held brackets: every exposure aligned to a reference frame, and moving things kept from doubling.

``prepare(images, align=..., deghost=...)`` runs before any fusion (`mefgan fuse`, the API,
`mefgan evaluate --align`, `mefgan serve --align`, `mefgan patches --align`), so the network's
fusion and the detail step see the same consistent frames. It returns the frames in the given order
and one-line notes of what it did. Measured in docs/alignment.md (``benchmarks/bench_align.py``).

**Reference.** The best-exposed frame: the one whose luma is closest to mid-grey on average
(Mertens's well-exposedness; the middle exposure of most brackets). It is never changed.

**Alignment.** Exposures differ in tone, so each frame's luma is first mapped onto the reference's
by histogram matching (an exposure-invariant view), with near-black and near-white pixels (and
``CLIP_EDGE`` pixels around them) masked out. SIFT features of the two lumas, matched and fitted by
MAGSAC, give a start that reaches any hand-held motion; ECC (``cv2.findTransformECCWithMask``) on
the gradient magnitudes, each over its local mean so that every edge counts alike however strongly
an exposure renders it (``gradient``), refines it to a fraction of a pixel, at half size then at
full size (without enough features: coarse to fine on a pyramid, from the better of no motion and a
phase-correlation shift); an ECC run that ends matching worse than it began is undone
(``improved``). A small motion is confirmed on the plain magnitudes (``still_on_magnitudes``). ECC
fits only where the frame warped by the start matches the reference locally, and is refitted from
its own result the same way (``matching``, ``refitted``): what moved in the scene (waves, leaves)
otherwise pulls the motion towards its own. A second kind of views is in the
brighter frame's tones and keeps what it clips (``clipped_views``): the outlines of windows and
skies are what the two ends of a wide bracket share, with the darker frame's deep shadows, where a
nearly black frame holds all it shows (``shadow_level``). It goes first where under ``CLIPPED_FIRST`` of
the pixels are well exposed in both frames; the other kind is tried where no motion is believed on
the first, and to confirm a motion under ``CONFIRM_PX`` (``settled``). A frame that shares too
little with the reference is aligned through its neighbour towards it. The motion is believed only
if it is plausible (under ``MAX_MOTION`` of the diagonal at every corner, under ``MAX_TURN``
degrees), the warped frame matches the reference (ECC correlation at least ``MIN_CORRELATION``, and
better than unwarped), and ECC run again on two interleaved halves of the frame agrees within
``MAX_SPREAD`` pixels at the corners (``uncertainty``; where it does not on either kind of views,
refitted once more on the ``TRIM_KEEP`` share that fits best, taken only within the first fit's
uncertainty: ``confirms``): otherwise the frame is kept as is,
with a note, unless the motion is uncertain by only a few pixels (under ``ROUGH_SPREAD``), clearly
beyond that, and rests on enough of the frame (``broad``): then the frame is aligned roughly, and the
note says by how much it is uncertain (a few pixels off is far nearer than the tens as given).
A motion resting on under ``MIN_VALID`` of the pixels well exposed in both frames (a nearly black
frame's shadows) is rough whatever its uncertainty, and the note says why.
A motion under ``STILL_PX`` pixels, or under ``SIGNIFICANCE`` times its own spread, at
every corner leaves the frame untouched ("already aligned"), so a tripod bracket comes back bit for
bit. A warped frame is resampled once (bicubic); where it has no data (the border it moved away
from), that area is taken from the reference mapped to the frame's exposure (per-channel histogram
matching), blended in over ``FEATHER_PX`` pixels.

**Deghosting.** Each aligned frame is compared with the reference mapped to its exposure, and the
other way round (both must disagree, so that what one frame clipped does not count). The mapping is
per-channel histogram matching corrected by a smooth local gain and offset (``local_fit``, fitted
without what disagreed in the pass before), so that vignetting and tone curves that are not one
global curve do not count; a pixel of residual misalignment is allowed, and the difference is
divided by the local texture, so that ripples and leaves that merely changed count less. A strong
core of disagreement, extended over the weaker disagreement around it, closed and taken whole (its convex hull), is a
moving thing: that region of the frame is replaced by the exposure-mapped reference under a
feathered mask, and the fusion shows the moving thing once, where the reference has it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mefgan_tf.data_prep.handheld import corner_error

NO_MATCH = "no match with the reference (another scene, or too little detail)"
UNCERTAIN = "the motion found is uncertain"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
ESTIMATE_SIDE = 1600  # long side of the views the motion is estimated on (larger images are shrunk)
COARSE_SIDE = 100  # long side of the coarsest level of the ECC pyramid
MIN_SIDE = 64  # frames smaller than this on a side are not aligned
STILL_PX = 0.5  # a motion under this at every corner (full resolution) leaves the frame untouched
MAX_MOTION = 0.15  # a corner moving more than this share of the diagonal is not believed
MAX_TURN = 10.0  # degrees; more is not believed
MIN_CORRELATION = 0.5  # ECC correlation of the aligned views below this: could not align
BLANK_SPREAD = 0.01  # a frame whose luma varies less than this (standard deviation) is blank
MIN_VALID = 0.05  # share of the pixels well exposed in both a frame and the reference needed to align it
DARK, BRIGHT = 0.02, 0.98  # luma outside these is too dark or clipped to align on
# In the views in the brighter frame's tones, the darker frame is black under LIT, or under its darkest
# LIT_SHARE where that is brighter (at most DARK): the ends of real wide brackets hold 60-90% of what
# they show under DARK, in steps of a few levels whose edges, mapped up, are what they share with the
# brighter frame; a frame that is not mostly black has crushed shadows (noise, JPEG blocks) in its
# darkest tenth. Measured on the 18 real extreme pairs moved by hand, against DARK alone: aligned 15 ->
# 16 (roughly 4 -> 3), within 0.5 px where the answer is known 7 -> 8 (a temple 2.08 -> 0.73 px), the
# same own motion within 0.5 px under three hand motions 8 -> 12 pairs; with LIT alone (no LIT_SHARE) a
# sea 1.7 -> 3.1 px off, and the 6-stop and water photo pairs one fewer within 0.5 px each. The photo
# pairs, close pairs and still brackets are otherwise unchanged.
LIT, LIT_SHARE = 0.005, 0.1
# The gradient views are divided by the gradient's local mean (a Gaussian of EDGE_CONTEXT view pixels, plus
# EDGE_FLOOR of the view's 99th percentile, so that noise in flat areas stays small): each exposure renders
# an edge with its own contrast (tone curves compress highlights in one and shadows in the other, clipping
# cuts one side), and a fit on the raw magnitudes follows the strongest edges of each instead of every edge
# both share. Measured against raw magnitudes on exact answers: 42 photo pairs 6 stops apart within 0.5 px
# 36 -> 39 (median 0.26 -> 0.20 px); pairs whose lower 35% moved like water 22 -> 37 (median 0.48 -> 0.20
# px, worst 1.92 -> 1.28 px); without an answer, the real extreme pairs' own motion the same within 0.5 px
# under three hand motions on 12 -> 13 of 16, 3 -> 1 aligned roughly. A window of 2 px made a water pair 3.3 px off, 8 px
# gained less; with a floor of 0.1, a motion decided by a patch of 1% of a flat, noisy frame was taken
# (roughly, 5.6 px off), with 0.02 of the magnitude scale believed 4.5 px off.
# A small motion is confirmed on the plain magnitudes (``still_on_magnitudes``).
EDGE_CONTEXT, EDGE_FLOOR = 3.0, 0.05
CLIP_EDGE = 3  # pixels of the views next to such areas that are not aligned on either
FEATHER_PX = 8  # width of the blend between a warped frame and the filled border
BINS = 256
CENTRES = (np.arange(BINS, dtype=np.float32) + 0.5) / BINS
MODELS = {"translation": cv2.MOTION_TRANSLATION, "euclidean": cv2.MOTION_EUCLIDEAN,
          "affine": cv2.MOTION_AFFINE, "homography": cv2.MOTION_HOMOGRAPHY}
DEFAULT_MODEL = "homography"
# ECC stops when its correlation changes by less than this: 1e-6 stopped it early (close pairs'
# corner error up to 2.1 px against the known motion; converged at 1e-7, no change at 1e-9).
ECC_EPS = 1e-7
# The start: SIFT features (at most FEATURES) of the tone-matched lumas, Lowe's ratio test at
# MATCH_RATIO, a homography by MAGSAC within RANSAC_PX; fewer than MIN_MATCHES inliers: the ECC pyramid
# from no motion or a phase-correlation shift instead. Measured on 18 real close pairs moved by up to
# 5% and 3 degrees: worst corner error 0.48 px (2.1 px from the pyramid alone, which can lock onto a
# wrong optimum under a 3-degree turn).
FEATURES, MATCH_RATIO, RANSAC_PX, MIN_MATCHES = 5000, 0.8, 2.0, 12
# Features are found on views of at most this long side (ECC refines the start on the full views):
# against 1600, a 12 MP pair aligned 1.3 s sooner, with the same motion (0.14 px from the exact one),
# and the same results on the 18 close and extreme real pairs and 42 pairs 6 stops apart.
FEATURE_SIDE = 800
# A motion is believed only if ECC refined from it on two interleaved halves of the frame (a
# checkerboard of SPREAD_TILES x SPREAD_TILES, on views of at most SPREAD_SIDE) agrees within MAX_SPREAD
# pixels of those views at every corner. Measured on 18 real pairs of 750-1200 px: extreme pairs
# recovered 2 to 12 px wrong spread 2.9 to 7.7 px, the others 0.1 to 1.5 px; close pairs up to 1.4 px.
# A motion under SIGNIFICANCE times its spread at the corners is no motion ("already aligned"): on the
# real brackets, 0.5 to 2 px motions with spreads of 0.5 to 1.3 px, where a warp would move noise.
SPREAD_TILES, SPREAD_SIDE, MAX_SPREAD, SIGNIFICANCE = 8, 1200, 2.0, 2.0
# A motion refused as uncertain that is still under ROUGH_SPREAD pixels of those views, at least
# SIGNIFICANCE times its spread at the corners, and rests on enough of the frame (``broad``: at least
# ROUGH_MATCHED of what both views show matches locally, the detail spreads over ROUGH_EXTENT of the
# frame, ``extent``, counting edges over EDGE_SHARE of the strongest), aligns the frame roughly
# (``roughly``), with a note, where no kind of views gives a believed one. Measured on the real extreme
# pairs moved by hand: four frames left 37-54 px off were aligned 1.7-2.7 px off (fusion where seen
# 26-48 dB against 19-32 dB unaligned, MEF-SSIM 0.94-0.98 against 0.73-0.95); they match on 29-99% and
# spread over 0.39-0.82. Frames of another scene (78 pairs) match on 5-6% by chance (4 were otherwise
# taken), detail in 1% of a frame spreads over 0.12. A real nearly black frame (2% mean luma) whose motion
# was uncertain by 6.0 px was 12 px off, hence 5 px and not 8.
ROUGH_SPREAD, ROUGH_MATCHED, ROUGH_EXTENT, EDGE_SHARE = 5.0, 0.2, 0.35, 0.25
# Two kinds of views: the well-exposed ones (``aligned_views``) go first, unless under CLIPPED_FIRST of
# the pixels are well exposed in both: then the views in the brighter frame's tones (``clipped_views``).
# The other kind is tried where the first is not believed, and to confirm a motion under CONFIRM_PX at
# every corner: where it finds none, the frame is already aligned. Measured on the 42 photos shot as
# a camera would (``data_prep.synth.camera_bracket``): two exposures 6 stops apart moved by hand-held
# motions, within 0.5 px at the corners on 36 (the well-exposed views first: 30), worst 1.35 px (4.0);
# as still 3-frame brackets 3 to 6 stops wide, none of 252 frames moved (without the confirmation: 2,
# a false zoom of 0.8 and 1 px fitted to the clipping of the brighter frame). The real close pairs
# were unchanged (one was 0.74 px off with CLIPPED_FIRST 0.5: its well-exposed share is 0.497).
CLIPPED_FIRST, CONFIRM_PX = 0.45, 2.0
# A motion resting on under MIN_VALID well exposed in both frames (the views in the brighter frame's
# tones alone, on a nearly black frame's shadows) is rough whatever its uncertainty: on nearly black
# frames the two halves' spread understates the error (between a real bracket's two darkest frames, 7%
# well exposed in both, moved by hand: spread 1.6 px, 3.8 px off); such frames were refused before.
# What moved in the scene is kept out of the fit (``matching``): pixels where the frame warped by the
# features' start, then by each fit, correlates under LOCAL_MATCH with the reference over a Gaussian
# window of LOCAL_SIDE of the long side (found on a grid LOCAL_BLUR pixels of that window coarser);
# refitted TRIM_ROUNDS times of TRIM_ITERATIONS. Where the motion stays uncertain on both kinds of
# views, once more on the TRIM_KEEP share that fits best. Measured on the 42 photos at two exposures 2
# stops apart whose bottom 35% shows content of its own in each frame (water that moved), moved by
# hand-held motions: within 0.5 px on 22 (on every pixel: 8), median 0.48 px (2.39), 41 aligned (26)
# and 5 of them over 1 px off, worst 1.9 px (14, worst 4.9 px); without matching at the start, one
# fit pulled 37 px off by the moving part was believed 23 px off. Still photo brackets, real close pairs
# and the 6-stop pairs unchanged. A 12 MP pair aligns in 2.7-3.3 s instead of 2.3-2.4 s.
LOCAL_MATCH, LOCAL_SIDE, LOCAL_BLUR, TRIM_KEEP, TRIM_ROUNDS, TRIM_ITERATIONS = 0.3, 0.015, 3.0, 0.75, 2, 15
# ECC iterations: at half size from the feature start, then at full size, and for each half of ``uncertainty``
HALF_ITERATIONS, FINE_ITERATIONS, SPREAD_ITERATIONS = 50, 15, 10
# Defaults of `mefgan fuse` and the API, by measurement on the real brackets (docs/alignment.md):
# alignment only moves frames that then match the reference better (and leaves the rest bit for bit);
# deghosting also replaced up to 14% of frames of still scenes (tone curves that are not one global
# curve, wind, water), so it is asked for.
ALIGN_BY_DEFAULT, DEGHOST_BY_DEFAULT = True, False
# Deghosting works on views of this long side. Each frame is compared with the reference mapped to its
# tones (global per-channel curves, corrected by a local gain and offset: ``local_fit``) and the other
# way round; a region is a moving thing where both differences (beyond GHOST_SLACK pixels of residual
# misalignment, blurred over GHOST_BLUR, divided by 1 + local texture / GHOST_TEXTURE) exceed
# GHOST_LEVEL over a core GHOST_MIN_SIZE pixels across, extended over what exceeds GHOST_LOW around it
# (closed, each region taken whole: GHOST_CLOSE). Measured on 18 real brackets (docs/alignment.md) against one global curve and
# GHOST_LEVEL 0.15 alone: still frames touched 28 of 84 (49), at most 4.9% of a frame (13.7%); a pasted
# object's surroundings unchanged (45 dB or more) on 14 of 18 scenes (10). GHOST_TEXTURE 0.1 against
# none: 14 against 13 scenes unchanged outside, still frames at most 4.9% against 10.4% replaced.
GHOST_SIDE = 800
GHOST_LEVEL, GHOST_LOW, GHOST_BLUR, GHOST_MIN_SIZE = 0.12, 0.06, 2.0, 5
GHOST_SLACK, GHOST_TEXTURE = 1, 0.1
# The local correction: a weighted linear fit over a Gaussian window of GHOST_LOCAL of the long side, on
# a grid GHOST_GRID times coarser than the views; GHOST_PRIOR pulls the gain towards 1 where the
# window is flat, GHOST_TRUST (share of well-exposed pixels around) falls back to the global curves
# where few are near; fitted GHOST_PASSES times, each without what disagreed in the pass before.
GHOST_LOCAL, GHOST_GRID, GHOST_PRIOR, GHOST_TRUST, GHOST_PASSES = 0.05, 8, 0.001, 0.05, 2
# The local gain is held within 1 / GHOST_GAIN and GHOST_GAIN (vignetting and tone curves bend that
# little; a moving thing explained away by a free gain was otherwise found in pieces), and a pixel
# found to disagree in one pass stays out of the fits of the later ones. Measured on the 42 photos
# with a pasted object: under 25 dB inside its places 5 -> 2 (worst 19.9 -> 22.0 dB); still real
# frames touched 28 -> 27 of 85; the 18 real pairs with an object unchanged.
GHOST_GAIN = 1.25
# The regions found are closed over GHOST_CLOSE of the long side and each taken whole (its convex hull):
# a moving thing that matches its background in places otherwise comes back in pieces (a pasted object
# inside its two places: median 30.5 -> 34.1 dB on the 42 photos, 32.0 -> 32.4 dB on the 18 real pairs;
# moving water on still brackets: the most replaced of a frame 10.4% -> 16.4%).
GHOST_CLOSE = 0.02
GHOST_GROW, GHOST_FEATHER = 0.01, 0.006  # share of the long side the mask is grown by, then feathered over

@dataclass
class Motion:
    """The motion found for one frame: ``matrix`` maps reference pixels to frame pixels (full
    resolution; identity when "failed"), ``status`` is "moved" (``rough`` where only roughly: see
    ``roughly``), "still" (too small, or no better than none: the frame is left as is) or "failed"
    (``reason`` then says why)."""

    matrix: np.ndarray
    status: str
    correlation: float = math.nan
    reason: str = ""
    spread: float = math.nan  # how far two halves of the frame disagree on it (pixels at the corners, full resolution)
    candidate: np.ndarray | None = None  # refused as uncertain only, but clearly beyond its spread: the matrix found
    fitted: np.ndarray | None = None  # the matrix found, whatever the verdict (None where ECC found none)
    rough: str = ""  # "moved" only roughly: why ("" where not; see ``roughly`` and ``find_motion``)


# ---------------------------------------------------------------------------------------- views
def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB float image, [H, W] float32."""
    return np.asarray(image, np.float32) @ LUMA


def shrunk(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk (area average) so that its long side is at most ``side``, and the scale."""
    height, width = image.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale == 1.0:
        return np.asarray(image, np.float32), 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(np.asarray(image, np.float32), size, interpolation=cv2.INTER_AREA), scale


def well_exposed(values: np.ndarray) -> np.ndarray:
    """Pixels neither near black nor clipped (bool)."""
    return (values > DARK) & (values < BRIGHT)


def match_curve(source: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Histogram matching: the value of ``target`` at each of ``BINS`` levels of ``source`` (at
    ``CENTRES``), so that mapped source values follow target's distribution over ``valid``."""
    src, tgt = (source.ravel(), target.ravel()) if valid is None else (source[valid], target[valid])
    if src.size == 0:
        return CENTRES.copy()
    hist = np.bincount(np.clip((src * BINS).astype(np.int64), 0, BINS - 1), minlength=BINS)
    cumulative = np.cumsum(hist)
    middle = (cumulative - hist / 2) / cumulative[-1]
    ordered = np.sort(tgt[:: max(1, tgt.size // 200_000)])
    return np.interp(middle * (ordered.size - 1), np.arange(ordered.size), ordered).astype(np.float32)


def apply_curve(curve: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.interp(values, CENTRES, curve).astype(np.float32)


def apply_curves(curves: Sequence[np.ndarray], image: np.ndarray) -> np.ndarray:
    """Per-channel curves applied to an RGB image (or to [N, 3] pixels)."""
    return np.stack([apply_curve(c, image[..., i]) for i, c in enumerate(curves)], axis=-1)


def best_exposed(images: Sequence[np.ndarray]) -> int:
    """Index of the reference: the best exposed (``exposedness``; a blank frame never); ties (within
    0.01) go to the middle exposure."""
    from mefgan_tf.scenes import exposure_order, middle

    order = exposure_order(images)
    m = middle(len(order))
    views = [luma(shrunk(images[i], 256)[0]) for i in order]
    scores = [exposedness(v) if v.std() >= BLANK_SPREAD else -1.0 for v in views]
    rank = max(range(len(order)), key=lambda r: (round(scores[r], 2), -abs(r - m)))
    return order[rank]


def exposedness(values: np.ndarray) -> float:
    """Mean well-exposedness of luma values (Mertens's Gaussian around 0.5, sigma 0.2)."""
    return float(np.exp(-((values - 0.5) ** 2) / (2 * 0.2**2)).mean())


# ---------------------------------------------------------------------------------------- motion
def scaling(factor: float, centred: bool) -> np.ndarray:
    """Pixel coordinates of an image to those of it scaled by ``factor`` (pixel centres kept for an
    area resize, ``centred``; pyramid levels keep pixel 0)."""
    shift = 0.5 * factor - 0.5 if centred else 0.0
    return np.array([[factor, 0, shift], [0, factor, shift], [0, 0, 1]], np.float64)


def rescale(matrix: np.ndarray, to_new: np.ndarray) -> np.ndarray:
    """``matrix`` (reference -> frame pixels) in the coordinates that ``to_new`` maps to."""
    result = to_new @ matrix @ np.linalg.inv(to_new)
    return result / result[2, 2]


def corners(height: int, width: int) -> np.ndarray:
    return np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)


def transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.c_[points, np.ones(len(points))] @ matrix.T
    return mapped[:, :2] / mapped[:, 2:3]


def corner_motion(matrix: np.ndarray, height: int, width: int) -> float:
    """Largest distance a corner of the image moves under ``matrix``, in pixels."""
    points = corners(height, width)
    return float(np.linalg.norm(transform(matrix, points) - points, axis=1).max())


def shift_and_turn(matrix: np.ndarray, height: int, width: int) -> tuple[float, float]:
    """How far the image centre moves (pixels) and how much the frame turns there (degrees)."""
    centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
    step = np.array([[(width - 1) / 2 + 1, (height - 1) / 2], [(width - 1) / 2, (height - 1) / 2 + 1]])
    moved, stepped = transform(matrix, centre), transform(matrix, step)
    jacobian = (stepped - moved).T
    turn = math.degrees(math.atan2(jacobian[1, 0] - jacobian[0, 1], jacobian[0, 0] + jacobian[1, 1]))
    return float(np.linalg.norm(moved - centre)), abs(turn)


def implausible(matrix: np.ndarray, height: int, width: int) -> str:
    """Why a motion cannot be a hand-held one ("" when it can)."""
    points = corners(height, width)
    moved = transform(matrix, points)
    if not np.isfinite(moved).all():
        return NO_MATCH
    if np.linalg.norm(moved - points, axis=1).max() > MAX_MOTION * math.hypot(height, width):
        return f"{NO_MATCH}: the best match moves it more than a hand-held shot would"
    if shift_and_turn(matrix, height, width)[1] > MAX_TURN:
        return f"{NO_MATCH}: the best match turns it more than a hand-held shot would"
    area = cv2.contourArea(moved.astype(np.float32)) / max(1.0, cv2.contourArea(points.astype(np.float32)))
    if not 0.7 < area < 1.4 or not cv2.isContourConvex(moved.astype(np.float32)):
        return NO_MATCH
    return ""


def aligned_views(reference: np.ndarray, frame: np.ndarray) -> tuple[tuple, tuple[np.ndarray, np.ndarray]]:
    """The views ECC aligns on, (reference view, frame view, their well-exposed masks as uint8, judged
    on smoothed lumas so that noise does not riddle them): the gradient magnitudes of the reference's
    luma and of the frame's luma mapped onto the reference's tones (measured more precise than the
    mapped lumas themselves across large exposure gaps); and those two lumas, for the features."""
    ref_valid, frame_valid = (well_exposed(cv2.GaussianBlur(v, (0, 0), 2.0)) for v in (reference, frame))
    mapped = apply_curve(match_curve(frame, reference, frame_valid), frame)
    return (gradient(reference), gradient(mapped), inner(ref_valid), inner(frame_valid)), (reference, mapped)


def clipped_views(reference: np.ndarray, frame: np.ndarray, shadows: bool = True) -> tuple[tuple, tuple[np.ndarray, np.ndarray]]:
    """Views and lumas as ``aligned_views``, but both in the brighter frame's tones, the darker frame's
    luma mapped up with its clipping: the edges of what the brighter frame clips (a window, the sky)
    are edges of both, and where little is well exposed in both (the ends of a wide bracket) they
    are what the two share. Only what is black in either frame is left out (smoothed luma under
    ``shadow_level`` of the darker one; without ``shadows``, under ``DARK``)."""
    dark_first = float(reference.mean()) <= float(frame.mean())
    dark, bright = (reference, frame) if dark_first else (frame, reference)
    smooth_dark, smooth_bright = (cv2.GaussianBlur(v, (0, 0), 2.0) for v in (dark, bright))
    black = shadow_level(smooth_dark) if shadows else DARK
    lit_dark, lit_bright = smooth_dark > black, smooth_bright > black
    mapped = apply_curve(match_curve(dark, bright), dark)
    dark_mask, bright_mask = inner(lit_dark & lit_bright), inner(lit_bright)
    if dark_first:
        return (gradient(mapped), gradient(bright), dark_mask, bright_mask), (mapped, bright)
    return (gradient(bright), gradient(mapped), bright_mask, dark_mask), (bright, mapped)


def shadow_level(dark: np.ndarray) -> float:
    """The luma under which the darker frame (``dark``, smoothed) is black: ``LIT``, or as much as its
    darkest ``LIT_SHARE`` where that is brighter, at most ``DARK``."""
    return max(LIT, min(DARK, float(np.quantile(dark, LIT_SHARE))))


def inner(valid: np.ndarray) -> np.ndarray:
    """``valid`` (bool) less ``CLIP_EDGE`` pixels at its edges, as uint8: the edge of a clipped or black
    area is an edge of the gradient view that the other exposure does not have."""
    size = 2 * CLIP_EDGE + 1
    return cv2.erode(valid.astype(np.uint8), np.ones((size, size), np.uint8))


def gradient(view: np.ndarray, contrast: bool = True) -> np.ndarray:
    """Gradient magnitude of a lightly smoothed view, with ``contrast`` over its local mean
    (``EDGE_CONTEXT``, ``EDGE_FLOOR``): edges, whatever the tones between them and however strongly
    each exposure renders them."""
    smooth = cv2.GaussianBlur(view, (0, 0), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    if not contrast:
        return magnitude
    floor = EDGE_FLOOR * float(np.percentile(magnitude, 99)) + 1e-6
    return magnitude / (cv2.GaussianBlur(magnitude, (0, 0), EDGE_CONTEXT) + floor)


def pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``image`` and ``levels`` halvings, coarsest first."""
    found = [image]
    for _ in range(levels):
        found.append(cv2.pyrDown(found[-1]))
    return found[::-1]


def mask_pyramid(mask: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    return [cv2.resize(mask, (s[1], s[0]), interpolation=cv2.INTER_NEAREST) for s in shapes]


def phase_shift(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """A translation (3x3) from phase correlation: a start that reaches motions ECC alone would miss."""
    window = cv2.createHanningWindow(reference.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(reference - reference.mean(), frame - frame.mean(), window)
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def ecc(reference: np.ndarray, frame: np.ndarray, ref_mask: np.ndarray, frame_mask: np.ndarray,
        start: np.ndarray, model: int, iterations: int) -> tuple[float, np.ndarray]:
    """ECC refinement of ``start`` (3x3, reference -> frame); (correlation, matrix)."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, ECC_EPS)
    warp = start.astype(np.float32) if model == cv2.MOTION_HOMOGRAPHY else start[:2].astype(np.float32)
    rho, warp = cv2.findTransformECCWithMask(reference, frame, ref_mask, frame_mask, warp, model, criteria, 3)
    return float(rho), np.vstack([warp, [0, 0, 1]]).astype(np.float64) if warp.shape[0] == 2 else warp.astype(np.float64)


def improved(views: tuple, start: np.ndarray, kind: int, iterations: int) -> tuple[float, np.ndarray]:
    """ECC from ``start`` on ``views``, or ``start`` itself where ECC ends matching worse than it began:
    Gauss-Newton steps can overshoot on views of little detail (a 400-pixel photo at half size lost a
    start 0.7 px off for one 150 px off; refits from 0.3 px off went 2.2 px off)."""
    _, matrix = ecc(*views, start, kind, iterations)
    before, after = correlation(views, start), correlation(views, matrix)
    return (after, matrix) if after >= before else (before, start)


def coarse_start(refs: list[np.ndarray], frames: list[np.ndarray], ref_masks: list[np.ndarray],
                 frame_masks: list[np.ndarray]) -> np.ndarray:
    """The better of no motion and a phase-correlation shift, each refined at the coarsest level."""
    best, best_rho = np.eye(3), -1.0
    for start in (np.eye(3), phase_shift(refs[0], frames[0])):
        try:
            rho, found = ecc(refs[0], frames[0], ref_masks[0], frame_masks[0], start, cv2.MOTION_EUCLIDEAN, 100)
        except cv2.error:
            continue
        if rho > best_rho:
            best, best_rho = found, rho
    return best


def find_motion(reference: np.ndarray, frame: np.ndarray, model: str = DEFAULT_MODEL) -> Motion:
    """The motion of ``frame`` against ``reference`` (RGB float images of one size); see the module."""
    height, width = reference.shape[:2]
    if min(height, width) < MIN_SIDE:
        return Motion(np.eye(3), "failed", reason=f"too small to align (under {MIN_SIDE} pixels)")
    ref_luma, scale = shrunk(luma(reference), ESTIMATE_SIDE)
    frame_luma, _ = shrunk(luma(frame), ESTIMATE_SIDE)
    if well_exposed(frame_luma).mean() < MIN_VALID or frame_luma.std() < BLANK_SPREAD:
        return Motion(np.eye(3), "failed", reason="a blank or fully clipped frame")
    shape = (height, width)
    kinds = [ViewKind(*make(ref_luma, frame_luma), MODELS[model]) for make in (aligned_views, clipped_views)]
    share = usable(kinds[0].views)
    order = [1, 0] if share < CLIPPED_FIRST else [0, 1]
    found = {order[0]: motion_on(kinds[order[0]], scale, shape)}
    if found[order[0]].status == "failed" or small(found[order[0]], height, width):
        found[order[1]] = motion_on(kinds[order[1]], scale, shape)
    motion = settled([found[k] for k in order if k in found], height, width, found.get(0))
    if small(motion, height, width) and still_on_magnitudes(next(kinds[k] for k in order if found.get(k) is motion), scale, shape):
        motion = Motion(motion.matrix, "still", motion.correlation)
    trimmed = []
    for k in order:  # an uncertain motion may be pulled by what moved in the scene: the best-fitting share decides
        if motion.status == "failed" and found[k].reason.startswith(UNCERTAIN):
            on_share = motion_on(kinds[k], scale, shape, trim=True)
            if confirms(on_share, found[k], height, width):
                trimmed.append(on_share)
                motion = on_share if on_share.status != "failed" else motion
    if motion.status == "failed":
        motion = (roughly(list(found.values())) or roughly(trimmed)
                  or fallback(ref_luma, frame_luma, scale, shape, model) or motion)
    if motion.status == "moved" and not motion.rough and share < MIN_VALID:
        motion.rough = f"only {100 * share:.1f}% of it is well exposed where the reference is"
    return motion


def still_on_magnitudes(kind: ViewKind, scale: float, shape: tuple[int, int]) -> bool:
    """Whether the kind of views that found a motion, on the gradient magnitudes themselves rather
    than over their local mean (``gradient``), from the same features' start, finds none: a small
    motion found only on the evened-out views is the clipping or the noise of a distant exposure,
    evened out like any edge (on still photo brackets 3 stops wide, 8 of 252 frames were otherwise
    moved by 0.5 to 1.1 px)."""
    ref_view, frame_view = (gradient(tone, contrast=False) for tone in kind.tones)
    plain = ViewKind((ref_view, frame_view, *kind.views[2:]), kind.tones, kind.kind, start_of=kind)
    return motion_on(plain, scale, shape).status == "still"


def fallback(ref_luma: np.ndarray, frame_luma: np.ndarray, scale: float, shape: tuple[int, int], model: str) -> Motion | None:
    """The motion on the views in the brighter frame's tones without the darker frame's deepest shadows
    (``clipped_views`` at ``DARK``), believed or rough, where no other aligns the frame: a dark frame
    whose shadows are flat noise over a textured area of the brighter one (None where it gives none)."""
    motion = motion_on(ViewKind(*clipped_views(ref_luma, frame_luma, shadows=False), MODELS[model]), scale, shape)
    return motion if motion.status != "failed" else roughly([motion])


def roughly(tried: list[Motion]) -> Motion | None:
    """Of the motions refused only as uncertain, yet clearly beyond their spread (under ``ROUGH_SPREAD``),
    the least uncertain, as a rough alignment (None where there is none): a frame within a few pixels is
    far nearer than as given, tens of pixels off. (The fits on the best-fitting share are asked only
    where the others give none: on the ends of real wide brackets, one of them was 8 px off where the
    fit on all that matched was 2.6 px off, with a smaller spread.)"""
    candidates = [m for m in tried if m.candidate is not None]
    if not candidates:
        return None
    best = min(candidates, key=lambda m: m.spread)
    return Motion(best.candidate, "moved", best.correlation, spread=best.spread,
                  rough=f"{UNCERTAIN} by {best.spread:.1f} px")


def confirms(on_share: Motion, on_all: Motion, height: int, width: int) -> bool:
    """Whether the motion fitted on the best-fitting share lies within the uncertainty of the one fitted
    on all that matches (``on_all``, refused as uncertain): where what moved in the scene pulled the
    latter, the former is its correction; beyond, the share fits best only because it was chosen to
    fit the motion it started from (the noise of a nearly black frame: a real dark frame moved by
    hand was believed 5.3 px off, 6.0 px from the fit on all, uncertain by 3.6 px and 1.1 px off)."""
    matrix = on_share.fitted if on_share.fitted is not None else on_share.candidate
    return matrix is not None and corner_error(matrix, on_all.fitted, height, width) <= on_all.spread


def small(motion: Motion, height: int, width: int) -> bool:
    """A motion found that is under ``CONFIRM_PX`` at every corner (to be confirmed on the other views)."""
    return motion.status == "moved" and corner_motion(motion.matrix, height, width) < CONFIRM_PX


def settled(found: list[Motion], height: int, width: int, well_exposed_views: Motion | None = None) -> Motion:
    """The motion of a frame from what the two kinds of views found, in the order tried (the second
    only where the first was not believed or moved little): the first believed one, but a small
    motion (under ``CONFIRM_PX``) in which the other kind finds no motion is "already aligned". Where
    neither is believed, the failure on the well-exposed views (``well_exposed_views``; its reason is
    the one a user can act on, such as too little well exposed), else the first."""
    believed = [m for m in found if m.status != "failed"]
    if not believed:
        return well_exposed_views or found[0]
    first = believed[0]
    if small(first, height, width) and any(m.status == "still" for m in believed[1:]):
        return Motion(first.matrix, "still", first.correlation)
    return first


def usable(views: tuple) -> float:
    """Share of the pixels well exposed in both views (their masks)."""
    return float((views[2] & views[3]).mean())


class ViewKind:
    """One kind of views of the reference and a frame (``aligned_views`` or ``clipped_views``: the
    views, their masks, the lumas in common tones) and ECC's fit of motion ``kind`` on them, found once
    (``fitted``) however often it is judged."""

    def __init__(self, views: tuple, tones: tuple[np.ndarray, np.ndarray], kind: int,
                 start_of: ViewKind | None = None) -> None:
        self.views, self.tones, self.kind, self.start_of = views, tones, kind, start_of

    @functools.cached_property
    def start(self) -> np.ndarray | None:
        """The features' start (``feature_start``), or that of ``start_of``, the same kind of views
        evened out otherwise (the start depends on the lumas and masks only)."""
        return self.start_of.start if self.start_of is not None else feature_start(*self.tones, self.views[2], self.views[3])

    @functools.cached_property
    def fitted(self) -> tuple[tuple, float, np.ndarray]:
        """(the views ECC fitted on, correlation, matrix): from the features' start, on what matches
        there (what moved in the scene kept out from the start), else coarse to fine (``fit``)."""
        at_start = matching(self.views, self.start) if self.start is not None else None
        fitted_on = self.views if at_start is None else at_start
        return (fitted_on, *fit(fitted_on, self.start, self.kind))


def motion_on(views: ViewKind, scale: float, shape: tuple[int, int], trim: bool = False) -> Motion:
    """The motion found on one kind of views, refitted on what matches (with ``trim``, on what fits
    best: ``refitted``), judged."""
    share = usable(views.views)
    if share < MIN_VALID:
        return Motion(np.eye(3), "failed", reason=f"too little of it is well exposed where the reference is "
                                                  f"({100 * share:.1f}%)")
    try:
        fitted_on, rho, matrix = views.fitted
        matrix, rho, fitted_on = refitted(views.views, fitted_on, rho, matrix, views.kind, trim)
        judged = judge(matrix, rho, fitted_on, scale, shape)
        if judged.candidate is not None and not broad(views, fitted_on, matrix):
            judged.candidate = None
        return judged
    except cv2.error:
        return Motion(np.eye(3), "failed", reason=NO_MATCH)


def feature_start(ref_tone: np.ndarray, frame_tone: np.ndarray, ref_mask: np.ndarray,
                  frame_mask: np.ndarray) -> np.ndarray | None:
    """A homography (reference -> frame pixels) from SIFT features of the two lumas in common tones
    (views over ``FEATURE_SIDE`` shrunk first: ECC refines the start), matched and fitted by MAGSAC,
    or None where under ``MIN_MATCHES`` agree."""
    ref_tone, factor = shrunk(ref_tone, FEATURE_SIDE)
    if factor != 1.0:
        frame_tone = shrunk(frame_tone, FEATURE_SIDE)[0]
        ref_mask, frame_mask = mask_pyramid(ref_mask, [ref_tone.shape])[0], mask_pyramid(frame_mask, [ref_tone.shape])[0]
    sift = cv2.SIFT_create(nfeatures=FEATURES)
    ref_points, ref_found = sift.detectAndCompute(to_uint8(ref_tone), ref_mask)
    frame_points, frame_found = sift.detectAndCompute(to_uint8(frame_tone), frame_mask)
    if ref_found is None or frame_found is None or min(len(ref_points), len(frame_points)) < 2:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(ref_found, frame_found, k=2)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < MATCH_RATIO * n.distance]
    if len(good) < MIN_MATCHES:
        return None
    source = np.float32([ref_points[m.queryIdx].pt for m in good])
    target = np.float32([frame_points[m.trainIdx].pt for m in good])
    matrix, inliers = cv2.findHomography(source, target, cv2.USAC_MAGSAC, RANSAC_PX, maxIters=5000, confidence=0.999)
    if matrix is None or int(inliers.sum()) < MIN_MATCHES:
        return None
    return matrix.astype(np.float64) if factor == 1.0 else rescale(matrix.astype(np.float64), scaling(1.0 / factor, centred=True))


def to_uint8(values: np.ndarray) -> np.ndarray:
    return (np.clip(values, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def fit(views: tuple, start: np.ndarray | None, kind: int) -> tuple[float, np.ndarray]:
    """ECC of motion ``kind`` on the views: from the feature ``start``, at half size then at full size,
    or without one coarse to fine on a pyramid (``coarse_start``, ``refine``); (correlation, matrix)."""
    ref_view, frame_view, ref_mask, frame_mask = views
    if start is not None:
        _, matrix = improved(halved(views), rescale(start, scaling(0.5, centred=False)), kind, HALF_ITERATIONS)
        return improved(views, rescale(matrix, scaling(2.0, centred=False)), kind, FINE_ITERATIONS)
    levels = max(0, math.ceil(math.log2(max(ref_view.shape) / COARSE_SIDE)))
    refs, frames = pyramid(ref_view, levels), pyramid(frame_view, levels)
    ref_masks = mask_pyramid(ref_mask, [r.shape for r in refs])
    frame_masks = mask_pyramid(frame_mask, [f.shape for f in frames])
    return refine(refs, frames, ref_masks, frame_masks, coarse_start(refs, frames, ref_masks, frame_masks), kind)


def refitted(views: tuple, fitted_on: tuple, rho: float, matrix: np.ndarray, kind: int,
             trim: bool) -> tuple[np.ndarray, float, tuple]:
    """ECC refitted ``TRIM_ROUNDS`` times from ``matrix`` (found on ``fitted_on``) on what of ``views``
    matches (``matching``): what moved in the scene (waves, branches) otherwise pulls the whole motion
    towards it. (matrix, correlation, the views it was fitted on); as given where too little matches or
    ECC fails."""
    for _ in range(TRIM_ROUNDS):
        kept = matching(views, matrix, trim)
        if kept is None:
            break
        try:
            rho, matrix = improved(kept, matrix, kind, TRIM_ITERATIONS)
        except cv2.error:
            break
        fitted_on = kept
    return matrix, rho, fitted_on


def matching(views: tuple, matrix: np.ndarray, trim: bool = False) -> tuple | None:
    """``views`` less the reference's pixels that the frame warped by ``matrix`` does not match: local
    correlation under ``LOCAL_MATCH`` over ``LOCAL_SIDE`` of the long side; with ``trim``, also all but
    the ``TRIM_KEEP`` share with the smallest normalised difference (smoothed likewise). None where
    under ``MIN_VALID`` of the pixels would be left."""
    ref_view, frame_view, ref_mask, frame_mask = views
    both = ref_mask & warp_view(frame_mask, matrix)
    if both.mean() < MIN_VALID:
        return None
    sigma, warped = LOCAL_SIDE * max(ref_view.shape), warp_view(frame_view, matrix)
    keep = (ref_mask > 0) & (local_correlation(ref_view, warped, both, sigma) >= LOCAL_MATCH)
    if trim:
        difference = cv2.GaussianBlur(np.abs(normalised(ref_view, both) - normalised(warped, both)), (0, 0), sigma)
        keep &= difference <= np.quantile(difference[both > 0], TRIM_KEEP)
    return (ref_view, frame_view, keep.astype(np.uint8), frame_mask) if keep.mean() >= MIN_VALID else None


def local_correlation(first: np.ndarray, second: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """The correlation of two views around each pixel (a Gaussian window of ``sigma``, within ``mask``),
    found on a grid ``sigma / LOCAL_BLUR`` times coarser (local means need no finer one) and resized back."""
    height, width = first.shape
    step = max(1.0, sigma / LOCAL_BLUR)
    size = (max(1, round(width / step)), max(1, round(height / step)))
    weight = mask.astype(np.float32)
    total = cv2.GaussianBlur(cv2.resize(weight, size, interpolation=cv2.INTER_AREA), (0, 0), sigma / step) + 1e-6

    def mean(values: np.ndarray) -> np.ndarray:
        coarse = cv2.resize(values * weight, size, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(coarse, (0, 0), sigma / step) / total

    first_mean, second_mean = mean(first), mean(second)
    covariance = mean(first * second) - first_mean * second_mean
    spread = (mean(first * first) - first_mean**2) * (mean(second * second) - second_mean**2)
    return cv2.resize(covariance / np.sqrt(np.maximum(spread, 1e-12)), (width, height), interpolation=cv2.INTER_LINEAR)


def normalised(view: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``view`` less its mean, over its standard deviation, within ``mask`` (as ECC compares them)."""
    inside = view[mask > 0]
    return (view - inside.mean()) / (inside.std() + 1e-9)


def halved(views: tuple) -> tuple:
    """The views (and masks) at half size, as the next level of ``pyramid`` would be."""
    ref_view, frame_view, ref_mask, frame_mask = views
    ref_half, frame_half = cv2.pyrDown(ref_view), cv2.pyrDown(frame_view)
    return (ref_half, frame_half, *mask_pyramid(ref_mask, [ref_half.shape]), *mask_pyramid(frame_mask, [frame_half.shape]))


def uncertainty(views: tuple, matrix: np.ndarray, kind: int) -> tuple[float, int]:
    """How far ECC refinements of ``matrix`` on two interleaved halves of the views disagree (pixels,
    largest over the corners), and the long side of the views it was measured on: the uncertainty of
    the motion found. Views over ``SPREAD_SIDE`` are halved first (ECC's cost grows with the pixels)."""
    factor = 1.0
    while max(views[0].shape) > SPREAD_SIDE:
        views, factor, matrix = halved(views), factor / 2, rescale(matrix, scaling(0.5, centred=False))
    ref_view, frame_view, ref_mask, frame_mask = views
    height, width = ref_view.shape
    rows, cols = np.mgrid[0:height, 0:width]
    half = (((rows * SPREAD_TILES) // height + (cols * SPREAD_TILES) // width) % 2).astype(np.uint8)
    found = [ecc(ref_view, frame_view, ref_mask & part, frame_mask, matrix, kind, SPREAD_ITERATIONS)[1]
             for part in (half, 1 - half)]
    points = corners(height, width)
    return float(np.linalg.norm(transform(found[0], points) - transform(found[1], points), axis=1).max()), max(height, width)


def refine(refs: list[np.ndarray], frames: list[np.ndarray], ref_masks: list[np.ndarray],
           frame_masks: list[np.ndarray], matrix: np.ndarray, kind: int) -> tuple[float, np.ndarray]:
    """ECC of motion ``kind`` from the coarsest level's ``matrix`` down to the finest: (correlation,
    matrix); levels under 200 x 200 pixels find at most a rigid motion."""
    rho = -1.0
    for level in range(1, len(refs)):
        matrix = rescale(matrix, scaling(2.0, centred=False))
        small = refs[level].shape[0] * refs[level].shape[1] <= 200**2
        rho, matrix = ecc(refs[level], frames[level], ref_masks[level], frame_masks[level], matrix,
                          min(kind, cv2.MOTION_EUCLIDEAN) if small else kind, 50)
    return rho, matrix


def judge(matrix: np.ndarray, rho: float, views: tuple, scale: float, shape: tuple[int, int]) -> Motion:
    """Whether the motion ``matrix`` (view pixels) is believed, and the full-resolution matrix."""
    full = rescale(matrix, scaling(1.0 / scale, centred=True)) if scale != 1.0 else matrix
    reason = implausible(full, *shape)
    if reason:
        return Motion(np.eye(3), "failed", rho, reason)
    ref_view, frame_view, ref_mask, frame_mask = views
    if rho < 0:
        rho = correlation(views, matrix)
    if rho < MIN_CORRELATION:
        return Motion(np.eye(3), "failed", rho, f"{NO_MATCH} (correlation {rho:.2f})")
    if corner_motion(full, *shape) < STILL_PX:
        return Motion(full, "still", rho)
    unmoved = cv2.computeECC(ref_view, frame_view, ref_mask & frame_mask)
    if rho <= unmoved:
        return Motion(full, "still", unmoved)
    kind = cv2.MOTION_HOMOGRAPHY if abs(matrix[2, :2]).max() > 0 else cv2.MOTION_AFFINE
    uncertain, side = uncertainty(views, matrix, kind)
    pixels, moved = uncertain * max(shape) / side, corner_motion(full, *shape)
    if moved < SIGNIFICANCE * min(pixels, MAX_SPREAD * max(shape) / side):  # not clearly beyond its uncertainty
        return Motion(full, "still", rho)
    if uncertain > MAX_SPREAD:
        beyond = uncertain <= ROUGH_SPREAD and moved >= SIGNIFICANCE * pixels
        return Motion(np.eye(3), "failed", rho, f"{UNCERTAIN} ({pixels:.1f} px at the corners between the "
                                                f"frame's parts)", pixels, full if beyond else None, fitted=full)
    return Motion(full, "moved", rho, spread=pixels, fitted=full)


def correlation(views: tuple, matrix: np.ndarray) -> float:
    """ECC's correlation of the views with the frame's warped by ``matrix``, where both have data."""
    ref_view, frame_view, ref_mask, frame_mask = views
    return float(cv2.computeECC(ref_view, warp_view(frame_view, matrix), ref_mask & warp_view(frame_mask, matrix)))


def broad(kind: ViewKind, fitted_on: tuple, matrix: np.ndarray) -> bool:
    """Whether a motion (``matrix``, fitted on ``fitted_on``, what of ``kind``'s views matched) rests on
    enough of the frame to align it roughly: at least ``ROUGH_MATCHED`` of what both views show matches
    locally, and the reference's edges there spread over at least ``ROUGH_EXTENT`` of the frame's
    width (``extent``, on the gradient magnitudes themselves: the views' own, evened out by their local
    mean, make noise in a flat area as strong as any edge)."""
    both = kind.views[2] & warp_view(kind.views[3], matrix)
    share = float((fitted_on[2] & both).sum()) / max(1.0, float(both.sum()))
    edges = gradient(kind.tones[0], contrast=False)
    return share >= ROUGH_MATCHED and extent(edges, fitted_on[2] > 0) >= ROUGH_EXTENT


def extent(edges: np.ndarray, mask: np.ndarray) -> float:
    """How widely the detail the fit rests on spreads over the frame: the standard deviation of the
    positions of the strong ``edges`` (over ``EDGE_SHARE`` of their 99th percentile, within ``mask``)
    along their narrower axis, over that of a frame-wide spread (1: as wide as the frame)."""
    strong = mask & (edges >= EDGE_SHARE * np.percentile(edges[mask], 99)) if mask.any() else mask
    if strong.sum() < 3:
        return 0.0
    rows, cols = np.nonzero(strong)
    height, width = edges.shape
    points = np.stack([cols / width, rows / height])
    return float(math.sqrt(max(np.linalg.eigvalsh(np.cov(points))[0], 0.0) * 12.0))


def warp_view(view: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``view`` resampled at ``matrix`` (reference -> frame) of each reference pixel."""
    flags = (cv2.INTER_NEAREST if view.dtype == np.uint8 else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    return cv2.warpPerspective(view, matrix, view.shape[1::-1], flags=flags, borderMode=cv2.BORDER_CONSTANT)


# ---------------------------------------------------------------------------------------- frames
def exposure_curves(source: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> list[np.ndarray]:
    """Per-channel histogram matching of ``source`` to ``target`` (both RGB, one size)."""
    return [match_curve(source[..., i], target[..., i], valid) for i in range(3)]


def warp_frame(frame: np.ndarray, reference: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``frame`` warped onto the reference (bicubic); where it has no data, the reference mapped
    to the frame's exposure, blended in over ``FEATHER_PX`` pixels."""
    height, width = frame.shape[:2]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(np.asarray(frame, np.float32), matrix, (width, height), flags=flags,
                                 borderMode=cv2.BORDER_REPLICATE)
    covered = cv2.warpPerspective(np.full((height, width), 255, np.uint8), matrix, (width, height),
                                  flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    weight = np.clip(cv2.distanceTransform(covered, cv2.DIST_L2, 3) / FEATHER_PX, 0.0, 1.0)
    band = weight < 1.0
    if not band.any():
        return np.clip(warped, 0.0, 1.0)
    small_ref, _ = shrunk(reference, GHOST_SIDE)
    small_frame, _ = shrunk(warped, GHOST_SIDE)
    small_cover = cv2.resize(weight, small_ref.shape[1::-1], interpolation=cv2.INTER_AREA) >= 1.0
    curves = exposure_curves(small_ref, small_frame, small_cover)
    fill, w = apply_curves(curves, np.asarray(reference, np.float32)[band]), weight[band][:, None]
    warped[band] = w * warped[band] + (1.0 - w) * fill
    return np.clip(warped, 0.0, 1.0)


def local_fit(mapped: np.ndarray, target: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gain and offset (views' size, per channel) such that ``gain * mapped + offset`` follows
    ``target`` locally: a weighted linear fit over a Gaussian window of ``GHOST_LOCAL`` of the long side,
    computed on a grid ``GHOST_GRID`` times coarser, the gain held within ``GHOST_GAIN`` of 1; where
    few pixels of ``weight`` are near, the global mapping (gain 1, offset 0)."""
    height, width = weight.shape
    grid = (max(1, round(width / GHOST_GRID)), max(1, round(height / GHOST_GRID)))
    sigma = GHOST_LOCAL * max(height, width) / GHOST_GRID
    w = weight[..., None].astype(np.float32)

    def moment(values: np.ndarray) -> np.ndarray:
        coarse = cv2.resize(values, grid, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(coarse, (0, 0), sigma, borderType=cv2.BORDER_REFLECT).reshape(grid[1], grid[0], -1)

    mw = moment(w)
    norm = np.maximum(mw, 1e-6)
    mx, my = moment(w * mapped) / norm, moment(w * target) / norm
    cov = moment(w * mapped * target) / norm - mx * my
    var = moment(w * mapped * mapped) / norm - mx * mx
    gain = (cov + GHOST_PRIOR) / (var + GHOST_PRIOR)
    trust = mw / (mw + GHOST_TRUST)
    gain = trust * np.clip(gain, 1.0 / GHOST_GAIN, GHOST_GAIN) + (1.0 - trust)
    offset = trust * (my - gain * mx)
    size = (width, height)
    return (cv2.resize(gain, size, interpolation=cv2.INTER_LINEAR).reshape(height, width, -1),
            cv2.resize(offset, size, interpolation=cv2.INTER_LINEAR).reshape(height, width, -1))


def mapped_views(frame: np.ndarray, reference: np.ndarray) -> tuple[tuple[np.ndarray, ...], list[np.ndarray]]:
    """Views (long side ``GHOST_SIDE``) of the frame, the reference, the reference in the frame's tones
    and the frame in the reference's (global per-channel curves), and the curves reference -> frame."""
    small_frame, small_ref = shrunk(frame, GHOST_SIDE)[0], shrunk(reference, GHOST_SIDE)[0]
    curves = exposure_curves(small_ref, small_frame)
    to_ref = apply_curves(exposure_curves(small_frame, small_ref), small_frame)
    return (small_frame, small_ref, apply_curves(curves, small_ref), to_ref), curves


def beyond(values: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Signed amount by which ``values`` leave the range of ``expected`` over ``GHOST_SLACK`` pixels
    around (so that residual misalignment does not count), blurred over ``GHOST_BLUR`` (so that
    texture that merely changed, such as ripples, averages out)."""
    kernel = np.ones((2 * GHOST_SLACK + 1,) * 2, np.uint8)
    low, high = cv2.erode(expected, kernel), cv2.dilate(expected, kernel)
    return cv2.GaussianBlur(values - np.clip(values, low, high), (0, 0), GHOST_BLUR)


def disagreement(views: tuple[np.ndarray, ...], keep: np.ndarray | None) -> np.ndarray:
    """How far the frame and the reference disagree [H', W'] once each is mapped to the other's tones
    (``mapped_views``; the smaller of the two ways, so that what one frame clipped does not count; the
    largest channel). ``keep``: the pixels a local correction of the global curves is fitted on (None: none)."""
    small_frame, small_ref, to_frame, to_ref = views
    gain, offset = (1.0, 0.0) if keep is None else local_fit(to_frame, small_frame, keep)
    ref_gain, ref_offset = (1.0, 0.0) if keep is None else local_fit(to_ref, small_ref, keep)
    differs = np.minimum(one_way(small_frame, to_frame, gain, offset), one_way(small_ref, to_ref, ref_gain, ref_offset))
    return differs.max(axis=-1)


def one_way(values: np.ndarray, mapped: np.ndarray, gain: np.ndarray | float, offset: np.ndarray | float) -> np.ndarray:
    """How far ``values`` leave ``mapped`` (the other frame in their tones) corrected by ``gain`` and
    ``offset``; 0 where both are clipped or both near black (nothing to compare)."""
    expected = np.clip(gain * mapped + offset, 0.0, 1.0)
    differs = np.abs(beyond(values, expected)) / (1.0 + np.minimum(spread(values), spread(expected)) / GHOST_TEXTURE)
    blind = ((values >= BRIGHT) & (mapped >= BRIGHT)) | ((values <= DARK) & (mapped <= DARK))
    return differs * cv2.erode((~blind).astype(np.uint8), np.ones((2 * GHOST_SLACK + 1,) * 2, np.uint8))


def spread(values: np.ndarray) -> np.ndarray:
    """Local standard deviation (per channel) over ``GHOST_BLUR`` pixels: how textured a place is."""
    blur = {"ksize": (0, 0), "sigmaX": GHOST_BLUR}
    mean = cv2.GaussianBlur(values, **blur)
    return np.sqrt(np.maximum(cv2.GaussianBlur(values * values, **blur) - mean * mean, 0.0))


def regions(differs: np.ndarray) -> np.ndarray:
    """Where something moved (uint8 0/1): areas above ``GHOST_LOW`` that hold a core above ``GHOST_LEVEL``
    at least ``GHOST_MIN_SIZE`` pixels across, closed over ``GHOST_CLOSE`` of the long side, each
    filled to its convex hull."""
    core = (differs > GHOST_LEVEL).astype(np.uint8)
    core = cv2.morphologyEx(core, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (GHOST_MIN_SIZE,) * 2))
    if not core.any():
        return core
    count, labels = cv2.connectedComponents((differs > GHOST_LOW).astype(np.uint8), connectivity=8)
    seeded = np.zeros(count, bool)
    seeded[np.unique(labels[core > 0])] = True
    seeded[0] = False
    found = seeded[labels].astype(np.uint8)
    size = 2 * max(1, round(GHOST_CLOSE * max(found.shape))) + 1
    found = cv2.morphologyEx(found, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    hulls = np.zeros_like(found)
    for contour in cv2.findContours(found, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]:
        cv2.fillPoly(hulls, [cv2.convexHull(contour)], 1)
    return hulls


def ghost_fit(frame: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Soft mask [H', W'] of where ``frame`` shows something else than the reference (views of long side
    ``GHOST_SIDE``), and the curves that map the reference to the frame's tones. The disagreement is
    measured against the global curves corrected locally (``local_fit``), fitted on the well-exposed
    pixels that did not disagree in any pass before (``GHOST_PASSES``)."""
    views, curves = mapped_views(frame, reference)
    valid = well_exposed(luma(views[0])) & well_exposed(luma(views[1]))
    differs, keep = disagreement(views, None), valid
    for _ in range(GHOST_PASSES):
        suspect = cv2.dilate((differs > GHOST_LOW).astype(np.uint8), np.ones((2 * GHOST_SLACK + 3,) * 2, np.uint8))
        keep = keep & (suspect == 0)
        differs = disagreement(views, keep)
    found = regions(differs)
    if not found.any():
        return np.zeros(found.shape, np.float32), curves
    side = max(found.shape)
    grow = 2 * max(1, round(GHOST_GROW * side)) + 1
    grown = cv2.dilate(found, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow))).astype(np.float32)
    return np.clip(cv2.GaussianBlur(grown, (0, 0), max(1.0, GHOST_FEATHER * side)), 0.0, 1.0), curves


def ghost_mask(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Soft mask [H', W'] (views of long side ``GHOST_SIDE``) of where ``frame`` shows something else
    than the reference (``ghost_fit``)."""
    return ghost_fit(frame, reference)[0]


def deghost_frame(frame: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
    """``frame`` with its moving things replaced by the reference mapped to its tones (the global curves
    corrected locally), and the share of the frame replaced (0: unchanged, the same array)."""
    small, curves = ghost_fit(frame, reference)
    if small.max() < 1.0 / 255:
        return frame, 0.0
    height, width = frame.shape[:2]
    mask = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    inside = mask >= 1.0 / 255
    fill = apply_curves(curves, np.asarray(reference, np.float32)[inside])
    result = np.array(frame, np.float32)
    m = mask[inside][:, None]
    result[inside] = (1.0 - m) * result[inside] + m * fill
    return np.clip(result, 0.0, 1.0), float(small.mean())


# ---------------------------------------------------------------------------------------- entry point
def prepare(images: Sequence[np.ndarray], align: bool = ALIGN_BY_DEFAULT, deghost: bool = DEGHOST_BY_DEFAULT,
            names: Sequence[str] | None = None, model: str = DEFAULT_MODEL,
            reference: int | None = None, warps: dict[int, np.ndarray] | None = None
            ) -> tuple[list[np.ndarray], list[str]]:
    """The exposures (RGB float32 [0, 1], one size, any order) aligned to the reference and/or
    deghosted, in the given order, and notes of what was done to each (for the user). Frames under
    ``MIN_SIDE`` pixels on a side (not photos) are returned as given. ``reference``: the index of the
    frame the others are aligned to (default: ``best_exposed``). ``warps``, if given, receives the
    warp of every frame aligned (reference pixels -> frame pixels; identity where it was left as is),
    for measuring a known motion (`mefgan evaluate --handheld`)."""
    frames = list(images)
    if not (align or deghost) or len(frames) < 2 or min(frames[0].shape[:2]) < MIN_SIDE:
        return frames, []
    names = list(names) if names is not None else [f"exposure {i + 1}" for i in range(len(frames))]
    ref = best_exposed(frames) if reference is None else reference
    notes, motions = [], {}
    if align:
        notes, motions = align_all(frames, ref, names, model)
        if warps is not None:
            warps.update({i: applied(m) for i, m in motions.items()})
    failed = {i for i, m in motions.items() if m.status == "failed"}
    if deghost:
        notes += remove_ghosts(frames, ref, names, failed)
    return frames, notes


def align_all(frames: list[np.ndarray], ref: int, names: Sequence[str], model: str) -> tuple[list[str], dict[int, Motion]]:
    """Align every frame to ``frames[ref]`` in place, nearest exposures first; notes, and each frame's motion."""
    from mefgan_tf.scenes import exposure_order

    order = exposure_order(frames)
    rank = order.index(ref)
    motions: dict[int, Motion] = {ref: Motion(np.eye(3), "still")}
    done, notes = [], []
    for i in sorted(order, key=lambda j: abs(order.index(j) - rank)):
        if i == ref:
            continue
        neighbour = order[order.index(i) + (1 if order.index(i) < rank else -1)]
        motions[i] = motion_to_reference(frames, i, ref, neighbour, motions[neighbour], model)
    for i, motion in sorted(motions.items()):
        if i == ref:
            continue
        if motion.status == "failed":
            notes.append(f"{names[i]}: could not align to {names[ref]} ({motion.reason}): kept as is")
        else:
            via = f" (through {names[int(motion.reason.split()[1])]})" if motion.reason.startswith("through") else ""
            done.append(f"{names[i]} {describe(motion, frames[i].shape)}{via}")
    for i, motion in motions.items():
        if motion.status == "moved":
            frames[i] = warp_frame(frames[i], frames[ref], motion.matrix)
    if done:
        notes.insert(0, f"aligned to {names[ref]}: " + "; ".join(done))
    return notes, motions


def motion_to_reference(frames: list[np.ndarray], i: int, ref: int, neighbour: int, known: Motion,
                        model: str) -> Motion:
    """The motion of ``frames[i]`` against ``frames[ref]``: found directly or, where the two share too
    little (the ends of a wide bracket), through ``frames[neighbour]`` (next towards the reference,
    whose motion ``known`` is found)."""
    direct = find_motion(frames[ref], frames[i], model)
    if (direct.status != "failed" and not direct.rough) or neighbour == ref or known.status == "failed":
        return direct
    step = find_motion(frames[neighbour], frames[i], model)
    if step.status == "failed" or (step.rough and direct.status != "failed"):
        return direct
    height, width = frames[i].shape[:2]
    matrix = applied(step) @ applied(known)  # onto the neighbour as it will be fused (a still one unwarped)
    if implausible(matrix, height, width):
        return direct
    status = "moved" if corner_motion(matrix, height, width) >= STILL_PX else "still"
    return Motion(matrix, status, step.correlation, f"through {neighbour}", step.spread, rough=step.rough or known.rough)


def applied(motion: Motion) -> np.ndarray:
    """The warp a frame gets from ``motion``: its matrix where it moved, none where it is still."""
    return motion.matrix if motion.status == "moved" else np.eye(3)


def describe(motion: Motion, shape: tuple[int, ...]) -> str:
    if motion.status == "still":
        return "already aligned"
    shift, turn = shift_and_turn(motion.matrix, *shape[:2])
    rough = f" (roughly: {motion.rough})" if motion.rough else ""
    return (f"moved by {corner_motion(motion.matrix, *shape[:2]):.1f} px at most (centre {shift:.1f} px), "
            f"turned {turn:.2f} deg{rough}")


def remove_ghosts(frames: list[np.ndarray], ref: int, names: Sequence[str], skip: set[int]) -> list[str]:
    """Deghost every frame but the reference and those in ``skip`` in place; notes of what changed."""
    notes = []
    for i in range(len(frames)):
        if i == ref or i in skip:
            continue
        frames[i], share = deghost_frame(frames[i], frames[ref])
        if share > 0:
            notes.append(f"{names[i]}: moving things in {100 * share:.1f}% of the frame taken from {names[ref]}")
    return notes


class PreparedFuser:
    """A fuser (``fusion.Fuser``) that aligns and/or deghosts the exposures first (``prepare``), for
    `mefgan serve --align`; its notes are dropped (a server has no one to tell), everything else is
    the wrapped fuser's."""

    def __init__(self, fuser, align: bool = True, deghost: bool = True) -> None:
        self.fuser, self.align, self.deghost = fuser, align, deghost

    def __call__(self, images: Sequence[np.ndarray], *args, **kwargs) -> np.ndarray:
        return self.fuser(prepare(images, self.align, self.deghost)[0], *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.fuser, name)
