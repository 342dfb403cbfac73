"""The trainer runs the original recipe for real: balancing, clipping, the shared step counter and lr,
exact resume after an interrupt, repeatable runs for a seed, the NaN guard and the TensorBoard log."""
from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from mefgan_tf.checkpoint import load_generator
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.data import PatchFile
from mefgan_tf.errors import CommandError
from mefgan_tf.losses import learning_rate
from mefgan_tf.pipeline import epoch_order, open_batches
from mefgan_tf.training.core import BatchResult
from mefgan_tf.training.loop import image_grid, run_loop
from mefgan_tf.training.tensorflow_backend import RunLog, TensorFlowStore, Trainer, remove_unfinished_saves

tf.config.experimental.enable_op_determinism()  # what `mefgan train` does for its seed
# 48 px patches: the recipe is the same at any patch size, and the steps run 9 times faster than at 144
SIZE = 48
CONFIG = MEFGANConfig(batch_size=1, seed=7, checkpoint_every=100, summary_every=1, image_summary_every=2, patch_size=SIZE)


def new_trainer(path, config=CONFIG, init_seed=None):
    keras.utils.set_random_seed(config.seed if init_seed is None else init_seed)
    batches = open_batches(path, config, config.seed)
    return Trainer(config, len(batches)), batches


def state(trainer: Trainer) -> list[np.ndarray]:
    """Every value a checkpoint holds: G, D (with u and BN statistics), both optimizers, counters."""
    variables = trainer.generator.weights + trainer.discriminator.weights
    variables += trainer.g_optimizer.variables + trainer.d_optimizer.variables
    return [np.asarray(v) for v in variables] + [trainer.step.numpy(), trainer.epoch.numpy(), trainer.batch.numpy()]


def train(trainer: Trainer, batches, folder, max_steps=None, progress=True, on_step=None):
    """``loop.run_loop`` as `mefgan train` runs it on one machine: this trainer's checkpoints and log in ``folder``."""
    store, log = TensorFlowStore(trainer, folder), RunLog(folder / "logs", trainer.config)
    return run_loop(trainer, store, log, batches, max_steps, progress=progress, on_step=on_step)


def losses_of(log):
    return lambda step, result: log.append((step, result.g_loss, result.d_loss, result.d_real, result.d_fake))


