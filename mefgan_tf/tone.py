"""Global tone of a fusion: its measures (black level, saturation, mean level, contrast) and the tone
guard that keeps the network's fusion from a veil.

The network decides a fusion's coarse tone. Where one exposure is nearly white it can lift the blacks
(a grey veil), fade the colours or darken the scene well past what the exposures hold. The guard
compares a preview of the finished fusion (the network's tone with the exposures' detail) with the
classical fusion of the same exposures (OpenCV's Mertens, at ``PREVIEW_SIZE``) and, only where the
fusion is worse by more than a margin, bends its tone with one global curve: black point, then mean
level (a gamma), then colour (chroma about the luma). A fusion within the margins is left unchanged.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mefgan_tf.baselines import mertens
from mefgan_tf.resolution import downscale, work_dims

PREVIEW_SIZE = 512  # long side of the previews the guard measures (the default working size)
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
    lifted by ``black``, mean saturation lower by ``saturation``, mean level darker by ``darker`` with
    no more contrast. Set inside the visible limits (10, 5 and 25 levels), for the previews'
    measuring error."""

    black: float = 4.0
    saturation: float = 2.0
    darker: float = 20.0


MARGINS = ToneMargins()


@dataclass(frozen=True)
class ToneCurve:
    """One global curve: the black point ``black`` moves to ``black_to`` (white stays white), then
    ``gamma``, then the chroma about the luma times ``chroma``. The identity by default."""

    black: float = 0.0
    black_to: float = 0.0
    gamma: float = 1.0
    chroma: float = 1.0

    @property
    def identity(self) -> bool:
        return self == ToneCurve()

    def black_matrix(self) -> np.ndarray:
        """The black point's move as a 3 x 4 affine map of (R, G, B, 1)."""
        gain = (1.0 - self.black_to) / (1.0 - self.black)
        return np.hstack([np.eye(3) * gain, np.full((3, 1), self.black_to - self.black * gain)])

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
    """The curve that brings ``fusion``'s tone within ``margins`` of ``reference``'s (two previews of
    one size): its black point down to the reference's plus the margin; then, if it is darker by more
    than the margin with no more contrast, a gamma that lifts its mean to that bound (at most
    ``MAX_LIFT``: a fusion much darker than Mertens's comes only part of the way); then, if its
    colours are paler by more than the margin, a chroma gain up to that bound. Identity if none applies."""
    ours, ref = tone_stats(fusion), tone_stats(reference)
    curve = ToneCurve()
    if ours.black > ref.black + margins.black:
        curve = ToneCurve(ours.black / 255.0, (ref.black + margins.black) / 255.0)
        ours = tone_stats(curve(fusion))
    if ours.mean < ref.mean - margins.darker and ours.contrast <= ref.contrast:
        def brighter(lift: float) -> float:
            return tone_stats(_with(curve, gamma=1.0 - lift)(fusion)).mean
        curve = _with(curve, gamma=1.0 - _bisect(brighter, 0.0, MAX_LIFT, ref.mean - margins.darker))
        ours = tone_stats(curve(fusion))
    if ours.saturation < ref.saturation - margins.saturation:
        def richer(gain: float) -> float:
            return tone_stats(_with(curve, chroma=gain)(fusion)).saturation
        curve = _with(curve, chroma=_bisect(richer, 1.0, 4.0, ref.saturation - margins.saturation))
    return curve


def _with(curve: ToneCurve, **changes: float) -> ToneCurve:
    return ToneCurve(**{**curve.__dict__, **changes})


def preview(image: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """``image`` area-downscaled to a long side of at most ``size`` (as the working copies are)."""
    work = work_dims(*image.shape[:2], size)
    return np.asarray(image, np.float32) if work is None else downscale(image, work)


def tone_guard(fusion: np.ndarray, images: Sequence[np.ndarray], margins: ToneMargins = MARGINS,
               size: int = PREVIEW_SIZE) -> ToneCurve:
    """The guard's curve for ``fusion`` (the finished fusion, any size) of ``images`` (the exposures,
    the same size): measured on previews, against OpenCV's Mertens fusion of the exposures' previews."""
    return guard_curve(preview(fusion, size), mertens([preview(image, size) for image in images]), margins)


LIMITS = ToneMargins(black=10.0, saturation=5.0, darker=25.0)  # what a viewer sees: the report's limits
TONE_COLUMNS = {"BLACK": "black", "SATURATION": "saturation", "LEVEL": "mean", "CONTRAST": "contrast"}


def tone_columns(image: np.ndarray) -> dict[str, float]:
    """``tone_stats`` of ``image`` under the report's column names (``TONE_COLUMNS``)."""
    stats = tone_stats(image)
    return {column: getattr(stats, field) for column, field in TONE_COLUMNS.items()}


def tone_problems(ours: dict[str, float], reference: dict[str, float], limits: ToneMargins = LIMITS) -> list[str]:
    """What is visibly wrong with a fusion's tone (``tone_columns``) against a reference's: "veil"
    (blacks lifted by more than ``limits.black``), "paler" (mean saturation lower by more than
    ``limits.saturation``), "darker" (mean level lower by more than ``limits.darker`` with no more contrast)."""
    found = []
    if ours["BLACK"] - reference["BLACK"] > limits.black:
        found.append("veil")
    if reference["SATURATION"] - ours["SATURATION"] > limits.saturation:
        found.append("paler")
    if reference["LEVEL"] - ours["LEVEL"] > limits.darker and ours["CONTRAST"] <= reference["CONTRAST"]:
        found.append("darker")
    return found
