"""`mefgan patches`: SICE, brackets and photos into an HDF5 patch file (data_prep)."""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from PIL import Image

from mefgan_tf import __version__
from mefgan_tf.cli import main
from mefgan_tf.cli.patches import configure, patch_options
from mefgan_tf.data_prep import build as build_mod
from mefgan_tf.data_prep.build import PatchOptions, build
from mefgan_tf.data_prep.patches import patch_grid
from mefgan_tf.data_prep.references import mertens_uint8 as fuse_mertens
from mefgan_tf.data_prep.sources import resize
from mefgan_tf.data_prep.synth import ExposureModel, expose, linear_to_srgb, srgb_to_linear
from mefgan_tf.errors import CommandError
from mefgan_tf.images import luminance, read_image_uint8

H, W = 96, 128  # generated scenes: 2 x 3 patches of 48 at stride 40


def parse(*argv: str) -> PatchOptions:
    """The options of `mefgan patches` with these arguments (small patches, no progress bar)."""
    parser = argparse.ArgumentParser()
    configure(parser)
    return patch_options(parser.parse_args(["--quiet", "--size", "48", "--stride", "40", *argv]))


def texture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A smooth random RGB image, uint8."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(40, 200, (h // 8, w // 8, 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def exposures(base: np.ndarray, gains: dict[str, float]) -> dict[str, np.ndarray]:
    return {name: np.clip(base.astype(np.float32) * g, 0, 255).astype(np.uint8) for name, g in gains.items()}


def make_sice_scene(part: Path, scene: str, seed: int, gains: dict[str, float] | None = None,
                    label_ext: str = ".JPG") -> dict[str, np.ndarray]:
    """Scene folder of PNG exposures and Label/<scene><label_ext>; returns frames and label arrays."""
    base = texture(seed)
    frames = exposures(base, gains or {"1.png": 1.0, "2.png": 0.3, "3.png": 1.6})
    for name, image in frames.items():
        save(part / scene / name, image)
    label_path = part / "Label" / f"{scene}{label_ext}"
    save(label_path, base)
    return {**frames, "label": read_image_uint8(label_path)}


