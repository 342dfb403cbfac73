"""The TensorFlow backend of `mefgan train`: the original recipe as ``tf.function`` steps driven by a small eager loop.

``Trainer`` owns G, D, their optimizers and the counters, all inside one ``tf.distribute`` strategy
(one device, ``MirroredStrategy`` or ``MultiWorkerMirroredStrategy``). Its three compiled steps (a
D update, a G update and a measurement of mean D(gt) / D(fused)) are its backend-specific part;
the optimizers, the balancing of the steps, the step accounting, the summaries and the NaN/Inf
guard are the shared ``core`` (the JAX backend uses it too). ``TensorFlowStore`` and ``RunLog`` are
its checkpoints and TensorBoard log for the run loop of both backends (``loop.run_loop``);
``build_run`` puts them together under the cluster's strategy (``make_strategy``).

Which ``training=`` flags: the original runs G and D as one TF1 graph whose batch norm is in
training mode and whose spectral-norm ``u`` vectors are reassigned on every run. So every call here
(D update, G update, measurement) runs G and D with ``training=True``: batch statistics, and each
``u`` advances once per call (D sees real and fused patches in one concatenated batch, so its ``u``
advances once, as in the original where both D outputs come from the same ``u``). The batch-norm
moving statistics move only in the two updates: the original attaches ``UPDATE_OPS`` to its two
``minimize`` calls, so its measuring runs leave them alone, and ``_measure`` restores them.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mefgan_tf.checkpoint import CHECKPOINT_NAME, checkpoint_files, make_checkpoint, reading_model
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.data import split_channels
from mefgan_tf.discriminator import build_discriminator
from mefgan_tf.errors import CommandError
from mefgan_tf.files import check_room
from mefgan_tf.generator import build_generator
from mefgan_tf.layers import freeze_statistics, moving_statistics
from mefgan_tf.losses import d_loss_per_example, generator_loss_per_example, learning_rate
from mefgan_tf.pipeline import PatchBatches
from mefgan_tf.signals import held_signals
from mefgan_tf.training.core import BatchResult, TrainingCore, initialize_generator, make_optimizers, summary_scalars
from mefgan_tf.training.loop import BackendRun

PRECISIONS = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


class Trainer(TrainingCore):
    """G, D, their optimizers, the shared update counter and the data position, plus the steps."""

    def __init__(
        self,
        config: MEFGANConfig,
        batches_per_epoch: int,
        strategy: tf.distribute.Strategy | None = None,
        precision: str | None = None,
    ):
        self.config = config
        self.batches_per_epoch = batches_per_epoch
        self.strategy = strategy or tf.distribute.get_strategy()
        self.precision = precision
        with self.strategy.scope():
            self._build(config, precision)
        self.checkpoint = make_checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            step=self.step,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            epoch=self.epoch,
            batch=self.batch,
        )
        # The steps' only branches and loops are on Python values (config, variable lists): without
        # AutoGraph's rewriting, a run's three traces take 8 s less on 2 cores (the same graph, the same numbers).
        self.d_step = tf.function(self._d_step, autograph=False)
        self.g_step = tf.function(self._g_step, autograph=False)
        self.measure = tf.function(self._measure, autograph=False)

    def checkpoint_variables(self) -> list:
        """Every variable a checkpoint holds: both networks' weights and both optimizers' state."""
        return [*self.generator.weights, *self.discriminator.weights,
                *self.g_optimizer.variables, *self.d_optimizer.variables]

    def _build(self, config: MEFGANConfig, precision: str | None) -> None:
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(PRECISIONS[precision] if precision else "float32")
        try:
            self.generator = build_generator(config)
            freeze_statistics(self.generator, config.frozen_statistics)
            self.discriminator = build_discriminator(config)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        # The original's global step: advances on every G and every D update and drives the lr.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # Data position: the next batch to train is batch `batch` of epoch `epoch`.
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch")
        g_opt, d_opt = make_optimizers(config, self.g_learning_rate, self.d_learning_rate)
        if precision == "float16":
            g_opt, d_opt = keras.optimizers.LossScaleOptimizer(g_opt), keras.optimizers.LossScaleOptimizer(d_opt)
        g_opt.build(self.generator.trainable_variables)
        d_opt.build(self.discriminator.trainable_variables)
        self.g_optimizer, self.d_optimizer = g_opt, d_opt

    # Learning rates, read by the optimizers at every update from the shared step counter.
    def g_learning_rate(self):
        return learning_rate(tf.cast(self.step, tf.float32), self.batches_per_epoch, self.config)

    def d_learning_rate(self):
        return self.config.d_lr_factor * self.g_learning_rate()

    def global_step(self) -> int:
        return int(self.step.numpy())

    @property
    def steps_done(self) -> int:
        """Training batches completed (over all epochs)."""
        return int(self.epoch.numpy()) * self.batches_per_epoch + int(self.batch.numpy())

    def set_position(self, steps_done: int) -> None:
        epoch, batch = divmod(steps_done, self.batches_per_epoch)
        self.epoch.assign(epoch)
        self.batch.assign(batch)

    # Per-replica computations. Losses are per-example sums divided by the global batch, so that
    # the replicas' gradients, summed by the optimizer, are the gradient of the global mean.
    def _fused(self, over, under):
        return tf.cast(self.generator((over, under), training=True), tf.float32)

    def _d_probs(self, images):
        return tf.cast(self.discriminator(images, training=True), tf.float32)

    def _real_and_fake(self, gt, fused):
        """D(gt) and D(fused) from one call on the concatenated batch."""
        d_real, d_fake = tf.split(self._d_probs(tf.concat([gt, fused], axis=0)), 2)
        return d_real, d_fake

    def _apply(self, optimizer, tape, loss, variables) -> None:
        grads = tape.gradient(optimizer.scale_loss(loss), variables)
        optimizer.apply_gradients(zip(grads, variables))

    def _d_replica(self, batch):
        over, under, gt = split_channels(batch)
        fused = self._fused(over, under)
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_real, d_fake = self._real_and_fake(gt, fused)
            per_example = d_loss_per_example(d_real, d_fake, self.config)
            loss = tf.reduce_sum(per_example) / self.config.batch_size
        self._apply(self.d_optimizer, tape, loss, variables)
        return _sums({"d_loss": per_example, "d_real": d_real, "d_fake": d_fake})

    def _g_replica(self, batch):
        over, under, gt = split_channels(batch)
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fused = self._fused(over, under)
            d_fake = self._d_probs(fused)
            terms = generator_loss_per_example(d_fake, gt, fused, self.config, sources=(over, under))
            loss = tf.reduce_sum(terms.total) / self.config.batch_size
        self._apply(self.g_optimizer, tape, loss, variables)
        return {**_sums({f"g_{k}": v for k, v in terms._asdict().items()}), "fused": fused}

    def _measure_replica(self, batch):
        over, under, gt = split_channels(batch)
        d_real, d_fake = self._real_and_fake(gt, self._fused(over, under))
        return _sums({"d_real": d_real, "d_fake": d_fake})

    # Cross-replica steps (compiled with tf.function).
    def _global_means(self, per_replica_sums: dict) -> dict:
        size = float(self.config.batch_size)
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) / size for k, v in per_replica_sums.items()}

    def _clip(self, model) -> None:
        c = self.config.clip_value
        for variable in model.trainable_variables:
            variable.assign(tf.clip_by_value(variable, -c, c))

    def _sync_statistics(self) -> None:
        """Average the non-trainable weights (BN moving statistics, SN ``u``) over the replicas.

        Each replica updates its copy from its own slice of the batch; without this the copies of
        the batch-norm statistics would drift apart between GPUs and workers.
        """
        if self.strategy.num_replicas_in_sync == 1:
            return
        variables = self.generator.non_trainable_variables + self.discriminator.non_trainable_variables
        local = self.strategy.run(lambda: [tf.identity(v) for v in variables])
        for variable, values in zip(variables, local):
            variable.assign(self.strategy.reduce(tf.distribute.ReduceOp.MEAN, values, axis=None))

    def _d_step(self, batch):
        out = self.strategy.run(self._d_replica, args=(batch,))
        self._sync_statistics()
        self._clip(self.discriminator)
        self.step.assign_add(1)
        return self._global_means(out)

    def _g_step(self, batch):
        out = self.strategy.run(self._g_replica, args=(batch,))
        fused = self.strategy.experimental_local_results(out.pop("fused"))[0]
        self._sync_statistics()
        self._clip(self.generator)
        self.step.assign_add(1)
        return {**self._global_means(out), "fused": fused}

    def _measure(self, batch):
        """Mean D(fused) and D(gt) with batch statistics; BN moving statistics are left as they were."""
        statistics = moving_statistics(self.generator) + moving_statistics(self.discriminator)
        saved = [tf.identity(v) for v in statistics]
        out = self.strategy.run(self._measure_replica, args=(batch,))
        self._sync_statistics()
        for variable, value in zip(statistics, saved):
            variable.assign(value)
        return self._global_means(out)

    def measured(self, batch) -> tuple[float, float]:
        means = self.measure(batch)
        return float(means["d_fake"]), float(means["d_real"])

    def train_batch(self, batch, index: int) -> tuple[BatchResult, tf.Tensor]:
        """One batch of the recipe (``TrainingCore.train_batch``) with the compiled steps: its report and
        the first replica's fused images of its last G update."""
        result, g_out = super().train_batch(batch, index)
        return result, g_out["fused"]

    def batch_stream(self, batches: PatchBatches, epoch: int, start: int):
        """The batches ``start..`` of ``epoch`` (``loop.RunTrainer``), split over the replicas."""
        return self.distributed_batches(batches, epoch, start)

    def local_slices(self, batch) -> list[np.ndarray]:
        """This worker's replicas' slices of a distributed batch, as arrays."""
        return [np.asarray(t) for t in self.strategy.experimental_local_results(batch)]

    def distributed_batches(self, batches: PatchBatches, epoch: int, start: int):
        """The batches ``start..`` of ``epoch``, split over this strategy's replicas."""
        replicas = self.strategy.num_replicas_in_sync

        def dataset(context: tf.distribute.InputContext):
            return batches.dataset(epoch, start, context.input_pipeline_id, context.num_input_pipelines, replicas)

        return self.strategy.distribute_datasets_from_function(dataset)


