"""Built-in fusion baselines: Mertens exposure fusion and averaging."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mefgan_tf.baselines import BASELINES, average, mertens


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
