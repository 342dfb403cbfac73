"""Patch-building throughput of `mefgan patches` (patches per second) on generated data.

Three runs at the default size (144) and stride (72): a generated SICE-layout folder (read,
choose brightest/darkest, cut, write), generated photos (plus exposure synthesis), and the
shared real brackets (plus Mertens fusion) when ../shared/data is present. The reader's
throughput (float32 batches of 19, contiguous and shuffled) is measured on the SICE file.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mefgan_tf.data import open_patches
from mefgan_tf.data_prep.build import PatchOptions, build

SHARED_BRACKETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "brackets"
SCENES, HEIGHT, WIDTH = 6, 720, 1080


def texture(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    small = rng.uniform(30, 220, (height // 16, width // 16, 3)).astype(np.float32)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def make_sice(root: Path, rng: np.random.Generator) -> None:
    (root / "Label").mkdir(parents=True)
    for scene in range(SCENES):
        base = texture(rng)
        (root / str(scene)).mkdir()
        for i, gain in enumerate((0.3, 1.0, 1.7)):
            cv2.imwrite(str(root / str(scene) / f"{i}.jpg"), np.clip(base * gain, 0, 255).astype(np.uint8))
        cv2.imwrite(str(root / "Label" / f"{scene}.jpg"), base)


def make_photos(root: Path, rng: np.random.Generator) -> None:
    root.mkdir(parents=True)
    for i in range(SCENES):
        cv2.imwrite(str(root / f"{i}.png"), texture(rng))


def timed_build(flag: str, folder: Path, out: Path) -> dict:
    args = PatchOptions(**{flag.lstrip("-"): (str(folder),)}, out=str(out), quiet=True)
    start = time.perf_counter()
    summary = build(args)
    seconds = time.perf_counter() - start
    patches = summary.patches["train"]
    return {
        "scenes": summary.scenes["train"],
        "patches": patches,
        "seconds": round(seconds, 3),
        "patches_per_second": round(patches / seconds, 1),
        "output_mb_per_second": round(out.stat().st_size / 1e6 / seconds, 1),
    }


def timed_read(path: Path, batch: int = 19) -> dict:
    """Reader throughput: contiguous batches over the file, and random batches of ``batch``."""
    with open_patches(path) as patches:
        start = time.perf_counter()
        count = sum(len(b) for b in patches.batches(batch))
        contiguous = count / (time.perf_counter() - start)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(count // batch):
            patches.read(rng.choice(len(patches), batch, replace=False))
        shuffled = (count // batch) * batch / (time.perf_counter() - start)
    return {"contiguous_patches_per_second": round(contiguous, 1), "random_patches_per_second": round(shuffled, 1)}


def run() -> dict:
    rng = np.random.default_rng(0)
    result: dict = {"patch_size": 144, "stride": 72, "image_size": f"{WIDTH}x{HEIGHT}"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        make_sice(tmp_path / "sice", rng)
        make_photos(tmp_path / "photos", rng)
        result["sice_generated"] = timed_build("--sice", tmp_path / "sice", tmp_path / "sice.h5")
        result["read_float32"] = timed_read(tmp_path / "sice.h5")
        result["photos_generated"] = timed_build("--photos", tmp_path / "photos", tmp_path / "photos.h5")
        if SHARED_BRACKETS.is_dir():
            result["brackets_shared"] = timed_build("--brackets", SHARED_BRACKETS, tmp_path / "brackets.h5")
    result["patches_per_second"] = result["sice_generated"]["patches_per_second"]
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
