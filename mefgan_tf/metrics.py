"""Fusion quality metrics: the MEF-GAN paper's and those of the MEFB benchmark.

Every metric takes uint8 RGB arrays (H, W, 3) (a 2-D grey array works too) and returns a float.
The definitions follow the MATLAB code of MEFB (github.com/xingchenzhang/MEFB, ``metrics/``) as it
is run by its ``compute_metrics.m`` on colour images read with ``imread``:

* Grey conversion is MATLAB ``rgb2gray`` on uint8: 0.298936*R + 0.587043*G + 0.114021*B, rounded
  half up back to uint8 (:func:`rgb2gray`). MEF-SSIM and the paper's MSSIM use it.
* SD, EN, SF, AG and Q^AB/F are computed on each colour channel separately and averaged: MEFB only
  converts to grey when the *sources* are grey. Pass 2-D grey arrays to get single-channel values
  (``sd(rgb2gray(f))`` is the paper's "SD of the grey fused image").
* MEFB's "MEF_SSIM" column is the multi-scale form (:func:`mef_ms_ssim`). MEF-SSIM follows Kede
  Ma's published ``mef_ssim.m``: patch statistics under a uniform 11x11 window, the structure
  weights' exponent p = tan(pi/2 * R) from the sources' structural consistency R (not a fixed
  p), the comparison under a Gaussian 11x11 window (sigma 1.5) with C2 = (0.03*255)^2 only.

All filtering is vectorised (running sums, separable OpenCV filters): every metric of a
2000x1328 scene takes about 3 s, and :class:`Sources` reuses the sources' share for further
fused images (about 2 s each).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from mefgan_tf.mef_ssim_window import (  # noqa: F401  (RGB2GRAY_WEIGHTS, SIGMA: part of this module's API)
    EPS,
    K2,
    MAX_P,
    MS_WEIGHTS,
    RGB2GRAY_WEIGHTS,
    SIGMA,
    STRENGTH_FLOOR,
    WINDOW,
    gaussian_kernel,
)


# ---------------------------------------------------------------------------------------- helpers
def rgb2gray(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of a uint8 RGB image: uint8 (H, W), rounded half up; grey passes through."""
    if image.ndim == 2:
        return image
    grey = image[..., :3].astype(np.float64) @ RGB2GRAY_WEIGHTS
    return np.clip(np.floor(grey + 0.5), 0, 255).astype(np.uint8)


def _channels(image: np.ndarray) -> list[np.ndarray]:
    """The 2-D planes MEFB scores one by one: the image itself if grey, else R, G and B."""
    if image.ndim == 2:
        return [image]
    return [image[..., c] for c in range(3)]


def _per_channel(image: np.ndarray, fn: Callable[[np.ndarray], float]) -> float:
    return float(np.mean([fn(c) for c in _channels(image)]))


