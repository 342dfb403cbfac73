"""Synthetic under- and over-exposures of a well-exposed sRGB photo.

The photo is taken to linear light, scaled by 2^-EV (under) or 2^+EV (over), clipped at the
sensor's white level, given Poisson-Gaussian noise (shot noise with variance ``shot * signal``
plus read noise of standard deviation ``read``), clipped again, encoded back to sRGB and
quantised to 8 bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ExposureModel:
    """How exposures are simulated: EV range (stops) and noise levels in linear light."""

    ev_range: tuple[float, float] = (1.0, 3.0)
    shot_noise: float = 0.0005
    read_noise: float = 0.001


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB EOTF (IEC 61966-2-1): encoded [0, 1] to linear light [0, 1]."""
    x = np.asarray(x, np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Inverse of ``srgb_to_linear`` for linear values in [0, 1]."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def expose(linear: np.ndarray, ev: float, model: ExposureModel, rng: np.random.Generator) -> np.ndarray:
    """One simulated capture of ``linear`` at ``ev`` stops: uint8 sRGB."""
    signal = np.clip(linear * np.float32(2.0**ev), 0.0, 1.0)
    std = np.sqrt(model.shot_noise * signal + model.read_noise**2)
    noisy = signal + std * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.round(linear_to_srgb(noisy) * 255.0).astype(np.uint8)


def exposure_pair(
    photo: np.ndarray, model: ExposureModel, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(over, under, (ev_over, ev_under)) of a uint8 sRGB photo; EVs drawn from ``model.ev_range``."""
    linear = srgb_to_linear(photo.astype(np.float32) / 255.0)
    low, high = model.ev_range
    ev_over, ev_under = rng.uniform(low, high, size=2)
    over = expose(linear, float(ev_over), model, rng)
    under = expose(linear, -float(ev_under), model, rng)
    return over, under, (float(ev_over), float(ev_under))
