"""Full-resolution fusion: exact tiling at any size, exposure ordering, the strategies and their plans,
bounded memory, the options, load_fuser."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from mefgan_tf import fusion, models
from mefgan_tf.checkpoint import save_model_checkpoint
from mefgan_tf.cli import build_parser
from mefgan_tf.cli.types import fusion_options, multi_help
from mefgan_tf.errors import CommandError
from mefgan_tf.fusion import (
    DEFAULT_MULTI,
    STRATEGIES,
    Fuser,
    FusionOptions,
    Strategy,
    attention_maps,
    auto_tile,
    crop_to_multiple,
    exposure_bands,
    fuse_pair,
    network_input,
    pad_to_multiple,
    strategy,
    tile_grid,
)
from mefgan_tf.fusion import plan as planning
from mefgan_tf.fusion.tiles import pair_work
from mefgan_tf.generator import FULL_RES_HALO
from mefgan_tf.images import luminance
from mefgan_tf.models import load_fuser
from mefgan_tf.pyramid import DETAIL_COST, DETAIL_LEVELS, blend_memory, transfer_detail
from mefgan_tf.scenes import exposure_order
from mefgan_tf.stages import generator_stages
from mefgan_tf.tone import tone_guard


@pytest.fixture(scope="module")
def generator(random_generator):
    return random_generator(seed=3)


@pytest.fixture(scope="module")
def stages(generator):
    return generator_stages(generator)


def fuse_exposures(pair: Callable, images: list[np.ndarray], multi: str = DEFAULT_MULTI) -> np.ndarray:
    """The fusion of ``images`` by ``pair`` in the way ``multi`` names."""
    return strategy(multi)(pair, images)


def exposure_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scene = rng.random((height, width, 3), dtype=np.float32)
    return np.clip(scene * 1.8, 0, 1), scene * 0.3


@pytest.mark.parametrize("height, width, tile", [(40, 56, 16), (37, 53, 16), (37, 53, 24), (61, 45, 32)])
def test_tiled_fusion_equals_untiled_at_sizes_that_are_not_multiples_of_the_tile(stages, height, width, tile):
    over, under = exposure_pair(height, width)
    whole = fuse_pair(stages, over, under, tile=None)
    tiled = fuse_pair(stages, over, under, tile=tile)
    assert whole.shape == tiled.shape == (height, width, 3)
    assert whole.std() > 0.02  # a real image, not a saturated constant
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_untiled_fusion_is_the_generator_on_the_reflect_padded_pair_cropped_back(generator, stages):
    over, under = exposure_pair(37, 53, seed=1)
    padded = generator((pad_to_multiple(over)[None], pad_to_multiple(under)[None]), training=False).numpy()[0]
    assert padded.shape == (40, 56, 3)
    np.testing.assert_allclose(fuse_pair(stages, over, under), padded[:37, :53], atol=1e-5)


def test_padding_reflects_at_the_bottom_and_right_only():
    image = np.arange(9 * 10, dtype=np.float32).reshape(9, 10, 1)
    padded = pad_to_multiple(image)
    assert padded.shape == (16, 16, 1)
    np.testing.assert_array_equal(padded[:9, :10], image)
    np.testing.assert_array_equal(padded[9, :10], image[7])  # reflect: row 9 mirrors row 7
    np.testing.assert_array_equal(padded[:9, 10], image[:, 8])
    with pytest.raises(CommandError, match="too small"):
        pad_to_multiple(np.zeros((5, 40, 3), np.float32))


def test_crop_keeps_the_top_left_multiple_of_8_as_the_original_does():
    image = np.arange(23 * 17 * 3).reshape(23, 17, 3)
    cropped = crop_to_multiple(image)
    assert cropped.shape == (16, 16, 3)
    np.testing.assert_array_equal(cropped, image[:16, :16])
    assert crop_to_multiple(image[:16, :16]).shape == (16, 16, 3)  # multiples of 8 stay whole
    with pytest.raises(CommandError, match="too small"):
        crop_to_multiple(np.zeros((7, 40, 3)))


def test_tile_cores_cover_every_pixel_once_and_halos_stay_inside_the_image():
    count = np.zeros((40, 56), int)
    for (top, bottom, left, right), (e_top, e_bottom, e_left, e_right) in tile_grid(40, 56, 16, FULL_RES_HALO):
        count[top:bottom, left:right] += 1
        assert e_top == max(top - FULL_RES_HALO, 0) and e_bottom == min(bottom + FULL_RES_HALO, 40)
        assert e_left == max(left - FULL_RES_HALO, 0) and e_right == min(right + FULL_RES_HALO, 56)
    assert (count == 1).all()


def test_automatic_tile_fits_the_available_memory_and_covers_small_images_whole():
    gib = 1 << 30
    assert auto_tile(4000, 6000, available=24 * gib) == planning.PREFERRED_TILE
    assert auto_tile(400, 504, available=24 * gib) is None
    small = auto_tile(4000, 6000, available=gib // 4)
    assert planning.MIN_TILE <= small < planning.PREFERRED_TILE and small % 8 == 0
    assert (small + 2 * FULL_RES_HALO) ** 2 * planning.BYTES_PER_PIXEL <= planning.MEMORY_FRACTION * gib // 4
    assert auto_tile(4000, 6000, available=1) == planning.MIN_TILE


def test_exposures_are_ordered_by_mean_luminance():
    levels = [0.7, 0.1, 0.4]
    images = [np.full((8, 8, 3), v, np.float32) for v in levels]
    assert exposure_order(images) == [1, 2, 0]


def test_two_exposures_fuse_with_the_brighter_as_over_whatever_their_order():
    dark, bright = np.full((8, 8, 3), 0.2, np.float32), np.full((8, 8, 3), 0.8, np.float32)
    calls = []

    def pair(over, under):
        calls.append((luminance(over), luminance(under)))
        return (over + under) / 2

    fuse_exposures(pair, [dark, bright])
    fuse_exposures(pair, [bright, dark])
    assert calls == [pytest.approx((0.8, 0.2), abs=1e-3)] * 2


def averaging_pair(calls: list) -> Callable:
    """A pair model that records each call's (over, under) luminance and returns their mean."""
    def pair(over, under):
        calls.append((round(luminance(over), 3), round(luminance(under), 3)))
        return (over + under) / 2

    return pair


