"""The patch-file reader (mefgan_tf.data): both layouts, partial reads, clear errors."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from mefgan_tf.data import open_patches, split_channels
from mefgan_tf.data_prep.patches import PatchWriter
from mefgan_tf.errors import CommandError

S = 16


def make_uint8(path, n: int = 10) -> np.ndarray:
    patches = np.random.default_rng(0).integers(0, 256, (n, S, S, 9), dtype=np.uint8)
    with PatchWriter(path, S, {"size": S}) as writer:
        writer.add("a", patches[:4])
        writer.add("b", patches[4:])
    return patches


def test_reads_mefgan_file_as_float32_nhwc_in_unit_range(tmp_path):
    patches = make_uint8(tmp_path / "p.h5")
    with open_patches(tmp_path / "p.h5") as pf:
        assert pf.layout == "mefgan-tf" and len(pf) == 10 and pf.patch_size == S
        batch = pf.read(slice(2, 7))
        assert batch.dtype == np.float32 and batch.shape == (5, S, S, 9)
        np.testing.assert_allclose(batch, patches[2:7] / 255.0, atol=1e-7)
        assert batch.min() >= 0.0 and batch.max() <= 1.0
        np.testing.assert_array_equal(pf.scene_ids, [0] * 4 + [1] * 6)
        assert pf.scene_names == ["a", "b"]


def test_read_takes_an_int_a_slice_or_indices_in_any_order(tmp_path):
    patches = make_uint8(tmp_path / "p.h5")
    with open_patches(tmp_path / "p.h5") as pf:
        np.testing.assert_allclose(pf.read(3), patches[3:4] / 255.0, atol=1e-7)
        np.testing.assert_allclose(pf.read([7, 1, 7, -1]), patches[[7, 1, 7, 9]] / 255.0, atol=1e-7)
        assert pf.read([]).shape == (0, S, S, 9)
        with pytest.raises(IndexError):
            pf.read([10])


def test_matlab_layout_reads_back_equal_to_the_nhwc_original(tmp_path):
    rng = np.random.default_rng(1)
    nhwc = rng.random((6, S, S, 9), dtype=np.float32)
    nhwc[..., 0] = 0.8 * nhwc[..., 0] + np.arange(S, dtype=np.float32)[:, None] / 100  # rows differ from columns
    with h5py.File(tmp_path / "matlab.h5", "w") as f:
        f["data"] = nhwc.transpose(0, 3, 2, 1)  # what h5py shows of MATLAB's file: [N, 9, W, H]
    with open_patches(tmp_path / "matlab.h5") as pf:
        assert pf.layout == "matlab" and pf.data.shape == (6, 9, S, S) and len(pf) == 6
        np.testing.assert_array_equal(pf.read(slice(None)), nhwc)
        np.testing.assert_array_equal(pf.read([4, 0]), nhwc[[4, 0]])
        assert pf.scene_ids is None


def test_reads_only_the_requested_patches(tmp_path):
    make_uint8(tmp_path / "p.h5")
    with open_patches(tmp_path / "p.h5") as pf:
        requested = []
        real = pf.data

        class Spy:
            shape, dtype = real.shape, real.dtype

            def __getitem__(self, key):
                requested.append(key)
                return real[key]

        pf.data = Spy()
        batches = list(pf.batches(4))
        pf.read([5, 2, 6])
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    assert requested == [slice(0, 4), slice(4, 8), slice(8, 10), slice(2, 3), slice(5, 7)]


def test_split_channels_gives_over_under_gt_in_that_order():
    batch = np.arange(2 * 9, dtype=np.float32).reshape(2, 1, 1, 9)
    over, under, gt = split_channels(batch)
    np.testing.assert_array_equal(over[0, 0, 0], [0, 1, 2])
    np.testing.assert_array_equal(under[0, 0, 0], [3, 4, 5])
    np.testing.assert_array_equal(gt[1, 0, 0], [15, 16, 17])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such patch file"):
        open_patches(tmp_path / "none.h5")


def test_non_hdf5_file_is_a_clear_error(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(CommandError, match="x.h5: not an HDF5 file"):
        open_patches(tmp_path / "x.h5")


def test_a_truncated_patch_file_is_said_to_look_truncated(tmp_path):
    with h5py.File(tmp_path / "full.h5", "w") as f:
        f["data"] = np.zeros((64, 16, 16, 9), np.uint8)
    data = (tmp_path / "full.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(CommandError, match=r"cut.h5: an HDF5 file that looks truncated or damaged \([\d,]+ bytes: cut short"):
        open_patches(tmp_path / "cut.h5")


def test_file_without_data_dataset_is_a_clear_error(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["images"] = np.zeros((2, 3))
    with pytest.raises(CommandError, match=r"no 'data' dataset \(found: images \(dataset\)\)"):
        open_patches(tmp_path / "x.h5")


@pytest.mark.parametrize("shape", [(4, S, S, 3), (4, S, S), (4, 9, S, S + 1)])
def test_data_of_the_wrong_shape_is_a_clear_error(tmp_path, shape):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["data"] = np.zeros(shape, np.uint8)
    with pytest.raises(CommandError, match=r"'data' has shape .* expected \[N, S, S, 9\]"):
        open_patches(tmp_path / "x.h5")
