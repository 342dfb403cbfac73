"""Reference images for exposure brackets, the way SICE made its labels.

SICE's reference for each scene is the best of 13 fusion and HDR methods' outputs on the whole
bracket. ``best_reference`` does the same automatically: it makes several candidates from all the
frames (Mertens exposure fusion with OpenCV's weights, with a well-exposedness weight added, and
with the contrast weight doubled; a Debevec radiance map, from exposure
times estimated from the frames, with Reinhard and Drago tone mapping) and keeps the one
with the highest MEF-SSIM against the whole bracket. ``mertens_reference`` is the plain default.
Frames are RGB uint8 of one size, in any order.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mefgan_tf import baselines
from mefgan_tf.data_prep.synth import srgb_to_linear
from mefgan_tf.images import shrink, to_uint8
from mefgan_tf.metrics import MefReference, rgb2gray
from mefgan_tf.scenes import ADJACENT, ALL, EXTREME, PAIRINGS, SAME, exposure_order

# Frames' pixels trusted for exposure ratios: neither in the noise floor nor near clipping.
WELL_EXPOSED = (20, 235)
MIN_RATIO_PIXELS = 500
DEFAULT_STEP = 2.0  # one stop between frames when too few pixels tell the ratio
SCORE_SIDE = 600  # candidates are scored on frames shrunk to this longest side


@dataclass(frozen=True)
class Reference:
    """A reference image (RGB uint8), the candidate it came from and its MEF-SSIM against the bracket."""

    image: np.ndarray
    method: str
    score: float


def by_exposure(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The frames from darkest to brightest (``scenes.exposure_order``)."""
    return [frames[i] for i in exposure_order(frames)]


def _bgr(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(f[..., ::-1]) for f in frames]


def mertens_uint8(frames: Sequence[np.ndarray], contrast: float = 1.0, saturation: float = 1.0,
                  exposure: float = 0.0) -> np.ndarray:
    """``baselines.mertens`` of RGB uint8 frames with the given weight exponents, as RGB uint8, on one
    thread: OpenCV's threaded Mertens is not reproducible to the last level, and references must be."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return to_uint8(baselines.mertens(frames, contrast, saturation, exposure))
    finally:
        cv2.setNumThreads(threads)


def exposure_ratio(darker: np.ndarray, brighter: np.ndarray) -> float:
    """How many times more light ``brighter`` caught: median ratio of linear values over pixels
    well exposed in both (``DEFAULT_STEP`` when too few are)."""
    lo, hi = WELL_EXPOSED
    mask = (darker >= lo) & (darker <= hi) & (brighter >= lo) & (brighter <= hi)
    if int(mask.sum()) < MIN_RATIO_PIXELS:
        return DEFAULT_STEP
    ratio = srgb_to_linear(brighter[mask] / 255.0) / np.maximum(srgb_to_linear(darker[mask] / 255.0), 1e-6)
    return float(max(np.median(ratio), 1.05))


def exposure_times(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Relative exposure times of frames ordered darkest first (the darkest is 1)."""
    steps = [exposure_ratio(a, b) for a, b in zip(frames[:-1], frames[1:])]
    return np.cumprod([1.0, *steps]).astype(np.float32)


