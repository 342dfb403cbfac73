"""The shipped generator (checkpoints/reference) loads and fuses the sample pair and real pairs well.

Floors measured when the model was shipped (stage 5: stage 4 fine-tuned with the MEF-SSIM loss):
- astronaut at 256 px: MEF-SSIM (multi-scale) 0.949, PSNR_I against the photo the pair was made
  from 20.6 dB (the model aims at a Mertens-like fusion, not at that photo), mean luminance
  0.465 between the inputs' 0.234 and 0.670;
- SICE pairs 1 and 2 of the original's test set shrunk to 512 px: MEF-SSIM 0.983 / 0.963, Q^AB/F
  0.644 / 0.629, mean level 129.1 / 110.3 (the first, synthetic-bracket model: 0.905 / 0.767,
  0.361 / 0.224, 95.7 / 58.4).
A damaged, untrained or regressed file falls below them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mefgan_tf import metrics
from mefgan_tf.checkpoint import load_generator
from mefgan_tf.fusion import Fuser, load_fuser
from mefgan_tf.images import luminance, read_image_uint8, shrink, to_float, to_uint8
from mefgan_tf.models import load_stages
from mefgan_tf.samples import sample_pair, sample_photo

REFERENCE = Path(__file__).resolve().parents[1] / "checkpoints" / "reference"


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
    assert metrics.mef_ms_ssim(over, under, fused) > 0.94
    assert metrics.psnr_i(fused, photo) > 20.0


@pytest.mark.parametrize("pair, mef_ssim, qabf, level", [(1, 0.97, 0.63, 125.0), (2, 0.95, 0.61, 105.0)])
def test_shipped_generator_fuses_real_sice_pairs_above_the_measured_floors(shared_data, pair, mef_ssim, qabf, level):
    folder = shared_data("original_mefgan", "test_imgs")
    under = shrink(read_image_uint8(folder / f"u{pair}.JPG"), 512)
    over = shrink(read_image_uint8(folder / f"o{pair}.JPG"), 512)
    fused = to_uint8(load_fuser(REFERENCE)([to_float(under), to_float(over)]))
    assert fused.shape == under.shape
    assert metrics.mef_ms_ssim(over, under, fused) > mef_ssim
    assert metrics.qabf(over, under, fused) > qabf
    assert metrics.mean_level(fused) > level


def test_flash_attention_fuses_the_same_8_bit_image_as_row_by_row_softmax():
    under, over = (to_float(image) for image in sample_pair("astronaut", max_side=512))
    fused = {
        method: to_uint8(Fuser(load_stages(REFERENCE, attention_chunk=512, attention_method=method), tile=None)([under, over]))
        for method in ("flash", "rows")
    }  # 4,096 attention rows: 8 query blocks, 4 key blocks
    assert np.abs(fused["flash"].astype(int) - fused["rows"].astype(int)).max() <= 1


def test_shipped_generator_records_its_provenance():
    meta = json.loads((REFERENCE / "mefgan.json").read_text())
    log = json.loads((REFERENCE / "training_log.json").read_text())
    assert meta["step"] == log["step"] > 0
    assert meta["config"]["epochs"] == log["config"]["epochs"]
    assert (REFERENCE / "README.md").exists()
    assert np.isfinite([e["val_content"] for e in log["epochs"]]).all()
