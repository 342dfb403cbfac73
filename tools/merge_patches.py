"""Join patch files of `mefgan patches` into one training file, e.g. extreme pairs and close pairs
cut with different strides or references.

    python tools/merge_patches.py data/ext.h5 data/close.h5 --out data/anypair.h5

Patches are copied in order, file after file; each scene keeps its name, prefixed by its file's
stem. Every file must have the same patch size. The output is written to a temporary name first.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from mefgan_tf.data import open_patches
from mefgan_tf.data_prep.patches import PatchWriter
from mefgan_tf.files import atomic_path, check_file_target

CHUNK = 512


def merge(inputs: list[Path], out: Path, overwrite: bool = False) -> int:
    """Write the patches of ``inputs`` one after the other into ``out``; the number of patches."""
    check_file_target(out, overwrite)
    sources = [open_patches(path) for path in inputs]
    sizes = {p.patch_size for p in sources}
    if len(sizes) != 1:
        raise SystemExit(f"patch sizes differ: {sorted(sizes)}")
    attrs = {"merged_from": json.dumps({str(p.path): {k: _plain(v) for k, v in p.attrs.items()} for p in sources})}
    with atomic_path(out) as tmp:
        writer = PatchWriter(tmp, sizes.pop(), attrs)
        for patches in sources:
            names, ids = patches.scene_names, patches.scene_ids
            for start in tqdm(range(0, len(patches), CHUNK), desc=patches.path.name, unit="chunk"):
                stop = min(start + CHUNK, len(patches))
                data = patches.data[start:stop]
                scene_ids = ids[start:stop] if ids is not None else np.zeros(stop - start, np.int64)
                for sid in np.unique(scene_ids):
                    name = names[sid] if names else "all"
                    writer.add(f"{patches.path.stem}:{name}", data[scene_ids == sid])
            patches.close()
        writer.close()
        count = len(h5py.File(tmp, "r")["data"])
    return count


def _plain(value):
    return value.tolist() if isinstance(value, np.ndarray) else value if isinstance(value, (int, float, str)) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("-y", "--overwrite", action="store_true")
    args = parser.parse_args()
    print(f"{args.out}: {merge(args.inputs, args.out, args.overwrite)} patches")


if __name__ == "__main__":
    main()
