"""Bad input, damaged files and unwritable or existing outputs: every command answers with one line
naming the file and the problem, exits 1, and writes or changes nothing. One table per command."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mefgan_tf.cli import main
from mefgan_tf.images import write_image


@pytest.fixture
def models(request) -> dict[str, Path]:
    """The good ``checkpoint`` and ``savedmodel`` of tests/conftest.py by name, copied and damaged by the
    cases; each fetched when a case first asks for it (only the SavedModel's cases wait for its export)."""

    class Fetched(dict):
        def __missing__(self, name: str) -> Path:
            return self.setdefault(name, request.getfixturevalue(name))

    return Fetched()


def damaged(models: dict[str, Path], tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A copy of a good model damaged as ``kind``, and the file the error must name."""
    source = models["savedmodel" if kind.startswith("savedmodel") else "checkpoint"]
    model = tmp_path / "model"
    shutil.copytree(source, model)
    data = next(model.glob("ckpt-*.data-*"), None)
    if kind == "garbage checkpoint file":
        (model / "checkpoint").write_bytes(b"\xff\xfe\x00\x81 not a checkpoint state")
        return model, "checkpoint: damaged"
    if kind == "truncated data":
        data.write_bytes(data.read_bytes()[:1000])
        return model, f"{data.name}: truncated"
    if kind == "missing data":
        data.unlink()
        return model, "ckpt-0.data-*: missing"
    if kind == "bad mefgan.json":
        (model / "mefgan.json").write_text("{not json")
        return model, "mefgan.json: damaged"
    if kind == "mefgan.json of wrong types":
        (model / "mefgan.json").write_text('{"config": {"attention_chunk": "many"}}')
        return model, "mefgan.json: attention_chunk: expected an integer"
    if kind == "savedmodel corrupt saved_model.pb":
        (model / "saved_model.pb").write_bytes(b"garbage" * 100)
        return model, "saved_model.pb: damaged"
    if kind == "savedmodel without variables":
        shutil.rmtree(model / "variables")
        return model, "variables.index: missing"
    if kind == "savedmodel truncated variables":
        data = next((model / "variables").glob("variables.data-*"))
        data.write_bytes(data.read_bytes()[:1000])
        return model, f"{data.name}: truncated"
    raise ValueError(kind)


CHECKPOINT_DAMAGE = ["garbage checkpoint file", "truncated data", "missing data", "bad mefgan.json",
                     "mefgan.json of wrong types"]
SAVEDMODEL_DAMAGE = [pytest.param(case, marks=pytest.mark.slow)  # an export first
                     for case in ("savedmodel corrupt saved_model.pb", "savedmodel without variables",
                                  "savedmodel truncated variables")]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, size and modification time."""
    return {
        str(p.relative_to(root)): (p.is_dir(), p.lstat().st_size if not p.is_dir() else 0, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def assert_refused(command: str, argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    """The command exits 1 with one line holding ``message`` and changes nothing under ``tmp_path``."""
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main([command, *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"mefgan {command}: error: ") and message in err[0], err[0]
    assert snapshot(tmp_path) == before


def exposures(folder: Path, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, (24, 32, 3)).astype(np.float32)
    return [write_image(folder / f"{name}.png", np.clip(base * gain, 0, 1)) for name, gain in (("a", 0.3), ("b", 1.7))]


# ---- fuse ----------------------------------------------------------------------------------------


def fuse_case(case: str, tmp_path: Path, models: dict[str, Path]) -> tuple[list[str], str]:
    a, b = exposures(tmp_path)
    model = ["--model", str(models["checkpoint"])]
    if case == "output is an input":
        return [str(a), str(b), "-o", str(a), *model], f"{a}: is the input exposure {a}"
    if case == "output is an input through another path":
        (tmp_path / "sub").mkdir()
        other = tmp_path / "sub" / ".." / "b.png"
        return [str(a), str(b), "-o", str(other), *model], "is the input exposure"
    if case == "output is an input through a link":
        (tmp_path / "link.png").symlink_to(a)
        return [str(a), str(b), "-o", str(tmp_path / "link.png"), *model], "link.png: is the input exposure"
    if case == "same exposure twice":
        (tmp_path / "again.png").symlink_to(b)
        return [str(a), str(b), str(tmp_path / "again.png"), "-o", str(tmp_path / "f.png"), *model], \
            f"{tmp_path / 'again.png'}: the same file as {b}"
    if case == "existing output":
        (tmp_path / "f.png").write_bytes(b"keep me")
        return [str(a), str(b), "-o", str(tmp_path / "f.png"), *model], "f.png: already exists; pass --overwrite (-y)"
    if case == "16 bits into a jpeg":
        return [str(a), str(b), "-o", str(tmp_path / "f.jpg"), "--bit-depth", "16", *model], \
            "f.jpg: .jpg holds 8 bits per channel; --bit-depth 16 needs .png"
    if case == "pgm output":
        return [str(a), str(b), "-o", str(tmp_path / "f.pgm"), *model], "f.pgm: PGM holds grey images only"
    if case == "pairs with an unknown format":
        return ["--pairs", str(tmp_path / "scenes"), "-o", str(tmp_path / "out"), "--format", "xyz", *model], \
            "--format xyz: unknown image extension '.xyz'"
    if case == "pairs with an existing output":
        scenes = tmp_path / "scenes"
        exposures(scenes / "s1")
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "s1.png").write_bytes(b"keep me")
        return ["--pairs", str(scenes), "-o", str(tmp_path / "out"), *model], "s1.png: already exists"
    if case == "unwritable output":
        (tmp_path / "file").write_text("")
        return [str(a), str(b), "-o", str(tmp_path / "file" / "f.png"), *model], "cannot write here"
    if case == "output is a folder":
        (tmp_path / "out").mkdir()
        return [str(a), str(b), "-o", str(tmp_path / "out"), *model], "is a folder; -o names the fused image"
    if case == "unknown output extension":
        return [str(a), str(b), "-o", str(tmp_path / "f.xyz"), *model], "unknown image extension"
    if case == "exposures of two sizes":
        small = write_image(tmp_path / "small.png", np.full((16, 24, 3), 0.5, np.float32))
        return [str(a), str(small), "-o", str(tmp_path / "f.png"), *model], "exposures differ in size"
    if case == "one exposure":
        return [str(a), "-o", str(tmp_path / "f.png"), *model], "need at least two exposures to fuse, got 1"
    if case == "unreadable exposure":
        (tmp_path / "broken.png").write_bytes(b"not a png")
        return [str(a), str(tmp_path / "broken.png"), "-o", str(tmp_path / "f.png"), *model], "not a readable image"
    if case == "missing exposure":
        return [str(a), str(tmp_path / "nowhere.png"), "-o", str(tmp_path / "f.png"), *model], "cannot read"
    if case == "missing model":
        return [str(a), str(b), "-o", str(tmp_path / "f.png"), "--model", str(tmp_path / "missing")], \
            "no such model (expected a checkpoint folder/prefix, a SavedModel folder or a .tflite file)"
    if case == ".tflite model that is not one":
        (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
        return [str(a), str(b), "-o", str(tmp_path / "f.png"), "--model", str(tmp_path / "bad.tflite")], \
            "not a .tflite model from `mefgan export --tflite`"
    model_path, message = damaged(models, tmp_path, case)
    return [str(a), str(b), "-o", str(tmp_path / "f.png"), "--model", str(model_path)], message


FUSE_CASES = ["output is an input", "output is an input through another path", "output is an input through a link",
              "same exposure twice", "existing output", "16 bits into a jpeg", "pgm output",
              "pairs with an unknown format", "pairs with an existing output", "unwritable output", "output is a folder",
              "unknown output extension", "exposures of two sizes", "one exposure", "unreadable exposure",
              "missing exposure", "missing model", ".tflite model that is not one", *CHECKPOINT_DAMAGE, *SAVEDMODEL_DAMAGE]


@pytest.mark.parametrize("case", FUSE_CASES)
def test_fuse_refuses_bad_input_in_one_line_and_writes_nothing(case, models, tmp_path, capsys):
    argv, message = fuse_case(case, tmp_path, models)
    assert_refused("fuse", ["-q", *argv], message, tmp_path, capsys)


# ---- export --------------------------------------------------------------------------------------


def export_case(case: str, tmp_path: Path, models: dict[str, Path]) -> tuple[list[str], str]:
    checkpoint = ["--checkpoint", str(models["checkpoint"])]
    if case in ("attention chunk 0", "attention chunk -3"):
        chunk = case.rsplit(" ", 1)[1]
        return [*checkpoint, "--out", str(tmp_path / "export" / "1"), "--attention-chunk", chunk], \
            f"--attention-chunk {chunk}: must be from 1 to 1048576 rows"
    if case == "existing tflite file":
        (tmp_path / "m.tflite").write_bytes(b"keep me")
        return [*checkpoint, "--tflite", "--out", str(tmp_path / "m.tflite")], "m.tflite: already exists"
    if case == "unwritable version folder":
        (tmp_path / "file").write_text("")
        return [*checkpoint, "--out", str(tmp_path / "file" / "1")], "cannot write here"
    if case == "existing version folder":
        (tmp_path / "export" / "1").mkdir(parents=True)
        (tmp_path / "export" / "1" / "saved_model.pb").write_bytes(b"keep me")
        return [*checkpoint, "--out", str(tmp_path / "export" / "1")], "1: already exists; choose a new version number"
    version, lite = ["--out", str(tmp_path / "export" / "1")], ["--tflite", "--out", str(tmp_path / "m.tflite")]
    options = {
        "unnumbered version folder": (["--out", str(tmp_path / "mefgan")], "expects a numbered version folder"),
        "--quantize without --tflite": ([*version, "--quantize", "int8"], "--quantize applies to LiteRT exports only; add --tflite"),
        "--calibration without --tflite": ([*version, "--calibration", str(tmp_path)],
                                           "--calibration applies to LiteRT exports only; add --tflite"),
        "--calibration for float16": ([*lite, "--quantize", "float16", "--calibration", str(tmp_path)],
                                      "--calibration is used by --quantize int8 only"),
        "--calibration folder missing": ([*lite, "--quantize", "int8", "--calibration", str(tmp_path / "nowhere")],
                                         "nowhere: no such folder"),
        "--tflite --attention-chunk 0": ([*lite, "--attention-chunk", "0"], "--attention-chunk 0: must be from 1 to 1048576 rows"),
        "--tflite --detail-levels": ([*lite, "--detail-levels", "2"], "--detail-levels applies to SavedModels"),
        "--tflite --no-tone-guard": ([*lite, "--no-tone-guard"], "--no-tone-guard applies to SavedModels"),
        "--tflite output not .tflite": (["--tflite", "--out", str(tmp_path / "model.bin")], "must end in .tflite"),
    }
    if case in options:
        argv, message = options[case]
        return [*checkpoint, *argv], message
    model, message = damaged(models, tmp_path, case)
    return ["--checkpoint", str(model), "--out", str(tmp_path / "export" / "1")], message


@pytest.mark.parametrize("case", ["attention chunk 0", "attention chunk -3", "existing tflite file",
                                  "unwritable version folder", "existing version folder", "unnumbered version folder",
                                  "--quantize without --tflite", "--calibration without --tflite",
                                  "--calibration for float16", "--calibration folder missing",
                                  "--tflite --attention-chunk 0", "--tflite --detail-levels", "--tflite --no-tone-guard",
                                  "--tflite output not .tflite", *CHECKPOINT_DAMAGE])
def test_export_refuses_bad_input_in_one_line_and_writes_nothing(case, models, tmp_path, capsys):
    argv, message = export_case(case, tmp_path, models)
    assert_refused("export", argv, message, tmp_path, capsys)


# ---- evaluate ------------------------------------------------------------------------------------


def evaluate_case(case: str, tmp_path: Path, models: dict[str, Path]) -> tuple[list[str], str]:
    scenes, out = tmp_path / "scenes", tmp_path / "report"
    exposures(scenes / "s1")
    if case == "unwritable report folder":
        (tmp_path / "file").write_text("")
        return [str(scenes), "--method", "average", "--out", str(tmp_path / "file" / "report")], "cannot write here"
    if case == "report folder is a file":
        out.write_text("")
        return [str(scenes), "--method", "average", "--out", str(out)], "report: exists and is not a folder"
    if case == "existing report":
        out.mkdir()
        (out / "summary.md").write_text("keep me")
        return [str(scenes), "--method", "average", "--out", str(out)], "summary.md: already exists"
    if case == "every scene skipped":
        (scenes / "s1" / "b.png").unlink()
        return [str(scenes), "--method", "average", "--out", str(out)], "no scene could be scored"
    model, message = damaged(models, tmp_path, case)
    return [str(scenes), "--method", f"gan=model:{model}", "--out", str(out)], message


@pytest.mark.parametrize("case", ["unwritable report folder", "report folder is a file", "existing report",
                                  "every scene skipped", "truncated data", SAVEDMODEL_DAMAGE[0]])
def test_evaluate_refuses_bad_input_in_one_line_and_writes_nothing(case, models, tmp_path, capsys):
    argv, message = evaluate_case(case, tmp_path, models)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", "--quiet", *argv]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    # skipped scenes are listed above the error, each on its own line
    assert lines[-1].startswith("mefgan evaluate: error: ") and message in lines[-1], lines
    assert all(line.startswith("scene ") for line in lines[:-1]), lines
    assert snapshot(tmp_path) == before


# ---- patches -------------------------------------------------------------------------------------


def patches_case(case: str, tmp_path: Path) -> tuple[list[str], str]:
    photos, out = tmp_path / "photos", tmp_path / "p.h5"
    exposures(photos)
    source = ["--photos", str(photos), "--size", "16"]
    if case == "out is a folder":
        out.mkdir()
        return [*source, "--out", str(out)], "p.h5: is a folder"
    if case == "unwritable out":
        (tmp_path / "file").write_text("")
        return [*source, "--out", str(tmp_path / "file" / "p.h5")], "cannot write here"
    if case == "existing out":
        out.write_bytes(b"keep me")
        return [*source, "--out", str(out)], "p.h5: already exists; pass --overwrite (-y)"
    if case == "existing validation file":
        (tmp_path / "p_val.h5").write_bytes(b"keep me")
        return [*source, "--out", str(out), "--val-fraction", "0.5"], "p_val.h5: already exists"
    if case == "validation file of an earlier run":
        (tmp_path / "p_val.h5").write_bytes(b"keep me")
        return [*source, "--out", str(out)], "p_val.h5: validation file of an earlier run"
    raise ValueError(case)


@pytest.mark.parametrize("case", ["out is a folder", "unwritable out", "existing out", "existing validation file",
                                  "validation file of an earlier run"])
def test_patches_refuses_bad_output_before_cutting_anything(case, tmp_path, capsys):
    argv, message = patches_case(case, tmp_path)
    assert_refused("patches", ["--quiet", *argv], message, tmp_path, capsys)


# ---- train ---------------------------------------------------------------------------------------


def float_patches(path: Path, data: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        f["data"] = data
    return path


def train_case(case: str, tmp_path: Path, make_patches) -> tuple[list[str], str]:
    good = make_patches(tmp_path / "p.h5", n=2)
    with h5py.File(good, "r") as f:
        base = f["data"][:].astype(np.float32)
    run = ["--out", str(tmp_path / "run"), "--batch-size", "1", "--max-steps", "1", "--quiet"]
    if case == "--set of the wrong type":
        return ["--data", str(good), *run, "--set", "content_weight=abc"], \
            "--set content_weight=abc: expected a finite number, got 'abc'"
    if case == "--set of a number for a list":
        return ["--data", str(good), *run, "--set", "grey_weights=1"], "--set grey_weights=1: expected a list of 3"
    if case == "--set of an unknown key":
        return ["--data", str(good), *run, "--set", "content_weigth=1"], "unknown config key 'content_weigth'"
    if case == "config file of the wrong type":
        (tmp_path / "c.yaml").write_text("content_weight: lots\n")
        return ["--data", str(good), *run, "--config", str(tmp_path / "c.yaml")], \
            "c.yaml: content_weight: expected a finite number, got 'lots'"
    if case == "negative learning rate":
        return ["--data", str(good), *run, "--learning-rate", "-1"], "--learning-rate -1: must be positive"
    if case == "zero learning rate":
        return ["--data", str(good), *run, "--learning-rate", "0"], "--learning-rate 0: must be positive"
    if case == "unwritable out":
        (tmp_path / "file").write_text("")
        return ["--data", str(good), "--out", str(tmp_path / "file" / "run"), "--quiet"], "cannot write here"
    if case == "float patches of 0-255":
        data = float_patches(tmp_path / "f.h5", base)
        return ["--data", str(data), *run], "f.h5: 'data' values span ["
    if case == "uint16 patches":
        data = float_patches(tmp_path / "f.h5", (base * 257).astype(np.uint16))
        return ["--data", str(data), *run], "f.h5: 'data' is uint16; expected uint8"
    if case == "NaN in the patches":
        base[1, 5, 5, 0] = np.nan
        data = float_patches(tmp_path / "f.h5", base / 255)
        return ["--data", str(data), *run], "f.h5: 'data' holds NaN or infinite values"
    if case == "damaged run metadata":
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "mefgan.json").write_text("{oops")
        return ["--data", str(good), *run], "mefgan.json: damaged"
    raise ValueError(case)


@pytest.mark.parametrize("case", ["--set of the wrong type", "--set of a number for a list", "--set of an unknown key",
                                  "config file of the wrong type", "negative learning rate", "zero learning rate", "unwritable out",
                                  "float patches of 0-255", "uint16 patches", "NaN in the patches",
                                  "damaged run metadata"])
def test_train_refuses_bad_input_before_writing_anything(case, tmp_path, capsys, make_patches):
    argv, message = train_case(case, tmp_path, make_patches)
    assert_refused("train", argv, message, tmp_path, capsys)


# ---- demo ----------------------------------------------------------------------------------------


def demo_case(case: str, tmp_path: Path, models: dict[str, Path]) -> tuple[list[str], str]:
    model = ["--model", str(models["checkpoint"]), "--max-side", "32"]
    if case == "existing images":
        (tmp_path / "demo").mkdir()
        (tmp_path / "demo" / "fused.png").write_bytes(b"keep me")
        return ["--out", str(tmp_path / "demo"), *model], "fused.png: already exists"
    if case == "unwritable folder":
        (tmp_path / "file").write_text("")
        return ["--out", str(tmp_path / "file" / "demo"), *model], "cannot write here"
    path, message = damaged(models, tmp_path, case)
    return ["--out", str(tmp_path / "demo"), "--model", str(path)], message


@pytest.mark.parametrize("case", ["existing images", "unwritable folder", "bad mefgan.json"])
def test_demo_refuses_bad_input_in_one_line_and_writes_nothing(case, models, tmp_path, capsys):
    argv, message = demo_case(case, tmp_path, models)
    assert_refused("demo", argv, message, tmp_path, capsys)


def test_a_read_only_folder_is_refused_before_the_work(monkeypatch, tmp_path, capsys):
    """Tests run as root, for whom a chmod-ed folder stays writable: os.access stands in for it."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != tmp_path and real_access(p, mode, **kw))
    photos = tmp_path / "photos"
    exposures(photos)
    assert_refused("patches", ["--quiet", "--photos", str(photos), "--out", str(tmp_path / "p.h5")],
                   f"p.h5: cannot write here ({tmp_path} is not a writable folder)", tmp_path, capsys)


# ---- classes of faults: outputs onto inputs, full disks, two writers, impossible sizes, non-finite numbers


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB file system (tmpfs, as root) to fill; the test is skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def bracket_scenes(root: Path, count: int = 2, side: int = 256) -> Path:
    rng = np.random.default_rng(1)
    for i in range(count):
        base = rng.random((side // 8, side // 8, 3)).repeat(8, 0).repeat(8, 1)
        for k, gain in enumerate((0.3, 1.0, 2.5), 1):
            write_image(root / f"s{i}" / f"{k}.png", np.clip(base * gain, 0, 1))
    return root


def one_error_line(capsys, *parts: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(p in err[0] for p in parts), err
    return err[0]


@pytest.mark.parametrize("out", ["scenes/s0/1.png", "scenes/s0", "scenes/s0/1.PNG", "patches.txt"])
def test_patches_writes_only_a_patch_file_and_never_onto_its_inputs(tmp_path, capsys, out):
    scenes = bracket_scenes(tmp_path / "scenes")
    before = (scenes / "s0" / "1.png").read_bytes()
    assert main(["patches", "--brackets", str(scenes), "--out", str(tmp_path / out), "-y", "--quiet"]) == 1
    one_error_line(capsys, "a patch file is HDF5; give a name ending in .h5 or .hdf5")
    assert (scenes / "s0" / "1.png").read_bytes() == before


def test_patches_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, small_disk, capsys):
    scenes = bracket_scenes(tmp_path / "scenes", side=512)
    args = ["patches", "--brackets", str(scenes), "--size", "48", "--stride", "8", "--out", str(small_disk / "p.h5"), "--quiet"]
    assert main(args) == 1
    one_error_line(capsys, str(small_disk / "p.h5"), "cannot write (No space left on device")
    assert [p.name for p in small_disk.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
def test_train_without_room_for_a_checkpoint_is_one_line_and_leaves_no_partial_checkpoint(tmp_path, small_disk, capsys,
                                                                                         make_patches):
    data = make_patches(tmp_path / "p.h5", n=4, size=48)
    args = ["train", "--data", str(data), "--out", str(small_disk / "run"), "--batch-size", "2", "--max-steps", "1",
            "--seed", "1", "--quiet", "--set", "patch_size=48"]
    assert main(args) == 1
    line = one_error_line(capsys, "cannot write (No space left on device", "checkpoint 1")
    assert str(small_disk / "run") in line
    assert not list((small_disk / "run").glob("ckpt-*"))


def test_export_and_evaluate_on_a_full_disk_are_one_line_and_leave_nothing(tmp_path, small_disk, models, capsys):
    assert main(["export", "--checkpoint", str(models["checkpoint"]), "--out", str(small_disk / "export" / "1")]) == 1
    one_error_line(capsys, "No space left on device")
    assert not (small_disk / "export" / "1").exists()
    scenes = bracket_scenes(tmp_path / "scenes", count=1, side=64)
    filler = small_disk / "filler"
    with open(filler, "wb") as fh, pytest.raises(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    assert main(["evaluate", str(scenes), "--method", "average", "--out", str(small_disk / "report"), "--quiet"]) == 1
    one_error_line(capsys, "No space left on device")
    assert not [p for p in (small_disk / "report").glob("*") if not p.name.startswith(".")]  # nothing, or an empty folder


@pytest.mark.parametrize("command", ["train", "patches"])
def test_a_second_writer_of_the_same_output_is_refused_naming_the_first(tmp_path, capsys, make_patches, command):
    from mefgan_tf.files import exclusive

    data = make_patches(tmp_path / "p.h5", n=4)
    out = tmp_path / ("run" if command == "train" else "q.h5")
    args = {"train": ["train", "--data", str(data), "--out", str(out), "--batch-size", "2", "--max-steps", "1", "--quiet"],
            "patches": ["patches", "--brackets", str(bracket_scenes(tmp_path / "scenes", 1, 64)), "--out", str(out),
                        "--quiet"]}[command]
    with exclusive(out):
        assert main(args) == 1
    one_error_line(capsys, str(out), f"is in use by process {os.getpid()}")
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("argv", [
    ["patches", "--scale", "nan"],
    ["patches", "--ev-range", "1", "inf"],
    ["train", "--learning-rate", "inf"],
    ["train", "--checkpoint-minutes", "nan"],
    ["demo", "--ev", "nan"],
    ["serve", "--timeout=-inf"],
])
def test_numeric_options_must_be_finite(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2 and "expected a finite number" in capsys.readouterr().err


def test_a_patch_file_of_booleans_or_with_a_data_group_is_one_line(tmp_path, capsys):
    for name, make in (("bool.h5", lambda f: f.create_dataset("data", data=np.zeros((4, 8, 8, 9), bool))),
                       ("group.h5", lambda f: f.create_group("data"))):
        with h5py.File(tmp_path / name, "w") as f:
            make(f)
        assert main(["train", "--data", str(tmp_path / name), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "'data' is bool; expected uint8 (0-255) or floats in [0, 1]" in err[0]
    assert "'data' is a group, not a dataset (found: data (group))" in err[1] and len(err) == 2


def test_a_symbolic_link_loop_and_an_internal_error_are_each_one_line(tmp_path, capsys, monkeypatch):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    scenes = bracket_scenes(tmp_path / "scenes", count=1, side=32)
    assert main(["fuse", str(loop), str(scenes / "s0" / "1.png"), "-o", str(tmp_path / "f.png")]) == 1
    one_error_line(capsys, str(loop))
    from mefgan_tf.cli import fuse as fuse_command

    monkeypatch.setattr(fuse_command, "run", lambda args: 1 / 0)
    assert main(["fuse", "a.png", "b.png", "-o", str(tmp_path / "f.png")]) == 1
    err = capsys.readouterr().err
    assert "ZeroDivisionError" in err and err.strip().splitlines()[-1].endswith("please report it with the lines above)")


def test_a_finished_job_that_cannot_print_its_last_line_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "mefgan_tf.cli", "patches", "--brackets",
                               str(bracket_scenes(tmp_path / "scenes", 1, 64)), "--size", "32", "--out", str(tmp_path / "p.h5"), "--quiet"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["mefgan patches: error: standard output: cannot write (No space left on device)"]
    assert (tmp_path / "p.h5").is_file()  # the job itself was done


# ---- inputs that are not regular files: refused before opening (a FIFO would wait for ever) ----------


def special_file_case(case: str, tmp_path: Path) -> tuple[list[str], Path]:
    """The command line of ``case`` and the FIFO it names."""
    fifo = tmp_path / ("pipe" + {"train --data": ".h5", "train --config": ".yaml"}.get(case, ".png"))
    os.mkfifo(fifo)
    a, b = exposures(tmp_path)
    out = str(tmp_path / "out")
    scenes = bracket_scenes(tmp_path / "scenes", count=1, side=32)
    if case == "evaluate exposure":
        (scenes / "s0" / "1.png").unlink()
        os.mkfifo(scenes / "s0" / "1.png")
        fifo = scenes / "s0" / "1.png"
    return {
        "fuse exposure": ["fuse", str(fifo), str(a), "-o", out + ".png"],
        "fuse --model": ["fuse", str(a), str(b), "-o", out + ".png", "--model", str(fifo)],
        "evaluate exposure": ["evaluate", str(scenes), "--method", "mertens", "--out", out],
        "train --data": ["train", "--data", str(fifo), "--out", out],
        "train --config": ["train", "--config", str(fifo), "--data", str(a), "--out", out],
        "serve --model": ["serve", "--model", str(fifo), "--port", "0"],
        "export --checkpoint": ["export", "--checkpoint", str(fifo), "--out", out + "/1"],
        "demo --model": ["demo", "--model", str(fifo), "--out", out],
    }[case], fifo


@pytest.mark.parametrize("case", ["fuse exposure", "fuse --model", "evaluate exposure", "train --data", "train --config",
                                  "serve --model", "export --checkpoint", "demo --model"])
def test_an_input_that_is_not_a_regular_file_is_one_line_without_waiting(case, tmp_path, capsys):
    import threading

    argv, fifo = special_file_case(case, tmp_path)
    codes: list[int] = []
    command = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    command.start()
    command.join(120)
    if command.is_alive():
        with open(fifo, "wb"):  # release the reader, then fail
            pass
        pytest.fail(f"{case}: waited on the FIFO")
    assert codes == [1]
    err = capsys.readouterr().err.strip().splitlines()
    assert f"{fifo}: is a FIFO (named pipe), not a regular file" in err[0]
    assert err[-1].startswith(f"mefgan {argv[0]}: error: ") and len(err) == (2 if case == "evaluate exposure" else 1), err


def test_the_api_refuses_a_fifo_as_an_exposure(tmp_path):
    from mefgan_tf import read_image
    from mefgan_tf.errors import FileProblem

    os.mkfifo(tmp_path / "p.png")
    with pytest.raises(FileProblem, match="p.png: is a FIFO") as refused:
        read_image(tmp_path / "p.png")
    assert isinstance(refused.value, OSError) and isinstance(refused.value, ValueError)


# ---- numbers out of range and settings too large or too deep: one short line, before any work ----------


def last_error_line(argv: list[str], capsys) -> str:
    """The line a refused command ends with: its own (exit 1) or argparse's (exit 2)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as stopped:
        code = stopped.code
        assert code == 2
    else:
        assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 or len(err) == 1, err
    return err[-1]


@pytest.mark.parametrize("argv, message", [
    (["patches", "--seed", "-1"], "--seed -1: must be in [0, 2**32)"),
    (["patches", "--ev-range", "0", "2000"], "--ev-range 0 2000: need 0 <= LO <= HI <= 10 stops"),
    (["patches", "--size", "99999999999999999999"], "--size 99999999999999999999: must be from 8 to 4096"),
    (["patches", "--photo-variants", "0"], "--photo-variants 0: must be from 1 to 1000"),
    (["patches", "--extra-pairs", "50"], "--extra-pairs 50.0: must be at most 10 stops"),
    (["patches", "--scale", "1000", "--out", "p.h5"], "--scale 1000: must be more than 0 and at most 4"),
    (["demo", "--ev", "-2", "--out", "demo"], "--ev -2: must be more than 0 and at most 8 stops"),
    (["demo", "--ev", "40", "--out", "demo"], "--ev 40: must be more than 0 and at most 8 stops"),
    (["train", "--batch-size", "99999999999"], "--batch-size 99999999999: must be at most 65536"),
    (["train", "--seed", "-1"], "--seed -1: must be in [0, 2**32)"),
    (["train", "--max-steps", "0"], "--max-steps 0: must be from 1 to 1e+12"),
    (["train", "--set", "epochs=10000000"], "--set epochs=10000000: 10000000 must be at most 1e+06"),
    (["demo", "--max-side", "-5"], "--max-side -5: must be from 16 to 8192 pixels"),
    (["export", "--attention-chunk", "99999999999", "--out", "x/1"], "--attention-chunk 99999999999: must be from 1 to 1048576 rows"),
    (["evaluate", "s", "--method", "mertens", "--out", "o", "--resize-max", "99999999999"],
     "--resize-max 99999999999: must be from 22 to 65536"),
    (["fuse", "a.png", "b.png", "-o", "f.png", "--tile", "99999999999999999999"], "--tile 99999999999999999999: the tile side must be a multiple of 8, from 16 to 65536"),
    (["fuse", "a.png", "b.png", "-o", "f.png", "--detail-levels", "99999"], "--detail-levels 99999: expected 0 (the network's own fusion) to 16 levels"),
])
def test_every_number_has_a_range_integers_included(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = last_error_line(argv, capsys)
    assert message in line, line
    assert not [p for p in tmp_path.iterdir()]


def config_case(case: str, tmp_path: Path) -> tuple[list[str], str]:
    """A `mefgan train` command line whose settings are hostile, and what its one line says."""
    config = tmp_path / ("c.json" if "JSON" in case else "c.yaml")
    if case == "YAML alias bomb":
        config.write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
            f"{k}: &{k} [{','.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefg", "bcdefgh")))
        return ["--config", str(config)], "c.yaml: YAML aliases (*name) are not accepted in settings"
    if case == "deep --set":
        return ["--set", "batch_size=" + "[" * 3000 + "]" * 3000], "--set batch_size=[[[[[[[[[[[[[[[[[[[[[[[[[[...: values are nested more than 4 deep"
    if case == "deep JSON":
        config.write_text('{"batch_size": ' + "[" * 3000 + "]" * 3000 + "}")
        return ["--config", str(config)], "c.json: values are nested more than 4 deep"
    if case == "long value":
        config.write_text(f"batch_size: {'x' * 5000}\n")
        return ["--config", str(config)], "c.yaml: batch_size: expected an integer, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."
    if case == "long key":
        return ["--set", "k" * 5000 + "=1"], "--set kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..."
    config.write_text("# " + "x" * 2**20 + "\n")
    return ["--config", str(config)], "c.yaml: 1.0 MB is too large for a config file (at most 1 MB)"


@pytest.mark.parametrize("case", ["YAML alias bomb", "deep --set", "deep JSON", "long value", "long key", "huge file"])
def test_hostile_settings_are_one_short_line(case, tmp_path, capsys):
    argv, message = config_case(case, tmp_path)
    line = last_error_line(["train", *argv, "--data", str(tmp_path / "p.h5"), "--out", str(tmp_path / "run")], capsys)
    assert line.startswith("mefgan train: error: ") and message in line and len(line) < 250, line


def test_argument_mistakes_are_told_before_tensorflow_starts(tmp_path):
    import subprocess
    import sys

    probe = ("import sys; from mefgan_tf.cli import main; code = main(sys.argv[1:]); "
             "print(code, 'tensorflow' in sys.modules)")
    for argv in (["fuse", "a.png", "-o", "f.png"], ["train", "--batch-size", "0"], ["serve", "--queue", "-1"],
                 ["evaluate", "s", "--method", "mertens", "--out", "o", "--resize-max", "3"]):
        done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.stdout.split() == ["1", "False"], (argv, done.stdout, done.stderr[-500:])


# ---- outputs inside inputs: no command writes where it reads -----------------------------------------


@pytest.mark.parametrize("case", ["evaluate --out in a scene folder", "evaluate --out is the scenes folder",
                                  "evaluate --out in a method's folder", "fuse --out in --pairs", "fuse --out via a link",
                                  "patches --out in --brackets"])
def test_no_command_writes_inside_a_folder_it_reads(case, tmp_path, capsys):
    scenes = bracket_scenes(tmp_path / "scenes", count=1, side=32)
    (tmp_path / "link").symlink_to(scenes)
    out, folder = {
        "evaluate --out in a scene folder": (scenes / "s0" / "report", scenes),
        "evaluate --out is the scenes folder": (scenes, scenes),
        "evaluate --out in a method's folder": (tmp_path / "fused" / "report", tmp_path / "fused"),
        "fuse --out in --pairs": (scenes / "fused", scenes),
        "fuse --out via a link": (tmp_path / "link" / "fused", scenes),
        "patches --out in --brackets": (scenes / "patches.h5", scenes),
    }[case]
    (tmp_path / "fused").mkdir()
    if case.startswith("evaluate"):
        argv = ["evaluate", str(scenes), "--method", "mertens", "--method", f"mine=folder:{tmp_path / 'fused'}", "--out", str(out)]
    elif case.startswith("patches"):
        argv = ["patches", "--brackets", str(scenes), "--out", str(out), "--quiet"]
    else:
        argv = ["fuse", "--pairs", str(scenes if "link" not in case else tmp_path / "link"), "-o", str(out)]
    what = {"fuse": "--pairs folder", "patches": "--brackets folder"}.get(argv[0], "scenes folder")
    what = "folder of method mine" if "method" in case else what
    assert_refused(argv[0], argv[1:], f"{out}: is inside the {what} ", tmp_path, capsys)


@pytest.mark.parametrize("how", ["fuse", "fuse --original-io", "api path", "api array"])
def test_an_image_too_small_to_fuse_is_named(how, tmp_path, capsys):
    import mefgan_tf
    from mefgan_tf.errors import CommandError

    tiny = write_image(tmp_path / "tiny.png", np.full((1, 1, 3), 0.5, np.float32))
    a, _ = exposures(tmp_path)
    if how.startswith("fuse"):
        extra = ["--original-io"] if "original" in how else []
        assert_refused("fuse", [str(a), str(tiny), "-o", str(tmp_path / "f.png"), *extra],
                       f"{tiny}: image of 1x1 is too small: both sides must be at least 8 pixels", tmp_path, capsys)
        return
    given, name = (tiny, str(tiny)) if how == "api path" else (np.full((1, 1, 3), 0.5, np.float32), "exposure 2")
    with pytest.raises(CommandError, match=f"^{name}: image of 1x1 is too small"):
        mefgan_tf.fuse([np.full((24, 32, 3), 0.5, np.float32), given], model="nothing")
