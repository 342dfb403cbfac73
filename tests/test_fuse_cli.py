"""`mefgan fuse`: any order, any size, common files, batch folders, one-line errors, no partial output."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mefgan_tf import models
from mefgan_tf.cli import main
from mefgan_tf.fusion import FusionOptions, fuse_pair, strategy
from mefgan_tf.images import bytescale, read_image, read_image_raw, to_float, write_image
from mefgan_tf.models import load_fuser
from mefgan_tf.pyramid import DETAIL_LEVELS, transfer_detail
from mefgan_tf.tone import tone_guard


# stages, checkpoint and savedmodel (`mefgan export` of the checkpoint), of one seeded generator: tests/conftest.py
@pytest.fixture(scope="module")
def model(checkpoint) -> str:
    return str(checkpoint)


def finished(network: np.ndarray, frames: list[np.ndarray], levels: int) -> np.ndarray:
    """What `mefgan fuse` makes of the network's fusion: the exposures' detail, then the tone guard's curve."""
    if not levels:
        return network
    detailed = transfer_detail(network, frames, levels)
    return tone_guard(detailed, frames)(detailed)


def scene(height: int = 37, width: int = 53, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.random((height // 4 + 1, width // 4 + 1, 3), dtype=np.float32), (width, height))


def write_bracket(folder: Path, gains=(0.3, 1.8), ext: str = ".png", bit_depth: int = 8, seed: int = 0) -> list[Path]:
    base = scene(seed=seed)
    paths = []
    for i, gain in enumerate(gains):
        paths.append(write_image(folder / f"exposure{i}{ext}", np.clip(base * gain, 0, 1), bit_depth=bit_depth))
    return paths


def fuse(*args: str) -> int:
    return main(["fuse", "-q", *map(str, args)])


def test_two_exposures_in_either_order_fuse_to_an_image_of_exactly_the_input_size(model, stages, tmp_path):
    under, over = write_bracket(tmp_path)
    assert fuse(under, over, "-o", tmp_path / "a.png", "--model", model) == 0
    assert fuse(over, under, "-o", tmp_path / "b.png", "--model", model) == 0
    a, b = read_image_raw(tmp_path / "a.png"), read_image_raw(tmp_path / "b.png")
    assert a.shape == (37, 53, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    network = fuse_pair(stages, read_image(over), read_image(under))
    expected = finished(network, [read_image(under), read_image(over)], DETAIL_LEVELS)
    assert np.abs(to_float(a) - expected).max() <= 0.5 / 255 + 1e-6


def test_detail_levels_choose_how_much_detail_comes_from_the_exposures(model, stages, tmp_path, capsys):
    under, over = write_bracket(tmp_path)
    frames = [read_image(under), read_image(over)]
    network = fuse_pair(stages, frames[1], frames[0])
    for levels in (0, 2):
        assert fuse(under, over, "-o", tmp_path / f"{levels}.png", "--model", model, "--detail-levels", levels) == 0
        expected = finished(network, frames, levels)
        assert np.abs(read_image(tmp_path / f"{levels}.png") - expected).max() <= 0.5 / 255 + 1e-6
    assert fuse(under, over, "-o", tmp_path / "bad.png", "--model", model, "--detail-levels", "-1") == 1
    assert "--detail-levels -1: expected 0 (the network's own fusion) to 16 levels" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()


def test_tile_option_gives_the_same_image_as_untiled_inference(model, tmp_path):
    paths = write_bracket(tmp_path, ext=".tif", bit_depth=16)
    assert fuse(*paths, "-o", tmp_path / "tiled.tif", "--model", model, "--tile", "16") == 0
    assert fuse(*paths, "-o", tmp_path / "whole.tif", "--model", model, "--tile", "0") == 0
    tiled, whole = read_image(tmp_path / "tiled.tif"), read_image(tmp_path / "whole.tif")
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_sixteen_bit_inputs_give_a_sixteen_bit_output_unless_eight_bits_are_asked_for(model, tmp_path):
    paths = write_bracket(tmp_path, ext=".png", bit_depth=16)
    assert fuse(*paths, "-o", tmp_path / "deep.png", "--model", model) == 0
    assert fuse(*paths, "-o", tmp_path / "flat.png", "--model", model, "--bit-depth", "8") == 0
    assert fuse(*paths, "-o", tmp_path / "deep.jpg", "--model", model) == 0  # JPEG holds 8 bits
    assert read_image_raw(tmp_path / "deep.png").dtype == np.uint16
    assert read_image_raw(tmp_path / "flat.png").dtype == np.uint8
    assert read_image_raw(tmp_path / "deep.jpg").dtype == np.uint8


def test_jpeg_grey_and_alpha_inputs_are_read_as_rgb(model, stages, tmp_path):
    base = (scene() * 255).astype(np.uint8)
    grey = cv2.cvtColor(base, cv2.COLOR_RGB2GRAY) // 3
    rgba = np.dstack([np.clip(base.astype(int) * 2, 0, 255).astype(np.uint8)[..., ::-1], np.full(grey.shape, 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "dark.png"), grey)
    cv2.imwrite(str(tmp_path / "bright.png"), rgba)
    cv2.imwrite(str(tmp_path / "mid.jpg"), base[..., ::-1])
    paths = [tmp_path / "bright.png", tmp_path / "dark.png", tmp_path / "mid.jpg"]
    assert fuse(*paths, "-o", tmp_path / "out.png", "--model", model) == 0
    images = [read_image(p) for p in paths]
    expected = finished(strategy("blend")(lambda o, u: fuse_pair(stages, o, u), images), images, DETAIL_LEVELS)
    assert np.abs(read_image(tmp_path / "out.png") - expected).max() <= 0.5 / 255 + 1e-6


def test_a_savedmodel_from_export_can_be_the_model(model, savedmodel, tmp_path):
    paths = write_bracket(tmp_path)
    assert fuse(*paths, "-o", tmp_path / "ckpt.png", "--model", model) == 0
    assert fuse(*paths, "-o", tmp_path / "saved.png", "--model", savedmodel, "--tile", "16") == 0
    np.testing.assert_array_equal(read_image_raw(tmp_path / "ckpt.png"), read_image_raw(tmp_path / "saved.png"))


def test_pairs_mode_fuses_every_scene_folder_and_reports_each_one_it_cannot(model, tmp_path, capsys):
    root = tmp_path / "scenes"
    write_bracket(root / "beach", seed=1)
    write_bracket(root / "house", gains=(0.2, 0.9, 1.7), ext=".jpg", seed=2)
    write_bracket(root / "lonely", gains=(0.5,))
    write_bracket(root / "Label", gains=(1.0,))  # SICE reference images
    (root / "beach" / "notes.txt").write_text("shot at dusk")
    out = tmp_path / "fused"
    assert fuse("--pairs", root, "-o", out, "--model", model) == 1
    assert sorted(p.name for p in out.iterdir()) == ["beach.png", "house.png"]
    assert read_image(out / "house.png").shape == (37, 53, 3)
    err = capsys.readouterr().err
    assert "lonely: need at least two exposures" in err
    assert "skipping" in err and "Label" in err and "notes.txt" in err
    assert err.strip().splitlines()[-1] == "mefgan fuse: error: 1 of 3 scenes failed: lonely (reasons above)"


def test_without_a_model_the_shipped_generator_is_used_or_its_absence_explained(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "checkpoints" / "reference")
    paths = write_bracket(tmp_path)
    assert fuse(*paths, "-o", tmp_path / "out.png") == 1
    err = capsys.readouterr().err
    assert "the shipped generator is missing" in err and "--model" in err
    assert not (tmp_path / "out.png").exists()


def test_original_io_fuses_the_top_left_multiple_of_8_and_stretches_the_result(model, stages, tmp_path):
    under, over = write_bracket(tmp_path)  # 53 x 37: not multiples of 8
    assert fuse(under, over, "-o", tmp_path / "orig.png", "--model", model, "--original-io") == 0
    written = read_image_raw(tmp_path / "orig.png")
    assert written.shape == (32, 48, 3) and written.dtype == np.uint8
    assert written.min() == 0 and written.max() == 255
    crop = [read_image(p)[:32, :48] for p in (under, over)]
    np.testing.assert_array_equal(written, bytescale(load_fuser(model, FusionOptions(tile=None, detail=0))(crop)))
    # and the same as the generator on the crop (no detail transfer), within the float rounding of two code paths
    direct = bytescale(fuse_pair(stages, crop[1], crop[0]))
    assert np.abs(written.astype(int) - direct).max() <= 1 and np.mean(written == direct) > 0.99
    # the default pipeline keeps the whole image and does not stretch
    assert fuse(under, over, "-o", tmp_path / "ours.png", "--model", model) == 0
    ours = read_image_raw(tmp_path / "ours.png")
    assert ours.shape == (37, 53, 3) and (ours.min() > 0 or ours.max() < 255)


def test_original_io_writes_a_quality_75_jpeg_like_scipy_imsave(model, tmp_path):
    from PIL import Image

    under, over = write_bracket(tmp_path)
    assert fuse(under, over, "-o", tmp_path / "orig.jpg", "--model", model, "--original-io") == 0
    crop = [read_image(p)[:32, :48] for p in (under, over)]
    reference = tmp_path / "reference.jpg"
    Image.fromarray(bytescale(load_fuser(model, FusionOptions(tile=None, detail=0))(crop))).save(reference, quality=75)
    with Image.open(tmp_path / "orig.jpg") as written, Image.open(reference) as expected:
        assert written.format == "JPEG" and written.size == (48, 32)
        assert written.quantization == expected.quantization
        np.testing.assert_array_equal(np.asarray(written), np.asarray(expected))
    assert (tmp_path / "orig.jpg").read_bytes() == reference.read_bytes()


def test_original_io_with_pairs_writes_jpegs_unless_a_format_is_given(model, tmp_path):
    root = tmp_path / "scenes"
    write_bracket(root / "beach", seed=1)
    write_bracket(root / "house", gains=(0.2, 0.9, 1.7), seed=2)
    assert fuse("--pairs", root, "-o", tmp_path / "jpg", "--model", model, "--original-io") == 0
    assert sorted(p.name for p in (tmp_path / "jpg").iterdir()) == ["beach.jpg", "house.jpg"]
    assert fuse("--pairs", root, "-o", tmp_path / "png", "--model", model, "--original-io", "--format", "png") == 0
    beach = read_image_raw(tmp_path / "png" / "beach.png")
    assert beach.shape == (32, 48, 3) and beach.min() == 0 and beach.max() == 255
    single = tmp_path / "single.png"
    assert fuse(*sorted((root / "beach").iterdir()), "-o", single, "--model", model, "--original-io") == 0
    np.testing.assert_array_equal(beach, read_image_raw(single))


def test_original_io_refuses_sixteen_bits(model, tmp_path, capsys):
    under, over = write_bracket(tmp_path)
    assert fuse(under, over, "-o", tmp_path / "out.png", "--model", model, "--original-io", "--bit-depth", "16") == 1
    assert "--original-io writes 8-bit images" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_help_explains_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["fuse", "--help"])
    out = capsys.readouterr().out
    for option in ("--pairs", "--model", "--tile", "--bit-depth", "--format", "the shipped generator", "default: auto",
                   "--original-io", "bytescale"):
        assert option in out


def test_progress_is_one_bar_with_an_eta_when_asked_and_nothing_on_a_pipe_by_default(model, tmp_path, capsys):
    paths = write_bracket(tmp_path, gains=(0.3, 1.0, 1.8))
    assert main(["fuse", *map(str, paths), "-o", str(tmp_path / "quiet.png"), "--model", model]) == 0
    assert "fusing" not in capsys.readouterr().err  # stderr is captured here: not a terminal
    assert main(["fuse", *map(str, paths), "-o", str(tmp_path / "shown.png"), "--model", model, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "fusing:   0%|" in err and "<" in err  # the bar, with its ETA (elapsed<remaining)
    assert "attention 1/1" in err and "whole image" in err  # attention blocks, then the full-resolution stage


def test_overwrite_replaces_an_existing_output(model, tmp_path):
    under, over = write_bracket(tmp_path)
    (tmp_path / "out.png").write_bytes(b"old")
    assert fuse(under, over, "-o", tmp_path / "out.png", "--model", model) == 1
    assert (tmp_path / "out.png").read_bytes() == b"old"
    assert fuse(under, over, "-o", tmp_path / "out.png", "--model", model, "-y") == 0
    assert read_image_raw(tmp_path / "out.png").shape == (37, 53, 3)


def test_grey_exposures_fuse_to_a_grey_image_and_identical_ones_are_noted(model, tmp_path, capsys):
    rng = np.random.default_rng(0)
    grey = rng.random((24, 32, 1)).repeat(3, axis=-1)
    write_image(tmp_path / "dark.png", grey * 0.3)
    write_image(tmp_path / "bright.png", np.clip(grey * 1.8, 0, 1))
    common = ["--model", str(model), "--quiet"]
    assert main(["fuse", str(tmp_path / "dark.png"), str(tmp_path / "bright.png"), "-o", str(tmp_path / "g.png"), *common]) == 0
    fused = cv2.imread(str(tmp_path / "g.png"))
    assert np.ptp(fused.astype(int), axis=-1).max() == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mefgan fuse: note: {tmp_path / 'dark.png'}, {tmp_path / 'bright.png'}: the exposures are grey; "
                   "the fused image is made grey too"]
    assert main(["fuse", str(tmp_path / "dark.png"), str(tmp_path / "dark.png"), "-o", str(tmp_path / "s.png"), *common]) == 1
    assert "give each exposure once" in capsys.readouterr().err
    (tmp_path / "copy.png").write_bytes((tmp_path / "dark.png").read_bytes())
    assert main(["fuse", str(tmp_path / "dark.png"), str(tmp_path / "copy.png"), "-o", str(tmp_path / "s.png"), *common]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mefgan fuse: note: ") and "the exposures are identical" in err[0]


def test_float_tiffs_beyond_one_are_clipped_with_a_note(tmp_path, capsys):
    image = np.full((16, 16, 3), 1.7, np.float32)
    image[:8] = 0.25
    cv2.imwrite(str(tmp_path / "hdr.tif"), image)
    from mefgan_tf.cli import config_warnings_as_notes

    with config_warnings_as_notes("fuse"):
        read = read_image(tmp_path / "hdr.tif")
    assert read.max() == 1.0 and read[:8].mean() == pytest.approx(0.25, abs=1e-4)
    err = capsys.readouterr().err
    assert "mefgan fuse: note: " in err and "outside [0, 1] (up to 1.7) are clipped" in err
