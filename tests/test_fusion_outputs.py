"""The shipped generator's fusions, level for level: `mefgan fuse` on small exposures of a bundled photo,
for each way of fusing, compared with the images it wrote when the fixture was made (16-bit PNGs in
tests/fixtures/fusion_outputs/; the exposures themselves by SHA-256 in tests/fixtures/fusion_hashes.json).

TensorFlow's CPU kernels round differently on different instruction sets (AVX2, AVX-512): the same
fusion then differs by a level of 65535 at a few pixels (measured with oneDNN on and off), so each
image may differ by ``LEVELS`` 16-bit levels at most (one 8-bit level for JPEG), and not at all in
the bytes. A refactor of the fusion must stay within that; a change meant to alter the fusion
rewrites the fixture (``python -m tests.test_fusion_outputs``) and says why in its commit.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mefgan_tf.cli import main
from mefgan_tf.images import write_image
from mefgan_tf.samples import exposed, sample_photo

FIXTURE = Path(__file__).parent / "fixtures" / "fusion_hashes.json"
OUTPUTS = Path(__file__).parent / "fixtures" / "fusion_outputs"
SMALL, LARGE = 96, 640  # long sides of the exposures: LARGE exceeds the default working size (512)
LEVELS = 4  # 16-bit levels an output may differ by (other CPUs' rounding: 1 level measured)
KEPT_SIDE = 160  # larger outputs are kept area-averaged to this long side (the fixture stays small)
# case -> (exposures: "pair" or "bracket", long side, `mefgan fuse` options)
CASES = {
    "pair": ("pair", SMALL, []),
    **{f"bracket-{multi}": ("bracket", SMALL, ["--multi", multi])
       for multi in ("darkest-first", "middle-out", "brightest-first", "extremes", "blend")},
    "tiled": ("pair", SMALL, ["--tile", "32", "--work-size", "full"]),
    "work-size-64": ("bracket", SMALL, ["--work-size", "64"]),
    "work-size-default-large": ("pair", LARGE, []),
    "work-size-full": ("pair", SMALL, ["--work-size", "full"]),
    "no-tone-guard": ("pair", SMALL, ["--no-tone-guard"]),
    "detail-levels-0": ("pair", SMALL, ["--detail-levels", "0"]),
    "original-io": ("pair", SMALL, ["--original-io"]),
}
EVS = {"pair": (-2.0, 2.0), "bracket": (-2.0, 0.0, 2.0)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exposure_files(folder: Path, kind: str, side: int) -> list[Path]:
    """The exposures of ``kind`` made from the bundled "coffee" photo at ``side`` pixels, as PNG files."""
    photo = sample_photo("coffee", side)
    folder.mkdir(exist_ok=True)
    paths = []
    for number, ev in enumerate(EVS[kind]):
        path = folder / f"{kind}-{side}-{number}.png"
        if not path.exists():
            write_image(path, exposed(photo, ev))
        paths.append(path)
    return paths


def fused_file(folder: Path, case: str) -> Path:
    """What `mefgan fuse` writes for ``case`` (no alignment, so that only the fusion is compared)."""
    kind, side, options = CASES[case]
    out = folder / f"{case}.{'jpg' if '--original-io' in options else 'png'}"
    inputs = [str(p) for p in exposure_files(folder / "exposures", kind, side)]
    depth = [] if "--original-io" in options else ["--bit-depth", "16"]  # 16 bits: the fusion's finest differences
    code = main(["fuse", *inputs, "-o", str(out), "-q", "--no-align", "--no-deghost", *depth, *options])
    assert code == 0, f"mefgan fuse failed for {case}"
    return out


def kept(path: Path) -> np.ndarray:
    """An output as the fixture keeps it: 16-bit levels (8-bit files scaled up), outputs over
    ``KEPT_SIDE`` area-averaged to it."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    levels = image.astype(np.float64) * (257 if image.dtype == np.uint8 else 1)
    factor = KEPT_SIDE / max(image.shape[:2])
    if factor < 1:
        size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
        levels = cv2.resize(levels, size, interpolation=cv2.INTER_AREA)
    return np.round(levels).astype(np.uint16)


def fused_outputs(folder: Path) -> dict[str, tuple[np.ndarray, int]]:
    """Each case's output as kept (``kept``), and the levels it may differ by."""
    found = {}
    for case in CASES:
        path = fused_file(folder, case)
        found[case] = kept(path), LEVELS if path.suffix == ".png" else 257
    return found


def input_hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted((folder / "exposures").iterdir())}


@pytest.mark.slow
def test_fusions_match_the_fixture_level_for_level(tmp_path):
    outputs = fused_outputs(tmp_path)
    assert input_hashes(tmp_path) == json.loads(FIXTURE.read_text()), "the exposures themselves changed"
    differ = {}
    for case, (image, levels) in outputs.items():
        expected = cv2.imread(str(OUTPUTS / f"{case}.png"), cv2.IMREAD_UNCHANGED)
        assert expected is not None and expected.shape == image.shape, f"{case}: no fixture of this shape"
        worst = int(np.abs(image.astype(np.int64) - expected).max())
        if worst > levels:
            differ[case] = worst
    assert not differ, f"outputs differ from the fixture by these many 16-bit levels: {differ}"


if __name__ == "__main__":  # rewrite the fixture
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        OUTPUTS.mkdir(exist_ok=True)
        for case, (image, _) in fused_outputs(Path(tmp)).items():
            cv2.imwrite(str(OUTPUTS / f"{case}.png"), image)
        FIXTURE.write_text(json.dumps(input_hashes(Path(tmp)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUTPUTS} and {FIXTURE}", file=sys.stderr)
