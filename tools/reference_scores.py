"""Score every training reference a bracket can give against the pair the network sees.

    python tools/reference_scores.py --brackets DIR [--brackets DIR] --scenes HELDOUT_DIR

For each scene of HELDOUT_DIR (as `tools/heldout_scenes.py` writes it) found in the --brackets
folders, makes each candidate of `mefgan patches --reference best` from the whole bracket, the
candidate `best` keeps, and the `pair` reference, and prints the means over scenes of: multi-scale
MEF-SSIM and Q^AB/F against the (brightest, darkest) pair, as `mefgan evaluate` scores a fusion;
the mean level; and the MEF-SSIM against the whole bracket that `best` selects by. A model trained
to reproduce a reference is scored against the pair, so these are the ceilings of each reference.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mefgan_tf.data_prep.references import CANDIDATES, PAIR, BracketScorer, by_exposure, mertens_uint8
from mefgan_tf.images import read_image_uint8
from mefgan_tf.metrics import Sources, mean_level
from mefgan_tf.scenes import find_scenes, scene_folders

COLUMNS = ("MEF-SSIM (pair)", "Q^AB/F (pair)", "MEAN", "MEF-SSIM (bracket)")


def scene_scores(frames: list[np.ndarray]) -> dict[str, tuple[float, ...]]:
    """Candidate name -> scores (``COLUMNS``) for one bracket ordered darkest first."""
    sources, bracket = Sources(frames[-1], frames[0]), BracketScorer(frames)
    images = {name: make(frames) for name, make in CANDIDATES.items()}
    images[PAIR] = mertens_uint8([frames[0], frames[-1]])
    scores = {name: (sources.mef_ms_ssim(im), sources.qabf(im), mean_level(im), bracket(im)) for name, im in images.items()}
    scores["best"] = max((scores[name] for name in CANDIDATES), key=lambda s: s[3])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brackets", action="append", type=Path, required=True)
    parser.add_argument("--scenes", type=Path, required=True, help="held-out folder: one sub-folder per scene")
    args = parser.parse_args()
    wanted = {folder.name for folder in scene_folders(args.scenes)}
    found = [scene for root in args.brackets for scene in find_scenes(root) if scene.name in wanted]
    per_scene = []
    for scene in found:
        per_scene.append(scene_scores(by_exposure([read_image_uint8(p) for p in scene.exposures])))
        print(f"scored {scene.name}", flush=True)
    print(f"\n{len(found)} scenes\n\n| reference | " + " | ".join(COLUMNS) + " |\n|---|" + "---:|" * len(COLUMNS))
    for name in per_scene[0]:
        means = np.mean([scores[name] for scores in per_scene], axis=0)
        print(f"| {name} | " + " | ".join(f"{m:.1f}" if c == "MEAN" else f"{m:.3f}" for c, m in zip(COLUMNS, means)) + " |")


if __name__ == "__main__":
    main()
