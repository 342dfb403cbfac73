"""One set of scene-folder rules: fuse --pairs, evaluate, patches and export --calibration see the same scenes."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from mefgan_tf.cli import main
from mefgan_tf.errors import CommandError
from mefgan_tf.images import write_image
from mefgan_tf.scenes import darkest_and_brightest, exposure_order, find_scenes, natural_key, over_under

H, W = 48, 64


def scene_image(seed: int, gain: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((H // 8, W // 8, 3), dtype=np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    return np.clip(base * gain, 0.0, 1.0)


def write_scene(folder: Path, seed: int, gains=(0.3, 1.6), ext: str = ".png") -> None:
    for i, gain in enumerate(gains):
        write_image(folder / f"{chr(ord('a') + i)}{ext}", scene_image(seed, gain))


def folder_layout(root: Path) -> Path:
    """Scene folders in natural order (scene2 before scene10), a Label folder in lower case whose
    files differ in case from the scenes, a hidden folder, hidden and non-image files."""
    write_scene(root / "scene10", 1, ext=".PNG")
    write_scene(root / "scene2", 2, gains=(0.2, 0.8, 1.7), ext=".jpg")
    write_scene(root / ".trash", 3)
    (root / "scene10" / "notes.txt").write_text("tripod")
    write_image(root / "scene10" / ".thumb.png", scene_image(9, 1.0))
    write_image(root / "label" / "SCENE10.png", scene_image(1, 1.0))
    write_image(root / "label" / "scene2.png", scene_image(2, 1.0))
    (root / "README.txt").write_text("my brackets")
    return root


def flat_layout(root: Path) -> Path:
    """The original release's test_imgs: uN / oN pairs directly in the folder."""
    for n in (10, 2):
        write_image(root / f"u{n}.png", scene_image(n, 0.3))
        write_image(root / f"O{n}.png", scene_image(n, 1.6))
    return root


def single_layout(root: Path) -> Path:
    """A folder that holds the exposures of one scene itself."""
    write_scene(root, 4, gains=(0.3, 1.0, 1.6))
    return root


LAYOUTS = {"folders": (folder_layout, ["scene2", "scene10"]), "flat": (flat_layout, ["2", "10"]),
           "single": (single_layout, ["single"])}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_find_scenes_reads_each_layout(layout, tmp_path):
    make, names = LAYOUTS[layout]
    root = make(tmp_path / layout)
    scenes = find_scenes(root)
    assert [s.name for s in scenes] == names
    assert all(s.problem is None and len(s.exposures) >= 2 for s in scenes)
    if layout == "folders":
        assert [s.gt.name for s in scenes] == ["scene2.png", "SCENE10.png"]  # Label in any case, names in any case
        assert [p.name for p in scenes[1].exposures] == ["a.PNG", "b.PNG"]  # no hidden file, no notes.txt
        assert scenes[1].ignored == ["notes.txt"]


def test_find_scenes_says_what_is_missing(tmp_path):
    write_image(tmp_path / "flat" / "u1.png", scene_image(0, 0.3))
    (scene,) = find_scenes(tmp_path / "flat")
    assert scene.problem == "missing o1.*"
    write_scene(tmp_path / "folders" / "lonely", 0, gains=(0.5,))
    (scene,) = find_scenes(tmp_path / "folders")
    assert scene.problem == "need at least 2 exposures, found 1"
    (tmp_path / "empty" / "label").mkdir(parents=True)
    with pytest.raises(CommandError, match="no scenes found"):
        find_scenes(tmp_path / "empty")
    with pytest.raises(CommandError, match="not a folder of scenes"):
        find_scenes(tmp_path / "nothing")


def test_exposures_are_ordered_by_mean_luminance_with_ties_in_the_given_order():
    dark, mid, bright = (np.full((2, 2, 3), v, np.float32) for v in (0.1, 0.5, 0.9))
    same = mid.copy()
    assert exposure_order([bright, mid, dark, same]) == [2, 1, 3, 0]
    under, over = darkest_and_brightest(iter([mid, bright, dark, same]))
    assert under is dark and over is bright
    under, over = darkest_and_brightest([mid, same])  # a tie: first is darkest, last is brightest
    assert under is mid and over is same
    assert over_under(mid, same) == (mid, same) and over_under(dark, bright) == (bright, dark)
    assert sorted(["s10", "S2", "s1"], key=natural_key) == ["s1", "S2", "s10"]


def fused_scenes(root: Path, out: Path, model: Path) -> list[str]:
    main(["fuse", "--pairs", str(root), "-o", str(out), "--model", str(model), "-q"])
    return [p.stem for p in sorted(out.iterdir(), key=lambda p: natural_key(p.name))]


def evaluated_scenes(root: Path, out: Path) -> tuple[list[str], list[bool]]:
    assert main(["evaluate", str(root), "--method", "average", "--out", str(out), "--quiet"]) == 0
    with open(out / "per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [r["scene"] for r in rows], [bool(r.get("PSNR_I")) for r in rows]


def patch_scenes(flag: str, root: Path, out: Path) -> list[str]:
    assert main(["patches", flag, str(root), "--out", str(out), "--size", "16", "--stride", "32", "--quiet"]) == 0
    with h5py.File(out) as f:
        return [name.split("/", 1)[1] for name in f["scenes"].asstr()[:]]


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_fuse_evaluate_patches_and_export_calibration_accept_the_same_layouts(layout, checkpoint, tmp_path, capsys):
    from mefgan_tf.tflite import calibration_pairs

    make, names = LAYOUTS[layout]
    root = make(tmp_path / layout)
    assert fused_scenes(root, tmp_path / "fused", checkpoint) == names
    scored, with_gt = evaluated_scenes(root, tmp_path / "report")
    assert scored == names and all(with_gt) == (layout == "folders")
    assert patch_scenes("--brackets", root, tmp_path / "brackets.h5") == names
    if layout == "folders":  # the SICE layout is the folder layout with its Label folder
        assert patch_scenes("--sice", root, tmp_path / "sice.h5") == names
    assert len(calibration_pairs(root, side=16)) == len(names)
    if layout == "folders":
        err = capsys.readouterr().err
        assert "skipping" in err and "label" in err and "README.txt" in err and "notes.txt" in err


def test_subfolders_beside_un_on_files_are_named_in_a_note(tmp_path):
    from mefgan_tf.scenes import layout_notes

    root = flat_layout(tmp_path / "flat")
    write_scene(root / "extra_scene", seed=9)
    scenes = find_scenes(root)
    assert all(scene.folder == root for scene in scenes)
    assert f"ignoring 1 subfolder(s) of {root}, as its uN/oN files are the scenes: extra_scene" in layout_notes(root, scenes)