def patches_of(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    with h5py.File(path, "r") as f:
        return f["data"][:], list(f["scenes"].asstr()[:]), f["scene"][:]


# ---- SICE --------------------------------------------------------------------------------------


def test_sice_scene_uses_brightest_and_darkest_by_luminance_not_name(tmp_path):
    # By name the first frame is "a", the last "c"; by luminance the brightest is "b", the darkest "a".
    frames = make_sice_scene(tmp_path / "sice", "7", seed=1, gains={"a.png": 0.25, "b.png": 1.7, "c.png": 0.9})
    out = tmp_path / "p.h5"
    build(parse("--sice", str(tmp_path / "sice"), "--out", str(out)))
    data, scenes, _ = patches_of(out)
    assert scenes == ["sice:sice/7"]
    np.testing.assert_array_equal(data[0, ..., 0:3], frames["b.png"][:48, :48])
    np.testing.assert_array_equal(data[0, ..., 3:6], frames["a.png"][:48, :48])
    np.testing.assert_array_equal(data[0, ..., 6:9], frames["label"][:48, :48])
    # the last patch of the 2 x 3 grid is at (40, 80)
    np.testing.assert_array_equal(data[-1, ..., 0:3], frames["b.png"][40:88, 80:128])


def test_output_is_uint8_nhwc_chunked_by_patch_with_attributes(tmp_path):
    make_sice_scene(tmp_path / "sice", "1", seed=2)
    make_sice_scene(tmp_path / "sice", "2", seed=3)
    out = tmp_path / "p.h5"
    summary = build(parse("--sice", str(tmp_path / "sice"), "--out", str(out), "--seed", "5"))
    assert summary.patches == {"train": 12, "val": 0} and summary.scenes["train"] == 2
    with h5py.File(out, "r") as f:
        data = f["data"]
        assert data.shape == (12, 48, 48, 9) and data.dtype == np.uint8
        assert data.chunks == (1, 48, 48, 9)
        np.testing.assert_array_equal(f["scene"][:], [0] * 6 + [1] * 6)
        attrs = dict(f.attrs)
    assert attrs["format"] == "mefgan-tf patches"
    assert attrs["layout"] == "NHWC uint8 over|under|gt"
    assert attrs["version"] == __version__
    assert list(attrs["sources"]) == [f"sice:{(tmp_path / 'sice').resolve()}"]
    assert (attrs["size"], attrs["stride"], attrs["scale"], attrs["seed"]) == (48, 40, 1.0, 5)
    np.testing.assert_allclose(attrs["ev_range"], [1.0, 3.0])


def test_sice_parent_of_part1_and_part2_with_any_case_label_extension(tmp_path):
    make_sice_scene(tmp_path / "SICE" / "Part1", "1", seed=4, label_ext=".JPG")
    make_sice_scene(tmp_path / "SICE" / "Part2", "1", seed=5, label_ext=".png")
    (tmp_path / "SICE" / "Part2" / "Label").rename(tmp_path / "SICE" / "Part2" / "label")
    out = tmp_path / "p.h5"
    summary = build(parse("--sice", str(tmp_path / "SICE"), "--out", str(out)))
    assert summary.skipped == []
    assert patches_of(out)[1] == ["sice:SICE/Part1/1", "sice:SICE/Part2/1"]


def test_scale_resizes_every_image_before_cutting(tmp_path):
    frames = make_sice_scene(tmp_path / "sice", "1", seed=6)
    out = tmp_path / "p.h5"
    summary = build(parse("--sice", str(tmp_path / "sice"), "--out", str(out), "--scale", "0.5", "--stride", "100"))
    assert summary.patches["train"] == 1  # 64x48 image: one 48 patch
    data = patches_of(out)[0]
    np.testing.assert_array_equal(data[0, ..., 0:3], resize(frames["3.png"], 0.5)[:48, :48])


def test_sice_layout_from_shared_brackets_picks_brightest_and_darkest(tmp_path, shared_data):
    brackets = shared_data("brackets")
    root = tmp_path / "sice"
    expected = {}
    for scene in sorted(p for p in brackets.iterdir() if p.is_dir())[:3]:
        frames = sorted(scene.glob("*.jpg"))
        (root / scene.name).mkdir(parents=True)
        for frame in frames:
            (root / scene.name / frame.name).symlink_to(frame)
        full = [read_image_uint8(f) for f in frames]
        small = [resize(image, 0.25) for image in full]
        lum = [luminance(s) for s in small]
        save(root / "Label" / f"{scene.name}.png", fuse_mertens(full))
        expected[scene.name] = (small[int(np.argmax(lum))], small[int(np.argmin(lum))])
    out = tmp_path / "p.h5"
    summary = build(parse("--sice", str(root), "--out", str(out), "--scale", "0.25", "--stride", "48"))
    assert summary.skipped == [] and summary.scenes["train"] == 3
    data, names, ids = patches_of(out)
    for i, name in enumerate(names):
        first = data[np.flatnonzero(ids == i)[0]]
        over, under = expected[name.split("/")[-1]]
        np.testing.assert_array_equal(first[..., 0:3], over[:48, :48])
        np.testing.assert_array_equal(first[..., 3:6], under[:48, :48])
        assert luminance(first[..., 0:3]) > luminance(first[..., 6:9]) > luminance(first[..., 3:6])


# ---- split -------------------------------------------------------------------------------------


def test_val_fraction_holds_out_whole_scenes_into_a_second_file(tmp_path):
    for i in range(5):
        make_sice_scene(tmp_path / "sice", str(i), seed=10 + i)
    out = tmp_path / "train.h5"
    summary = build(parse("--sice", str(tmp_path / "sice"), "--out", str(out), "--val-fraction", "0.4"))
    assert summary.scenes == {"train": 3, "val": 2} and summary.patches == {"train": 18, "val": 12}
    train, val = patches_of(out), patches_of(tmp_path / "train_val.h5")
    assert len(train[0]) == 18 and len(val[0]) == 12
    assert set(train[1]).isdisjoint(val[1]) and len(set(train[1]) | set(val[1])) == 5
    assert train[1] == sorted(train[1])  # the training scenes in the order they were found
    with h5py.File(tmp_path / "train_val.h5", "r") as f:
        assert f.attrs["split"] == "val"
    again = tmp_path / "again.h5"
    build(parse("--sice", str(tmp_path / "sice"), "--out", str(again), "--val-fraction", "0.4"))
    assert patches_of(tmp_path / "again_val.h5")[1] == val[1]  # same seed, same split


def test_a_source_given_twice_is_read_once_so_no_scene_is_in_both_files(tmp_path, capsys):
    for i in range(4):
        make_sice_scene(tmp_path / "sice", str(i), seed=20 + i)
    out = tmp_path / "train.h5"
    folder = str(tmp_path / "sice")
    summary = build(parse("--sice", folder, "--sice", folder + "/", "--out", str(out), "--val-fraction", "0.5"))
    assert summary.scenes == {"train": 2, "val": 2}
    assert set(patches_of(out)[1]).isdisjoint(patches_of(tmp_path / "train_val.h5")[1])
    assert f"--sice {folder}/ is given more than once; its scenes are read once" in capsys.readouterr().err


@pytest.mark.parametrize("val_fraction", ["0", "0.5"])
def test_a_folder_where_the_validation_file_goes_is_refused_before_anything_is_written(tmp_path, val_fraction):
    for i in range(2):
        make_sice_scene(tmp_path / "sice", str(i), seed=30 + i)
    (tmp_path / "p_val.h5").mkdir()
    with pytest.raises(CommandError, match="p_val.h5: is a folder, where this run would write or remove its validation file"):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "p.h5"), "--val-fraction", val_fraction, "-y"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p_val.h5", "sice"]


