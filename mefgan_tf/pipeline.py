"""The training input pipeline: ``tf.data`` over an HDF5 patch file, read batch by batch.

Only the patches of the batches in flight are in memory (the original's 20,000 float32 patches
would need 15 GB). Every epoch visits the patches in a fresh random order derived from
``(seed, epoch)``, so a resumed run sees exactly the batches the interrupted one would have seen;
the remainder that does not fill a batch is dropped, as in the original. Optional random flips are
drawn from ``(seed, epoch, batch)`` too.

Distributed runs split each global batch into one contiguous slice per replica (sizes may differ by
one, e.g. 10 + 9 for the default 19 on two replicas); each input pipeline reads only its replicas'
slices.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from mefgan_tf.config import BT601_LUMA, MEFGANConfig
from mefgan_tf.data import PatchFile, open_patches
from mefgan_tf.errors import CommandError

FLIP_STREAM = 1  # separates the flip random stream from the shuffle stream of the same seed
GREY_STREAM = 2  # ... and the grey one


def epoch_order(num_patches: int, seed: int, epoch: int) -> np.ndarray:
    """The patch order of one epoch: a permutation fixed by ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(num_patches)


def batches_per_epoch(num_patches: int, batch_size: int) -> int:
    """Full batches per epoch (the remainder is dropped)."""
    return num_patches // batch_size


def replica_slices(batch_size: int, num_replicas: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each replica's rows in a global batch: contiguous, sizes differing by at most 1."""
    if num_replicas > batch_size:
        raise CommandError(f"batch size {batch_size} is smaller than the {num_replicas} replicas; raise --batch-size")
    bounds = np.linspace(0, batch_size, num_replicas + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def random_flips(batch: np.ndarray, seed: int, epoch: int, index: int) -> np.ndarray:
    """Flip each patch (all nine channels together) left-right and/or up-down with probability 1/2."""
    rng = np.random.default_rng([seed, epoch, index, FLIP_STREAM])
    flips = rng.random((len(batch), 2)) < 0.5
    out = batch.copy()
    for i, (lr, ud) in enumerate(flips):
        if lr:
            out[i] = out[i, :, ::-1]
        if ud:
            out[i] = out[i, ::-1]
    return out


def grey_patches(batch: np.ndarray, fraction: float, seed: int, epoch: int, index: int) -> np.ndarray:
    """Turn each patch grey with probability ``fraction``: its over, under and ground-truth images
    each become their BT.601 luma in all three channels. A grey pair's fusion must stay grey; the
    original data has few neutral scenes, and fused grey pairs came out tinted."""
    rng = np.random.default_rng([seed, epoch, index, GREY_STREAM])
    chosen = rng.random(len(batch)) < fraction
    if not chosen.any():
        return batch
    out = batch.copy()
    picked = out[chosen].reshape(*out[chosen].shape[:-1], 3, 3)
    luma = picked @ np.asarray(BT601_LUMA, np.float32)
    out[chosen] = np.repeat(luma, 3, axis=-1)
    return out


class PatchBatches:
    """The batches of an open patch file: ``batch(epoch, index)`` -> float32 [B, S, S, 9] in [0, 1]."""

    def __init__(self, patches: PatchFile, config: MEFGANConfig, seed: int):
        if patches.patch_size != config.patch_size:
            raise CommandError(
                f"{patches.path}: patches are {patches.patch_size} px but the config's patch_size is {config.patch_size}"
            )
        if len(patches) < config.batch_size:
            raise CommandError(f"{patches.path}: {len(patches)} patches, fewer than one batch of {config.batch_size}")
        self.patches = patches
        self.config = config
        self.seed = seed
        self.order = lru_cache(maxsize=2)(lambda epoch: epoch_order(len(patches), seed, epoch))

    def __len__(self) -> int:
        return batches_per_epoch(len(self.patches), self.config.batch_size)

    def batch(self, epoch: int, index: int, rows: tuple[int, int] | None = None) -> np.ndarray:
        """Batch ``index`` of ``epoch`` (optionally only the rows ``start:stop`` of it)."""
        size = self.config.batch_size
        indices = self.order(epoch)[index * size : (index + 1) * size]
        start, stop = rows or (0, size)
        batch = self.patches.read(indices[start:stop])
        if self.config.random_flips:
            batch = random_flips(batch, self.seed, epoch, index)
        if self.config.grey_fraction > 0:
            batch = grey_patches(batch, self.config.grey_fraction, self.seed, epoch, index)
        return batch

    def dataset(self, epoch: int, start: int = 0, pipeline: int = 0, num_pipelines: int = 1, num_replicas: int = 1):
        """A ``tf.data.Dataset`` of this pipeline's per-replica slices of batches ``start..`` of ``epoch``.

        With one replica the elements are whole global batches. Reads run in a background thread
        and are prefetched, so the next batch is ready while the current one trains.
        """
        import tensorflow as tf

        slices = replica_slices(self.config.batch_size, num_replicas)
        per_pipeline = num_replicas // num_pipelines
        mine = np.asarray(slices[pipeline * per_pipeline : (pipeline + 1) * per_pipeline], np.int64)
        size = self.config.patch_size

        def read(k):
            index, local = divmod(int(k), per_pipeline)
            return self.batch(epoch, index, tuple(mine[local]))

        def load(k):
            batch = tf.numpy_function(read, [k], tf.float32, stateful=False)
            batch.set_shape([None, size, size, 9])
            return batch

        ds = tf.data.Dataset.range(start * per_pipeline, len(self) * per_pipeline)
        return ds.map(load, num_parallel_calls=2, deterministic=True).prefetch(2)


def open_batches(path: str | Path, config: MEFGANConfig, seed: int) -> PatchBatches:
    """Open ``path`` for training with ``config``'s batch and patch size (CommandError if it does not fit)."""
    return PatchBatches(open_patches(path), config, seed)