def _sums(values: dict) -> dict:
    """Each per-example vector summed over this replica's examples."""
    return {k: tf.reduce_sum(v) for k, v in values.items()}


class RunLog:
    """TensorBoard event files (chief only): ``core.summary_scalars`` and image grids (``loop.image_grid``)."""

    def __init__(self, directory: Path | None, config: MEFGANConfig):
        self.config = config
        self.writer = tf.summary.create_file_writer(str(directory)) if directory else tf.summary.create_noop_writer()

    def write(self, step: int, result: BatchResult, lr: float, patches_per_second: float, images=None) -> None:
        with self.writer.as_default(step=step):
            if step % self.config.summary_every == 0 or images is not None:
                for tag, value in summary_scalars(result, lr, patches_per_second).items():
                    tf.summary.scalar(tag, value)
            if images is not None:
                tf.summary.image("over | under | fused | gt", np.clip(images, 0.0, 1.0))

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class TensorFlowStore:
    """The trainer's TensorFlow checkpoints ``ckpt-N`` in a run folder (``loop.RunStore``)."""

    def __init__(self, trainer: Trainer, directory: Path) -> None:
        self.trainer, self.directory = trainer, directory
        remove_unfinished_saves(directory)
        self.manager = tf.train.CheckpointManager(
            trainer.checkpoint, str(directory), max_to_keep=trainer.config.keep_checkpoints, checkpoint_name=CHECKPOINT_NAME
        )

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore_latest(self) -> None:
        restore(self.trainer, self.manager.latest_checkpoint)

    def save(self, steps_done: int) -> None:
        save_checkpoint(self.trainer, self.manager, steps_done, self.directory)