def test_unusable_scenes_hand_their_validation_place_to_the_next_usable_scene(tmp_path, capsys):
    for i in range(6):
        make_sice_scene(tmp_path / "sice", str(i), seed=40 + i)
    split = ("--val-fraction", "0.5", "--seed", "3")
    build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "all.h5"), *split))
    first = set(patches_of(tmp_path / "all_val.h5")[1])  # every scene usable: the seeded choice of 3 of 6
    assert len(first) == 3
    for name in sorted(first)[:2]:  # two held-out scenes become unreadable
        (tmp_path / "sice" / name.rsplit("/", 1)[1] / "1.png").write_bytes(b"not a png")
    summary = build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "p.h5"), *split))
    train, val = set(patches_of(tmp_path / "p.h5")[1]), set(patches_of(tmp_path / "p_val.h5")[1])
    assert summary.scenes == {"train": 2, "val": 2} and len(summary.skipped) == 2  # half of the 4 usable ones
    assert train.isdisjoint(val) and not (train | val) & set(sorted(first)[:2]) and sorted(first)[2] in val
    assert capsys.readouterr().err.count("warning: skipped") == 2


@pytest.mark.parametrize("seed", ["0", "1", "2"])
def test_a_split_left_with_one_usable_scene_writes_nothing(tmp_path, seed):
    for i in range(3):
        make_sice_scene(tmp_path / "sice", str(i), seed=50 + i)
    for name in ("0", "2"):
        (tmp_path / "sice" / name / "1.png").write_bytes(b"not a png")
    with pytest.raises(CommandError, match=r"(no training patches|no usable scene left for validation).*nothing written"):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "p.h5"), "--val-fraction", "0.5",
                    "--seed", seed))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sice"]


def test_val_fraction_with_a_single_scene_is_an_error(tmp_path):
    make_sice_scene(tmp_path / "sice", "1", seed=1)
    with pytest.raises(CommandError, match="at least 2 scenes"):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "p.h5"), "--val-fraction", "0.5"))


# ---- brackets and photos -----------------------------------------------------------------------


def test_brackets_reference_is_the_mertens_fusion_of_all_frames(tmp_path):
    frames = exposures(texture(20), {"x1.png": 1.0, "x2.png": 0.35, "x3.png": 1.5, "x4.png": 0.6})
    for name, image in frames.items():
        save(tmp_path / "br" / "Garden" / name, image)
    out = tmp_path / "p.h5"
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(out)))
    data, names, _ = patches_of(out)
    assert names == ["brackets:br/Garden"] and data.shape == (6, 48, 48, 9)
    fused = fuse_mertens(list(frames.values()))
    np.testing.assert_array_equal(data[0, ..., 0:3], frames["x3.png"][:48, :48])
    np.testing.assert_array_equal(data[0, ..., 3:6], frames["x2.png"][:48, :48])
    np.testing.assert_array_equal(data[0, ..., 6:9], fused[:48, :48])


def test_photos_give_darker_under_and_brighter_over_deterministically(tmp_path):
    photo = texture(30)
    save(tmp_path / "ph" / "p1.png", photo)
    out_a, out_b, out_c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    common = ["--photos", str(tmp_path / "ph"), "--photo-variants", "3", "--ev-range", "1.5", "2"]
    assert build(parse(*common, "--out", str(out_a))).patches["train"] == 18
    build(parse(*common, "--out", str(out_b)))
    build(parse(*common, "--out", str(out_c), "--seed", "1"))
    a, b, c = patches_of(out_a)[0], patches_of(out_b)[0], patches_of(out_c)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a[0, ..., 6:9], photo[:48, :48])
    over, under, gt = (a[..., i : i + 3].astype(float).mean() for i in (0, 3, 6))
    assert under < gt * 0.7 and over > gt * 1.2
    with h5py.File(out_a, "r") as f:
        np.testing.assert_allclose(f.attrs["ev_range"], [1.5, 2.0])
        assert f.attrs["photo_variants"] == 3


