"""Cutting scenes into patches and writing them, incrementally, to an HDF5 patch file.

File format (read by ``mefgan_tf.data``):
  ``data``    uint8 [N, size, size, 9], chunked one patch per chunk; channels over | under | gt
  ``scene``   int32 [N], index of each patch's scene in ``scenes``
  ``scenes``  strings [S], the scene names
  attributes  format, layout, version, sources, size, stride, scale, seed, split, exposure model, ...
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mefgan_tf.files import check_room

FORMAT = "mefgan-tf patches"
LAYOUT = "NHWC uint8 over|under|gt"
CHANNELS = 9


def patch_grid(height: int, width: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of a regular grid of ``size`` patches, ``stride`` apart, inside the image."""
    return [(y, x) for y in range(0, height - size + 1, stride) for x in range(0, width - size + 1, stride)]


def cut_patches(image: np.ndarray, size: int, stride: int, batch: int = 256) -> Iterator[np.ndarray]:
    """Batches [n, size, size, C] of the patches of ``image`` (H, W, C), row-major order."""
    corners = patch_grid(image.shape[0], image.shape[1], size, stride)
    for start in range(0, len(corners), batch):
        yield np.stack([image[y : y + size, x : x + size] for y, x in corners[start : start + batch]])


class PatchWriter:
    """Appends patches of named scenes to a new HDF5 file; memory use does not grow with N."""

    def __init__(self, path: str | Path, size: int, attrs: dict[str, Any], shown: str | Path | None = None):
        self.path = Path(path)
        self.shown = Path(shown or path)  # the name errors give (the final file, not its temporary)
        self.file = h5py.File(self.path, "w")
        shape = (size, size, CHANNELS)
        self.data = self.file.create_dataset(
            "data", shape=(0, *shape), maxshape=(None, *shape), chunks=(1, *shape), dtype=np.uint8
        )
        self.scene = self.file.create_dataset("scene", shape=(0,), maxshape=(None,), chunks=(4096,), dtype=np.int32)
        self.scene_names: list[str] = []
        self.notes: dict[str, str] = {}
        for key, value in {"format": FORMAT, "layout": LAYOUT, **attrs}.items():
            self.file.attrs[key] = value

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def add(self, scene: str, patches: np.ndarray) -> None:
        """Append ``patches`` (uint8 [n, size, size, 9]) of ``scene``."""
        if not len(patches):
            return
        check_room(self.shown, 2 * patches.nbytes, f"the next {len(patches)} patches")
        if not self.scene_names or self.scene_names[-1] != scene:
            self.scene_names.append(scene)
        start, stop = len(self), len(self) + len(patches)
        self.data.resize(stop, axis=0)
        self.data[start:stop] = patches
        self.scene.resize(stop, axis=0)
        self.scene[start:stop] = len(self.scene_names) - 1

    def note(self, scene: str, text: str) -> None:
        """Record how ``scene`` was made (kept as the JSON attribute ``scene_notes``)."""
        self.notes[scene] = text

    def close(self) -> None:
        """Write the scene names, notes and counts, and close the file."""
        if not self.file:
            return
        if self.notes:
            self.file.attrs["scene_notes"] = json.dumps(self.notes)
        self.file.create_dataset("scenes", data=np.array(self.scene_names, dtype=object), dtype=h5py.string_dtype())
        self.file.attrs["patches"] = len(self)
        self.file.attrs["scene_count"] = len(self.scene_names)
        self.file.close()

    def __enter__(self) -> PatchWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        elif self.file:
            self.file.close()
