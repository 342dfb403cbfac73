"""Rebuild the reference model's held-out validation scenes as an evaluation folder.

    python tools/heldout_scenes.py --brackets DIR --exclude House --val-fraction 0.15 --seed 0 --out DIR

Pass the same sources, --exclude, --val-fraction and --seed as to `mefgan patches`. Uses the same
scene list, seeded split and exposure simulation as `mefgan patches`, and writes each held-out
scene into `<scene>/` plus `Label/<scene>.png` (its ground truth: the photo, or the bracket's
Mertens fusion), the layout `mefgan evaluate` reads: a bracket's every frame as `<k>.png`, darkest
first (so `mefgan evaluate --pairing` can score close pairs, a frame with itself and all frames),
a simulated pair as `over.png` and `under.png`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mefgan_tf.data_prep.build import PatchOptions, collect_scenes, split_scenes
from mefgan_tf.data_prep.sources import LoadOptions
from mefgan_tf.images import is_image, read_image_uint8, write_image
from mefgan_tf.scenes import exposure_order


def scene_folder(roots: list[str], name: str) -> Path:
    """The folder of the bracket scene ``brackets:<root name>/<scene>`` in one of ``roots``."""
    root_name, scene = name.split(":", 1)[1].split("/", 1)
    return next(Path(r) / scene for r in roots if Path(r).resolve().name == root_name)


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
        if scene.name.startswith("brackets:"):
            frames = [read_image_uint8(p) for p in scene_folder(args.brackets, scene.name).iterdir() if is_image(p)]
            for k, index in enumerate(exposure_order(frames), 1):
                write_image(args.out / name / f"{k}.png", frames[index])
        else:
            write_image(args.out / name / "over.png", stacked[..., 0:3])
            write_image(args.out / name / "under.png", stacked[..., 3:6])
        write_image(args.out / "Label" / f"{name}.png", stacked[..., 6:9])
        print(name)


if __name__ == "__main__":
    main()