def _gauss_valid(x: np.ndarray) -> np.ndarray:
    """Gaussian-weighted mean over every full 11x11 window (MATLAB ``filter2(..., 'valid')``)."""
    g = gaussian_kernel()
    out = cv2.sepFilter2D(np.ascontiguousarray(x, np.float64), cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
    b = WINDOW // 2
    return out[b:-b, b:-b]


def _box_sum_valid(x: np.ndarray, n: int = WINDOW) -> np.ndarray:
    """Sum over every full n x n window (running sums of float64).

    Exact for the integer (and, after 2x2 averaging, dyadic) grey levels MEF-SSIM sees, so local
    variances of flat patches come out exactly zero, as the published code intends.
    """
    out = cv2.boxFilter(np.ascontiguousarray(x, np.float64), cv2.CV_64F, (n, n), normalize=False, borderType=cv2.BORDER_REFLECT)
    b = n // 2
    return out[b:-b, b:-b]


def _as_grey_double(image: np.ndarray) -> np.ndarray:
    return rgb2gray(image).astype(np.float64)


def _check_same_size(*images: np.ndarray) -> None:
    shapes = {im.shape[:2] for im in images}
    if len(shapes) != 1:
        raise ValueError(f"images differ in size: {sorted(shapes)}")


# ---------------------------------------------------------------------------------------- MEF-SSIM
class MefReference:
    """The sources' side of MEF-SSIM at one scale (Ma, Zeng & Wang, TIP 2015, ``mef_ssim.m``).

    ``sources`` (K, H, W) are grey levels in [0, 255]. For every 11x11 patch (``valid`` positions
    only) the mean, signal strength ||x_k - mu_k|| (+0.001) and structure of each source are taken
    with a *uniform* window; the desired strength is the sources' maximum; the desired structure is
    the average of the source structures weighted by strength^p, where p = tan(pi/2 * R) (capped
    at 10) grows with the structural consistency R of the sources. :meth:`quality_map` compares
    that desired patch with the fused patch by SSIM's structure term under the *Gaussian* window
    (sigma 1.5), with C = (k*255)^2; luminance is not compared. Patch sums reduce to filtered
    products of the images, so nothing loops over pixels, and the sources' statistics are kept
    for scoring several fused images.
    """

    def __init__(self, sources: np.ndarray, k: float = K2):
        self.sources = np.asarray(sources, np.float64)
        self.c = (k * 255.0) ** 2
        seq, n_src, area = self.sources, self.sources.shape[0], float(WINDOW * WINDOW)
        sums = [_box_sum_valid(x) for x in seq]
        pairs = [(a, b) for a in range(n_src) for b in range(a, n_src)]
        twice = {(a, b): 1.0 if a == b else 2.0 for a, b in pairs}  # symmetric double sums over (a, b)
        # area * <d_a, d_b>, d = patch - patch mean: exact for integer/dyadic grey levels
        cross = {(a, b): area * _box_sum_valid(seq[a] * seq[b]) - sums[a] * sums[b] for a, b in pairs}
        norm2 = [np.maximum(cross[a, a], 0.0) / area for a in range(n_src)]  # ||d_a||^2
        strength = [np.sqrt(v) + STRENGTH_FLOOR for v in norm2]
        numerator = np.sqrt(np.maximum(sum(twice[ab] * cross[ab] for ab in pairs), 0.0) / area)  # ||sum_a d_a||
        denominator = sum(np.sqrt(v) for v in norm2)
        consistency = (numerator + EPS) / (denominator + EPS)
        consistency = np.where(consistency > 1, 1 - EPS, np.where(consistency < 0, EPS, consistency))
        p = np.minimum(np.tan(np.pi / 2 * consistency), MAX_P)
        weights = [(s / WINDOW) ** p + EPS for s in strength]
        total = sum(weights)
        # desired patch r = sum_a coef_a * d_a; a flat source patch (d_a = 0 exactly) adds nothing
        coef = [np.where(norm2[a] > 0, weights[a] / total / strength[a], 0.0) for a in range(n_src)]
        r_norm2 = np.maximum(sum(twice[a, b] * coef[a] * coef[b] * cross[a, b] for a, b in pairs) / area, 0.0)
        safe = np.where(r_norm2 > 0, r_norm2, 1.0)
        scale = np.where(r_norm2 > 0, np.maximum.reduce(strength) / np.sqrt(safe), 1.0)
        self.coef = [c * scale for c in coef]
        self.means = [s / area for s in sums]
        g_src = [_gauss_valid(x) for x in seq]
        self.mu_r = sum(c * (g - m) for c, g, m in zip(self.coef, g_src, self.means))
        r_sq = 0.0  # Gaussian-weighted mean of r^2
        for a, b in pairs:
            ma, mb = self.means[a], self.means[b]
            moment = _gauss_valid(seq[a] * seq[b]) - mb * g_src[a] - ma * g_src[b] + ma * mb
            r_sq = r_sq + twice[a, b] * self.coef[a] * self.coef[b] * moment
        self.var_r = r_sq - self.mu_r**2

    def quality_map(self, fused: np.ndarray) -> np.ndarray:
        """MEF-SSIM's quality map of ``fused`` (H, W) grey in [0, 255], size (H-10, W-10)."""
        f = np.asarray(fused, np.float64)
        g_f = _gauss_valid(f)
        r_f = sum(c * (_gauss_valid(x * f) - m * g_f) for c, x, m in zip(self.coef, self.sources, self.means))
        var_f = _gauss_valid(f * f) - g_f**2
        cov_rf = r_f - self.mu_r * g_f
        return (2 * cov_rf + self.c) / (self.var_r + var_f + self.c)


def mef_ssim_map(sources: np.ndarray, fused: np.ndarray, k: float = K2) -> np.ndarray:
    """MEF-SSIM quality map of grey ``fused`` (H, W) against grey ``sources`` (K, H, W); see
    :class:`MefReference`."""
    return MefReference(sources, k).quality_map(fused)


def _downsample(x: np.ndarray) -> np.ndarray:
    """MATLAB ``imfilter(x, ones(2)/4, 'symmetric', 'same')`` then every other row and column."""
    p = np.pad(x, ((0, 1), (0, 1)), mode="symmetric")
    mean = (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]) / 4.0
    return mean[::2, ::2]


