"""Seconds per training step at the default batch (19) on this machine, next to the bare forward and
backward passes of the same networks, plus the input pipeline's time per batch.

- ``step_seconds``: ``Trainer.train_batch`` on an ordinary batch (one D and one G update, with the
  optimizers, clipping and counters), the batch already in memory;
- ``bare_seconds``: the same forward and backward passes (G forward + D on real and fused for D's
  gradient; G and D forward + backward for G's gradient) in one ``tf.function``, nothing applied;
- ``balancing_measure_seconds``: one measurement of D(gt)/D(fused) (every third batch, per extra update);
- ``pipeline_seconds_per_batch``: reading, decoding and delivering one batch of 19 with tf.data
  (shuffled order), which must stay well below ``step_seconds``.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

STEPS = 2
PATCHES = 60


def make_patches(path: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.2, 0.8, (n, size // 8, size // 8, 3)).repeat(8, 1).repeat(8, 2)
    data = np.concatenate([np.clip(gt * 1.6, 0, 1), gt * 0.4, gt], axis=-1)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=(data * 255).round().astype(np.uint8), chunks=(1, size, size, 9))


def timed(fn, repeats: int) -> float:
    fn()  # trace / warm up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bare_pass(trainer):
    """The step's forward and backward passes without applying anything."""
    import tensorflow as tf

    from mefgan_tf.data import split_channels
    from mefgan_tf.losses import d_loss, generator_loss

    G, D, config = trainer.generator, trainer.discriminator, trainer.config

    @tf.function
    def run(batch):
        over, under, gt = split_channels(batch)
        fused = G((over, under), training=True)
        with tf.GradientTape() as tape:
            d_real, d_fake = tf.split(D(tf.concat([gt, fused], 0), training=True), 2)
            loss_d = d_loss(d_real, d_fake, config)
        d_grads = tape.gradient(loss_d, D.trainable_variables)
        with tf.GradientTape() as tape:
            fused = G((over, under), training=True)
            loss_g = generator_loss(D(fused, training=True), gt, fused, config).total
        g_grads = tape.gradient(loss_g, G.trainable_variables)
        return tf.add_n([tf.reduce_sum(g) for g in d_grads + g_grads])

    return run


def run() -> dict:
    import tensorflow as tf

    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.pipeline import open_batches
    from mefgan_tf.training.tensorflow_backend import Trainer

    config = MEFGANConfig(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "patches.h5"
        make_patches(path, PATCHES, config.patch_size)
        batches = open_batches(path, config, config.seed)
        start = time.perf_counter()
        count = sum(1 for _ in batches.dataset(epoch=0).as_numpy_iterator())
        pipeline = (time.perf_counter() - start) / count

        trainer = Trainer(config, len(batches))
        batch = next(iter(trainer.distributed_batches(batches, 0, 0)))
        bare = bare_pass(trainer)
        bare_seconds = timed(lambda: float(bare(batch)), STEPS)
        step_seconds = timed(lambda: trainer.train_batch(batch, index=1), STEPS)
        measure_seconds = timed(lambda: float(trainer.measure(batch)["d_fake"]), STEPS)
    return {
        "batch_size": config.batch_size,
        "patch_size": config.patch_size,
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
        "step_seconds": round(step_seconds, 3),
        "bare_forward_backward_seconds": round(bare_seconds, 3),
        "step_over_bare": round(step_seconds / bare_seconds, 3),
        "balancing_measure_seconds": round(measure_seconds, 3),
        "patches_per_second": round(config.batch_size / step_seconds, 2),
        "pipeline_seconds_per_batch": round(pipeline, 4),
        "pipeline_share_of_step": round(pipeline / step_seconds, 4),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