def test_srgb_transfer_round_trips_and_exposure_scales_linear_light():
    x = np.linspace(0, 1, 256, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.21404, abs=1e-4)
    quiet = ExposureModel(shot_noise=0.0, read_noise=0.0)
    flat = np.full((4, 4, 3), 0.1, np.float32)
    rng = np.random.default_rng(0)
    one_stop = expose(flat, 1.0, quiet, rng)
    assert np.all(one_stop == np.round(linear_to_srgb(np.float32(0.2)) * 255))
    assert np.all(expose(flat, 4.0, quiet, rng) == 255)  # clipped at the white level


def test_noise_follows_the_poisson_gaussian_model():
    model = ExposureModel(shot_noise=1e-3, read_noise=2e-3)
    flat = np.full((256, 256, 3), 0.2, np.float32)
    captured = expose(flat, 0.0, model, np.random.default_rng(0))
    linear = srgb_to_linear(captured / 255.0)
    expected = np.sqrt(1e-3 * 0.2 + 2e-3**2)
    assert linear.mean() == pytest.approx(0.2, abs=2e-3)
    assert linear.std() == pytest.approx(expected, rel=0.1)


def test_no_source_builds_the_sample_set_from_scikit_image_photos(tmp_path, capsys):
    out = tmp_path / "data" / "patches.h5"
    rc = main(["patches", "--quiet", "--out", str(out), "--size", "128", "--stride", "1000", "--photo-variants", "1"])
    assert rc == 0
    assert "scikit-image" in capsys.readouterr().out
    data, names, _ = patches_of(out)
    assert len(names) == 5 and all(n.startswith("photos:skimage.data/") for n in names)
    assert data.shape == (5, 128, 128, 9)
    with h5py.File(out, "r") as f:
        assert list(f.attrs["sources"]) == ["photos:skimage.data"]


# ---- bad input ---------------------------------------------------------------------------------


