"""Built-in fusion baselines: Mertens exposure fusion and averaging."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mefgan_tf.baselines import BASELINES, average, exposure_weight, mertens, pyramid_blend


def _scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((48, 64, 3)).astype(np.float32), (0, 0), 3)
    return (image - image.min()) / (image.max() - image.min())


def test_registry_names_the_builtin_baselines():
    assert {"mertens": mertens, "average": average} == BASELINES


def test_mertens_of_identical_exposures_is_the_image():
    image = _scene()
    np.testing.assert_allclose(mertens([image, image]), image, atol=1e-5)


def test_mertens_returns_float32_rgb_in_unit_range_of_the_input_size():
    image = _scene()
    fused = mertens([image * 0.2, np.clip(image * 3.0, 0, 1)])
    assert fused.dtype == np.float32 and fused.shape == image.shape
    assert fused.min() >= 0.0 and fused.max() <= 1.0


def test_mertens_favours_the_well_exposed_exposure():
    image = 0.4 + 0.2 * _scene()  # mid-tones throughout
    dark = image * 0.1
    fused = mertens([dark, image])
    assert np.abs(fused - image).mean() < np.abs(fused - (dark + image) / 2).mean()


def test_mertens_matches_opencv_on_uint8_input():
    u8 = [np.round(x * 255).astype(np.uint8) for x in (_scene() * 0.3, np.clip(_scene() * 2, 0, 1))]
    expected = cv2.createMergeMertens().process([np.ascontiguousarray(x[..., ::-1]) for x in u8])[..., ::-1]
    fused = mertens([x.astype(np.float32) / 255 for x in u8])
    np.testing.assert_allclose(fused, np.clip(expected, 0, 1), atol=1e-5)


def test_average_is_the_pixelwise_mean():
    a, b, c = _scene(0), _scene(1), _scene(2)
    np.testing.assert_allclose(average([a, b, c]), (a + b + c) / 3, atol=1e-6)


@pytest.mark.parametrize("fuse", [mertens, average])
def test_baselines_refuse_a_single_image_or_mixed_sizes(fuse):
    with pytest.raises(ValueError, match="at least 2"):
        fuse([_scene()])
    with pytest.raises(ValueError, match="size"):
        fuse([_scene(), _scene()[:-1]])


def test_exposure_weight_is_mertens_contrast_times_saturation_times_well_exposedness():
    image = _scene()
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    expected = (np.abs(cv2.Laplacian(grey, cv2.CV_32F)) * image.std(-1)
                * np.exp(-((image - 0.5) ** 2).sum(-1) / (2 * 0.2**2)))
    np.testing.assert_allclose(exposure_weight(image), expected, rtol=1e-5, atol=1e-9)
    assert exposure_weight(np.full((8, 8, 3), 0.5, np.float32)).max() == 0  # flat and grey: no weight


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
