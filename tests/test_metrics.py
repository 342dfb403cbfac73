"""The fusion metrics against hand-computed values, scikit-image, and the published patch-wise MEF-SSIM."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from mefgan_tf import metrics as M


def _texture(shape=(48, 56), seed=0) -> np.ndarray:
    """A uint8 RGB image with smooth regions, edges and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = 120 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 40 * (xx > shape[1] // 2)
    rgb = np.stack([base, base * 0.8 + 30, 255 - base], -1) + rng.normal(0, 8, (*shape, 3))
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _exposures(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    over = np.clip(image.astype(np.float64) * 2.0, 0, 255).astype(np.uint8)
    under = np.round(image.astype(np.float64) * 0.3).astype(np.uint8)
    return over, under


def _reference_mef_ssim_map(seq: np.ndarray, f: np.ndarray, k: float = 0.03) -> np.ndarray:
    """MEF-SSIM patch by patch, straight from the paper's definitions (slow; small images only)."""
    n, bd, eps = 11, 5, np.finfo(float).eps
    g = M.gaussian_kernel()
    win = np.outer(g, g)
    rows, cols = seq.shape[1] - 2 * bd, seq.shape[2] - 2 * bd
    q = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            patches = seq[:, i : i + n, j : j + n]
            mu = patches.mean(axis=(1, 2))
            d = patches - mu[:, None, None]
            norms = np.sqrt((d**2).sum(axis=(1, 2)))
            strength = norms + 0.001
            total = d.sum(0)
            r = (np.sqrt(((total - total.mean()) ** 2).sum()) + eps) / (norms.sum() + eps)
            r = 1 - eps if r > 1 else r
            p = min(math.tan(math.pi / 2 * r), 10.0)
            w = (strength / n) ** p + eps
            w = w / w.sum()
            desired = sum(w[s] * d[s] / strength[s] for s in range(len(seq)))
            if np.linalg.norm(desired) > 0:
                desired = desired / np.linalg.norm(desired) * strength.max()
            fb = f[i : i + n, j : j + n]
            m1, m2 = (win * desired).sum(), (win * fb).sum()
            v1, v2 = (win * (desired - m1) ** 2).sum(), (win * (fb - m2) ** 2).sum()
            cov = (win * (desired - m1) * (fb - m2)).sum()
            c = (k * 255) ** 2
            q[i, j] = (2 * cov + c) / (v1 + v2 + c)
    return q


# ---------------------------------------------------------------------------------------- grey
def test_rgb2gray_uses_matlab_weights_and_rounds_half_up():
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], np.uint8)
    expected = [76, 150, 29, 255, round(0.298936021293775 * 10 + 0.587043074451121 * 20 + 0.114020904255103 * 30)]
    assert M.rgb2gray(pixels).tolist() == [expected]
    assert M.rgb2gray(pixels).dtype == np.uint8