def make_bad_sice(root: Path) -> None:
    """One good scene and one of each bad kind."""
    make_sice_scene(root, "good", seed=40)
    make_sice_scene(root, "mismatch", seed=41)
    save(root / "mismatch" / "2.png", texture(41, H + 8, W))
    make_sice_scene(root, "single", seed=42, gains={"only.png": 1.0})
    make_sice_scene(root, "nolabel", seed=43)
    (root / "Label" / "nolabel.JPG").unlink()
    make_sice_scene(root, "corrupt", seed=44)
    (root / "corrupt" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (root / "good" / "notes.txt").write_text("not an image: ignored")


def test_bad_scenes_are_skipped_with_a_warning_naming_the_file_and_counted(tmp_path, capsys):
    make_bad_sice(tmp_path / "sice")
    out = tmp_path / "p.h5"
    rc = main(["patches", "--quiet", "--size", "48", "--stride", "40",
               "--sice", str(tmp_path / "sice"), "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    for needle in ("mismatch/2.png: is 128x104 but 1.png is 128x96", "single: 1 exposure(s), need at least 2",
                   "no reference image", "corrupt/3.png: not a readable image"):
        assert needle in captured.err
        assert needle in captured.out  # listed again in the summary
    assert "skipped: 4" in captured.out
    data, names, _ = patches_of(out)
    assert names == ["sice:sice/good"] and len(data) == 6


def test_strict_makes_a_bad_scene_an_error_and_writes_nothing(tmp_path, capsys):
    make_bad_sice(tmp_path / "sice")
    out = tmp_path / "p.h5"
    rc = main(["patches", "--quiet", "--strict", "--sice", str(tmp_path / "sice"), "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mefgan patches: error: ") and "\n" not in err
    assert not out.exists() and list(tmp_path.glob(".p.h5*")) == []


def test_grey_16bit_alpha_and_exif_rotated_images_become_8bit_rgb(tmp_path):
    base = texture(50)
    scene = tmp_path / "sice" / "odd"
    scene.mkdir(parents=True)
    grey = cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(scene / "grey.png"), grey // 3)  # darkest
    cv2.imwrite(str(scene / "deep.png"), (base[..., ::-1].astype(np.uint16) * 257))  # 16-bit, middle
    bright = np.clip(base.astype(int) + 40, 0, 255).astype(np.uint8)
    cv2.imwrite(str(scene / "rgba.png"), np.dstack([bright[..., ::-1], np.full((H, W), 9, np.uint8)]))
    # The label is stored rotated (W x H) with EXIF orientation 6: upright it is H x W again.
    (tmp_path / "sice" / "Label").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(base, 1)).save(tmp_path / "sice" / "Label" / "odd.jpg", exif=exif.tobytes(), quality=98)
    out = tmp_path / "p.h5"
    summary = build(parse("--sice", str(tmp_path / "sice"), "--out", str(out)))
    assert summary.skipped == []
    data = patches_of(out)[0]
    np.testing.assert_array_equal(data[0, ..., 0:3], bright[:48, :48])
    np.testing.assert_array_equal(data[0, ..., 3:6], np.repeat((grey // 3)[:48, :48, None], 3, axis=2))
    assert np.abs(data[0, ..., 6:9].astype(int) - base[:48, :48]).mean() < 3


def test_scene_smaller_than_the_patch_is_skipped(tmp_path):
    make_sice_scene(tmp_path / "sice", "big", seed=60)
    make_sice_scene(tmp_path / "sice", "tiny", seed=61)
    for name in ("1.png", "2.png", "3.png"):
        save(tmp_path / "sice" / "tiny" / name, texture(61, 32, 40))
    save(tmp_path / "sice" / "Label" / "tiny.JPG", texture(61, 32, 40))
    summary = build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "p.h5")))
    assert len(summary.skipped) == 1
    assert "tiny: 40x32 after --scale 1.0 is smaller than --size 48" in summary.skipped[0]


def test_no_usable_scene_is_an_error(tmp_path):
    make_sice_scene(tmp_path / "sice", "single", seed=42, gains={"only.png": 1.0})
    out = tmp_path / "p.h5"
    with pytest.raises(CommandError, match="no training patches"):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(out)))
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--sice", "--brackets", "--photos"])
def test_missing_source_folder_is_a_one_line_error(tmp_path, flag, capsys):
    rc = main(["patches", flag, str(tmp_path / "nope"), "--out", str(tmp_path / "p.h5")])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err and "missing" in err


def test_folder_without_label_is_not_a_sice_folder(tmp_path):
    save(tmp_path / "x" / "1" / "a.png", texture(1))
    with pytest.raises(CommandError, match="not a SICE folder"):
        build(parse("--sice", str(tmp_path / "x"), "--out", str(tmp_path / "p.h5")))


def test_interrupted_run_leaves_no_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    for i in range(3):
        make_sice_scene(tmp_path / "sice", str(i), seed=70 + i)
    out = tmp_path / "p.h5"
    out.write_bytes(b"previous file")
    real_add = build_mod.add_scene
    calls = []

    def interrupt_on_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_add(*args)

    monkeypatch.setattr(build_mod, "add_scene", interrupt_on_second)
    with pytest.raises(KeyboardInterrupt):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(out), "--val-fraction", "0.34", "--overwrite"))
    assert out.read_bytes() == b"previous file"
    assert not (tmp_path / "p_val.h5").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5", "sice"]


def test_a_rerun_without_val_fraction_removes_the_old_validation_file_only_with_overwrite(tmp_path, capsys):
    for i in range(3):
        make_sice_scene(tmp_path / "sice", str(i), seed=80 + i)
    out, val = tmp_path / "p.h5", tmp_path / "p_val.h5"
    build(parse("--sice", str(tmp_path / "sice"), "--out", str(out), "--val-fraction", "0.34"))
    held_out = set(patches_of(val)[1])
    with pytest.raises(CommandError, match="p.h5: already exists"):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(out)))
    with pytest.raises(CommandError, match="smaller than --size 500"):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(out), "--overwrite", "--strict", "--size", "500"))
    assert val.exists()  # a failed run removes nothing
    rc = main(["patches", "--quiet", "--size", "48", "--stride", "40", "--sice", str(tmp_path / "sice"), "--out", str(out), "-y"])
    assert rc == 0 and "removed" in capsys.readouterr().out
    assert not val.exists() and held_out <= set(patches_of(out)[1])