def remove_unfinished_saves(directory: Path) -> list[Path]:
    """Remove the ``ckpt-N_temp`` folders of saves that were killed while writing (TensorFlow renames
    one into place when a save completes). A run folder has one writer, this process, so none is in use."""
    removed = [p for p in directory.glob(f"{CHECKPOINT_NAME}-*_temp*") if p.is_dir()]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def checkpoint_bytes(trainer: Trainer, latest: str | None) -> int:
    """The size a new checkpoint will take: the last one's, or the variables' (weights and optimizer
    slots) when there is none yet."""
    if latest:
        return sum(p.stat().st_size for p in Path(latest).parent.glob(Path(latest).name + ".*"))
    return sum(int(np.prod(v.shape)) * 4 for v in trainer.checkpoint_variables())  # float32 (an upper bound)


def save_checkpoint(trainer: Trainer, manager: tf.train.CheckpointManager, step: int, directory: Path) -> None:
    """Save checkpoint ``step``, with Ctrl-C held off while it is written. CommandError when it cannot
    be written (a full disk, an unwritable folder): its partial files are removed and the last good
    checkpoint is named; nothing of it is damaged."""
    latest = manager.latest_checkpoint
    check_room(directory, 2 * checkpoint_bytes(trainer, latest), f"checkpoint {step}")
    with held_signals():
        try:
            manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as err:
            for partial in directory.glob(f"{CHECKPOINT_NAME}-{step}*"):
                shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() else partial.unlink(missing_ok=True)
            reason = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err)
            if "No space left" in str(err):
                reason = "No space left on device"
            raise CommandError(f"{directory}: cannot write checkpoint {step} ({reason.splitlines()[0]}); "
                               f"the last good one is {latest or 'none'}") from None


def restore(trainer: Trainer, prefix: str) -> None:
    """Restore every training object from ``prefix``; CommandError if it is not this trainer's kind."""
    try:
        with reading_model(checkpoint_files(prefix)):
            status = trainer.checkpoint.restore(prefix)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as err:
        raise CommandError(f"{prefix}: cannot resume from this checkpoint ({str(err).splitlines()[0]})") from None


def make_strategy(multi_worker: bool):
    """MultiWorkerMirrored with TF_CONFIG, Mirrored on several local GPUs, else the default (one device)."""
    if multi_worker:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def build_run(config: MEFGANConfig, batches_per_epoch: int, init_generator: str | None, mixed_precision: bool,
              multi_worker: bool) -> BackendRun:
    """The trainer under the cluster's strategy, started from ``init_generator``'s generator if given,
    with its checkpoints and TensorBoard log (``loop.BackendRun``)."""
    strategy = make_strategy(multi_worker)
    precision = ("float16" if tf.config.list_physical_devices("GPU") else "bfloat16") if mixed_precision else None
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same losses (no measurable cost on CPU)
    trainer = Trainer(config, batches_per_epoch, strategy, precision)
    if init_generator:
        initialize_generator(trainer.generator, init_generator, trainer.strategy.scope())
    return BackendRun(trainer, lambda folder: TensorFlowStore(trainer, folder), lambda logs: RunLog(logs, config),
                      strategy.num_replicas_in_sync, precision)
