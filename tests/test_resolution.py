"""The working resolution: the network fuses a bounded copy, the exposures give every finer level."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mefgan_tf.cli import main
from mefgan_tf.fusion import Fuser, FusionOptions, fuse_images, fuse_pair
from mefgan_tf.fusion.tiles import pair_work
from mefgan_tf.images import to_float, to_uint8
from mefgan_tf.pyramid import DETAIL_COST, DETAIL_LEVELS, detail_memory, gaussian_pyramid, transfer_detail
from mefgan_tf.resolution import (
    WORK_SIZE,
    downscale,
    extra_levels,
    levels_for,
    padded_shape,
    residual,
    work_dims,
    work_problem,
)
from mefgan_tf.stages import generator_stages


@pytest.fixture(scope="module")
def stages(random_generator):
    return generator_stages(random_generator(seed=5))


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random scene with fine texture on top, RGB float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    smooth = cv2.resize(rng.random((height // 16 + 2, width // 16 + 2, 3), dtype=np.float32), (width, height))
    return np.clip(0.8 * smooth + 0.2 * rng.random((height, width, 3), dtype=np.float32), 0, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_the_copy_the_network_sees_has_a_bounded_long_side_and_small_photos_are_fused_as_they_are():
    assert work_dims(3000, 4000, 512) == (384, 512)
    assert work_dims(4000, 3000, 512) == (512, 384)
    assert work_dims(4240, 5656, 512) == (384, 512)
    assert work_dims(512, 300, 512) is None and work_dims(3000, 4000, None) is None
    assert [work_problem(s) is None for s in (63, 64, 4096, 32769)] == [False, True, True, False]


def test_the_exposures_give_one_more_level_per_whole_halving_of_the_side_capped_at_the_pyramid_depth():
    assert extra_levels(1024, 768, (512, 384)) == 1
    assert extra_levels(1000, 750, (512, 384)) == 0  # 1.95x: not yet a whole halving
    assert extra_levels(3000, 4000, (384, 512)) == 2  # 7.8x
    assert extra_levels(4240, 5656, (384, 512)) == 3  # 11x
    assert levels_for(3000, 4000, (384, 512), DETAIL_LEVELS) == DETAIL_LEVELS + 2
    assert levels_for(3000, 4000, None, DETAIL_LEVELS) == DETAIL_LEVELS
    assert levels_for(40, 4000, (5, 512), DETAIL_LEVELS) == 4  # a 40-pixel strip has 4 levels


def test_every_photo_of_one_orientation_reaches_the_network_in_one_of_a_few_shapes(stages):
    seen = []

    class Recording:
        blocks_attention = False

        def attention_half(self, x):
            seen.append(x.shape[1:3])
            return stages.attention_half(x)

        def fuse_tile(self, x, half):
            return stages.fuse_tile(x, half)

    sizes = [(100, 150), (120, 160), (90, 160), (133, 200), (75, 100), (110, 140)]  # 3:2, 4:3, 16:9, ...
    fuser = Fuser(Recording(), FusionOptions(tile=None, work_size=64))
    for height, width in sizes:
        pair = [photo(height, width, seed=1) * 0.4, photo(height, width, seed=1)]
        assert fuser(pair).shape == (height, width, 3)
    assert len(seen) == 6 and len(set(seen)) <= 2  # six photo sizes, two shapes to compile: 48x64 and 64x64
    assert set(seen) <= {padded_shape(48, 64, 64), padded_shape(64, 64, 64)}


def test_the_residual_brought_back_by_bilinear_upsampling_is_the_full_size_images_own():
    full = cv2.GaussianBlur(photo(600, 800, seed=2), (0, 0), 12)  # nothing finer than the copy holds
    small = downscale(full, work_dims(600, 800, 256))
    for levels in (4, 6):
        expected = gaussian_pyramid(full, levels)[-1]
        assert np.abs(residual(small, 600, 800, levels) - expected).max() < 2e-3


def test_a_large_photo_given_twice_comes_back_as_itself_though_the_network_softens_and_sees_a_small_copy():
    big = photo(600, 900, seed=3)

    def blurring(over, under, shape=None):
        return cv2.GaussianBlur(over, (0, 0), 1.5)

    assert psnr(fuse_images(blurring, [big, big], FusionOptions(work_size=128)), big) > 40
    assert psnr(fuse_images(blurring, [big, big], FusionOptions(work_size=None, detail=0)), big) < 30


def test_detail_levels_0_and_full_size_give_the_network_on_the_photos_themselves(stages):
    over, under = photo(90, 150, seed=4), photo(90, 150, seed=4) * 0.3
    network = fuse_pair(stages, over, under)
    np.testing.assert_allclose(Fuser(stages, FusionOptions(tile=None, detail=0, work_size=64))([under, over]), network, atol=1e-5)
    exact = transfer_detail(network, [under, over], DETAIL_LEVELS)
    np.testing.assert_allclose(Fuser(stages, FusionOptions(tile=None, work_size=None))([under, over]), exact, atol=1e-5)


@pytest.mark.slow
def test_at_the_working_size_the_shipped_network_keeps_its_tone_and_score_on_a_photos_exposures():
    from mefgan_tf.metrics import Sources
    from mefgan_tf.models import load_stages
    from mefgan_tf.samples import sample_pair

    shipped = load_stages(None)
    under, over = (to_float(image) for image in sample_pair("coffee", max_side=400))  # 267 x 400
    fused = Fuser(shipped, FusionOptions(tile=None, work_size=200))([under, over])  # the network at 133 x 200
    exact = Fuser(shipped, FusionOptions(tile=None, work_size=None))([under, over])
    tone = [cv2.GaussianBlur(image, (0, 0), 8) for image in (fused, exact)]
    assert np.abs(tone[0] - tone[1]).mean() < 0.02
    sources = Sources(to_uint8(over), to_uint8(under))
    assert sources.mef_ssim(to_uint8(fused)) > sources.mef_ssim(to_uint8(exact)) - 0.005


def test_the_memory_plan_and_progress_count_the_network_at_the_working_size(stages):
    assert FusionOptions().resolution().network_shape(3000, 4000) == (384, 512)
    assert FusionOptions().resolution().network_shape(300, 400) == (300, 400)
    assert FusionOptions(work_size=None).resolution().network_shape(3000, 4000) == (3000, 4000)
    photos = [np.broadcast_to(np.float32(0.5), (3000, 4000, 3))] * 2  # shapes only: nothing is fused
    for options, network in ((FusionOptions(), (384, 512)), (FusionOptions(work_size=None), (3000, 4000))):
        fuser = Fuser(stages, options)
        plan = fuser.plan(fuser.sizes(photos))
        assert plan.pairs == 1 and plan.work == pytest.approx(pair_work(*network) + DETAIL_COST * 3000 * 4000)
        assert plan.memory == detail_memory(3000, 4000, 2, DETAIL_LEVELS)  # the detail is at full size either way


@pytest.mark.parametrize("value, message, code", [("63", "--work-size 63: the working size must be 64 to 32768", 1),
                                                  ("big", "expected 'full' or a side in pixels", 2),
                                                  ("99999999999999999999", "64 to 32768", 1)])
def test_a_working_size_out_of_range_is_one_line_naming_the_option(value, message, code, tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for path in (a, b):
        cv2.imwrite(str(path), np.zeros((16, 16, 3), np.uint8))
    try:  # not a number: argparse's usage error; out of range: the options' one line
        result = main(["fuse", str(a), str(b), "-o", str(tmp_path / "out.png"), "--work-size", value])
    except SystemExit as exit_info:
        result = exit_info.code
    assert result == code
    err = capsys.readouterr().err
    assert "--work-size" in err and message in err and not (tmp_path / "out.png").exists()


def test_the_default_working_size_is_the_documented_one():
    from mefgan_tf.cli.types import WORK_SIZE_HELP

    assert f"default: {WORK_SIZE}" in WORK_SIZE_HELP.format(default=WORK_SIZE)
