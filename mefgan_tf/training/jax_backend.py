"""The JAX backend of `mefgan train --backend jax`, for accelerator machines with JAX but no TensorFlow.

``tensorflow_backend`` is the TensorFlow backend (tf.function steps, tf.distribute). This module
runs the same recipe with the same pieces: the networks of ``generator`` and ``discriminator``, the
losses of ``losses``, every value from ``MEFGANConfig``, the shared ``core`` (optimizers, balancing,
step accounting, TensorBoard scalars, the NaN guard), and the run loop of ``loop`` (batches from
``pipeline``, checkpoints, resume, logs). What is its own are the step functions, written with
Keras's stateless API under ``jax.jit``, its checkpoints (``JaxStore``) and its log writer
(``JaxLog``). Like the TensorFlow backend, every call runs G and D with
``training=True`` (batch statistics; each spectral-norm ``u`` advances once per call), the
batch-norm moving statistics move only in the updates, and D sees real and fused patches in one
concatenated batch.

Keras must run on JAX: ``mefgan train --backend jax`` chooses it before Keras is imported;
imported under any other backend, this module refuses.
"""
from __future__ import annotations

import re
from pathlib import Path

import keras

if keras.backend.backend() != "jax":
    raise ImportError(
        f"mefgan_tf.training.jax_backend runs on Keras's JAX backend, and Keras runs on {keras.backend.backend()}: "
        "set KERAS_BACKEND=jax before Keras is imported"
    )

import jax  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from tensorboard.summary import Writer  # noqa: E402

from mefgan_tf.checkpoint import keras_generator_weights  # noqa: E402
from mefgan_tf.config import MEFGANConfig  # noqa: E402
from mefgan_tf.data import split_channels  # noqa: E402
from mefgan_tf.discriminator import build_discriminator  # noqa: E402
from mefgan_tf.errors import CommandError  # noqa: E402
from mefgan_tf.files import atomic_path, check_room  # noqa: E402
from mefgan_tf.generator import build_generator  # noqa: E402
from mefgan_tf.layers import freeze_statistics, moving_statistics  # noqa: E402
from mefgan_tf.losses import d_loss, generator_loss  # noqa: E402
from mefgan_tf.signals import held_signals  # noqa: E402
from mefgan_tf.training.core import (  # noqa: E402
    BatchResult,
    TrainingCore,
    initialize_generator,
    make_optimizers,
    summary_scalars,
)
from mefgan_tf.training.loop import BackendRun  # noqa: E402

GENERATOR_WEIGHTS = "generator.weights.h5"  # the latest generator, as `mefgan fuse` and `mefgan export` load it
CHECKPOINT = re.compile(r"ckpt-(\d+)\.npz")


class Network:
    """A model's variables as JAX arrays, with its optimizer's state."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer):
        self.model, self.optimizer = model, optimizer
        optimizer.build(model.trainable_variables)
        self.trainable = [v.value for v in model.trainable_variables]
        self.state = [v.value for v in model.non_trainable_variables]
        self.opt = [v.value for v in optimizer.variables]
        moving = {id(v) for v in moving_statistics(model)}
        self.is_moving = [id(v) in moving for v in model.non_trainable_variables]
        self.lr_index = [v.name for v in optimizer.variables].index("learning_rate")

    def write_back(self) -> None:
        """Copy the arrays into the model's variables (to save them)."""
        for variable, value in zip(self.model.trainable_variables, self.trainable):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, self.state):
            variable.assign(value)

    def read_back(self) -> None:
        """Take the arrays from the model's variables (after loading weights into it)."""
        self.trainable = [v.value for v in self.model.trainable_variables]
        self.state = [v.value for v in self.model.non_trainable_variables]


