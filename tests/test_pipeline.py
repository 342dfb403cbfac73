"""The tf.data pipeline reads the patch file batch by batch, in a (seed, epoch) order, resumable and shardable."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mefgan_tf.config import MEFGANConfig
from mefgan_tf.data import PatchFile
from mefgan_tf.errors import CommandError
from mefgan_tf.pipeline import epoch_order, grey_patches, open_batches, random_flips, replica_slices


def indexed_patches(path: Path, n: int, size: int = 16) -> Path:
    """Patch i is filled with the value i, so batches show which patches they hold."""
    data = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, size, size, 9))
    with h5py.File(path, "w") as f:
        f["data"] = np.ascontiguousarray(data)
    return path


def ids(batch: np.ndarray) -> list[int]:
    return [int(round(v)) for v in np.asarray(batch)[:, 0, 0, 0] * 255]


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    a = epoch_order(50, seed=3, epoch=0)
    assert sorted(a) == list(range(50))
    np.testing.assert_array_equal(a, epoch_order(50, seed=3, epoch=0))
    assert not np.array_equal(a, epoch_order(50, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(50, seed=4, epoch=0))


def test_dataset_yields_whole_batches_in_epoch_order_and_drops_the_remainder(tmp_path):
    config = MEFGANConfig(patch_size=16, batch_size=3)
    batches = open_batches(indexed_patches(tmp_path / "p.h5", 10), config, seed=5)
    got = [ids(b) for b in batches.dataset(epoch=1).as_numpy_iterator()]
    order = list(epoch_order(10, 5, 1))
    assert got == [order[0:3], order[3:6], order[6:9]]  # 10 // 3 = 3 batches, one patch dropped
    assert all(b.dtype == np.float32 and b.shape == (3, 16, 16, 9) for b in batches.dataset(1).as_numpy_iterator())


def test_dataset_resumes_at_a_batch_with_the_batches_an_uninterrupted_epoch_would_see(tmp_path):
    config = MEFGANConfig(patch_size=16, batch_size=2)
    batches = open_batches(indexed_patches(tmp_path / "p.h5", 12), config, seed=1)
    whole = [ids(b) for b in batches.dataset(epoch=2).as_numpy_iterator()]
    resumed = [ids(b) for b in batches.dataset(epoch=2, start=4).as_numpy_iterator()]
    assert resumed == whole[4:]


def test_global_batch_is_split_into_contiguous_replica_slices_that_differ_by_at_most_one():
    assert replica_slices(19, 1) == [(0, 19)]
    assert replica_slices(19, 2) == [(0, 10), (10, 19)]
    assert [b - a for a, b in replica_slices(19, 4)] == [5, 5, 4, 5]
    with pytest.raises(CommandError, match="smaller than the 4 replicas"):
        replica_slices(3, 4)


def test_each_input_pipeline_reads_its_replicas_slices_which_together_make_the_global_batch(tmp_path):
    config = MEFGANConfig(patch_size=16, batch_size=5)
    batches = open_batches(indexed_patches(tmp_path / "p.h5", 10), config, seed=0)
    whole = [ids(b) for b in batches.dataset(0).as_numpy_iterator()]
    worker0 = [ids(b) for b in batches.dataset(0, pipeline=0, num_pipelines=2, num_replicas=2).as_numpy_iterator()]
    worker1 = [ids(b) for b in batches.dataset(0, pipeline=1, num_pipelines=2, num_replicas=2).as_numpy_iterator()]
    assert [a + b for a, b in zip(worker0, worker1)] == whole
    one_worker_two_replicas = [ids(b) for b in batches.dataset(0, num_replicas=2).as_numpy_iterator()]
    assert one_worker_two_replicas == [part for pair in zip(worker0, worker1) for part in pair]


def test_reads_only_the_patches_of_one_batch_at_a_time(tmp_path, monkeypatch):
    config = MEFGANConfig(patch_size=16, batch_size=4)
    sizes = []
    original = PatchFile.read

    def spy(self, index):
        out = original(self, index)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(PatchFile, "read", spy)
    batches = open_batches(indexed_patches(tmp_path / "p.h5", 40), config, seed=0)
    assert len(list(batches.dataset(0).as_numpy_iterator())) == 10
    assert max(sizes) == 4


def test_random_flips_move_all_nine_channels_together_and_are_repeatable():
    rng = np.random.default_rng(0)
    patch = rng.random((1, 8, 8, 1), np.float32).repeat(9, axis=-1)
    batch = np.concatenate([patch] * 16)
    flipped = random_flips(batch, seed=1, epoch=0, index=0)
    np.testing.assert_array_equal(flipped, random_flips(batch, seed=1, epoch=0, index=0))
    assert all(np.all(p == p[..., :1]) for p in flipped)  # channels stay aligned
    variants = {p.tobytes() for p in flipped}
    assert len(variants) > 1
    assert all(any(np.array_equal(p, v) for v in (patch[0], patch[0][:, ::-1], patch[0][::-1], patch[0][::-1, ::-1])) for p in flipped)


def test_flips_are_off_unless_configured(tmp_path, make_patches):
    path = make_patches(tmp_path / "p.h5", n=4)
    plain = open_batches(path, MEFGANConfig(batch_size=4), seed=0).batch(0, 0)
    flipped = open_batches(path, MEFGANConfig(batch_size=4, random_flips=True), seed=0).batch(0, 0)
    with h5py.File(path) as f:
        order = epoch_order(4, 0, 0)
        np.testing.assert_allclose(plain, f["data"][:][order] / 255.0, atol=1e-6)
    assert not np.array_equal(plain, flipped)


def test_patch_size_or_count_that_does_not_fit_the_config_is_a_clear_error(tmp_path):
    path = indexed_patches(tmp_path / "p.h5", 3)
    with pytest.raises(CommandError, match="patches are 16 px but the config's patch_size is 144"):
        open_batches(path, MEFGANConfig(), seed=0)
    with pytest.raises(CommandError, match="3 patches, fewer than one batch of 4"):
        open_batches(path, MEFGANConfig(patch_size=16, batch_size=4), seed=0)


def test_grey_patches_turn_all_three_images_into_their_luma_for_the_chosen_share():
    batch = np.random.default_rng(0).random((400, 4, 4, 9), np.float32)
    grey = grey_patches(batch, 0.25, seed=1, epoch=0, index=0)
    chosen = np.array([np.array_equal(p[..., 0], p[..., 1]) and np.array_equal(p[..., 6], p[..., 8]) for p in grey])
    assert 0.18 < chosen.mean() < 0.32
    luma = np.array([0.2989, 0.587, 0.114], np.float32)
    for k, image in enumerate((slice(0, 3), slice(3, 6), slice(6, 9))):
        np.testing.assert_allclose(grey[chosen][..., 3 * k], batch[chosen][..., image] @ luma, atol=1e-6)
    np.testing.assert_array_equal(grey[~chosen], batch[~chosen])
    np.testing.assert_array_equal(grey, grey_patches(batch, 0.25, seed=1, epoch=0, index=0))


def test_grey_fraction_comes_from_the_config_and_is_off_by_default(tmp_path, make_patches):
    path = make_patches(tmp_path / "p.h5", n=8)
    plain = open_batches(path, MEFGANConfig(batch_size=8), seed=0).batch(0, 0)
    grey = open_batches(path, MEFGANConfig(batch_size=8, grey_fraction=1.0), seed=0).batch(0, 0)
    assert not np.allclose(plain[..., 0], plain[..., 1])
    np.testing.assert_allclose(grey[..., 0], grey[..., 2])
    with pytest.raises(CommandError, match=r"grey_fraction: 1.5 must be in \[0, 1\]"):
        MEFGANConfig().replace(grey_fraction=1.5)
