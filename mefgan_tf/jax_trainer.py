"""The original recipe under Keras's JAX backend, for accelerator machines that have JAX but no TensorFlow.

``trainer.py`` is the product's trainer (tf.function steps, tf.distribute, checkpoints, TensorBoard).
This module runs the same recipe with the same pieces: the networks of ``generator.py`` and
``discriminator.py``, the losses of ``losses.py``, every value from ``MEFGANConfig``, and the
shared core of ``training.py`` (optimizers, batches from ``pipeline``, balancing, step accounting,
TensorBoard scalars, the NaN guard). What is its own are the step functions, written with Keras's
stateless API under ``jax.jit``. Like ``trainer.py``, every call runs G and D with ``training=True``
(batch statistics; each spectral-norm ``u`` advances once per call), the batch-norm moving
statistics move only in the updates, and D sees real and fused patches in one concatenated batch.
It writes Keras weight files, which ``mefgan_tf.checkpoint.import_keras_weights`` turns into a
mefgan-tf checkpoint, ``history.json`` and TensorBoard scalars under ``logs/``:

    python -m mefgan_tf.jax_trainer --data train.h5 --val val.h5 --out DIR

Keras must run on JAX: run as a program, the module chooses it (``KERAS_BACKEND=jax`` unless set);
imported as a library, it refuses any other backend.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

if __name__ == "__main__":  # the entry point picks the backend, before Keras is imported
    os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

if keras.backend.backend() != "jax":
    raise ImportError(
        f"mefgan_tf.jax_trainer runs on Keras's JAX backend, and Keras runs on {keras.backend.backend()}: "
        "set KERAS_BACKEND=jax before Keras is imported"
    )

import jax  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from mefgan_tf.config import MEFGANConfig  # noqa: E402
from mefgan_tf.data import open_patches, split_channels  # noqa: E402
from mefgan_tf.discriminator import build_discriminator  # noqa: E402
from mefgan_tf.generator import build_generator  # noqa: E402
from mefgan_tf.layers import moving_statistics  # noqa: E402
from mefgan_tf.losses import content_loss, d_loss, generator_loss  # noqa: E402
from mefgan_tf.pipeline import open_batches  # noqa: E402
from mefgan_tf.training import (  # noqa: E402
    BatchResult,
    TrainingCore,
    batch_positions,
    check_finite,
    make_optimizers,
    summary_scalars,
)

# history.json's name of each BatchResult field (read by tools/reference_model.py)
HISTORY_KEYS = {
    "d_loss": "d_loss", "d_real": "d_real", "d_fake": "d_fake", "g_loss": "g_total", "adversarial": "g_adversarial",
    "content": "g_content", "mse": "g_mse", "gradient": "g_gradient", "d_updates": "d_updates", "g_updates": "g_updates",
    "structure": "g_structure",
}


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

    def __init__(self, config: MEFGANConfig, batches_per_epoch: int, init_generator: str | Path | None = None):
        self.config, self.batches_per_epoch, self.step = config, batches_per_epoch, 0
        keras.utils.set_random_seed(config.seed or 0)
        # The rates are set at every update from the shared step (``_apply``).
        g_optimizer, d_optimizer = make_optimizers(config, config.learning_rate, config.learning_rate)
        generator = build_generator(config)
        if init_generator is not None:  # fine-tuning, as `mefgan train --init-generator`: D starts fresh
            generator.load_weights(init_generator)
        self.g = Network(generator, g_optimizer)
        self.d = Network(build_discriminator(config), d_optimizer)
        self._d_update = jax.jit(self._d_update_fn)
        self._g_update = jax.jit(self._g_update_fn)
        self._measure = jax.jit(self._measure_fn)
        self._infer = jax.jit(self._infer_fn)

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
            return terms.total, (state, d_new, terms)

        (_, (g_state, d_state, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g_tv)
        g_tv, g_opt = self._apply(self.g, g_opt, grads, g_tv, lr)
        return g_tv, g_state, d_state, g_opt, {f"g_{k}": v for k, v in terms._asdict().items()}

    def _measure_fn(self, g_tv, g_state, d_tv, d_state, batch):
        fused, g_new = self._fused(g_tv, g_state, batch)
        d_real, d_fake, d_new = self._d_probs(d_tv, d_state, split_channels(batch)[2], fused)
        g_state, d_state = keep_moving(self.g, g_state, g_new), keep_moving(self.d, d_state, d_new)
        return g_state, d_state, ops.mean(d_real), ops.mean(d_fake)

    def _infer_fn(self, g_tv, g_state, batch):
        over, under, gt = split_channels(batch)
        fused, _ = self.g.model.stateless_call(g_tv, g_state, (over, under), training=False)
        return content_loss(gt, fused, self.config)

    def global_step(self) -> int:
        return self.step

    def d_step(self, batch) -> dict:
        g, d, lr = self.g, self.d, self.current_learning_rate()
        g.state, d.trainable, d.state, d.opt, out = self._d_update(g.trainable, g.state, d.trainable, d.state, d.opt, batch, lr)
        self.step += 1
        return out

    def g_step(self, batch) -> dict:
        g, d, lr = self.g, self.d, self.current_learning_rate()
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

    def train_batch(self, batch, index: int) -> BatchResult:
        """D, then G; on every third batch the extra updates of the balancing rule (``TrainingCore``)."""
        return super().train_batch(batch, index)[0]

    def validation_content(self, path: str | Path) -> float:
        """Mean content loss of G (inference mode) over the whole batches of the patch file ``path``."""
        size = self.config.batch_size
        with open_patches(path) as patches:
            losses = [float(self._infer(self.g.trainable, self.g.state, b)) for b in patches.batches(size) if len(b) == size]
        return float(np.mean(losses)) if losses else float("nan")


def keep_moving(network: Network, old: list, new: list) -> list:
    """``new`` state with the batch-norm moving statistics of ``old``: a measuring run moves only ``u``."""
    return [o if moving else n for o, n, moving in zip(old, new, network.is_moving)]


def train(
    config: MEFGANConfig,
    data: str | Path,
    val: str | Path | None,
    out: Path,
    log_every: int = 50,
    init_generator: str | Path | None = None,
    keep_epochs: bool = False,
) -> dict:
    """Train for ``config.epochs`` epochs on the batches of ``pipeline`` (the order and flips of
    `mefgan train` for the seed); write weights, ``history.json`` and TensorBoard scalars into ``out``
    after every epoch. A non-finite loss stops with a CommandError, keeping the last epoch's files.

    ``init_generator``: a generator's Keras weight file to start from (fine-tuning; D starts fresh).
    ``keep_epochs``: also keep each epoch's generator as ``generator-epochNN.weights.h5``, to score
    the epochs afterwards."""
    from tensorboard.summary import Writer  # writes event files without TensorFlow

    seed = config.seed or 0
    batches = open_batches(data, config, seed)
    if val is not None:
        open_patches(val).close()  # a bad validation file fails now, not after the first epoch
    out.mkdir(parents=True, exist_ok=True)
    trainer = JaxTrainer(config, len(batches), init_generator)
    history: dict = {"config": config.to_dict(), "batches_per_epoch": len(batches), "log": [], "epochs": []}
    writer = Writer(str(out / "logs"))
    start = time.time()
    try:
        for epoch, index in batch_positions(0, config.epochs * len(batches), len(batches)):
            batch = batches.batch(epoch, index)
            began, lr = time.perf_counter(), trainer.current_learning_rate()
            result = trainer.train_batch(batch, index)
            done = epoch * len(batches) + index + 1
            kept = str(out / "generator.weights.h5") if epoch else None
            check_finite(result, done, kept, lambda batch=batch: [batch], batches.patches.path)
            if done % config.summary_every == 0:
                for tag, value in summary_scalars(result, lr, config.batch_size / (time.perf_counter() - began)).items():
                    writer.add_scalar(tag, value, step=done)
            if index % log_every == 0:
                values = {key: getattr(result, field) for field, key in HISTORY_KEYS.items()}
                entry = {"epoch": epoch, "batch": index, "step": trainer.step, "lr": lr, "seconds": round(time.time() - start, 1),
                         **values}
                history["log"].append(entry)
                print(json.dumps(entry), flush=True)
            if index == len(batches) - 1:
                val_content = trainer.validation_content(val) if val is not None else None
                seconds = round(time.time() - start, 1)
                history["epochs"].append({"epoch": epoch, "step": trainer.step, "val_content": val_content, "seconds": seconds})
                print(json.dumps(history["epochs"][-1]), flush=True)
                writer.flush()
                save(trainer, out, history, epoch if keep_epochs else None)
    finally:
        writer.close()
        batches.patches.close()
    return history


def save(trainer: JaxTrainer, out: Path, history: dict, epoch: int | None = None) -> None:
    """Write both networks' weights and ``history.json``; with ``epoch``, also that epoch's generator."""
    trainer.g.write_back()
    trainer.d.write_back()
    history["step"] = trainer.step
    files = [("generator", trainer.g.model), ("discriminator", trainer.d.model)]
    if epoch is not None:
        files.append((f"generator-epoch{epoch + 1:02d}", trainer.g.model))
    for name, model in files:
        tmp = out / f".{name}.tmp.weights.h5"  # a kill mid-write never damages the last good file
        model.save_weights(tmp)
        os.replace(tmp, out / f"{name}.weights.h5")
    (out / ".history.json").write_text(json.dumps(history, indent=1))
    os.replace(out / ".history.json", out / "history.json")


if __name__ == "__main__":
    from mefgan_tf.cli.jax_train import main

    raise SystemExit(main())
