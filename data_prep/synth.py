"""Synthetic under- and over-exposures of a well-exposed sRGB photo.

The photo is taken to linear light, scaled by 2^-EV (under) or 2^+EV (over), clipped at the
sensor's white level, given Poisson-Gaussian noise (shot noise with variance ``shot * signal``
plus read noise of standard deviation ``read``), clipped again, encoded back to sRGB and
quantised to 8 bits.

With ``camera=True`` the capture looks more like a real camera bracket: each pair gets its own
camera response curve (a gamma drawn from ``CAMERA_GAMMA`` blended with an S-shaped contrast
curve, instead of the one sRGB curve) and is JPEG-compressed at a quality drawn from
``CAMERA_JPEG_QUALITY``, after the same clipping and sensor noise.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

CAMERA_GAMMA = (1.8, 2.6)  # range of the response curves' gamma
CAMERA_CONTRAST = (0.0, 0.5)  # weight of the S-curve blended into them
CAMERA_JPEG_QUALITY = (75, 95)


@dataclass(frozen=True)
class ExposureModel:
    """How exposures are simulated: EV range (stops) and noise levels in linear light."""

    ev_range: tuple[float, float] = (1.0, 3.0)
    shot_noise: float = 0.0005
    read_noise: float = 0.001
    camera: bool = False  # random camera response curve and JPEG compression per pair


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB EOTF (IEC 61966-2-1): encoded [0, 1] to linear light [0, 1]."""
    x = np.asarray(x, np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Inverse of ``srgb_to_linear`` for linear values in [0, 1]."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def camera_response(gamma: float, contrast: float) -> Callable[[np.ndarray], np.ndarray]:
    """A monotonic response curve from linear [0, 1] to encoded [0, 1]: ``x^(1/gamma)`` blended
    with ``contrast`` of the smoothstep S-curve applied to it."""

    def respond(x: np.ndarray) -> np.ndarray:
        y = np.clip(np.asarray(x, np.float32), 0.0, 1.0) ** np.float32(1.0 / gamma)
        return ((1.0 - contrast) * y + contrast * y * y * (3.0 - 2.0 * y)).astype(np.float32)

    return respond


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (RGB uint8) after JPEG compression at ``quality``, as a camera writes it."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def expose(linear: np.ndarray, ev: float, model: ExposureModel, rng: np.random.Generator | None = None,
           respond: Callable[[np.ndarray], np.ndarray] = linear_to_srgb) -> np.ndarray:
    """One simulated capture of ``linear`` at ``ev`` stops, encoded by ``respond``: uint8.
    Without ``rng`` the capture is noiseless (the demo pairs of ``mefgan_tf.samples``)."""
    signal = np.clip(linear * np.float32(2.0**ev), 0.0, 1.0)
    if rng is None:
        return np.round(respond(signal) * 255.0).astype(np.uint8)
    std = np.sqrt(model.shot_noise * signal + model.read_noise**2)
    noisy = np.clip(signal + std * rng.standard_normal(signal.shape, dtype=np.float32), 0.0, 1.0)
    return np.round(respond(noisy) * 255.0).astype(np.uint8)


def exposure_pair(
    photo: np.ndarray, model: ExposureModel, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(over, under, (ev_over, ev_under)) of a uint8 sRGB photo; EVs drawn from ``model.ev_range``."""
    linear = srgb_to_linear(photo.astype(np.float32) / 255.0)
    low, high = model.ev_range
    ev_over, ev_under = rng.uniform(low, high, size=2)
    if not model.camera:
        over = expose(linear, float(ev_over), model, rng)
        under = expose(linear, -float(ev_under), model, rng)
        return over, under, (float(ev_over), float(ev_under))
    respond = camera_response(float(rng.uniform(*CAMERA_GAMMA)), float(rng.uniform(*CAMERA_CONTRAST)))
    quality = int(rng.integers(CAMERA_JPEG_QUALITY[0], CAMERA_JPEG_QUALITY[1] + 1))
    over = jpeg_round_trip(expose(linear, float(ev_over), model, rng, respond), quality)
    under = jpeg_round_trip(expose(linear, -float(ev_under), model, rng, respond), quality)
    return over, under, (float(ev_over), float(ev_under))


def camera_bracket(photo: np.ndarray, evs: Sequence[float], seed: int, model: ExposureModel = ExposureModel()) -> list[np.ndarray]:
    """A still bracket of a well-exposed photo (RGB float [0, 1]) as a camera shoots it: one random
    response curve and JPEG quality for the bracket, each frame exposed at its EV with its own sensor
    noise; RGB float32 [0, 1] frames, in the order of ``evs``. Aligned by construction: the answer for
    measuring what alignment does to a still bracket, and (moved) how precisely it recovers a motion."""
    rng = np.random.default_rng(seed)
    linear = srgb_to_linear(np.asarray(photo, np.float32))
    respond = camera_response(float(rng.uniform(*CAMERA_GAMMA)), float(rng.uniform(*CAMERA_CONTRAST)))
    quality = int(rng.integers(CAMERA_JPEG_QUALITY[0], CAMERA_JPEG_QUALITY[1] + 1))
    return [jpeg_round_trip(expose(linear, float(ev), model, rng, respond), quality).astype(np.float32) / 255.0
            for ev in evs]
