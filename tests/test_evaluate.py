"""`mefgan evaluate` end to end: generated scenes in both layouts, every method kind, the reports."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from mefgan_tf import metrics
from mefgan_tf.baselines import average
from mefgan_tf.cli import main
from mefgan_tf.evaluate import methods
from mefgan_tf.evaluate.chart import chart_limits
from mefgan_tf.fusion import FusionOptions
from mefgan_tf.images import (
    decode_image_raw,
    encode_image_original,
    read_image_uint8,
    to_float,
    to_uint8,
    write_image,
)
from mefgan_tf.pairings import load_scene
from mefgan_tf.scenes import Scene
from mefgan_tf.tone import TONE_COLUMNS

OUTPUTS = ["per_image.csv", "summary.csv", "summary.json", "summary.md", "metrics.png", "tone.csv"]


def _truth(seed: int, shape=(72, 96)) -> np.ndarray:
    """A well-exposed float RGB scene: a dark and a bright region, both textured."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    light = np.where(xx < shape[1] // 2, 0.15, 0.8) + 0.12 * np.sin(xx / (3.0 + seed)) * np.cos(yy / 4.0)
    noise = cv2.GaussianBlur(rng.random((*shape, 3)).astype(np.float32), (0, 0), 1.5) - 0.5
    tint = np.array([1.0, 0.9, 0.75]) + 0.1 * seed
    return np.clip(light[..., None] * tint + 0.1 * noise, 0, 1).astype(np.float32)


