"""Pack the training pairs of real brackets small enough to carry to an accelerator machine.

    python tools/pack_pairs.py --brackets DIR [--brackets DIR] --exclude House --val-fraction 0.15 --seed 0 --out DIR

The whole brackets are too large to send (64 MiB a call), and the patch files far larger; the
pairs are not. For every scene this copies the two frames the network sees (darkest and brightest,
the original files, byte for byte) to ``OUT/train/<scene>/`` or, for the held-out scenes of the same
seeded split as `mefgan patches`, ``OUT/val/<scene>/``. For training scenes it also writes the
whole-bracket Mertens reference as ``OUT/train/Label/<scene>.jpg`` (JPEG, --quality), so that on the
other machine

    mefgan patches --brackets OUT/train --reference pair   # the reference of each pair alone
    mefgan patches --sice OUT/train                        # the whole-bracket reference (SICE layout)

cut the same patches as `--reference pair` and `--reference mertens` on the full brackets (the latter
through a JPEG of the reference), and the two can be combined in one file.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2

from mefgan_tf.data_prep.build import PatchOptions, collect_scenes, split_scenes
from mefgan_tf.data_prep.references import mertens_reference
from mefgan_tf.data_prep.sources import read_frame
from mefgan_tf.scenes import exposure_order, find_scenes


def bracket_frames(roots: list[str]) -> dict[str, list[Path]]:
    """Each scene's frame files, under the name `mefgan patches` gives the scene."""
    return {f"brackets:{Path(root).name}/{scene.name}": scene.exposures for root in roots for scene in find_scenes(Path(root))}


def pack_scene(paths: list[Path], out: Path, label: Path | None, quality: int) -> None:
    """Copy the darkest and brightest of ``paths`` into ``out``; write the whole-bracket reference to ``label``."""
    frames = [read_frame(p) for p in paths]
    order = exposure_order(frames)
    out.mkdir(parents=True, exist_ok=True)
    for rank, index in enumerate((order[0], order[-1]), start=1):
        shutil.copyfile(paths[index], out / f"{rank}{paths[index].suffix.lower()}")
    if label is not None:
        label.parent.mkdir(parents=True, exist_ok=True)
        image = mertens_reference(frames).image
        cv2.imwrite(str(label), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brackets", action="append", required=True)
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the whole-bracket references")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    options = PatchOptions(brackets=tuple(args.brackets), exclude=tuple(args.exclude), val_fraction=args.val_fraction, seed=args.seed)
    scenes, _ = collect_scenes(options)
    held_out = split_scenes(len(scenes), args.val_fraction, args.seed)
    frames = bracket_frames(args.brackets)
    for index, scene in enumerate(scenes):
        name = Path(scene.name).name
        split = "val" if index in held_out else "train"
        label = None if split == "val" else args.out / "train" / "Label" / f"{name}.jpg"
        pack_scene(frames[scene.name], args.out / split / name, label, args.quality)
        print(split, name, flush=True)


if __name__ == "__main__":
    main()
