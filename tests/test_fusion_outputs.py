"""The shipped generator's fusions, byte for byte: `mefgan fuse` on small exposures of a bundled photo,
for each way of fusing, compared with the SHA-256 of the files it wrote (tests/fixtures/fusion_hashes.json).

A refactor of the fusion must keep these files identical; a change meant to alter the fusion rewrites the
fixture (``python -m tests.test_fusion_outputs``) and says why in its commit.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from mefgan_tf.cli import main
from mefgan_tf.images import write_image
from mefgan_tf.samples import exposed, sample_photo

FIXTURE = Path(__file__).parent / "fixtures" / "fusion_hashes.json"
SMALL, LARGE = 96, 640  # long sides of the exposures: LARGE exceeds the default working size (512)
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


def hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every exposure file and every case's fused file."""
    fused = {case: sha256(fused_file(folder, case)) for case in CASES}
    return {**{p.name: sha256(p) for p in sorted((folder / "exposures").iterdir())}, **fused}


@pytest.mark.slow
def test_fusions_are_byte_identical(tmp_path):
    expected = json.loads(FIXTURE.read_text())
    got = hashes(tmp_path)
    inputs = {name for name in expected if name not in CASES}
    assert {n: got[n] for n in inputs} == {n: expected[n] for n in inputs}, "the exposures themselves changed"
    assert {c: got[c] for c in CASES} == {c: expected[c] for c in CASES}


if __name__ == "__main__":  # rewrite the fixture
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        FIXTURE.write_text(json.dumps(hashes(Path(tmp)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}", file=sys.stderr)