# ---------------------------------------------------------------------------------------- SSIM / MSSIM
def test_ssim_matches_scikit_image():
    a = M.rgb2gray(_texture()).astype(float)
    b = M.rgb2gray(_texture(seed=1)).astype(float) * 0.7 + 20
    expected = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert M.ssim(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_of_identical_images_is_one():
    a = M.rgb2gray(_texture()).astype(float)
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_mssim_is_the_mean_of_ssim_with_each_source():
    over, under = _exposures(_texture())
    fused = _texture(seed=2)
    grey = [M.rgb2gray(x).astype(float) for x in (over, under, fused)]
    expected = 0.5 * M.ssim(grey[0], grey[2]) + 0.5 * M.ssim(grey[1], grey[2])
    assert M.mssim(over, under, fused) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------- MEF-SSIM
def test_mef_ssim_map_matches_the_patchwise_definition():
    over, under = _exposures(_texture((26, 30)))
    seq = np.stack([M.rgb2gray(over), M.rgb2gray(under)]).astype(float)
    seq[1, :12, :12] = 7  # a flat patch in one source
    fused = M.rgb2gray(_texture((26, 30), seed=3)).astype(float)
    fast = M.mef_ssim_map(seq, fused)
    assert fast.shape == (16, 20)
    np.testing.assert_allclose(fast, _reference_mef_ssim_map(seq, fused), atol=1e-10)


def test_mef_ssim_of_identical_sources_and_fused_is_one():
    image = _texture()
    assert M.mef_ssim(image, image, image) == pytest.approx(1.0, abs=1e-5)
    assert M.mef_ms_ssim(image, image, image) == pytest.approx(1.0, abs=1e-5)


def test_mef_ssim_of_flat_sources_and_flat_fused_is_one():
    flat = np.full((32, 40, 3), 90, np.uint8)
    assert M.mef_ssim(flat, flat // 3, flat) == pytest.approx(1.0, abs=1e-12)


def test_mef_ssim_ranks_the_scene_above_its_crushed_under_exposure():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    base = np.where(xx < 32, 20, 200) + 15 * np.sin(xx / 3.0) * np.cos(yy / 4.0) + rng.normal(0, 3, (64, 64))
    image = np.clip(np.stack([base] * 3, -1), 0, 255).round().astype(np.uint8)
    over = np.clip(image * 3.0, 0, 255).astype(np.uint8)  # right half saturated
    under = np.round(image * 0.15).astype(np.uint8)  # left half crushed to a few levels
    for score in (M.mef_ssim, M.mef_ms_ssim):
        assert score(over, under, image) > score(over, under, under) + 0.1


def test_mef_ms_ssim_downsamples_by_2x2_means_with_symmetric_padding():
    x = np.arange(1.0, 10.0).reshape(3, 3)
    np.testing.assert_array_equal(M._downsample(x), [[3.0, 4.5], [7.5, 9.0]])


def test_mef_ms_ssim_is_the_weighted_geometric_mean_of_three_scales():
    image = _texture((64, 72))
    over, under = _exposures(image)
    fused = _texture((64, 72), seed=4)
    seq = np.stack([M.rgb2gray(over), M.rgb2gray(under)]).astype(float)
    f = M.rgb2gray(fused).astype(float)
    scales = []
    for level in range(3):
        if level:
            seq, f = np.stack([M._downsample(x) for x in seq]), M._downsample(f)
        scales.append(M.mef_ssim_map(seq, f).mean())
    weights = np.array([0.0448, 0.2856, 0.3001]) / (0.0448 + 0.2856 + 0.3001)
    assert M.mef_ms_ssim(over, under, fused) == pytest.approx(float(np.prod(np.array(scales) ** weights)), abs=1e-12)
    assert M.mef_ssim(over, under, fused) == pytest.approx(scales[0], abs=1e-12)


def test_mef_ms_ssim_of_an_image_too_small_for_three_scales_is_nan():
    image = _texture((40, 60))  # 40 / 4 < 11
    assert math.isnan(M.mef_ms_ssim(image, image, image))


# ---------------------------------------------------------------------------------------- Q^AB/F
def test_qabf_of_fused_equal_to_both_sources_is_the_product_of_the_sigmoid_maxima():
    image = _texture()
    # equal strengths saturate the strength sigmoid at 0.9994 (MEFB's code); equal orientations
    # give 0.9879 / (1 + exp(-22 * (1 - 0.8)))
    expected = 0.9994 * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert M.qabf(image, image, image) == pytest.approx(expected, rel=1e-9)


def test_qabf_of_black_fused_image_is_near_zero():
    over, under = _exposures(_texture())
    assert M.qabf(over, under, np.zeros_like(over)) < 1e-3


def test_qabf_is_symmetric_in_the_sources():
    over, under = _exposures(_texture())
    fused = _texture(seed=5)
    assert M.qabf(over, under, fused) == pytest.approx(M.qabf(under, over, fused), abs=1e-12)


# ---------------------------------------------------------------------------------------- no reference
def test_sd_is_the_population_std_of_each_channel_averaged():
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = [0, 2] * 3  # std 1
    image[..., 1] = 50  # std 0
    image[..., 2] = [0, 4] * 3  # std 2
    assert M.sd(image) == pytest.approx(1.0)
    assert M.sd(image[..., 2]) == pytest.approx(2.0)


def test_entropy_of_two_level_image_is_one_bit():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = 255
    assert M.entropy(image) == pytest.approx(1.0)
    assert M.entropy(image[..., 0]) == pytest.approx(1.0)


def test_entropy_of_constant_image_is_zero():
    assert M.entropy(np.full((5, 7, 3), 33, np.uint8)) == 0.0


def test_entropy_of_all_256_levels_equally_often_is_eight_bits():
    assert M.entropy(np.arange(256, dtype=np.uint8).reshape(16, 16)) == pytest.approx(8.0)


def test_spatial_frequency_of_constant_image_is_zero():
    assert M.spatial_frequency(np.full((9, 11, 3), 200, np.uint8)) == 0.0


def test_spatial_frequency_of_vertical_stripes_divides_by_all_pixels():
    rows, cols = 6, 10
    image = np.zeros((rows, cols), np.uint8)
    image[:, 1::2] = 10  # every horizontal neighbour differs by 10, no vertical one does
    expected = math.sqrt(rows * (cols - 1) * 100 / (rows * cols))
    assert M.spatial_frequency(image) == pytest.approx(expected)


def test_average_gradient_of_a_ramp_divides_by_rows_minus_one_times_cols_minus_one():
    rows, cols = 5, 8
    image = np.tile(np.arange(cols, dtype=np.uint8) * 3, (rows, 1))  # d/dx = 3 everywhere, d/dy = 0
    expected = rows * cols * (3 / math.sqrt(2)) / ((rows - 1) * (cols - 1))
    assert M.average_gradient(image) == pytest.approx(expected)
    assert M.average_gradient(np.stack([image] * 3, -1)) == pytest.approx(expected)


def test_average_gradient_of_constant_image_is_zero():
    assert M.average_gradient(np.full((6, 6, 3), 7, np.uint8)) == 0.0


# ---------------------------------------------------------------------------------------- with ground truth
def test_psnr_uses_peak_256():
    gt = _texture()
    fused = gt.copy()
    fused[..., :] = np.clip(gt.astype(int) + 1, 0, 255)
    mask = (gt < 255).all(-1)
    gt, fused = gt[mask][None], fused[mask][None]  # keep pixels where +1 did not clip
    # I = (R+G+B)/sqrt(3) moves by 3/sqrt(3): MSE 3; S is unchanged by a grey shift
    assert M.psnr_i(fused, gt) == pytest.approx(10 * math.log10(256**2 / 3))
    assert M.psnr_s(fused, gt) == math.inf


def test_psnr_of_identical_images_is_infinite():
    image = _texture()
    assert M.psnr_i(image, image) == math.inf


def test_cc_of_affinely_related_images_is_one():
    gt = (_texture() // 2 * 2).astype(np.uint8)  # even values: halving is exact
    fused = (gt // 2 + 10).astype(np.uint8)
    assert M.cc_i(fused, gt) == pytest.approx(1.0)
    assert M.cc_s(fused, gt) == pytest.approx(1.0)


def test_mean_level_is_the_mean_of_every_pixel_and_channel():
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0], image[:2, :, 2] = 90, 255
    assert M.mean_level(image) == pytest.approx((90 + 255 / 2) / 3)


def test_cc_of_constant_image_is_nan():
    assert math.isnan(M.cc_i(np.full((8, 8, 3), 5, np.uint8), _texture((8, 8))))


# ---------------------------------------------------------------------------------------- together
def test_all_metrics_equal_the_plain_functions():
    over, under = _exposures(_texture((64, 72)))
    fused, gt = _texture((64, 72), seed=6), _texture((64, 72), seed=7)
    scores = M.all_metrics(over, under, fused, gt)
    assert list(scores) == M.METRIC_NAMES
    for name, fn in M.SOURCE_METRICS.items():
        assert scores[name] == pytest.approx(fn(over, under, fused), abs=1e-12)
    for name, fn in M.NO_REFERENCE_METRICS.items():
        assert scores[name] == fn(fused)
    for name, fn in M.GT_METRICS.items():
        assert scores[name] == pytest.approx(fn(fused, gt))
    assert set(M.all_metrics(over, under, fused)) == set(M.SOURCE_METRICS) | set(M.NO_REFERENCE_METRICS)


def test_metrics_refuse_images_of_different_sizes():
    image = _texture()
    with pytest.raises(ValueError, match="size"):
        M.mef_ssim(image, image, image[:-1])