# ---------------------------------------------------------------------------------------- SSIM
def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of Wang et al. 2004 on two grey images in [0, 255]: Gaussian 11x11, sigma 1.5,
    K1 = 0.01, K2 = 0.03, L = 255, population statistics, mean over the ``valid`` windows (no
    automatic downsampling). Equals scikit-image's ``structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255)``.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    _check_same_size(x, y)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _gauss_valid(x), _gauss_valid(y)
    vx = _gauss_valid(x * x) - mx**2
    vy = _gauss_valid(y * y) - my**2
    cxy = _gauss_valid(x * y) - mx * my
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(np.mean(smap))


# ---------------------------------------------------------------------------------------- Q^AB/F
_QG, _KG, _DG = 0.9994, -15.0, 0.5  # edge-strength sigmoid (Gamma_g, kappa_g, sigma_g)
_QA, _KA, _DA = 0.9879, -22.0, 0.8  # orientation sigmoid (Gamma_a, kappa_a, sigma_a)


def _conv_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``conv2(x, kernel, 'same')``: true convolution, zeros outside the image."""
    return cv2.filter2D(x, cv2.CV_64F, np.ascontiguousarray(kernel[::-1, ::-1]), borderType=cv2.BORDER_CONSTANT)


def _edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel edge strength and orientation atan(Sy/Sx) (pi/2 where Sx = 0)."""
    sx = _conv_same(x, np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]))
    sy = _conv_same(x, np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]]))
    strength = np.sqrt(sx**2 + sy**2)
    ratio = np.divide(sy, sx, out=np.zeros_like(sy), where=sx != 0)
    return strength, np.where(sx == 0, np.pi / 2, np.arctan(ratio))