def test_more_exposures_are_fused_in_turn_darkest_first_then_the_result_with_the_next_brighter():
    images = [np.full((8, 8, 3), v, np.float32) for v in (0.9, 0.1, 0.5, 0.3)]
    calls = []
    pair = averaging_pair(calls)
    fused = fuse_exposures(pair, images, "darkest-first")
    # (0.3 over 0.1) -> 0.2; (0.5 over 0.2) -> 0.35; (0.9 over 0.35) -> 0.625
    assert calls == [(0.3, 0.1), (0.5, 0.2), (0.9, 0.35)]
    assert luminance(fused) == pytest.approx(0.625, abs=1e-3)


def test_middle_out_folds_several_exposures_from_the_middle_one_outwards():
    images = [np.full((8, 8, 3), v, np.float32) for v in (0.6, 0.1, 0.9, 0.4, 0.2)]
    calls = []
    pair = averaging_pair(calls)
    fuse_exposures(pair, images, "middle-out")  # the middle 0.4, then 0.2, 0.6, 0.1, 0.9
    assert calls == [(0.4, 0.2), (0.6, 0.3), (0.45, 0.1), (0.9, 0.275)]


def test_by_default_several_exposures_are_each_fused_with_the_middle_one_and_blended():
    images = [np.full((8, 8, 3), v, np.float32) for v in (0.6, 0.1, 0.9, 0.4, 0.2)]
    calls = []
    pair = averaging_pair(calls)
    fused = fuse_exposures(pair, images)  # the best measured against Mertens on all frames
    assert calls == [(0.4, 0.2), (0.6, 0.4), (0.4, 0.1), (0.9, 0.4)]
    # flat frames have no contrast, so no frame is preferred: an even mix of the four fusions
    np.testing.assert_allclose(fused, np.mean([(a + b) / 2 for a, b in calls]), atol=1e-6)