def test_temporaries_of_a_killed_run_are_removed_by_the_next_one_but_a_running_writers_are_kept(tmp_path):
    make_sice_scene(tmp_path / "sice", "1", seed=90)
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        stale = [tmp_path / f".p.h5.{dead.pid}-abcd1234.h5", tmp_path / f".p_val.h5.{dead.pid}-abcd1234.h5"]
        running = tmp_path / f".p.h5.{alive.pid}-efgh5678.h5"
        for path in (*stale, running):
            path.write_bytes(b"half a patch file")
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "p.h5")))
        assert not any(p.exists() for p in stale) and running.exists()
    finally:
        alive.kill()
        alive.wait()


def test_help_shows_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["patches", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # undo line wrapping
    for needle in ("--sice", "--brackets", "--photos", "--val-fraction", "--ev-range", "--strict", "'pair' is",
                   "default: data/patches.h5", "default: 144", "half of --size"):
        assert needle in text


def test_patch_grid_is_regular_and_inside_the_image():
    assert patch_grid(96, 128, 48, 40) == [(0, 0), (0, 40), (0, 80), (40, 0), (40, 40), (40, 80)]
    assert patch_grid(47, 128, 48, 40) == []


def test_exclude_leaves_matching_scenes_out_of_every_split(tmp_path):
    for name in ("House", "house2", "Beach", "Forest"):
        make_sice_scene(tmp_path / "sice", name, seed=len(name))
    out = tmp_path / "p.h5"
    summary = build(parse("--sice", str(tmp_path / "sice"), "--out", str(out), "--exclude", "HOUSE*",
                          "--val-fraction", "0.5"))
    names = patches_of(out)[1] + patches_of(tmp_path / "p_val.h5")[1]
    assert summary.scenes == {"train": 1, "val": 1} and not any("ouse" in n for n in names)
    with h5py.File(out, "r") as f:
        assert list(f.attrs["exclude"]) == ["HOUSE*"]
    with pytest.raises(CommandError, match="every one of the 4 scene"):
        build(parse("--sice", str(tmp_path / "sice"), "--out", str(tmp_path / "q.h5"), "--exclude", "*"))


# ---- bracket references and extra pairs --------------------------------------------------------


def camera_bracket(seed: int, evs: tuple[float, ...]) -> list[np.ndarray]:
    """Noise-free captures of one scene at the given stops (sRGB uint8, clipped like a sensor)."""
    linear = srgb_to_linear(texture(seed) / 255.0)
    model = ExposureModel(shot_noise=0.0, read_noise=0.0)
    return [expose(linear, ev, model, np.random.default_rng(0)) for ev in evs]


def test_exposure_times_are_estimated_from_the_frames():
    from mefgan_tf.data_prep.references import exposure_times

    times = exposure_times(camera_bracket(3, (-2.0, 0.0, 1.0)))
    np.testing.assert_allclose(times, [1.0, 4.0, 8.0], rtol=0.08)


def test_best_reference_keeps_the_candidate_with_the_highest_mef_ssim_against_the_bracket():
    from mefgan_tf.data_prep.references import CANDIDATES, BracketScorer, best_reference

    frames = camera_bracket(4, (-3.0, -1.0, 1.0, 3.0))
    best = best_reference(frames)
    score = BracketScorer(sorted(frames, key=luminance))
    scores = {name: score(make(sorted(frames, key=luminance))) for name, make in CANDIDATES.items()}
    assert best.method == max(scores, key=scores.get) and best.score == pytest.approx(max(scores.values()))
    assert best.image.shape == frames[0].shape and best.image.dtype == np.uint8
    assert 0.5 < best.score <= 1.0


def test_reference_best_and_extra_pairs_from_the_command_line(tmp_path):
    frames = camera_bracket(5, (-3.0, -1.0, 1.0, 3.0))  # 2 stops apart: the nearer pairs are 4 stops apart
    for i, image in enumerate(frames):
        save(tmp_path / "br" / "Hall" / f"{i + 1}.png", image)
    plain, extra, far = tmp_path / "plain.h5", tmp_path / "extra.h5", tmp_path / "far.h5"
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(plain), "--reference", "best"))
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(extra), "--reference", "best", "--extra-pairs", "3.5"))
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(far), "--extra-pairs", "4.5"))
    (data, _, _), (more, _, _) = patches_of(plain), patches_of(extra)
    assert len(data) == 6 and len(more) == 18 and len(patches_of(far)[0]) == 6
    np.testing.assert_array_equal(more[:6], data)  # the main pair first, then the extra pairs
    np.testing.assert_array_equal(more[6, ..., 0:3], frames[2][:48, :48])  # second brightest over the darkest
    np.testing.assert_array_equal(more[6, ..., 3:6], frames[0][:48, :48])
    np.testing.assert_array_equal(more[12, ..., 3:6], frames[1][:48, :48])  # the brightest over the second darkest
    with h5py.File(plain, "r") as f:
        assert f.attrs["reference"] == "best"
        note = json.loads(f.attrs["scene_notes"])["brackets:br/Hall"]
    assert note.startswith("reference ") and "MEF-SSIM" in note and note.endswith("1 pair(s)")


