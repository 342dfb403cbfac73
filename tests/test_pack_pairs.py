"""tools/pack_pairs.py packs the pairs of real brackets small enough to carry to an accelerator, and
`mefgan patches` cuts from them what it cuts from the whole brackets."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np

from mefgan_tf.cli.patches import configure, patch_options
from mefgan_tf.data_prep.build import build
from mefgan_tf.data_prep.references import mertens_uint8

REPO = Path(__file__).resolve().parents[1]
GAINS = (0.35, 0.7, 1.3, 2.2)  # frame files named out of exposure order below


def write_bracket(folder: Path, seed: int) -> list[np.ndarray]:
    """A 4-frame bracket of a smooth random scene, files named 1..4 in the order of ``GAINS``."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(30, 200, (12, 12, 3)).astype(np.float32), (96, 96), interpolation=cv2.INTER_CUBIC)
    folder.mkdir(parents=True)
    frames = []
    for i, gain in enumerate(GAINS):
        frame = np.clip(base * gain, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{(i + 2) % 4 + 1}.png"), frame[..., ::-1])
        frames.append(frame)
    return frames


def cut(*argv: str) -> tuple[np.ndarray, list[str]]:
    parser = argparse.ArgumentParser()
    configure(parser)
    out = argv[argv.index("--out") + 1]
    build(patch_options(parser.parse_args(["--quiet", "--size", "48", "--stride", "48", *argv])))
    with h5py.File(out, "r") as f:
        return f["data"][:], list(f["scenes"].asstr()[:])


def test_packed_pairs_keep_the_split_the_frames_and_the_whole_bracket_reference(tmp_path):
    brackets = tmp_path / "br"
    frames = {name: write_bracket(brackets / name, seed) for seed, name in enumerate(("Hall", "Lake", "Roof", "Yard"))}
    packed = tmp_path / "packed"
    command = [sys.executable, str(REPO / "tools" / "pack_pairs.py"), "--brackets", str(brackets),
               "--val-fraction", "0.25", "--seed", "3", "--out", str(packed)]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]

    _, val_scenes = cut("--brackets", str(brackets), "--val-fraction", "0.25", "--seed", "3", "--out", str(tmp_path / "a.h5"))
    held = {Path(n).name for n in h5py.File(tmp_path / "a_val.h5", "r")["scenes"].asstr()[:]}
    assert {p.name for p in (packed / "val").iterdir()} == held and len(held) == 1
    assert sorted(p.name for p in (packed / "train").iterdir()) == sorted({"Label", *frames} - held)
    for split in ("train", "val"):
        for scene in (packed / split).iterdir():
            if scene.name == "Label":
                continue
            # the darkest and brightest files, byte for byte: gains 0.35 and 2.2 were written as 3.png and 2.png
            assert (scene / "1.png").read_bytes() == (brackets / scene.name / "3.png").read_bytes()
            assert (scene / "2.png").read_bytes() == (brackets / scene.name / "2.png").read_bytes()
    assert sorted(p.stem for p in (packed / "train" / "Label").iterdir()) == sorted(set(frames) - held)

    pair, _ = cut("--brackets", str(packed / "train"), "--reference", "pair", "--out", str(tmp_path / "pair.h5"))
    whole, names = cut("--sice", str(packed / "train"), "--out", str(tmp_path / "whole.h5"))
    assert len(pair) == len(whole) == 3 * 4 and len(names) == 3
    np.testing.assert_array_equal(pair[..., :6], whole[..., :6])  # the same inputs, two references
    first = Path(names[0]).name
    of_pair = mertens_uint8([frames[first][0], frames[first][3]])[:48, :48]
    np.testing.assert_array_equal(pair[0, ..., 6:9], of_pair)
    error = np.abs(whole[0, ..., 6:9].astype(int) - mertens_uint8(frames[first])[:48, :48]).mean()
    assert error < 4.0 < np.abs(whole[0, ..., 6:9].astype(int) - of_pair).mean()  # the whole bracket's, through a JPEG