def test_fewer_than_two_or_differently_sized_exposures_are_refused():
    with pytest.raises(CommandError, match="at least two"):
        fuse_exposures(lambda o, u: o, [np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(CommandError, match="differ in size.*8x8.*16x8"):
        fuse_exposures(lambda o, u: o, [np.zeros((8, 8, 3), np.float32), np.zeros((8, 16, 3), np.float32)])


@pytest.mark.slow
def test_load_fuser_fuses_a_list_in_any_order_like_the_generator_stages_then_transfers_the_detail(generator, stages, tmp_path):
    checkpoint = save_model_checkpoint(tmp_path / "model", generator)
    over, under = exposure_pair(37, 53, seed=2)
    network = fuse_pair(stages, over, under)
    fuser = load_fuser(checkpoint, FusionOptions(tile=16, detail=0))
    np.testing.assert_allclose(fuser([under, over]), network, atol=1e-4)
    np.testing.assert_allclose(fuser([over, under]), network, atol=1e-4)
    detailed = load_fuser(checkpoint, FusionOptions(tile=16, tone_guard=False))([under, over])
    assert DETAIL_LEVELS > 0 and np.abs(detailed - network).max() > 0.05
    expected = transfer_detail(network, [under, over], DETAIL_LEVELS)
    np.testing.assert_allclose(detailed, expected, atol=1e-4)
    guarded = load_fuser(checkpoint, FusionOptions(tile=16))([under, over])  # then the tone guard's curve, if any
    np.testing.assert_allclose(guarded, tone_guard(expected, [under, over])(expected), atol=1e-3)


class BlurringFuser(Fuser):
    """A fuser whose network gives back the brighter input with its fine detail blurred away."""

    def pair(self, over, under, progress=None, shape=None):
        return cv2.GaussianBlur(over, (0, 0), 1.5)


@pytest.mark.parametrize("work_size", [None, 64])
def test_exposure_bands_made_before_the_model_give_the_same_fusion_and_are_used_once(work_size):
    over, under = exposure_pair(96, 128, seed=3)
    fuser = BlurringFuser(None, FusionOptions(tile=None, work_size=work_size))
    bands = exposure_bands([over, under], fuser.options)
    np.testing.assert_array_equal(fuser([over, under], bands=bands), fuser([over, under]))
    with pytest.raises(ValueError, match="used once"):
        fuser([over, under], bands=bands)
    assert exposure_bands([over, under], FusionOptions(detail=0)) is None


def test_no_exposure_bands_are_made_beforehand_where_the_detail_step_goes_in_strips(monkeypatch):
    from mefgan_tf import pyramid

    over, under = exposure_pair(96, 128, seed=3)
    fuser = BlurringFuser(None, FusionOptions(tile=None))
    whole = fuser([over, under])
    monkeypatch.setattr(pyramid, "DETAIL_STRIP_PIXELS", 96 * 128 // 3)
    assert exposure_bands([over, under], fuser.options) is None
    np.testing.assert_allclose(fuser([over, under], bands=None), whole, rtol=0, atol=1e-6)


def test_the_detail_of_a_photo_given_twice_is_its_own_whatever_the_network_softened():
    photo = np.clip(exposure_pair(64, 80, seed=9)[0] * 1.5, 0, 1)
    error = {levels: np.abs(BlurringFuser(None, FusionOptions(tile=None, detail=levels))([photo, photo]) - photo).mean()
             for levels in (0, 2, 4)}
    assert error[0] > 0.02 and error[4] < error[2] < error[0] / 3


def test_with_the_authors_io_a_fusion_is_the_networks_own_unless_detail_levels_are_given():
    photo = np.clip(exposure_pair(64, 80, seed=9)[0] * 1.5, 0, 1)
    network = BlurringFuser(None, FusionOptions(tile=None, detail=0))([photo, photo])
    for given, original_io, own in ((None, True, True), (None, False, False), (2, True, False)):
        fused = BlurringFuser(None, FusionOptions.resolve(detail=given, original_io=original_io))([photo, photo])
        assert np.array_equal(fused, network) == own, (given, original_io)


@pytest.mark.parametrize("given, message", [
    ({"tile": 7}, "--tile 7: the tile side must be a multiple of 8"),
    ({"tile": 70000}, "--tile 70000: the tile side must be a multiple of 8, from 16 to 65536"),
    ({"multi": "random"}, "--multi random: expected one of darkest-first, middle-out"),
    ({"detail": -1}, "--detail-levels -1: expected 0"),
    ({"detail": 17}, "--detail-levels 17: expected 0 .* to 16 levels"),
    ({"work_size": 10}, "--work-size 10: the working size must be 64"),
    ({"upsampling": "nearest"}, "upsampling nearest: expected one of bilinear, aligned"),
])
def test_an_invalid_fusion_option_is_refused_naming_the_option(given, message):
    with pytest.raises(CommandError, match=message):
        FusionOptions.resolve(**given)


@pytest.mark.parametrize("command, extra, tile", [
    ("fuse", ["a.png", "b.png", "-o", "f.png"], True),
    ("serve", [], True),
    ("evaluate", ["scenes", "--method", "mertens", "--out", "out"], False),
])
def test_every_fusing_command_takes_the_same_fusion_options(command, extra, tile):
    options = ["--multi", "middle-out", "--detail-levels", "2", "--work-size", "full"] + (["--tile", "64"] if tile else [])
    args = build_parser(command).parse_args([command, *extra, *options])
    assert fusion_options(args) == FusionOptions(tile=64 if tile else "auto", multi="middle-out", detail=2, work_size=None)
    assert fusion_options(build_parser(command).parse_args([command, *extra])) == FusionOptions()


def test_the_fusion_core_imports_neither_tensorflow_nor_a_model_loader():
    code = ("import sys, mefgan_tf.fusion; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax') "
            "or m in ('mefgan_tf.models', 'mefgan_tf.checkpoint', 'mefgan_tf.tflite')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


class BrightestPair(Strategy):
    """A test strategy: only the two brightest exposures, the brighter one first."""

    summary = "only the two brightest"

    def order(self, count: int) -> list[int]:
        return [count - 1, count - 2]


def test_a_new_strategy_is_one_class_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "brightest-pair", BrightestPair)
    calls = []

    class Averaging(Fuser):
        def pair(self, over, under, progress=None, shape=None):
            calls.append((round(luminance(over), 2), round(luminance(under), 2)))
            return (over + under) / 2

    images = [np.full((16, 16, 3), v, np.float32) for v in (0.3, 0.9, 0.1, 0.6)]
    fused = Averaging(None, fusion_options(build_parser("fuse").parse_args(
        ["fuse", "a.png", "b.png", "-o", "f.png", "--multi", "brightest-pair", "--detail-levels", "0"])))(images)
    assert calls == [(0.9, 0.6)]
    assert "'brightest-pair': only the two brightest" in multi_help()
    np.testing.assert_allclose(fused, 0.75, atol=1e-3)  # grey exposures: the luma of the fusion


@pytest.mark.parametrize("frames", [2, 4])
def test_the_detail_transfer_plans_at_least_the_memory_it_is_measured_to_hold(frames):
    import tracemalloc

    from mefgan_tf.pyramid import detail_memory, detail_onto, residual_size

    height, width, levels = 300, 400, 6
    images = [np.random.default_rng(i).random((height, width, 3), dtype=np.float32) for i in range(frames)]
    low = np.zeros((*residual_size(height, width, levels), 3), np.float32)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        detail_onto(low, images, levels)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak <= detail_memory(height, width, frames, levels) <= 2 * peak


def test_the_memory_check_counts_the_detail_transfer_before_any_work(monkeypatch):
    over, under = exposure_pair(64, 80)
    pair_alone = planning.memory_needed(64, 80, None)
    monkeypatch.setattr(planning, "available_memory", lambda: pair_alone + 1024)
    BlurringFuser(None, FusionOptions(tile=None, detail=0))([over, under])  # the network's own fusion fits
    with pytest.raises(CommandError, match="fusing 80x64 needs about"):
        BlurringFuser(None, FusionOptions(tile=None))([over, under])


def test_attention_rows_run_in_blocks_give_the_attention_branch_of_one_call(stages, monkeypatch):
    monkeypatch.setattr(fusion.tiles, "ATTENTION_BLOCKS", dataclasses.replace(fusion.tiles.ATTENTION_BLOCKS, inference=100))  # 88 x 120 px: 165 rows, 2 calls
    x = network_input(*exposure_pair(85, 117, seed=4))
    np.testing.assert_allclose(attention_maps(stages, x), stages.attention_half(x), atol=1e-5)


class RecordedProgress:
    def __init__(self) -> None:
        self.steps: list[tuple[float, str]] = []

    def advance(self, work: float, step: str) -> None:
        self.steps.append((work, step))


def test_progress_covers_attention_blocks_then_tiles_and_adds_up_to_the_pair_work(stages, monkeypatch):
    monkeypatch.setattr(fusion.tiles, "ATTENTION_BLOCKS", dataclasses.replace(fusion.tiles.ATTENTION_BLOCKS, inference=64))
    over, under = exposure_pair(100, 70, seed=5)  # padded 104 x 72: 117 attention rows, 2 calls
    progress = RecordedProgress()
    fuse_pair(stages, over, under, tile=48, progress=progress)
    names = [step for _, step in progress.steps]
    assert names == ["attention 1/2", "attention 2/2"] + [f"tile {i}/6" for i in range(1, 7)]
    assert sum(work for work, _ in progress.steps) == pytest.approx(pair_work(100, 70))


def test_progress_of_several_exposures_is_one_bar_that_ends_full(stages, monkeypatch):
    bars = []

    class Recorder(fusion.FusionProgress):
        def __init__(self, total, enabled=None, desc="fusing", stop=None):
            super().__init__(total, enabled, desc, stop)
            bars.append(self)

    monkeypatch.setattr(fusion.fuser, "FusionProgress", Recorder)
    images = [exposure_pair(40, 56, seed=s)[0] * g for s, g in ((6, 0.2), (7, 0.5), (8, 0.9))]
    detail = DETAIL_COST * 40 * 56
    Fuser(stages, FusionOptions(tile=None), progress=True)(images)  # blend: the darkest and the brightest each with the middle one
    assert len(bars) == 1 and bars[0].bar.n == pytest.approx(bars[0].bar.total) == pytest.approx(2 * pair_work(40, 56) + detail)
    Fuser(stages, FusionOptions(tile=None, multi="middle-out", detail=0), progress=True)(images)  # a fold: as many fusions
    assert len(bars) == 2 and bars[1].bar.n == pytest.approx(bars[1].bar.total) == pytest.approx(2 * pair_work(40, 56))


def test_a_missing_shipped_generator_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "checkpoints" / "reference")
    with pytest.raises(CommandError, match="the shipped generator is missing.*--model"):
        load_fuser()
    with pytest.raises(CommandError, match="no such model"):
        load_fuser(tmp_path / "elsewhere")


def peak_rss_growth(action) -> int:
    """Bytes by which the process's peak resident memory rises while ``action`` runs (Linux)."""

    def field(name: str) -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(name):
                    return int(line.split()[1]) * 1024
        raise KeyError(name)

    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak (VmHWM) to the current RSS
    before = field("VmRSS:")
    action()
    return field("VmHWM:") - before


@pytest.mark.slow
def test_tiled_fusion_of_a_large_pair_keeps_peak_memory_far_below_untiled_needs(stages):
    over, under = exposure_pair(512, 512, seed=4)
    fuse_pair(stages, over[:64, :64], under[:64, :64], tile=32)  # trace first
    growth = peak_rss_growth(lambda: fuse_pair(stages, over, under, tile=128))
    untiled_need = 512 * 512 * planning.BYTES_PER_PIXEL
    assert growth < untiled_need / 4, (growth, untiled_need)


@pytest.mark.parametrize("multi, expected", [
    ("darkest-first", [0, 1, 2, 3, 4]),
    ("brightest-first", [4, 3, 2, 1, 0]),
    ("middle-out", [2, 1, 3, 0, 4]),
    ("extremes", [0, 4]),
])
def test_each_way_to_fuse_several_exposures_folds_them_in_its_order(multi, expected):
    levels = [0.5, 0.1, 0.9, 0.3, 0.7]  # given out of order: ranks 2, 0, 4, 1, 3
    ranked = sorted(levels)
    images = [np.full((8, 8, 3), v, np.float32) for v in levels]
    calls = []

    def pair(over, under):  # results are negative, so each call shows which exposure came in
        calls.append([float(x[0, 0, 0]) for x in (over, under)])
        return np.full((8, 8, 3), -len(calls), np.float32)

    fused = fuse_exposures(pair, images, multi)
    came_in = [sorted(calls[0])] + [[v for v in call if v >= 0] for call in calls[1:]]
    assert [v for step in came_in for v in step] == pytest.approx(sorted(ranked[i] for i in expected[:2]) + [ranked[i] for i in expected[2:]])
    assert calls[0][0] > calls[0][1]  # the brighter one is the over-exposed input
    assert float(fused[0, 0, 0]) == -(len(expected) - 1)


def test_blend_fuses_each_exposure_with_the_middle_one_then_blends_each_fusion_where_its_frame_is_well_exposed():
    from mefgan_tf.pyramid import exposure_weight, pyramid_blend

    levels = [0.5, 0.1, 0.9, 0.3, 0.7]  # the middle exposure is 0.5
    rng = np.random.default_rng(0)
    images = [np.clip(v + rng.normal(0, 0.05, (16, 16, 3)), 0, 1).astype(np.float32) for v in levels]
    calls, outputs = [], []

    def pair(over, under):
        calls.append((round(float(over.mean()), 1), round(float(under.mean()), 1)))
        outputs.append(np.clip((over + under) / 2 + rng.normal(0, 0.05, over.shape), 0, 1).astype(np.float32))
        return outputs[-1]

    fused = fuse_exposures(pair, images, "blend")
    assert calls == [(0.5, 0.3), (0.7, 0.5), (0.5, 0.1), (0.9, 0.5)]
    brought = [images[i] for i in (3, 4, 1, 2)]  # the frame each fusion brought beside the middle one
    np.testing.assert_allclose(fused, pyramid_blend(outputs, [exposure_weight(f) for f in brought]), atol=1e-6)
    assert fuse_exposures(lambda over, under: over[:1], images[:2], "blend").shape == (1, 16, 3)  # two: one fusion


def test_blend_gives_back_a_photo_given_three_times_by_a_model_that_keeps_it():
    rng = np.random.default_rng(1)
    photo = rng.uniform(0.1, 0.9, (4, 4, 3)).repeat(8, 0).repeat(8, 1).astype(np.float32)
    fused = fuse_exposures(lambda over, under: over, [photo, photo.copy(), photo.copy()], "blend")
    np.testing.assert_allclose(fused, photo, atol=1e-4)


def test_a_fusion_that_cannot_fit_in_memory_is_refused_first_saying_what_it_needs_and_what_fits():
    gib = 1 << 30
    planning.check_memory(4000, 6000, 512, available=24 * gib)  # a 24 MP photo fits in tiles
    with pytest.raises(CommandError, match=r"fusing 12000x12000 needs about 2\d\.\d GiB of memory, but 8\.0 GiB are "
                       r"available: resize the exposures \(about (\d+)x\1 would fit\) or free memory"):
        planning.check_memory(12000, 12000, 512, available=8 * gib)
    with pytest.raises(CommandError, match=r"needs about .* GiB .*: fuse in tiles \(--tile 512"):
        planning.check_memory(4000, 6000, None, available=24 * gib)  # untiled needs 85 GiB; tiled fits


def test_a_blend_of_several_exposures_plans_for_holding_its_fusions():
    gib = 1 << 30
    planning.check_memory(4000, 6000, 512, available=8 * gib)  # a 24 MP pair fits in 8 GiB
    blend = blend_memory(4000, 6000, fusions=6)  # 7 exposures
    assert 3.4 * gib < blend < 6 * gib  # measured 151 B/px for 6 fusions at 6 MP: 3.4 GiB at 24 MP
    with pytest.raises(CommandError, match=r"fusing 6000x4000 needs about \d+\.\d GiB of memory, but 8\.0 GiB"):
        planning.check_memory(4000, 6000, 512, available=8 * gib, extra=blend)


@pytest.mark.parametrize("entry", ["fuse command", "python api", "fuser"])
def test_every_entry_point_checks_memory_before_any_work(monkeypatch, tmp_path, capsys, stages, entry):
    from mefgan_tf import api
    from mefgan_tf.cli import main
    from mefgan_tf.images import write_image

    over, under = exposure_pair(40, 48)
    monkeypatch.setattr(planning, "available_memory", lambda: 1 << 20)
    monkeypatch.setattr(fusion.fuser, "fuse_pair", lambda *args, **kwargs: pytest.fail("fusion started"))
    expected = r"fusing 48x40 needs about 0\.\d GiB of memory, but 0\.0 GiB are available"
    if entry == "fuse command":
        paths = [write_image(tmp_path / f"{n}.png", image) for n, image in (("o", over), ("u", under))]
        assert main(["fuse", "-q", *map(str, paths), "-o", str(tmp_path / "f.png")]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("mefgan fuse: error: fusing 48x40 needs about")
        assert not (tmp_path / "f.png").exists()
    else:
        call = (lambda: api.fuse([over, under], model=Fuser(stages))) if entry == "python api" else (
            lambda: Fuser(stages, FusionOptions(tile=None))([over, under]))
        with pytest.raises(CommandError, match=expected):
            call()
