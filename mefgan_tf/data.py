"""Training patches: reading the HDF5 files of ``mefgan patches`` and of the original MATLAB script.

Two layouts are read the same way, as float32 NHWC in [0, 1] with channels over | under | gt:

* ``"mefgan-tf"``: ``data`` uint8 [N, S, S, 9] (plus ``scene`` ids and ``scenes`` names);
* ``"matlab"``: the original float32 file, which h5py sees as [N, 9, W, H] (axes reversed by
  MATLAB); it is transposed with axes (0, 3, 2, 1).

Reads touch only the requested patches, never the whole file.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.files import check_regular

CHANNELS = 9
MATLAB_AXES = (0, 3, 2, 1)
SAMPLE_PATCHES = 32  # patches read on open to check that float values lie in [0, 1]
RANGE_TOLERANCE = 1e-3
Index = int | slice | Sequence[int] | np.ndarray


def detect_layout(path: Path, shape: tuple[int, ...]) -> str:
    """"mefgan-tf" for [N, S, S, 9], "matlab" for [N, 9, S, S]; CommandError otherwise."""
    if len(shape) == 4 and shape[3] == CHANNELS and shape[1] == shape[2]:
        return "mefgan-tf"
    if len(shape) == 4 and shape[1] == CHANNELS and shape[2] == shape[3]:
        return "matlab"
    raise CommandError(
        f"{path}: 'data' has shape {list(shape)}, expected [N, S, S, 9] (mefgan-tf) or [N, 9, S, S] (MATLAB)"
    )


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def hdf5_problem(path: Path) -> str:
    """Why h5py cannot open ``path``: a damaged HDF5 file (its signature is there) or another kind of file."""
    try:
        with open(path, "rb") as file:
            start = file.read(len(HDF5_SIGNATURE))
    except OSError as err:
        return f"cannot read ({err.strerror})"
    if start == HDF5_SIGNATURE:
        return (f"an HDF5 file that looks truncated or damaged ({path.stat().st_size:,} bytes: cut short while being "
                "written or copied?); build it again with `mefgan patches`")
    return "not an HDF5 file (build a patch file with `mefgan patches`)"


class PatchFile:
    """An open patch file. ``read`` returns float32 [n, S, S, 9] in [0, 1] whatever the layout."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_regular(self.path)
        if not self.path.is_file():
            raise CommandError(f"{self.path}: no such patch file (build one with `mefgan patches`)")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            raise CommandError(f"{self.path}: {hdf5_problem(self.path)}") from None
        data = self.file.get("data")
        if not isinstance(data, h5py.Dataset):
            found = ", ".join(f"{k} ({'group' if isinstance(v, h5py.Group) else 'dataset'})" for k, v in self.file.items())
            self.file.close()
            what = "'data' is a group, not a dataset" if isinstance(data, h5py.Group) else "no 'data' dataset"
            raise CommandError(f"{self.path}: {what} (found: {found or 'nothing'})")
        self.data = data
        self.scale = 1.0 / 255.0 if data.dtype == np.uint8 else 1.0
        try:
            self.layout = detect_layout(self.path, data.shape)
            self.check_values()
        except CommandError:
            self.file.close()
            raise

    def check_values(self) -> None:
        """CommandError unless the patches read as [0, 1]: uint8, or floats in [0, 1] (checked on a sample)."""
        dtype = self.data.dtype
        if dtype == np.uint8 or len(self) == 0:
            return
        if not np.issubdtype(dtype, np.floating):
            hint = f" (scale it first, e.g. {dtype} / {np.iinfo(dtype).max} into float32)" if np.issubdtype(dtype, np.integer) else ""
            raise CommandError(f"{self.path}: 'data' is {dtype}; expected uint8 (0-255) or floats in [0, 1]{hint}")
        index = np.unique(np.linspace(0, len(self) - 1, min(len(self), SAMPLE_PATCHES)).round().astype(np.int64))
        sample = self.read(index)
        if not np.isfinite(sample).all():
            raise CommandError(f"{self.path}: 'data' holds NaN or infinite values (found in a sample of {len(index)} patches)")
        low, high = float(sample.min()), float(sample.max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            hint = " (0-255 values: divide by 255)" if high > 2 else ""
            raise CommandError(
                f"{self.path}: 'data' values span [{low:g}, {high:g}] in a sample of {len(index)} patches; "
                f"float patches must be in [0, 1]{hint}"
            )

    @property
    def patch_size(self) -> int:
        return int(self.data.shape[2])

    @property
    def attrs(self) -> dict:
        return dict(self.file.attrs)

    @property
    def scene_ids(self) -> np.ndarray | None:
        """int32 [N] scene index of each patch (None for MATLAB files)."""
        return self.file["scene"][:] if "scene" in self.file else None

    @property
    def scene_names(self) -> list[str]:
        return list(self.file["scenes"].asstr()[:]) if "scenes" in self.file else []

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def read(self, index: Index) -> np.ndarray:
        """Patches at ``index`` (int, slice or indices in any order) as float32 [n, S, S, 9] in [0, 1]."""
        if isinstance(index, (int, np.integer)):
            return self.read(slice(int(index), int(index) + 1))
        raw = self.data[index] if isinstance(index, slice) else self._read_indices(np.asarray(index, np.int64))
        if self.layout == "matlab":
            raw = raw.transpose(MATLAB_AXES)
        return np.ascontiguousarray(raw, np.float32) * np.float32(self.scale)

    def _read_indices(self, index: np.ndarray) -> np.ndarray:
        """Read sorted unique indices as runs of contiguous slices (h5py's list indexing is slow)."""
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"{self.path}: patch index out of range for {len(self)} patches")
        unique, inverse = np.unique(index % max(len(self), 1), return_inverse=True)
        if not unique.size:
            return self.data[0:0]
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        runs = [self.data[run[0] : run[-1] + 1] for run in np.split(unique, breaks)]
        return np.concatenate(runs)[inverse]

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Contiguous batches of ``read`` from ``start`` to ``stop`` (the last may be smaller)."""
        stop = len(self) if stop is None else min(stop, len(self))
        for begin in range(start, stop, batch_size):
            yield self.read(slice(begin, min(begin + batch_size, stop)))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> PatchFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_patches(path: str | Path) -> PatchFile:
    """Open a patch file of either layout; use as ``with open_patches(p) as patches: ...``."""
    return PatchFile(path)


def split_channels(batch):
    """(over, under, gt) of a [..., 9] batch (NumPy array or tensor), each [..., 3]."""
    return batch[..., 0:3], batch[..., 3:6], batch[..., 6:9]
