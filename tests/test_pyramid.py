"""Laplacian pyramids: Mertens's weights and blending, and the exposures' detail on a fusion."""
from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from mefgan_tf import pyramid
from mefgan_tf.pyramid import collapse, exposure_weight, laplacian_pyramid, pyramid_blend, pyramid_levels, transfer_detail


def _scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((48, 64, 3)).astype(np.float32), (0, 0), 3)
    return (image - image.min()) / (image.max() - image.min())


def _textured(level: float, seed: int, side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A flat colour ``level`` with fine texture (the texture is returned too)."""
    texture = np.random.default_rng(seed).normal(0, 1, (side, side)).astype(np.float32)
    return (level + 0.05 * texture)[..., None].repeat(3, -1) * np.float32([1.0, 0.9, 0.8]), texture


def _fine(image: np.ndarray) -> np.ndarray:
    return image - cv2.GaussianBlur(image, (0, 0), 2)


def test_exposure_weight_is_mertens_contrast_times_saturation_times_well_exposedness():
    image = _scene()
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    expected = (np.abs(cv2.Laplacian(grey, cv2.CV_32F)) * image.std(-1)
                * np.exp(-((image - 0.5) ** 2).sum(-1) / (2 * 0.2**2)))
    np.testing.assert_allclose(exposure_weight(image), expected, rtol=1e-5, atol=1e-9)
    assert exposure_weight(np.full((8, 8, 3), 0.5, np.float32)).max() == 0  # flat and grey: no weight


def test_exposure_weight_of_a_large_image_holds_little_beside_it_and_equals_the_weight_of_its_parts():
    import tracemalloc

    rng = np.random.default_rng(5)
    image = cv2.resize(rng.random((96, 128, 3), dtype=np.float32), (2048, 1536))  # 6 strips of 256 rows
    tracemalloc.start()
    weight = exposure_weight(image)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= 16 * image.shape[0] * image.shape[1]  # whole-image temporaries were 48 bytes a pixel
    inner = exposure_weight(image[300:500])  # a row's weight needs only its own pixels and its neighbours
    np.testing.assert_array_equal(weight[301:499], inner[1:-1])


def test_pyramid_blend_of_one_image_or_of_identical_images_is_the_image():
    image, other = _scene(0), _scene(1)
    weights = [np.ones(image.shape[:2]), np.zeros(image.shape[:2])]
    np.testing.assert_allclose(pyramid_blend([image, other], weights), image, atol=1e-5)
    np.testing.assert_allclose(pyramid_blend(iter([image, image.copy()]), [_scene(2)[..., 0], _scene(3)[..., 0]]),
                               image, atol=1e-5)


def test_pyramid_blend_takes_each_image_s_detail_where_its_weight_is():
    rng = np.random.default_rng(4)
    texture = [rng.normal(0, 1, (64, 64)).astype(np.float32) for _ in range(2)]
    left = np.zeros((64, 64), np.float32)
    left[:, :32] = 1
    dark, bright = ((level + 0.05 * t)[..., None].repeat(3, -1) for level, t in zip((0.2, 0.8), texture))
    fused = pyramid_blend([dark, bright], [left, 1 - left])
    assert fused.dtype == np.float32 and fused.shape == dark.shape
    detail = fused[..., 0] - cv2.GaussianBlur(fused[..., 0], (0, 0), 2)

    def agreement(columns, t):
        return np.corrcoef(detail[:, columns].ravel(), (t - cv2.GaussianBlur(t, (0, 0), 2))[:, columns].ravel())[0, 1]

    assert agreement(slice(4, 24), texture[0]) > 0.95 and agreement(slice(4, 24), texture[1]) < 0.1
    assert agreement(slice(40, 60), texture[1]) > 0.95 and agreement(slice(40, 60), texture[0]) < 0.1
    # the coarsest levels mix the two, as in Mertens's pyramid: the left is the darker side
    assert fused[:, :32].mean() < fused[:, 32:].mean()


def test_collapse_inverts_the_laplacian_pyramid():
    image = _scene(5)
    for levels in (1, 3, pyramid_levels(*image.shape[:2])):
        np.testing.assert_allclose(collapse(laplacian_pyramid(image, levels)), image, atol=1e-5)


def test_transfer_detail_keeps_the_fusion_s_tone_and_gives_back_a_photo_s_own_detail():
    photo = 0.1 + 0.8 * _scene(6)
    darker = photo - 0.1  # the fusion's tone differs by a constant: a low-pass change
    for levels in (1, 2, 3):
        np.testing.assert_allclose(transfer_detail(darker, [photo, photo.copy()], levels), darker, atol=1e-5)
    softened = cv2.GaussianBlur(photo, (0, 0), 1.5)  # the fusion lost the fine detail of the photo
    error = [np.abs(transfer_detail(softened, [photo, photo], levels) - photo).mean() for levels in (0, 1, 2, 3)]
    assert error[0] > 0.01 and error == sorted(error, reverse=True) and error[3] < error[0] / 4


def test_transfer_detail_of_no_level_is_the_fusion_and_levels_are_capped_at_the_pyramid_s_depth():
    fused, frame = _scene(7), _scene(8)
    assert transfer_detail(fused, [frame, frame], 0) is fused
    deepest = transfer_detail(fused, [frame, frame], pyramid_levels(*fused.shape[:2]))
    np.testing.assert_array_equal(transfer_detail(fused, [frame, frame], 99), deepest)
    assert deepest.dtype == np.float32 and deepest.shape == fused.shape


def test_transfer_detail_takes_each_frame_s_detail_where_it_is_well_exposed():
    (dark, texture_dark), (bright, texture_bright) = _textured(0.05, 0, 64), _textured(0.95, 1, 64)
    left = np.zeros((64, 64, 1), np.float32)
    left[:, :32] = 1  # the dark frame is well exposed on the left only: mid-grey there
    dark, bright = dark + 0.45 * left, bright - 0.45 * (1 - left)
    fused = np.full_like(dark, 0.5)  # a flat fusion: all its detail is the frames'
    detail = _fine(transfer_detail(fused, [dark, bright], 3)[..., 0])

    def agreement(columns, texture):
        return np.corrcoef(detail[:, columns].ravel(), _fine(texture)[:, columns].ravel())[0, 1]

    on_left = agreement(slice(4, 26), texture_dark), agreement(slice(4, 26), texture_bright)
    assert on_left[0] > 0.85 and on_left[1] < on_left[0] / 2
    assert agreement(slice(38, 60), texture_bright) > 0.95 and abs(agreement(slice(38, 60), texture_dark)) < 0.1
    tone = cv2.GaussianBlur(transfer_detail(fused, [dark, bright], 3), (0, 0), 4)  # the fusion's, away from the step
    assert abs(tone[8:-8, 4:20].mean() - 0.5) < 0.01 and abs(tone[8:-8, 44:60].mean() - 0.5) < 0.01


def test_transfer_detail_leaves_a_flat_fusion_of_flat_frames_flat():
    fused = np.full((32, 32, 3), 0.4, np.float32)
    frames = [np.full((32, 32, 3), v, np.float32) for v in (0.2, 0.7)]
    np.testing.assert_allclose(transfer_detail(fused, frames, 3), fused, atol=1e-6)


def test_the_graph_transfer_agrees_with_opencv_s_at_any_size_and_caps_the_levels_at_run_time():
    import tensorflow as tf

    from mefgan_tf.pyramid import graph_transfer_detail

    graph = tf.function(lambda fused, a, b: graph_transfer_detail(fused, [a, b], 4),
                        input_signature=[tf.TensorSpec([None, None, 3], tf.float32)] * 3)
    for height, width, seed in ((75, 101, 10), (8, 8, 11), (13, 21, 12)):
        under, over = (np.clip(_big_scene(height, width, seed + i) * gain, 0, 1) for i, gain in ((0, 0.6), (1, 1.6)))
        fused = cv2.GaussianBlur((under + over) / 2, (0, 0), 1.5)
        expected = transfer_detail(fused, [under, over], 4)
        got = graph(fused, under, over).numpy()
        assert got.shape == expected.shape and np.abs(got - fused).max() > 0.02  # it did transfer detail
        assert np.abs(got - expected).max() * 255 < 1 and np.abs(got - expected).mean() * 255 < 0.01


def _big_scene(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 1) * 0.8 + 0.1


def detail_case(height: int, width: int, levels: int, frames: int = 3) -> tuple[np.ndarray, list[np.ndarray]]:
    """A random low-pass residual and ``frames`` textured frames of one size."""
    rng = np.random.default_rng(height + levels)
    images = [rng.random((height, width, 3), dtype=np.float32) for _ in range(frames)]
    images = [0.5 * cv2.GaussianBlur(image, (0, 0), 2.0) + 0.5 * image for image in images]
    return rng.random((*pyramid.residual_size(height, width, levels), 3), dtype=np.float32), images


def traced_peak(function) -> int:
    """Bytes ``function()`` allocated at its peak beyond what it started with (NumPy's and OpenCV's arrays)."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        function()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("height", "width", "levels"), [(700, 90, 5), (1000, 70, 6), (333, 50, 3)])
def test_a_large_photo_takes_the_detail_step_in_strips_with_the_same_image(monkeypatch, height, width, levels):
    residual, frames = detail_case(height, width, levels)
    whole = pyramid.detail_onto(residual, frames, levels)
    monkeypatch.setattr(pyramid, "DETAIL_STRIP_PIXELS", height * width // 3)
    rows = pyramid.detail_strip_rows(height, width, levels)
    assert rows < height and rows % 2**levels == 0
    np.testing.assert_allclose(pyramid.detail_onto(residual, frames, levels), whole, rtol=0, atol=1e-6)


def test_the_detail_step_in_strips_holds_one_strip_beside_its_output(monkeypatch):
    height, width, levels = 2400, 64, 4
    residual, frames = detail_case(height, width, levels, frames=2)
    whole = traced_peak(lambda: pyramid.detail_onto(residual, frames, levels))
    monkeypatch.setattr(pyramid, "DETAIL_STRIP_PIXELS", height * width // 6)
    strips = traced_peak(lambda: pyramid.detail_onto(residual, frames, levels))
    planned = pyramid.detail_memory(height, width, 2, levels)
    assert strips <= planned <= 2 * strips
    assert strips < 0.6 * whole
