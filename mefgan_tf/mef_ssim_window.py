"""The constants of MEF-SSIM (Ma, Zeng & Wang, TIP 2015) shared by the metric and the training loss.

NumPy only, so that ``losses`` (imported by the JAX trainer) can use them without OpenCV.
"""
from __future__ import annotations

import numpy as np

# MATLAB rgb2gray: first row of the inverse NTSC (YIQ) matrix.
RGB2GRAY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
EPS = np.finfo(np.float64).eps  # MATLAB's eps, used as the published code uses it
WINDOW = 11  # MEF-SSIM and SSIM window size
SIGMA = 1.5  # their Gaussian's standard deviation
MS_WEIGHTS = np.array([0.0448, 0.2856, 0.3001]) / (0.0448 + 0.2856 + 0.3001)  # mef_ms_ssim defaults
K2 = 0.03  # C2 = (K2 * 255)^2, the only stabilising constant MEF-SSIM uses
MAX_P = 10.0  # cap of the structure weights' exponent p = tan(pi/2 * R)
STRENGTH_FLOOR = 0.001  # added to each source's signal strength ||x_k - mu_k||


def gaussian_kernel(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)`` (sums to 1)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def scales_that_fit(size: int, levels: int = len(MS_WEIGHTS)) -> int:
    """How many of multi-scale MEF-SSIM's scales (halving each time) an image of ``size`` pixels
    (its shorter side) holds with a full window at each."""
    return sum(1 for level in range(levels) if size / 2**level >= WINDOW)
