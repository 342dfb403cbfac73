"""The shipped generator (checkpoints/reference) loads and fuses the sample pair and real pairs well.

Floors measured when the model was shipped (stage 7: pairs of every exposure gap, a frame with
itself included, the last batches trained with G's batch norm on its moving statistics):
- astronaut at 256 px: MEF-SSIM (multi-scale) 0.964, PSNR_I against the photo the pair was made
  from 18.6 dB (the model aims at a Mertens-like fusion, not at that photo; stage 6: 0.965 /
  16.5 dB), mean luminance 0.492 between the inputs' 0.234 and 0.670;
- SICE pairs 1 and 2 of the original's test set shrunk to 512 px, through `mefgan fuse`'s fusion:
  MEF-SSIM 0.990 / 0.971, Q^AB/F 0.788 / 0.784, mean level 128.4 / 108.3 (the network alone: 0.985
  / 0.969, 0.652 / 0.651, 129.5 / 111.1; the first, synthetic-bracket model: 0.905 / 0.767, 0.361 /
  0.224, 95.7 / 58.4);
- a photo fused with itself, a pair one stop apart, constant grey pairs: see the constants below,
  for the network alone and for `mefgan fuse` (the network plus 4 levels of the exposures' detail).
A damaged, untrained or regressed file falls below them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mefgan_tf import metrics
from mefgan_tf.checkpoint import load_generator
from mefgan_tf.fusion import Fuser, FusionOptions, fuse_pair
from mefgan_tf.images import luminance, read_image_uint8, shrink, to_float, to_uint8
from mefgan_tf.models import load_fuser, load_stages
from mefgan_tf.pyramid import DETAIL_LEVELS
from mefgan_tf.samples import exposed, sample_pair, sample_photo
from mefgan_tf.stages import generator_stages

REFERENCE = Path(__file__).resolve().parents[1] / "checkpoints" / "reference"
# Any two exposures (see the docstring): PSNR of a photo fused with itself, MEF-SSIM of a pair one
# stop apart, by detail levels (0: the network alone), and the network's own channel spread on
# constant grey pairs (8-bit levels).
SAME_FLOOR = {  # measured 27.6 / 28.8 dB alone (stage 6: 24.5 / 28.5; stage 5: 15.2 / 15.7), 33.1 / 32.5 with detail
    0: {"astronaut": 26.5, "coffee": 27.5}, DETAIL_LEVELS: {"astronaut": 32.0, "coffee": 31.5}}
CLOSE_FLOOR = {  # measured 0.987 / 0.986 alone (stage 6: 0.984 / 0.975), 0.991 / 0.995 with detail (Mertens 0.994 / 0.997)
    0: {"astronaut": 0.98, "coffee": 0.98}, DETAIL_LEVELS: {"astronaut": 0.985, "coffee": 0.99}}
GREY_SPREAD_CEILING = 12  # measured at most 10 over 15 constant pairs (stage 6: 27; stage 5: 99)


@pytest.fixture(scope="module")
def fused_sample():
    generator = load_generator(REFERENCE)
    under, over = sample_pair("astronaut", max_side=256)
    photo = sample_photo("astronaut", max_side=256)
    fused = generator((to_float(over)[None], to_float(under)[None])).numpy()[0]
    return under, over, to_uint8(fused), photo


def test_shipped_generator_exposure_lies_between_the_inputs(fused_sample):
    under, over, fused, _ = fused_sample
    assert luminance(under) + 0.1 < luminance(fused) < luminance(over) - 0.1


def test_shipped_generator_scores_above_the_measured_floors(fused_sample):
    under, over, fused, photo = fused_sample
    assert metrics.mef_ms_ssim(over, under, fused) > 0.955
    assert metrics.psnr_i(fused, photo) > 17.5


@pytest.mark.slow
@pytest.mark.parametrize("pair, mef_ssim, qabf, level", [(1, 0.98, 0.77, 125.0), (2, 0.965, 0.77, 105.0)])
def test_shipped_generator_fuses_real_sice_pairs_above_the_measured_floors(shared_data, pair, mef_ssim, qabf, level):
    folder = shared_data("original_mefgan", "test_imgs")
    under = shrink(read_image_uint8(folder / f"u{pair}.JPG"), 512)
    over = shrink(read_image_uint8(folder / f"o{pair}.JPG"), 512)
    fused = to_uint8(load_fuser(REFERENCE)([to_float(under), to_float(over)]))
    assert fused.shape == under.shape
    assert metrics.mef_ms_ssim(over, under, fused) > mef_ssim
    assert metrics.qabf(over, under, fused) > qabf
    assert metrics.mean_level(fused) > level


@pytest.mark.slow
@pytest.mark.parametrize("detail", [0, DETAIL_LEVELS])
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_a_photo_fused_with_itself_comes_back_close_to_itself(name, detail):
    photo = sample_photo(name, max_side=256)
    fused = to_uint8(load_fuser(REFERENCE, FusionOptions(tile=None, detail=detail))([to_float(photo), to_float(photo)]))
    assert metrics.psnr_rgb(fused, photo) > SAME_FLOOR[detail][name]


@pytest.mark.slow
@pytest.mark.parametrize("detail", [0, DETAIL_LEVELS])
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_a_close_pair_one_stop_apart_fuses_near_mertens(name, detail):
    photo = sample_photo(name, max_side=256)
    brighter = exposed(photo, 1.0)
    fused = to_uint8(load_fuser(REFERENCE, FusionOptions(tile=None, detail=detail))([to_float(photo), to_float(brighter)]))
    assert metrics.mef_ms_ssim(brighter, photo, fused) > CLOSE_FLOOR[detail][name]


def test_grey_pairs_stay_grey_and_the_network_alone_keeps_them_near_neutral():
    stages = load_stages(REFERENCE)
    spreads = []
    for low, high in ((0.1, 0.9), (0.3, 0.6), (0.5, 0.5)):
        under, over = (np.full((64, 64, 3), v, np.float32) for v in (low, high))
        assert np.ptp(to_uint8(Fuser(stages, FusionOptions(tile=None))([under, over])).astype(int), axis=-1).max() == 0
        spreads.append(np.ptp(to_uint8(fuse_pair(stages, over, under)).astype(int), axis=-1).max())
    assert max(spreads) <= GREY_SPREAD_CEILING


@pytest.mark.slow
def test_flash_attention_fuses_the_same_8_bit_image_as_row_by_row_softmax():
    under, over = (to_float(image) for image in sample_pair("astronaut", max_side=256))
    fused = {}
    for method in ("flash", "rows"):  # 1,024 attention rows: 8 query blocks, 4 key blocks
        generator = load_generator(REFERENCE, attention_chunk=128)
        generator.attention.method = method  # the row-by-row softmax: kept for this check and the benchmark
        fused[method] = to_uint8(Fuser(generator_stages(generator), FusionOptions(tile=None))([under, over]))
    assert np.abs(fused["flash"].astype(int) - fused["rows"].astype(int)).max() <= 1


def test_shipped_generator_records_its_provenance():
    meta = json.loads((REFERENCE / "mefgan.json").read_text())
    log = json.loads((REFERENCE / "training_log.json").read_text())
    assert meta["step"] == log["step"] > 0
    assert meta["config"]["epochs"] == log["config"]["epochs"]
    assert (REFERENCE / "README.md").exists()
    assert np.isfinite([e["val_content"] for e in log["epochs"]]).all()