@pytest.mark.slow
def test_interrupted_then_resumed_run_equals_an_uninterrupted_one_and_a_seed_repeats_the_losses(tmp_path, make_patches):
    data = make_patches(tmp_path / "p.h5", n=4, size=SIZE)
    straight, first, second = [], [], []
    trainer, batches = new_trainer(data)
    report = train(trainer, batches, tmp_path / "a", max_steps=3, progress=False, on_step=losses_of(straight))
    assert report.last_checkpoint.endswith("ckpt-3") and report.steps_done == 3
    expected = state(trainer)

    trainer, batches = new_trainer(data)
    train(trainer, batches, tmp_path / "b", max_steps=2, progress=False, on_step=losses_of(first))
    assert first == straight[:2]  # same seed, same losses

    trainer, batches = new_trainer(data, init_seed=12345)  # a fresh process would start from other weights
    report = train(trainer, batches, tmp_path / "b", max_steps=3, progress=False, on_step=losses_of(second))
    assert report.resumed_from == 2 and second == straight[2:]
    for got, want in zip(state(trainer), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # the run folder is what the fusion command loads
    x = np.full((1, 16, 16, 3), 0.5, np.float32)
    np.testing.assert_array_equal(load_generator(tmp_path / "b")((x, x)), trainer.generator((x, x)))
    assert (tmp_path / "b" / "logs").is_dir()


@pytest.mark.slow
def test_scripted_discriminator_that_calls_everything_real_gets_the_extra_d_then_g_updates_with_clipping(tmp_path, make_patches):
    config = CONFIG.replace(max_d_updates=3, max_g_updates=3)  # caps of 4 and 8: test_losses
    trainer, batches = new_trainer(make_patches(tmp_path / "p.h5", n=4, size=SIZE), config)
    # D(x) = tanh(5)/2 + 0.5 ~ 1 for every x: D looks fooled (D(fused) > 0.6) and winning (D(gt) > 0.6).
    # (Not tanh(8): some CPUs' float32 tanh gives exactly 1 there, and log(1 - D) is then -inf.)
    trainer.discriminator.dense.kernel.assign(tf.zeros_like(trainer.discriminator.dense.kernel))
    trainer.discriminator.dense.bias.assign([5.0])
    trainer.generator.merge_conv4.bias.assign([50.0, -50.0, 3.0])
    batch = next(iter(trainer.distributed_batches(batches, epoch=0, start=0)))

    result, fused = trainer.train_batch(batch, index=0)
    assert (result.d_updates, result.g_updates) == (3, 3)
    assert result.d_real > 0.99 and result.d_fake > 0.99
    assert int(trainer.step.numpy()) == 6  # one counter for both optimizers
    assert trainer.current_learning_rate() == pytest.approx(3e-4 * 0.7 ** (6 / len(batches)))
    bias = trainer.generator.merge_conv4.bias.numpy()
    assert bias[0] <= 8.0 and bias[1] >= -8.0 and abs(bias[2]) < 8.0
    for variable in trainer.generator.trainable_variables + trainer.discriminator.trainable_variables:
        assert np.abs(variable.numpy()).max() <= 8.0
    assert fused.shape == (1, SIZE, SIZE, 3)
    assert result.structure == 0.0  # the original's loss: no MEF-SSIM term by default
    assert result.g_loss == pytest.approx(result.adversarial + 500.0 * result.content, rel=1e-4)

    result, _ = trainer.train_batch(batch, index=1)  # not a balancing batch
    assert (result.d_updates, result.g_updates) == (1, 1) and int(trainer.step.numpy()) == 8


def test_optimizers_follow_the_recipe():
    trainer = Trainer(MEFGANConfig(batch_size=2), batches_per_epoch=10)
    g, d = trainer.g_optimizer, trainer.d_optimizer
    assert isinstance(g, keras.optimizers.Adam) and isinstance(d, keras.optimizers.SGD)
    assert (g.beta_1, g.beta_2, g.epsilon) == (0.0, 0.9, 1e-8)
    trainer.step.assign(5)
    assert float(g.learning_rate) == pytest.approx(learning_rate(5, 10, trainer.config), rel=1e-6)
    assert float(d.learning_rate) == pytest.approx(2 * learning_rate(5, 10, trainer.config), rel=1e-6)


@pytest.mark.slow
def test_non_finite_loss_stops_the_run_keeps_the_last_good_checkpoint_and_blames_the_data(tmp_path, monkeypatch, make_patches):
    path = tmp_path / "nan.h5"
    with h5py.File(make_patches(tmp_path / "p.h5", n=8, size=SIZE)) as f:
        data = f["data"][:].astype(np.float32) / 255
    data[epoch_order(8, CONFIG.seed, 0)[2]] = np.nan  # batch 3 of the first epoch
    with h5py.File(path, "w") as f:
        f["data"] = data
    with pytest.raises(CommandError, match="nan.h5: 'data' holds NaN"):  # found on open ...
        new_trainer(path)
    monkeypatch.setattr(PatchFile, "check_values", lambda self: None)  # ... unless outside the sample read
    trainer, batches = new_trainer(path, CONFIG.replace(checkpoint_every=1))
    with pytest.raises(CommandError, match="non-finite loss at step 3 .*last good checkpoint .*ckpt-2 is kept "
                       r"\(the batch read from .*nan.h5 holds NaN or infinite values: fix the patch file\)"):
        train(trainer, batches, tmp_path / "run", max_steps=4, progress=False)
    assert tf.train.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-2")
    assert not list((tmp_path / "run").glob("ckpt-3*"))


def test_run_log_writes_every_spec_scalar_and_an_image_grid(tmp_path):
    log = RunLog(tmp_path, MEFGANConfig(summary_every=1))
    result = BatchResult(d_loss=1.3, g_loss=9.0, adversarial=0.7, content=0.02, mse=0.01, gradient=0.015,
                         d_real=0.55, d_fake=0.45, d_updates=1, g_updates=2)
    batch = np.random.default_rng(0).random((2, 8, 8, 9)).astype(np.float32)
    log.write(3, result, lr=2e-4, patches_per_second=5.0, images=image_grid(batch, batch[..., :3]))
    log.close()
    tags = {}
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags[value.tag] = (event.step, value.metadata.plugin_data.plugin_name)
    for tag in ("loss/content", "loss/adversarial", "loss/discriminator", "D/real", "D/fake", "learning_rate"):
        assert tags[tag] == (3, "scalars")
    assert tags["over | under | fused | gt"] == (3, "images")


@pytest.mark.slow
def test_a_measuring_pass_leaves_every_moving_statistic_unchanged_but_advances_u(tmp_path, make_patches):
    from mefgan_tf.layers import moving_statistics

    trainer, batches = new_trainer(make_patches(tmp_path / "p.h5", n=2, size=SIZE))
    batch = next(iter(trainer.distributed_batches(batches, 0, 0)))
    statistics = moving_statistics(trainer.generator)
    assert len(statistics) == 2 * 12  # mean and variance of the 12 batch-normalised units of G
    u = [v for v in trainer.generator.non_trainable_variables if v.name == "u"]
    before, u_before = [np.asarray(v) for v in statistics], [np.asarray(v) for v in u]
    means = trainer.measure(batch)
    assert 0.0 < float(means["d_fake"]) < 1.0 and 0.0 < float(means["d_real"]) < 1.0
    for variable, value in zip(statistics, before, strict=True):
        np.testing.assert_array_equal(np.asarray(variable), value)
    assert all(not np.array_equal(np.asarray(v), b) for v, b in zip(u, u_before, strict=True))
    trainer.g_step(batch)  # an update does move them, as the original's UPDATE_OPS do
    assert any(not np.array_equal(np.asarray(v), b) for v, b in zip(statistics, before, strict=True))


@pytest.mark.slow
def test_with_frozen_statistics_g_trains_in_its_inference_form_and_no_update_moves_its_moving_statistics(
    tmp_path, make_patches
):
    from mefgan_tf.layers import moving_statistics

    trainer, batches = new_trainer(make_patches(tmp_path / "p.h5", n=2, size=SIZE), CONFIG.replace(frozen_statistics=True))
    batch = next(iter(trainer.distributed_batches(batches, 0, 0)))
    over, under, _ = np.split(np.asarray(batch), 3, axis=-1)
    before = [np.asarray(v) for v in moving_statistics(trainer.generator)]
    g_before = [np.asarray(v) for v in trainer.generator.trainable_variables]
    inference = trainer.generator((over, under), training=False).numpy()  # first: training=True advances u
    np.testing.assert_allclose(trainer.generator((over, under), training=True).numpy(), inference, atol=1e-6)
    trainer.d_step(batch)
    trainer.g_step(batch)
    for variable, value in zip(moving_statistics(trainer.generator), before, strict=True):
        np.testing.assert_array_equal(np.asarray(variable), value)
    assert all(not np.array_equal(np.asarray(v), b) for v, b in zip(trainer.generator.trainable_variables, g_before, strict=True))


@pytest.mark.slow
def test_with_a_mef_ssim_weight_g_minimises_mu_times_one_minus_mef_ssim_on_top_of_the_original_loss(tmp_path, make_patches):
    data = make_patches(tmp_path / "p.h5", n=2, size=SIZE)
    config = CONFIG.replace(mef_ssim_weight=40.0)
    results = []
    trainer, batches = new_trainer(data, config)
    train(trainer, batches, tmp_path / "run", max_steps=2, progress=False, on_step=lambda step, r: results.append(r))
    assert len(results) == 2
    for r in results:
        assert 0.0 < r.structure < 1.0
        assert r.g_loss == pytest.approx(r.adversarial + 500.0 * r.content + 40.0 * r.structure, rel=1e-4)


def test_the_temporary_folder_of_a_killed_save_is_removed_and_checkpoints_are_kept(tmp_path):
    (tmp_path / "ckpt-7_temp").mkdir()
    (tmp_path / "ckpt-7_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    for name in ("ckpt-6.index", "ckpt-6.data-00000-of-00001", "checkpoint"):
        (tmp_path / name).write_bytes(b"kept")
    assert remove_unfinished_saves(tmp_path) == [tmp_path / "ckpt-7_temp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "ckpt-6.data-00000-of-00001", "ckpt-6.index"]