class JaxTrainer(TrainingCore):
    """Compiled D update, G update and measurement on JAX arrays; ``TrainingCore`` applies the recipe."""

    def __init__(self, config: MEFGANConfig, batches_per_epoch: int):
        self.config, self.batches_per_epoch, self.step, self.done = config, batches_per_epoch, 0, 0
        keras.utils.set_random_seed(config.seed or 0)
        # The rates are set at every update from the shared step (``_apply``).
        g_optimizer, d_optimizer = make_optimizers(config, config.learning_rate, config.learning_rate)
        self.g = Network(build_generator(config), g_optimizer)
        freeze_statistics(self.g.model, config.frozen_statistics)
        self.d = Network(build_discriminator(config), d_optimizer)
        self._d_update = jax.jit(self._d_update_fn)
        self._g_update = jax.jit(self._g_update_fn)
        self._measure = jax.jit(self._measure_fn)

    def _fused(self, g_tv, g_state, batch):
        over, under, _ = split_channels(batch)
        return self.g.model.stateless_call(g_tv, g_state, (over, under), training=True)

    def _d_probs(self, d_tv, d_state, gt, fused):
        probs, d_state = self.d.model.stateless_call(d_tv, d_state, ops.concatenate([gt, fused], 0), training=True)
        d_real, d_fake = ops.split(probs, 2)
        return d_real, d_fake, d_state

    def _apply(self, network: Network, opt, grads, tv, lr):
        opt = list(opt)
        opt[network.lr_index] = ops.cast(lr, opt[network.lr_index].dtype)
        tv, opt = network.optimizer.stateless_apply(opt, grads, tv)
        clip = self.config.clip_value
        return [ops.clip(v, -clip, clip) for v in tv], opt

    def _d_update_fn(self, g_tv, g_state, d_tv, d_state, d_opt, batch, lr):
        fused, g_state = self._fused(g_tv, g_state, batch)
        gt = split_channels(batch)[2]

        def loss_fn(tv):
            d_real, d_fake, state = self._d_probs(tv, d_state, gt, ops.stop_gradient(fused))
            return d_loss(d_real, d_fake, self.config), (state, ops.mean(d_real), ops.mean(d_fake))

        (loss, (d_state, d_real, d_fake)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_tv)
        d_tv, d_opt = self._apply(self.d, d_opt, grads, d_tv, self.config.d_lr_factor * lr)
        return g_state, d_tv, d_state, d_opt, {"d_loss": loss, "d_real": d_real, "d_fake": d_fake}

    def _g_update_fn(self, g_tv, g_state, d_tv, d_state, g_opt, batch, lr):
        over, under, gt = split_channels(batch)

        def loss_fn(tv):
            fused, state = self._fused(tv, g_state, batch)
            d_fake, d_new = self.d.model.stateless_call(d_tv, d_state, fused, training=True)
            terms = generator_loss(d_fake, gt, fused, self.config, sources=(over, under))
            return terms.total, (state, d_new, terms, fused)

        (_, (g_state, d_state, terms, fused)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g_tv)
        g_tv, g_opt = self._apply(self.g, g_opt, grads, g_tv, lr)
        return g_tv, g_state, d_state, g_opt, {**{f"g_{k}": v for k, v in terms._asdict().items()}, "fused": fused}

    def _measure_fn(self, g_tv, g_state, d_tv, d_state, batch):
        fused, g_new = self._fused(g_tv, g_state, batch)
        d_real, d_fake, d_new = self._d_probs(d_tv, d_state, split_channels(batch)[2], fused)
        g_state, d_state = keep_moving(self.g, g_state, g_new), keep_moving(self.d, d_state, d_new)
        return g_state, d_state, ops.mean(d_real), ops.mean(d_fake)

    def global_step(self) -> int:
        return self.step

    def learning_rate_array(self) -> np.ndarray:
        """The current rate as a float32 array: a Python float would be weakly typed, the rate the
        optimizer state returns is not, and every step would then compile a second time."""
        return np.float32(self.current_learning_rate())

    def d_step(self, batch) -> dict:
        g, d, lr = self.g, self.d, self.learning_rate_array()
        g.state, d.trainable, d.state, d.opt, out = self._d_update(g.trainable, g.state, d.trainable, d.state, d.opt, batch, lr)
        self.step += 1
        return out

    def g_step(self, batch) -> dict:
        g, d, lr = self.g, self.d, self.learning_rate_array()
        g.trainable, g.state, d.state, g.opt, out = self._g_update(g.trainable, g.state, d.trainable, d.state, g.opt, batch, lr)
        self.step += 1
        return out

    def measure(self, batch) -> tuple[float, float]:
        """(mean D(fused), mean D(gt)), advancing state like the original's measuring run."""
        g, d = self.g, self.d
        g.state, d.state, d_real, d_fake = self._measure(g.trainable, g.state, d.trainable, d.state, batch)
        return float(d_fake), float(d_real)

    def measured(self, batch) -> tuple[float, float]:
        return self.measure(batch)

    def train_batch(self, batch, index: int) -> tuple[BatchResult, np.ndarray]:
        """D, then G; on every third batch the extra updates of the balancing rule (``TrainingCore``).
        Returns the report and the fused images of the last G update."""
        result, g_out = super().train_batch(batch, index)
        return result, np.asarray(g_out["fused"])

    # ``loop.RunTrainer``: the data position and the batches.
    @property
    def steps_done(self) -> int:
        return self.done

    def set_position(self, steps_done: int) -> None:
        self.done = steps_done

    def batch_stream(self, batches, epoch: int, start: int):
        for index in range(start, self.batches_per_epoch):
            yield batches.batch(epoch, index)

    def local_slices(self, batch) -> list[np.ndarray]:
        return [np.asarray(batch)]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the training state, by name (what a checkpoint holds)."""
        named = {"step": np.int64(self.step), "done": np.int64(self.done)}
        for prefix, network in (("g", self.g), ("d", self.d)):
            for part in ("trainable", "state", "opt"):
                named.update({f"{prefix}/{part}/{i}": np.asarray(v) for i, v in enumerate(getattr(network, part))})
        return named

    def load_arrays(self, named: dict[str, np.ndarray], source: str) -> None:
        """Take the training state from ``arrays()``'s form; CommandError if it is another network's."""
        for prefix, network in (("g", self.g), ("d", self.d)):
            for part in ("trainable", "state", "opt"):
                current = getattr(network, part)
                loaded = [named.get(f"{prefix}/{part}/{i}") for i in range(len(current))]
                if any(v is None or v.shape != tuple(c.shape) for v, c in zip(loaded, current)):
                    raise CommandError(f"{source}: not a checkpoint of this network and config (cannot resume from it)")
                setattr(network, part, [jax.numpy.asarray(v) for v in loaded])
        self.step, self.done = int(named["step"]), int(named["done"])


def keep_moving(network: Network, old: list, new: list) -> list:
    """``new`` state with the batch-norm moving statistics of ``old``: a measuring run moves only ``u``."""
    return [o if moving else n for o, n, moving in zip(old, new, network.is_moving)]


class JaxStore:
    """The JAX run's checkpoints (``loop.RunStore``): ``ckpt-N.npz`` holds every array (both networks,
    both optimizers, the counters), the last ``keep_checkpoints`` are kept; ``generator.weights.h5``
    is the latest generator as a Keras weight file. Each file is written whole or not at all."""

    def __init__(self, trainer: JaxTrainer, directory: Path) -> None:
        self.trainer, self.directory = trainer, directory

    def checkpoints(self) -> list[tuple[int, Path]]:
        found = [(int(m.group(1)), p) for p in self.directory.glob("ckpt-*.npz") if (m := CHECKPOINT.fullmatch(p.name))]
        return sorted(found)

    @property
    def latest(self) -> str | None:
        found = self.checkpoints()
        return str(found[-1][1]) if found else None

    def restore_latest(self) -> None:
        path = self.latest
        try:
            with np.load(path) as saved:
                named = {name: saved[name] for name in saved.files}
        except (OSError, ValueError) as err:
            raise CommandError(f"{path}: cannot resume from this checkpoint ({err})") from None
        self.trainer.load_arrays(named, path)

    def save(self, steps_done: int) -> None:
        named = self.trainer.arrays()
        self.directory.mkdir(parents=True, exist_ok=True)
        check_room(self.directory, 2 * sum(v.nbytes for v in named.values()), f"checkpoint {steps_done}")
        with held_signals():
            with atomic_path(self.directory / f"ckpt-{steps_done}.npz") as tmp, open(tmp, "wb") as file:
                np.savez(file, **named)
            self.trainer.g.write_back()
            with atomic_path(self.directory / GENERATOR_WEIGHTS, suffix=".weights.h5") as tmp:
                self.trainer.g.model.save_weights(tmp)
        for _, old in self.checkpoints()[: -self.trainer.config.keep_checkpoints]:
            old.unlink(missing_ok=True)


class JaxLog:
    """TensorBoard scalars of the run (``core.summary_scalars``: the TensorFlow backend's tags),
    written without TensorFlow."""

    def __init__(self, directory: Path | None, config: MEFGANConfig) -> None:
        self.config, self.writer = config, Writer(str(directory)) if directory is not None else None

    def write(self, step: int, result: BatchResult, lr: float, patches_per_second: float, images=None) -> None:
        if self.writer is not None and step % self.config.summary_every == 0:
            for tag, value in summary_scalars(result, lr, patches_per_second).items():
                self.writer.add_scalar(tag, value, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def build_run(config: MEFGANConfig, batches_per_epoch: int, init_generator: str | None, mixed_precision: bool = False,
              multi_worker: bool = False) -> BackendRun:
    """The JAX trainer, started from ``init_generator``'s generator if given, with its ``.npz``
    checkpoints and TensorBoard log (``loop.BackendRun``). One machine, float32: ``settings.check_backend``
    refuses ``mixed_precision`` and ``multi_worker`` first."""
    if init_generator and keras_generator_weights(init_generator) is None:
        raise CommandError(f"--init-generator {init_generator}: no JAX run folder or Keras .weights.h5 file "
                           "(under --backend jax; a TensorFlow checkpoint needs TensorFlow to read: see docs/training.md)")
    trainer = JaxTrainer(config, batches_per_epoch)
    if init_generator:
        initialize_generator(trainer.g.model, init_generator)
        trainer.g.read_back()
    return BackendRun(trainer, lambda folder: JaxStore(trainer, folder), lambda logs: JaxLog(logs, config))
