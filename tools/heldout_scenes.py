"""Rebuild the reference model's held-out validation scenes as an evaluation folder.

    python tools/heldout_scenes.py --brackets DIR --exclude House --val-fraction 0.15 --seed 0 --out DIR

Pass the same sources, --exclude, --val-fraction and --seed as to `mefgan patches`. Uses the same
scene list, seeded split and exposure simulation as `mefgan patches`, and writes each
held-out scene as `<scene>/over.png`, `<scene>/under.png` plus `Label/<scene>.png` (its ground truth:
the photo, or the bracket's Mertens fusion), the layout `mefgan evaluate` reads.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mefgan_tf.data_prep.build import PatchOptions, collect_scenes, split_scenes
from mefgan_tf.data_prep.sources import LoadOptions
from mefgan_tf.images import write_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sice", action="append", default=[])
    parser.add_argument("--brackets", action="append", default=[])
    parser.add_argument("--photos", action="append", default=[])
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sources = {kind: tuple(getattr(args, kind)) for kind in ("sice", "brackets", "photos", "exclude")}
    scenes, _ = collect_scenes(PatchOptions(**sources, val_fraction=args.val_fraction, seed=args.seed))
    options = LoadOptions(seed=args.seed)
    for index in sorted(split_scenes(len(scenes), args.val_fraction, args.seed)):
        scene = scenes[index]
        name = Path(scene.name).stem
        stacked = scene.load(options).stacks[0]
        write_image(args.out / name / "over.png", stacked[..., 0:3])
        write_image(args.out / name / "under.png", stacked[..., 3:6])
        write_image(args.out / "Label" / f"{name}.png", stacked[..., 6:9])
        print(name)


if __name__ == "__main__":
    main()