def radiance_map(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Debevec's HDR radiance map (BGR float32) with the camera response calibrated from the frames
    and estimated exposure times. (Robertson's was tried too: ten times slower and never chosen.)"""
    times = exposure_times(frames)
    bgr = _bgr(frames)
    response = cv2.createCalibrateDebevec().process(bgr, times)
    return cv2.createMergeDebevec().process(bgr, times, response)


def tone_mapped(frames: Sequence[np.ndarray], tonemap: str) -> np.ndarray:
    """Debevec's radiance map tone-mapped by Reinhard or Drago (gamma 2.2) to RGB uint8."""
    hdr = radiance_map(frames)
    hdr = hdr / max(float(np.percentile(hdr, 99.5)), 1e-6)
    mapper = cv2.createTonemapReinhard(2.2) if tonemap == "reinhard" else cv2.createTonemapDrago(2.2)
    return to_uint8(mapper.process(np.ascontiguousarray(hdr, np.float32))[..., ::-1])


CANDIDATES: dict[str, Callable[[Sequence[np.ndarray]], np.ndarray]] = {
    "mertens": mertens_uint8,
    "mertens-exposure": lambda f: mertens_uint8(f, exposure=1.0),
    "mertens-contrast": lambda f: mertens_uint8(f, contrast=2.0),
    "debevec-reinhard": lambda f: tone_mapped(f, "reinhard"),
    "debevec-drago": lambda f: tone_mapped(f, "drago"),
}


class BracketScorer:
    """MEF-SSIM (single scale) of candidate references against every frame of a bracket."""

    def __init__(self, frames: Sequence[np.ndarray]):
        self.reference = MefReference(np.stack([rgb2gray(shrink(f, SCORE_SIDE)) for f in frames]))

    def __call__(self, candidate: np.ndarray) -> float:
        return float(np.mean(self.reference.quality_map(rgb2gray(shrink(candidate, SCORE_SIDE)))))


def mertens_reference(frames: Sequence[np.ndarray]) -> Reference:
    """The Mertens fusion of the whole bracket (unscored)."""
    return Reference(mertens_uint8(frames), "mertens", float("nan"))


def best_reference(frames: Sequence[np.ndarray]) -> Reference:
    """The candidate with the highest MEF-SSIM against the whole bracket; failing candidates drop out."""
    ordered = by_exposure(frames)
    score = BracketScorer(ordered)
    best: Reference | None = None
    for name, make in CANDIDATES.items():
        try:
            image = make(ordered)
        except cv2.error:
            continue
        candidate = Reference(image, name, score(image))
        if best is None or candidate.score > best.score:
            best = candidate
    assert best is not None  # Mertens never fails on equally sized frames
    return best


REFERENCES: dict[str, Callable[[Sequence[np.ndarray]], Reference]] = {
    "mertens": mertens_reference,
    "best": best_reference,
}
PAIR = "pair"  # the reference made from each training pair alone, not from the whole bracket
MIX = "mix"  # the spanning pair twice: with the whole bracket's Mertens fusion and with its own
SAME_REFERENCE = "same"  # a frame paired with itself: the frame is its own reference
REFERENCE_CHOICES = (*REFERENCES, PAIR, MIX)


def pair_reference(over: np.ndarray, under: np.ndarray) -> Reference:
    """The Mertens fusion of the two frames the network gets (unscored). MEF-SSIM and Q^AB/F score a
    fusion against exactly these two frames, and whole-bracket references score far lower there
    (0.91 against 0.98 on held-out real scenes: see the model card)."""
    return Reference(mertens_uint8([under, over]), PAIR, float("nan"))


def pair_references(
    frames: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]], name: str,
    spanning: Collection[tuple[int, int]] | None = None,
) -> list[tuple[tuple[int, int], Reference]]:
    """Each (over, under) pair of ``frames`` with its reference.

    A frame paired with itself has that frame as its reference: a fusion of x with x is x. The
    whole-bracket references (``REFERENCES[name]``, made once and shared) are given to the
    ``spanning`` pairs only (default: every pair of two frames), the pairs that span (nearly) the
    whole bracket, as SICE's labels do; every other pair gets its own fusion (``pair_reference``),
    as all pairs do with ``PAIR``. With ``MIX`` the spanning pairs are cut twice, first with the
    whole bracket's Mertens fusion, then with their own (the data of the shipped generator's later
    stages: either alone trained a worse model)."""
    whole_name = "mertens" if name == MIX else name
    wide = [p for p in pairs if p[0] != p[1] and (spanning is None or p in spanning)] if name != PAIR else []
    whole = REFERENCES[whole_name](frames) if wide else None
    found = [(p, whole) for p in wide] if name == MIX else []
    for over, under in pairs:
        if over == under:
            found.append(((over, under), Reference(frames[over], SAME_REFERENCE, float("nan"))))
        elif (over, under) in wide and name != MIX:
            found.append(((over, under), whole))
        else:
            found.append(((over, under), pair_reference(frames[over], frames[under])))
    return found




def ordered_pairs(count: int, pairing: str) -> list[tuple[int, int]]:
    """(over, under) ranks in a bracket of ``count`` frames ranked darkest (0) to brightest: the
    spanning pair (``EXTREME``), each frame with the next brighter one (``ADJACENT``), each frame
    with itself (``SAME``), or every pair of frames, itself included (``ALL``)."""
    if pairing == EXTREME:
        return [(count - 1, 0)]
    if pairing == ADJACENT:
        return [(i + 1, i) for i in range(count - 1)]
    if pairing == SAME:
        return [(i, i) for i in range(count)]
    if pairing == ALL:
        return [(j, i) for i in range(count) for j in range(count - 1, i - 1, -1)]
    raise ValueError(f"unknown pairing {pairing!r}; expected one of {', '.join(PAIRINGS)}")


def exposure_pairs(frames: Sequence[np.ndarray], pairings: Sequence[str] = (EXTREME,),
                   extra_min_ev: float | None = None) -> list[tuple[int, int]]:
    """(over, under) indices into ``frames`` of every pair that one of ``pairings`` names (each once,
    in the order named), and with ``extra_min_ev`` also (second brightest, darkest) and (brightest,
    second darkest) where their estimated exposure gap is at least that many stops."""
    order = exposure_order(frames)
    pairs: list[tuple[int, int]] = []
    for pairing in pairings:
        pairs += [(order[o], order[u]) for o, u in ordered_pairs(len(order), pairing) if (order[o], order[u]) not in pairs]
    if extra_min_ev is None or len(frames) < 3:
        return pairs
    times = exposure_times([frames[i] for i in order])
    stops = np.log2(times)
    for bright, dark in ((len(order) - 2, 0), (len(order) - 1, 1)):
        pair = (order[bright], order[dark])
        if stops[bright] - stops[dark] >= extra_min_ev and pair not in pairs:
            pairs.append(pair)
    return pairs
