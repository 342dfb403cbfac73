"""The shipped generator (checkpoints/reference) loads and fuses the sample pair plausibly.

Floors measured on astronaut at 256 px when the model was shipped: MEF-SSIM (multi-scale) 0.881,
PSNR_I against the photo the pair was made from 25.9 dB, mean luminance 0.457 between the inputs'
0.234 and 0.670. A damaged or untrained file falls far below them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mefgan_tf import metrics
from mefgan_tf.checkpoint import load_generator
from mefgan_tf.images import luminance, to_float, to_uint8
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
    assert metrics.mef_ms_ssim(over, under, fused) > 0.86
    assert metrics.psnr_i(fused, photo) > 24.0


def test_shipped_generator_records_its_provenance():
    meta = json.loads((REFERENCE / "mefgan.json").read_text())
    log = json.loads((REFERENCE / "training_log.json").read_text())
    assert meta["step"] == log["step"] > 0
    assert meta["config"]["epochs"] == log["config"]["epochs"]
    assert (REFERENCE / "README.md").exists()
    assert np.isfinite([e["val_content"] for e in log["epochs"]]).all()