def _exposures(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.clip(truth * 0.25, 0, 1), np.clip(truth * 2.5, 0, 1)


def _folder_scenes(root, count=3):
    """SICE layout: root/<scene>/*.png (3 exposures) and root/Label/<scene>.png."""
    for i in range(count):
        truth = _truth(i)
        under, over = _exposures(truth)
        for name, image in [("a", over), ("b", under), ("c", truth * 0.9)]:
            write_image(root / f"scene{i}" / f"{name}.png", image)
        write_image(root / "Label" / f"scene{i}.png", truth)
    return root


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _run(*argv) -> int:
    return main(["evaluate", *map(str, argv), "--quiet"])


def test_evaluate_scene_folders_writes_every_report(tmp_path):
    scenes, out = _folder_scenes(tmp_path / "scenes"), tmp_path / "out"
    assert _run(scenes, "--method", "mertens", "--method", "average", "--out", out) == 0
    assert all((out / name).stat().st_size > 0 for name in OUTPUTS)
    rows = _read_csv(out / "per_image.csv")
    assert [(r["scene"], r["method"]) for r in rows] == [(f"scene{i}", m) for i in range(3) for m in ("mertens", "average")]
    assert all(r["status"] == "ok" and r["size"] == "96x72" for r in rows)
    assert set(metrics.METRIC_NAMES) <= set(rows[0])  # Label/ found: ground-truth metrics too
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"] == metrics.METRIC_NAMES + list(TONE_COLUMNS)
    assert summary["methods"]["mertens"]["MEF_SSIM"]["n"] == 3
    values = [float(r["PSNR_I"]) for r in rows if r["method"] == "average"]
    assert summary["methods"]["average"]["PSNR_I"]["mean"] == pytest.approx(np.mean(values), rel=1e-5)
    assert summary["methods"]["average"]["PSNR_I"]["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-4)
    table = (out / "summary.md").read_text()
    assert "| mertens | 3 |" in table and "Skipped: none." in table
    assert cv2.imread(str(out / "metrics.png")) is not None


def test_the_report_gives_each_methods_tone_against_mertens_scene_by_scene(tmp_path):
    scenes, out = _folder_scenes(tmp_path / "scenes"), tmp_path / "out"
    assert _run(scenes, "--method", "mertens", "--method", "average", "--out", out, "--save-fused") == 0
    rows = {(r["scene"], r["method"]): r for r in _read_csv(out / "per_image.csv")}
    tone = _read_csv(out / "tone.csv")
    assert sorted(r["scene"] for r in tone) == ["scene0", "scene1", "scene2"] and {r["method"] for r in tone} == {"average"}
    for r in tone:
        for column in TONE_COLUMNS:
            expected = float(rows[r["scene"], "average"][column]) - float(rows[r["scene"], "mertens"][column])
            assert float(r[f"{column}_minus_reference"]) == pytest.approx(expected, abs=1e-3)
    blacks = [float(r["BLACK_minus_reference"]) for r in tone]
    assert blacks == sorted(blacks, reverse=True)  # the most lifted blacks first
    assert "Tone against mertens" in (out / "summary.md").read_text()
    sheet = cv2.imread(str(out / "fused" / "by_veil.jpg"))
    assert sheet is not None and sheet.shape[0] > 3 * 120  # a row per scene


def test_mertens_beats_average_on_mef_ssim(tmp_path):
    scenes, out = _folder_scenes(tmp_path / "scenes"), tmp_path / "out"
    assert _run(scenes, "--method", "mertens", "--method", "average", "--out", out) == 0
    summary = json.loads((out / "summary.json").read_text())["methods"]
    for metric in ("MEF_SSIM", "MEF_SSIM_SS", "QABF"):
        assert summary["mertens"][metric]["mean"] > summary["average"][metric]["mean"]


def test_per_image_csv_matches_direct_metric_calls(tmp_path):
    scenes, out = _folder_scenes(tmp_path / "scenes", count=1), tmp_path / "out"
    assert _run(scenes, "--method", "average", "--out", out) == 0
    row = _read_csv(out / "per_image.csv")[0]
    loaded = load_scene(Scene("scene0", sorted((scenes / "scene0").iterdir()), scenes / "Label" / "scene0.png"))
    assert loaded.under.mean() < loaded.over.mean()
    fused = to_uint8(average([to_float(loaded.under), to_float(loaded.over)]))
    expected = metrics.all_metrics(loaded.over, loaded.under, fused, loaded.gt)
    for name, value in expected.items():
        assert float(row[name]) == pytest.approx(value, rel=1e-5), name


def _flat_scenes(root):
    """The original test_imgs layout, with scene 5 lacking its over-exposure."""
    truths = {}
    for i in range(1, 6):
        truths[i] = _truth(i)
        under, over = _exposures(truths[i])
        write_image(root / f"u{i}.png", under)
        if i != 5:
            write_image(root / f"o{i}.png", over)
    return truths


def test_folder_method_crop_rule_and_every_problem_is_reported(tmp_path):
    scenes, fused_dir, out = tmp_path / "test_imgs", tmp_path / "results", tmp_path / "out"
    truths = _flat_scenes(scenes)
    write_image(fused_dir / "1.png", truths[1])  # same size
    write_image(fused_dir / "2.png", truths[2][:-3, :-7])  # cropped like the original: scored
    write_image(fused_dir / "3.png", truths[3][:-8])  # 8 rows short: a size mismatch
    (scenes / "o4.png").write_bytes(b"not an image")  # unreadable source
    assert _run(scenes, "--method", "ours=folder:" + str(fused_dir), "--method", "average", "--out", out) == 0
    rows = {(r["scene"], r["method"]): r for r in _read_csv(out / "per_image.csv")}
    assert len(rows) == 10  # nothing dropped
    assert rows["1", "ours"]["status"] == "ok" and rows["1", "ours"]["cropped_rows_x_cols"] == "0x0"
    assert rows["2", "ours"]["status"] == "ok" and rows["2", "ours"]["cropped_rows_x_cols"] == "3x7"
    assert rows["2", "ours"]["size"] == "89x69"
    assert "size mismatch" in rows["3", "ours"]["reason"] and rows["3", "average"]["status"] == "ok"
    assert rows["4", "ours"]["status"] == rows["4", "average"]["status"] == "skipped"
    assert "o4.png" in rows["4", "average"]["reason"]
    assert "missing o5.*" in rows["5", "ours"]["reason"] and "missing o5.*" in rows["5", "average"]["reason"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"]["ours"]["MEF_SSIM_SS"]["n"] == 2
    assert "PSNR_I" not in summary["metrics"]  # no ground truth given
    skipped = {(s["scene"], s["method"]) for s in summary["skipped"]}
    assert skipped == {("3", "ours"), ("4", "ours"), ("4", "average"), ("5", "ours"), ("5", "average")}
    table = (out / "summary.md").read_text()
    assert "Skipped (5):" in table and "scene 3 / ours: size mismatch" in table
    # the cropped scene is scored against the sources' top-left crop
    under, over = (read_image_uint8(scenes / f"{k}2.png")[:-3, :-7] for k in "uo")
    expected = metrics.mef_ssim(over, under, read_image_uint8(fused_dir / "2.png"))
    assert float(rows["2", "ours"]["MEF_SSIM_SS"]) == pytest.approx(expected, rel=1e-5)


def test_exposures_of_different_sizes_are_reported(tmp_path):
    scenes, out = _folder_scenes(tmp_path / "scenes", count=2), tmp_path / "out"
    write_image(scenes / "scene1" / "c.png", _truth(1)[:-2])
    assert _run(scenes, "--method", "average", "--out", out) == 0
    rows = _read_csv(out / "per_image.csv")
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"] == "skipped" and "exposures differ in size" in rows[1]["reason"]


def test_ground_truth_folder_option_and_resize_max(tmp_path):
    scenes, out = tmp_path / "test_imgs", tmp_path / "out"
    truths = _flat_scenes(scenes)
    for i, truth in truths.items():
        write_image(tmp_path / "gt" / f"{i}.png", truth)
    assert _run(scenes, "--method", "mertens", "--gt", tmp_path / "gt", "--resize-max", 48, "--out", out) == 0
    rows = [r for r in _read_csv(out / "per_image.csv") if r["status"] == "ok"]
    assert {r["size"] for r in rows} == {"48x36"}
    assert all(r["PSNR_I"] and r["MEF_SSIM_SS"] for r in rows)
    assert all(r["MEF_SSIM"] == "" for r in rows)  # too small for three scales: NaN, left blank


@pytest.mark.slow
def test_model_method_fuses_with_load_fuser(tmp_path, monkeypatch):
    seen = []

    def load_fuser(path, options):
        seen.append((path, options))
        return lambda images: average(images)

    monkeypatch.setattr(methods, "load_fuser", load_fuser)
    scenes, out = _folder_scenes(tmp_path / "scenes", count=1), tmp_path / "out"
    (tmp_path / "ckpt").mkdir()
    assert _run(scenes, "--method", f"gan=model:{tmp_path / 'ckpt'}", "--method", "average", "--out", out) == 0
    assert seen == [(tmp_path / "ckpt", FusionOptions())]  # `mefgan fuse`'s defaults
    gan, avg = _read_csv(out / "per_image.csv")
    assert gan["method"] == "gan" and gan["MEF_SSIM"] == avg["MEF_SSIM"]
    assert _run(scenes, "--method", f"gan=model:{tmp_path / 'ckpt'}", "--detail-levels", "2", "--multi", "middle-out",
                "--work-size", "full", "--out", out, "-y") == 0
    assert seen[-1] == (tmp_path / "ckpt", FusionOptions(multi="middle-out", detail=2, work_size=None))


def _odd_sized_scenes(root, count=2):
    """SICE layout at 61 x 45, not multiples of 8: the original pipeline crops to 56 x 40."""
    for i in range(count):
        truth = _truth(i, shape=(45, 61))
        under, over = _exposures(truth)
        write_image(root / f"scene{i}" / "a.png", over)
        write_image(root / f"scene{i}" / "b.png", under)
        write_image(root / "Label" / f"scene{i}.png", truth)
    return root


def test_original_io_scores_the_bytescaled_jpeg_against_cropped_sources(tmp_path, monkeypatch):
    details = []

    def load_fuser(path, options):
        details.append(options.detail)
        return lambda images: average(images) * 0.5 + 0.1  # a dull image that bytescale stretches

    monkeypatch.setattr(methods, "load_fuser", load_fuser)
    scenes, out = _odd_sized_scenes(tmp_path / "scenes", count=1), tmp_path / "out"
    (tmp_path / "ckpt").mkdir()
    assert _run(scenes, "--method", f"gan=model:{tmp_path / 'ckpt'}", "--original-io", "--out", out) == 0
    assert details == [0]  # the authors' pipeline has no detail transfer
    (row,) = _read_csv(out / "per_image.csv")
    assert row["status"] == "ok" and row["size"] == "56x40" and row["cropped_rows_x_cols"] == "5x5"
    loaded = load_scene(Scene("scene0", sorted((scenes / "scene0").iterdir()), scenes / "Label" / "scene0.png"))
    over, under, gt = (image[:40, :56] for image in (loaded.over, loaded.under, loaded.gt))
    fused = decode_image_raw(encode_image_original(load_fuser(None, FusionOptions(detail=0))([to_float(under), to_float(over)]), ".jpg"))
    assert fused.min() <= 2 and fused.max() >= 253  # stretched, then JPEG
    expected = metrics.all_metrics(over, under, fused, gt)
    assert np.isnan(expected["MEF_SSIM"]) and row["MEF_SSIM"] == ""  # too small for three scales
    for name, value in expected.items():
        if name != "MEF_SSIM":
            assert float(row[name]) == pytest.approx(value, rel=1e-5), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["original_io"] == ["gan"] and summary["options"]["original_io"] is True
    assert "With the original's test-time I/O" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_model_original_io_scores_exactly_what_fuse_original_io_writes(tmp_path, random_generator):
    from mefgan_tf.checkpoint import save_model_checkpoint

    model = save_model_checkpoint(tmp_path / "model", random_generator(seed=5))
    scenes, fused, out = _odd_sized_scenes(tmp_path / "scenes"), tmp_path / "fused", tmp_path / "out"
    assert main(["fuse", "-q", "--pairs", str(scenes), "-o", str(fused), "--model", str(model), "--original-io"]) == 0
    methods = [f"files=folder:{fused}", f"orig=model-original-io:{model}", f"ours=model:{model / 'ckpt-0'}"]  # a prefix too
    assert _run(scenes, *[a for m in methods for a in ("--method", m)], "--out", out) == 0
    rows = {(r["scene"], r["method"]): r for r in _read_csv(out / "per_image.csv")}
    for scene in ("scene0", "scene1"):
        files, orig, ours = (rows[scene, m] for m in ("files", "orig", "ours"))
        assert files["size"] == orig["size"] == "56x40" and ours["size"] == "61x45"
        assert files["cropped_rows_x_cols"] == orig["cropped_rows_x_cols"] == "5x5"
        scores = [name for name in metrics.METRIC_NAMES if orig[name]]
        assert "PSNR_I" in scores and "MEF_SSIM_SS" in scores
        assert all(files[name] == orig[name] for name in scores)
        assert any(ours[name] != orig[name] for name in scores)
    assert json.loads((out / "summary.json").read_text())["original_io"] == ["orig"]


def test_original_io_needs_a_model_method(tmp_path, capsys):
    scenes = _folder_scenes(tmp_path / "scenes", count=1)
    assert _run(scenes, "--method", "average", "--original-io", "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mefgan evaluate: error:") and "--original-io applies to model methods" in err


@pytest.mark.parametrize(
    "method, message",
    [
        ("bogus", "unknown method"),
        ("x=folder:/no/such/dir", "not found"),
        ("x=model:/no/such/ckpt", "'x=model:/no/such/ckpt': /no/such/ckpt: no such model"),
        ("x=zip:/tmp", "NAME=folder:PATH"),
    ],
)
def test_bad_method_is_a_one_line_error(tmp_path, capsys, method, message):
    scenes = _folder_scenes(tmp_path / "scenes", count=1)
    assert _run(scenes, "--method", method, "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mefgan evaluate: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_same_method_twice_needs_names(tmp_path, capsys):
    scenes = _folder_scenes(tmp_path / "scenes", count=1)
    assert _run(scenes, "--method", "average", "--method", "average", "--out", tmp_path / "out") == 1
    assert "name used twice" in capsys.readouterr().err


def test_folder_without_scenes_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _run(tmp_path / "empty", "--method", "average", "--out", tmp_path / "out") == 1
    assert "no scenes found" in capsys.readouterr().err


@pytest.mark.slow
def test_authors_results_against_mertens_and_average_on_shared_pairs(tmp_path, shared_data):
    root = shared_data("original_mefgan")
    out = tmp_path / "out"
    argv = [root / "test_imgs", "--method", f"authors=folder:{root / 'results'}", "--method", "mertens",
            "--method", "average", "--resize-max", 320, "--out", out]
    assert _run(*argv) == 0
    rows = _read_csv(out / "per_image.csv")
    assert len(rows) == 15 and all(r["status"] == "ok" for r in rows)
    # the authors' results have the sources' sizes here (multiples of 8): nothing to crop
    assert {r["cropped_rows_x_cols"] for r in rows if r["method"] == "authors"} == {"0x0"}
    summary = json.loads((out / "summary.json").read_text())["methods"]
    # measured at full resolution: authors 0.905, Mertens 0.981, average 0.901 (MEF_SSIM)
    assert 0.85 < summary["authors"]["MEF_SSIM"]["mean"] < summary["mertens"]["MEF_SSIM"]["mean"]
    assert summary["mertens"]["QABF"]["mean"] > summary["authors"]["QABF"]["mean"]
    assert summary["authors"]["EN"]["mean"] > summary["average"]["EN"]["mean"]


@pytest.mark.slow
def test_an_undefined_multi_scale_mef_ssim_is_explained_without_a_numpy_warning_and_overwrite_replaces_the_report(tmp_path):
    import warnings

    scenes, inverted, out = _folder_scenes(tmp_path / "scenes", count=1), tmp_path / "inverted", tmp_path / "out"
    write_image(inverted / "scene0.png", 1.0 - _truth(0))  # structure opposite to the sources': negative scales
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert _run(scenes, "--method", f"inv=folder:{inverted}", "--out", out) == 0
    (row,) = _read_csv(out / "per_image.csv")
    assert row["status"] == "ok" and row["MEF_SSIM"] == "" and float(row["MEF_SSIM_SS"]) < 0
    assert "MEF_SSIM undefined" in row["reason"] and "MEF_SSIM undefined" in (out / "summary.md").read_text()
    assert _run(scenes, "--method", "average", "--out", out) == 1  # the report exists
    assert _run(scenes, "--method", "average", "--out", out, "--overwrite") == 0
    assert _read_csv(out / "per_image.csv")[0]["method"] == "average"


def _bracket_scenes(root, count=2):
    """Scenes of three exposures (stops -2, 0, +2 of a truth) and a two-exposure scene 'pair'."""
    for i in range(count):
        truth = _truth(i)
        for name, gain in (("1", 0.25), ("2", 1.0), ("3", 4.0)):
            write_image(root / f"scene{i}" / f"{name}.png", np.clip(truth * gain, 0, 1))
        write_image(root / "Label" / f"scene{i}.png", truth)
    under, over = _exposures(_truth(5))
    write_image(root / "pair" / "u.png", under)
    write_image(root / "pair" / "o.png", over)
    return root


def _frames(scene):
    return [read_image_uint8(p).astype(np.float64) for p in sorted(scene.iterdir())]


@pytest.mark.slow
def test_each_pairing_fuses_its_own_exposures_and_is_reported_apart(tmp_path):
    scenes, out = _bracket_scenes(tmp_path / "scenes"), tmp_path / "out"
    argv = ["--method", "average", "--out", out, "--save-fused"]
    assert _run(scenes, *argv, *[a for p in ("extreme", "adjacent", "same", "all") for a in ("--pairing", p)]) == 0
    dark, mid, bright = _frames(scenes / "scene0")
    expected = {"extreme": (dark + bright) / 2, "adjacent": (mid + bright) / 2, "same": mid, "all": (dark + mid + bright) / 3}
    for pairing, image in expected.items():
        assert all((out / pairing / name).stat().st_size > 0 for name in OUTPUTS)
        fused = read_image_uint8(out / "fused" / pairing / "average" / "scene0.png").astype(np.float64)
        assert np.abs(fused - image).max() <= 1, pairing
        sheet = cv2.imread(str(out / "fused" / pairing / "scene0.jpg"))
        inputs = 3 if pairing == "all" else 2
        assert sheet.shape[0] == 240 + 22 and sheet.shape[1] == (inputs + 1) * 320 + inputs * 4  # 96x72 tiles at 240 rows
    rows = {p: _read_csv(out / p / "per_image.csv") for p in expected}
    assert [r["status"] for r in rows["all"]] == ["skipped", "ok", "ok"]  # the two-exposure scene
    assert "pairing 'all' scores scenes of three or more" in rows["all"][0]["reason"]
    assert all(float(r["PSNR"]) == metrics.PSNR_CAP for r in rows["same"])  # x with x averages to x
    assert "PSNR" not in rows["adjacent"][0] or not rows["adjacent"][0]["PSNR"]  # no ground truth for a close pair
    combined = (out / "summary.md").read_text()
    assert [line.split("'")[1] for line in combined.splitlines() if line.startswith("## Pairing")] == list(expected)


def test_all_pairing_scores_mef_ssim_against_every_exposure(tmp_path):
    scenes, out = _bracket_scenes(tmp_path / "scenes", count=1), tmp_path / "out"
    assert _run(scenes, "--method", "mertens", "--pairing", "all", "--out", out, "--save-fused") == 0
    row = next(r for r in _read_csv(out / "per_image.csv") if r["scene"] == "scene0")
    fused = read_image_uint8(out / "fused" / "mertens" / "scene0.png")
    frames = [read_image_uint8(p) for p in sorted((scenes / "scene0").iterdir())]
    every = metrics.Sources(frames[2], frames[0], frames).mef_ms_ssim(fused)
    pair = metrics.Sources(frames[2], frames[0]).mef_ms_ssim(fused)
    assert float(row["MEF_SSIM"]) == pytest.approx(every, rel=1e-6) and abs(every - pair) > 1e-4


def test_folder_results_are_scored_only_for_the_extreme_pairing(tmp_path):
    scenes, out = _bracket_scenes(tmp_path / "scenes", count=1), tmp_path / "out"
    write_image(tmp_path / "results" / "scene0.png", read_image_uint8(scenes / "Label" / "scene0.png"))
    assert _run(scenes, "--method", "mine=folder:" + str(tmp_path / "results"), "--method", "average",
                "--pairing", "adjacent", "--out", out) == 0
    rows = [r for r in _read_csv(out / "per_image.csv") if r["method"] == "mine"]
    assert {r["status"] for r in rows} == {"skipped"} and "for pairing 'extreme'" in rows[0]["reason"]


def test_chart_axes_zoom_to_the_bars_and_their_error_bars():
    low, high = chart_limits([0.962, 0.981], [0.01, 0.005])
    assert 0.9 < low < 0.952 and 0.986 < high < 1.0
    assert chart_limits([5.0, 5.0], [0.0, 0.0]) == pytest.approx((4.75, 5.25))