def test_reference_pair_fuses_each_training_pair_alone_and_scores_higher_against_it(tmp_path):
    from mefgan_tf.data_prep.references import mertens_uint8
    from mefgan_tf.metrics import mef_ssim

    frames = camera_bracket(6, (-3.0, -1.0, 1.0, 3.0))
    for i, image in enumerate(frames):
        save(tmp_path / "br" / "Hall" / f"{i + 1}.png", image)
    pair, whole = tmp_path / "pair.h5", tmp_path / "whole.h5"
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(pair), "--reference", "pair", "--extra-pairs", "3.5"))
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(whole)))
    data, plain = patches_of(pair)[0], patches_of(whole)[0]
    assert len(data) == 18
    for first, (over, under) in ((0, (3, 0)), (6, (2, 0)), (12, (3, 1))):  # each pair's own fusion
        np.testing.assert_array_equal(data[first, ..., 6:9], mertens_uint8([frames[under], frames[over]])[:48, :48])
    np.testing.assert_array_equal(data[:6, ..., :6], plain[..., :6])  # same inputs, other reference
    ours = mef_ssim(frames[3], frames[0], mertens_uint8([frames[0], frames[3]]))
    assert ours > mef_ssim(frames[3], frames[0], mertens_uint8(frames)) + 0.005
    with h5py.File(pair, "r") as f:
        assert f.attrs["reference"] == "pair"
        assert json.loads(f.attrs["scene_notes"])["brackets:br/Hall"] == "reference pair, 3 pair(s)"


def test_reference_mix_cuts_every_pair_with_the_whole_bracket_reference_and_with_its_own(tmp_path):
    frames = camera_bracket(7, (-3.0, -1.0, 1.0, 3.0))
    for i, image in enumerate(frames):
        save(tmp_path / "br" / "Hall" / f"{i + 1}.png", image)
    files = {name: tmp_path / f"{name}.h5" for name in ("mertens", "pair", "mix")}
    for name, path in files.items():
        build(parse("--brackets", str(tmp_path / "br"), "--out", str(path), "--reference", name))
    whole, own, mix = (patches_of(files[name])[0] for name in ("mertens", "pair", "mix"))
    assert len(whole) == len(own) == 6 and len(mix) == 12
    np.testing.assert_array_equal(mix[:6], whole)
    np.testing.assert_array_equal(mix[6:], own)
    assert np.abs(whole[..., 6:9].astype(int) - own[..., 6:9]).mean() > 2  # two different references
    with h5py.File(files["mix"], "r") as f:
        assert f.attrs["reference"] == "mix"
        assert json.loads(f.attrs["scene_notes"])["brackets:br/Hall"] == "reference mertens and pair, 1 pair(s)"


def test_pairing_cuts_close_pairs_with_their_own_reference_and_each_frame_with_itself(tmp_path):
    from mefgan_tf.data_prep.references import mertens_uint8

    frames = camera_bracket(8, (-3.0, -1.0, 1.0, 3.0))  # files in exposure order, darkest first
    for i, image in enumerate(frames):
        save(tmp_path / "br" / "Hall" / f"{i + 1}.png", image)
    out = tmp_path / "p.h5"
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(out), "--reference", "mix",
                "--pairing", "extreme", "--pairing", "adjacent", "--pairing", "same"))
    data = patches_of(out)[0].reshape(-1, 6, 48, 48, 9)  # 6 patches per image
    whole = mertens_uint8(frames)[:48, :48]
    # extreme twice (whole bracket, then its own fusion), 3 adjacent pairs, 4 frames with themselves
    expected = [(3, 0, whole), (3, 0, None), (1, 0, None), (2, 1, None), (3, 2, None)]
    expected += [(i, i, frames[i][:48, :48]) for i in range(4)]
    assert len(data) == len(expected)
    for stack, (over, under, reference) in zip(data, expected):
        np.testing.assert_array_equal(stack[0, ..., 0:3], frames[over][:48, :48])
        np.testing.assert_array_equal(stack[0, ..., 3:6], frames[under][:48, :48])
        own = mertens_uint8([frames[under], frames[over]])[:48, :48]
        np.testing.assert_array_equal(stack[0, ..., 6:9], own if reference is None else reference)
    with h5py.File(out, "r") as f:
        assert list(f.attrs["pairing"]) == ["extreme", "adjacent", "same"]


