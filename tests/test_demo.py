"""`mefgan demo` (`make demo`): a bundled photo becomes an exposure pair, fused and compared side by side."""
from __future__ import annotations

import numpy as np
import pytest

from mefgan_tf import models
from mefgan_tf.checkpoint import save_model_checkpoint
from mefgan_tf.cli import main
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.demo import GAP, LABEL_HEIGHT
from mefgan_tf.discriminator import build_discriminator
from mefgan_tf.generator import build_generator
from mefgan_tf.images import luminance, read_image, read_image_raw, to_uint8
from mefgan_tf.models import load_fuser
from mefgan_tf.samples import SAMPLE_IMAGES, exposed, sample_pair, sample_photo


@pytest.fixture(scope="module")
def model(tmp_path_factory, random_tf1_weights, load_tf1_weights):
    g, d = build_generator(MEFGANConfig(attention_chunk=64)), build_discriminator()
    load_tf1_weights(random_tf1_weights(g, d, seed=11), g, d)
    return save_model_checkpoint(tmp_path_factory.mktemp("model") / "run", g)


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_sample_pairs_come_from_photos_the_package_ships(name):
    photo = sample_photo(name, max_side=96)
    under, over = sample_pair(name, ev=2.0, max_side=96)
    assert max(photo.shape[:2]) == 96 and under.shape == over.shape == photo.shape
    assert under.dtype == over.dtype == np.uint8
    assert luminance(under) < luminance(photo) < luminance(over)


def test_exposure_scales_linear_light_by_two_to_the_ev():
    grey = np.full((2, 2, 3), 119, np.uint8)  # sRGB 119/255 is 0.184 in linear light, about 18% grey
    assert exposed(grey, 0.0)[0, 0, 0] == 119
    assert exposed(grey, 1.0)[0, 0, 0] == 164  # 0.369 linear
    assert exposed(grey, -1.0)[0, 0, 0] == 86  # 0.092 linear
    assert exposed(grey, 3.0)[0, 0, 0] == 255  # clipped at white


@pytest.mark.slow
def test_demo_writes_the_pair_its_fusion_and_a_side_by_side_comparison(model, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--model", str(model), "--max-side", "64"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["compare.png", "fused.png", "over.png", "under.png"]
    under, over, fused = (read_image(out / f"{n}.png") for n in ("under", "over", "fused"))
    assert under.shape == over.shape == fused.shape == (64, 64, 3)
    expected = to_uint8(load_fuser(model)([under, over]))
    np.testing.assert_array_equal(read_image_raw(out / "fused.png"), expected)
    compare = read_image_raw(out / "compare.png")
    assert compare.shape == (64 + LABEL_HEIGHT, 3 * 64 + 2 * GAP, 3)
    np.testing.assert_array_equal(compare[LABEL_HEIGHT:, 2 * (64 + GAP) :], expected)
    # `make demo` runs again into the same folder: it passes --overwrite
    assert main(["demo", "--out", str(out), "--model", str(model), "--max-side", "64"]) == 1
    assert main(["demo", "--out", str(out), "--model", str(model), "--max-side", "64", "--overwrite"]) == 0


def test_demo_without_a_shipped_generator_explains_and_writes_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "checkpoints" / "reference")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mefgan demo: error: the shipped generator is missing")
    assert not (tmp_path / "demo").exists()