def _edge_preservation(g_src: np.ndarray, a_src: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    """Q^XF per pixel: sigmoid of relative strength times sigmoid of relative orientation.

    As in MEFB's ``metricsQabf``, where the two strengths are equal the "relative strength" is the
    strength itself (not 1), which saturates the sigmoid to Gamma_g for any visible edge.
    """
    rel = np.where(
        g_src > g_f,
        np.divide(g_f, g_src, out=np.zeros_like(g_f), where=g_src > g_f),
        np.where(g_src == g_f, g_f, np.divide(g_src, g_f, out=np.zeros_like(g_f), where=g_src < g_f)),
    )
    orient = 1 - np.abs(a_src - a_f) / (np.pi / 2)
    q_g = _QG / (1 + np.exp(_KG * (rel - _DG)))
    q_a = _QA / (1 + np.exp(_KA * (orient - _DA)))
    return q_g * q_a


# ---------------------------------------------------------------------------------------- no reference
def mean_level(fused: np.ndarray) -> float:
    """Mean grey level (0-255) of all pixels and channels: how bright the fused image is."""
    return float(np.mean(np.asarray(fused, np.float64)))


def sd(fused: np.ndarray) -> float:
    """Standard deviation, population form sqrt(sum((x - mean)^2) / (M*N)), per channel, averaged."""
    return _per_channel(fused, lambda x: float(np.std(x.astype(np.float64))))


def _entropy_plane(x: np.ndarray) -> float:
    counts = np.bincount(np.floor(x).astype(np.int64).ravel(), minlength=256)[:256]
    prob = counts[counts > 0] / x.size
    return float(-np.sum(prob * np.log2(prob)))


def entropy(fused: np.ndarray) -> float:
    """Shannon entropy (bits) of the 256-bin histogram of grey levels, per channel, averaged."""
    return _per_channel(fused, _entropy_plane)


def _sf_plane(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    rf = np.sum(np.diff(x, axis=1) ** 2) / x.size
    cf = np.sum(np.diff(x, axis=0) ** 2) / x.size
    return float(np.sqrt(rf + cf))


def spatial_frequency(fused: np.ndarray) -> float:
    """sqrt(RF^2 + CF^2): RF^2, CF^2 = sums of squared horizontal, vertical neighbour differences
    divided by M*N (MEFB's normalisation), per channel, averaged."""
    return _per_channel(fused, _sf_plane)


def _ag_plane(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    dy, dx = np.gradient(x)  # MATLAB gradient: central differences, one-sided at the borders
    rows, cols = x.shape
    return float(np.sum(np.sqrt((dx**2 + dy**2) / 2)) / ((rows - 1) * (cols - 1)))


def average_gradient(fused: np.ndarray) -> float:
    """Average gradient: sum of sqrt((dx^2 + dy^2) / 2) over all M*N pixels (MATLAB ``gradient``)
    divided by (M-1)(N-1), as MEFB does; per channel, averaged."""
    return _per_channel(fused, _ag_plane)


# ---------------------------------------------------------------------------------------- with ground truth
def _i_s(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's intensity I = (R+G+B)/sqrt(3) and saturation S = sqrt(V1^2 + V2^2) on 0-255."""
    x = image.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v1 = (r + g - 2 * b) / math.sqrt(6)
    v2 = (r - g) / math.sqrt(2)
    return (r + g + b) / math.sqrt(3), np.sqrt(v1**2 + v2**2)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(256.0**2 / mse)


def _cc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 0 else math.nan


def _with_gt(fused: np.ndarray, gt: np.ndarray, channel: int, fn: Callable) -> float:
    _check_same_size(fused, gt)
    return fn(_i_s(fused)[channel], _i_s(gt)[channel])


def psnr_i(fused: np.ndarray, gt: np.ndarray) -> float:
    """PSNR of the I channel, 10 log10(r^2 / MSE) with r = 256 (the paper's peak); inf if equal."""
    return _with_gt(fused, gt, 0, _psnr)


def psnr_s(fused: np.ndarray, gt: np.ndarray) -> float:
    """PSNR of the S channel, r = 256."""
    return _with_gt(fused, gt, 1, _psnr)


def cc_i(fused: np.ndarray, gt: np.ndarray) -> float:
    """Pearson correlation of the I channels; NaN if either is constant."""
    return _with_gt(fused, gt, 0, _cc)


def cc_s(fused: np.ndarray, gt: np.ndarray) -> float:
    """Pearson correlation of the S channels; NaN if either is constant."""
    return _with_gt(fused, gt, 1, _cc)


PSNR_CAP = 100.0  # dB: what ``psnr_rgb`` gives identical images


def psnr_rgb(fused: np.ndarray, gt: np.ndarray) -> float:
    """PSNR of the RGB values (0-255, peak 255) against ``gt``, at most ``PSNR_CAP`` (equal images),
    so that averages over scenes stay finite. How close a fusion of a photo with itself comes back."""
    _check_same_size(fused, gt)
    mse = float(np.mean((fused.astype(np.float64) - gt.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255.0**2 / mse))


def gt_scores(fused: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """PSNR_I, PSNR_S, CC_I, CC_S and PSNR at once (the I and S channels are computed once)."""
    _check_same_size(fused, gt)
    (fi, fs), (gi, gs) = _i_s(fused), _i_s(gt)
    return {"PSNR_I": _psnr(fi, gi), "PSNR_S": _psnr(fs, gs), "CC_I": _cc(fi, gi), "CC_S": _cc(fs, gs),
            "PSNR": psnr_rgb(fused, gt)}


# ---------------------------------------------------------------------------------------- sources
class Sources:
    """An over/under pair prepared for scoring fused images against it. With ``frames`` (every exposure
    of a bracket), MEF-SSIM scores against all of them; the pair metrics (Q^AB/F, MSSIM) against the
    pair, which should then be the darkest and the brightest.

    The sources' side of MEF-SSIM (every scale) and of Q^AB/F is computed once, on first use, and
    kept: scoring several methods on one scene costs little more than scoring one.
    """

    def __init__(self, over: np.ndarray, under: np.ndarray, frames: Sequence[np.ndarray] | None = None):
        _check_same_size(over, under, *(frames or ()))
        self.over, self.under = over, under
        self.shape = over.shape[:2]
        self.grey = np.stack([_as_grey_double(over), _as_grey_double(under)])
        self.mef_sources = np.stack([_as_grey_double(f) for f in frames]) if frames else self.grey
        self._mef: list[MefReference] = []
        self._edges: list[tuple[np.ndarray, ...]] = []

    def _check(self, fused: np.ndarray) -> None:
        if fused.shape[:2] != self.shape:
            raise ValueError(f"fused image {fused.shape[:2]} differs in size from the sources {self.shape}")

    def _mef_reference(self, level: int) -> MefReference:
        while len(self._mef) <= level:
            seq = self._mef[-1].sources if self._mef else self.mef_sources
            self._mef.append(MefReference(np.stack([_downsample(x) for x in seq]) if self._mef else seq))
        return self._mef[level]

    def mef_ms_ssim_scales(self, fused: np.ndarray, levels: int = len(MS_WEIGHTS)) -> list[float]:
        """Mean MEF-SSIM at each scale of ``mef_ms_ssim.m`` (2x2 mean and decimation between)."""
        self._check(fused)
        f = _as_grey_double(fused)
        scores = []
        for level in range(levels):
            f = _downsample(f) if level else f
            scores.append(float(np.mean(self._mef_reference(level).quality_map(f))))
        return scores

    def mef_ssim(self, fused: np.ndarray) -> float:
        """Single-scale MEF-SSIM (``mef_ssim.m``, K = 0.03, Gaussian 11x11 sigma 1.5); 1 is best."""
        if min(self.shape) < WINDOW:
            return math.nan
        return self.mef_ms_ssim_scales(fused, 1)[0]

    def mef_ms_ssim(self, fused: np.ndarray) -> float:
        """Multi-scale MEF-SSIM, MEFB's "MEF_SSIM": prod(Q_l ** w_l), w = [0.0448 0.2856 0.3001]/sum.

        NaN when the image is too small for 3 scales (min side / 4 < 11; MATLAB gives -Inf).
        """
        if not multi_scale_fits(self.shape):
            return math.nan
        return combine_scales(self.mef_ms_ssim_scales(fused))

    def mssim(self, fused: np.ndarray) -> float:
        """The paper's MSSIM(A, B, F) = (SSIM(A, F) + SSIM(B, F)) / 2 on ``rgb2gray`` images."""
        self._check(fused)
        f = _as_grey_double(fused)
        return 0.5 * ssim(self.grey[0], f) + 0.5 * ssim(self.grey[1], f)

    def qabf(self, fused: np.ndarray) -> float:
        """Q^AB/F of Xydeas & Petrovic (2000) as MEFB computes it: Sobel gradients (zero padding),
        L = 1 strength weights, Gamma_g = 0.9994, kappa_g = -15, sigma_g = 0.5, Gamma_a = 0.9879,
        kappa_a = -22, sigma_a = 0.8; per colour channel, averaged. NaN when both sources are flat.
        """
        self._check(fused)
        if not self._edges:
            # MEFB scales the 0-255 planes by 255 again (255 * im2double of a double): only the
            # "equal strengths" case of _edge_preservation sees the scale.
            pairs = zip(_channels(self.over), _channels(self.under))
            self._edges = [(*_edges(255.0 * a.astype(np.float64)), *_edges(255.0 * b.astype(np.float64))) for a, b in pairs]
        scores = []
        for (ga, aa, gb, ab), f in zip(self._edges, _channels(fused)):
            gf, af = _edges(255.0 * f.astype(np.float64))
            num = np.sum(_edge_preservation(ga, aa, gf, af) * ga + _edge_preservation(gb, ab, gf, af) * gb)
            den = np.sum(ga + gb)
            scores.append(float(num / den) if den > 0 else math.nan)
        return float(np.mean(scores))

    def scores(self, fused: np.ndarray, gt: np.ndarray | None = None) -> dict[str, float]:
        """Every metric of :data:`METRIC_NAMES`; those needing ground truth only when ``gt`` is given."""
        ms_ok = multi_scale_fits(self.shape)
        scales = self.mef_ms_ssim_scales(fused) if ms_ok else []
        result = {
            "MEF_SSIM": combine_scales(scales) if ms_ok else math.nan,
            "MEF_SSIM_SS": scales[0] if ms_ok else self.mef_ssim(fused),
            "QABF": self.qabf(fused),
            "MSSIM": self.mssim(fused),
        }
        result.update({name: fn(fused) for name, fn in NO_REFERENCE_METRICS.items()})
        if gt is not None:
            result.update(gt_scores(fused, gt))
        return result


def multi_scale_fits(shape: Sequence[int]) -> bool:
    """Whether an image of this (rows, columns) is large enough for every scale of MEF-SSIM."""
    return min(shape[:2]) / 2 ** (len(MS_WEIGHTS) - 1) >= WINDOW


def combine_scales(scales: Sequence[float]) -> float:
    """``prod(Q_l ** w_l)`` of the per-scale MEF-SSIM scores; NaN when a score is negative (a fused
    structure opposite to the sources', as a barely trained model gives): the fractional power is
    then undefined (MATLAB returns a complex number)."""
    q = np.asarray(scales, np.float64)
    if (q < 0).any():
        return math.nan
    return float(np.prod(q ** MS_WEIGHTS))


# ---------------------------------------------------------------------------------------- plain functions
def mef_ssim(over: np.ndarray, under: np.ndarray, fused: np.ndarray) -> float:
    """Single-scale MEF-SSIM of ``fused`` against the pair (see :class:`MefReference`)."""
    return Sources(over, under).mef_ssim(fused)


def mef_ms_ssim(over: np.ndarray, under: np.ndarray, fused: np.ndarray) -> float:
    """Multi-scale MEF-SSIM, the number MEFB reports as "MEF_SSIM" (see :meth:`Sources.mef_ms_ssim`)."""
    return Sources(over, under).mef_ms_ssim(fused)


def mssim(over: np.ndarray, under: np.ndarray, fused: np.ndarray) -> float:
    """The paper's MSSIM(A, B, F) = (SSIM(A, F) + SSIM(B, F)) / 2 on ``rgb2gray`` images."""
    return Sources(over, under).mssim(fused)


def qabf(over: np.ndarray, under: np.ndarray, fused: np.ndarray) -> float:
    """Q^AB/F, MEFB's definition (see :meth:`Sources.qabf`)."""
    return Sources(over, under).qabf(fused)


NO_REFERENCE_METRICS: dict[str, Callable[[np.ndarray], float]] = {
    "MEAN": mean_level,
    "SD": sd,
    "EN": entropy,
    "SF": spatial_frequency,
    "AG": average_gradient,
}
GT_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "PSNR_I": psnr_i,
    "PSNR_S": psnr_s,
    "CC_I": cc_i,
    "CC_S": cc_s,
    "PSNR": psnr_rgb,
}
SOURCE_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "MEF_SSIM": mef_ms_ssim,
    "MEF_SSIM_SS": mef_ssim,
    "QABF": qabf,
    "MSSIM": mssim,
}
METRIC_NAMES: list[str] = [*SOURCE_METRICS, *NO_REFERENCE_METRICS, *GT_METRICS]


def all_metrics(over: np.ndarray, under: np.ndarray, fused: np.ndarray, gt: np.ndarray | None = None) -> dict[str, float]:
    """Every metric by name; the ground-truth ones only when ``gt`` is given."""
    return Sources(over, under).scores(fused, gt)