def test_pairing_all_pairs_every_two_frames_once_and_whole_bracket_references_only_the_extremes(tmp_path):
    frames = camera_bracket(9, (-2.0, 0.0, 2.0))
    for i, image in enumerate(frames):
        save(tmp_path / "br" / "Hall" / f"{i + 1}.png", image)
    out = tmp_path / "p.h5"
    build(parse("--brackets", str(tmp_path / "br"), "--out", str(out), "--pairing", "all", "--pairing", "extreme"))
    data = patches_of(out)[0].reshape(-1, 6, 48, 48, 9)[:, 0]
    pairs = [(int(np.argmin([np.abs(f[:48, :48].astype(int) - s[..., k:k + 3]).sum() for f in frames])))
             for s in data for k in (0, 3)]
    assert list(zip(pairs[::2], pairs[1::2])) == [(2, 0), (1, 0), (0, 0), (2, 1), (1, 1), (2, 2)]  # (over, under)
    from mefgan_tf.data_prep.references import mertens_uint8

    np.testing.assert_array_equal(data[0, ..., 6:9], mertens_uint8(frames)[:48, :48])  # the extreme pair
    np.testing.assert_array_equal(data[1, ..., 6:9], mertens_uint8([frames[0], frames[1]])[:48, :48])


def test_unknown_pairing_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["patches", "--out", str(tmp_path / "p.h5"), "--pairing", "diagonal"])
    assert exit_.value.code == 2 and "invalid choice: 'diagonal'" in capsys.readouterr().err
    assert not (tmp_path / "p.h5").exists()


def test_extra_pairs_must_be_positive(tmp_path):
    with pytest.raises(CommandError, match="--extra-pairs -1.0: must be positive"):
        build(parse("--out", str(tmp_path / "p.h5"), "--extra-pairs", "-1"))


def test_camera_response_curves_are_monotonic_and_span_black_to_white():
    from mefgan_tf.data_prep.synth import camera_response

    x = np.linspace(0, 1, 1001, dtype=np.float32)
    for gamma, contrast in ((1.8, 0.0), (2.2, 0.25), (2.6, 0.5)):
        y = camera_response(gamma, contrast)(x)
        assert y[0] == 0.0 and y[-1] == pytest.approx(1.0) and np.all(np.diff(y) >= 0)
    assert camera_response(2.4, 0.0)(np.float32(0.5)) == pytest.approx(0.5 ** (1 / 2.4))


def test_camera_brackets_clip_highlights_and_carry_jpeg_compression(tmp_path):
    photo = texture(31)
    save(tmp_path / "ph" / "p1.png", photo)
    common = ["--photos", str(tmp_path / "ph"), "--photo-variants", "2", "--ev-range", "3", "4", "--seed", "2"]
    plain, camera, again = tmp_path / "plain.h5", tmp_path / "camera.h5", tmp_path / "again.h5"
    build(parse(*common, "--out", str(plain)))
    build(parse(*common, "--camera", "--out", str(camera)))
    build(parse(*common, "--camera", "--out", str(again)))
    data = patches_of(camera)[0]
    np.testing.assert_array_equal(data, patches_of(again)[0])  # same seed, same brackets
    assert not np.array_equal(data[..., :6], patches_of(plain)[0][..., :6])
    over, under = data[..., 0:3].astype(float), data[..., 3:6].astype(float)
    assert under.mean() < 0.5 * photo.mean() and over.mean() > 1.3 * photo.mean()
    assert (data[..., 0:3] >= 254).mean() > 0.2  # 3-4 stops over: highlights clip
    # JPEG's 8x8 blocks: pixel steps across block borders exceed those inside blocks
    rows = np.abs(np.diff(under, axis=2)).mean(axis=(0, 1, 3))
    assert rows[7::8].mean() > rows[np.arange(len(rows)) % 8 != 7].mean()
    with h5py.File(camera, "r") as f:
        assert bool(f.attrs["camera"])
