"""The original recipe under Keras's JAX backend, for accelerator machines that have JAX but no TensorFlow.

``trainer.py`` is the product's trainer (tf.function steps, tf.distribute, checkpoints, TensorBoard).
This module runs the same recipe with the same pieces (the networks of ``generator.py`` and
``discriminator.py``, the losses, schedule and balancing rule of ``losses.py``, every value from
``MEFGANConfig``) through Keras's stateless API and ``jax.jit``. Like ``trainer.py``, every call
runs G and D with ``training=True`` (batch statistics; each spectral-norm ``u`` advances once per
call), the batch-norm moving statistics move only in the updates, and D sees real and fused patches
in one concatenated batch. It writes Keras weight files,
which ``mefgan_tf.checkpoint.import_keras_weights`` turns into a mefgan-tf checkpoint:

    KERAS_BACKEND=jax python -m mefgan_tf.jax_trainer --data train.h5 --val val.h5 --out DIR
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from mefgan_tf.config import MEFGANConfig  # noqa: E402
from mefgan_tf.data import open_patches, split_channels  # noqa: E402
from mefgan_tf.discriminator import build_discriminator  # noqa: E402
from mefgan_tf.generator import build_generator  # noqa: E402
from mefgan_tf.layers import moving_statistics  # noqa: E402
from mefgan_tf.losses import balanced_batch, content_loss, d_loss, generator_loss, learning_rate  # noqa: E402


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
        for variable, value in zip(self.model.trainable_variables, self.trainable):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, self.state):
            variable.assign(value)


class JaxTrainer:
    """Compiled D update, G update and measurement; the Python loop applies the balancing rule."""

    def __init__(self, config: MEFGANConfig, batches_per_epoch: int):
        self.config, self.batches_per_epoch, self.step = config, batches_per_epoch, 0
        keras.utils.set_random_seed(config.seed or 0)
        adam = keras.optimizers.Adam(
            learning_rate=config.learning_rate,
            beta_1=config.g_beta1,
            beta_2=config.g_beta2,
            epsilon=config.adam_epsilon,
        )
        self.g = Network(build_generator(config), adam)
        self.d = Network(build_discriminator(config), keras.optimizers.SGD(learning_rate=config.learning_rate))
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
        gt = split_channels(batch)[2]

        def loss_fn(tv):
            fused, state = self._fused(tv, g_state, batch)
            d_fake, d_new = self.d.model.stateless_call(d_tv, d_state, fused, training=True)
            terms = generator_loss(d_fake, gt, fused, self.config)
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

    def lr(self) -> float:
        return float(learning_rate(self.step, self.batches_per_epoch, self.config))

    def d_step(self, batch) -> dict:
        g, d = self.g, self.d
        g.state, d.trainable, d.state, d.opt, out = self._d_update(g.trainable, g.state, d.trainable, d.state, d.opt, batch, self.lr())
        self.step += 1
        return out

    def g_step(self, batch) -> dict:
        g, d = self.g, self.d
        g.trainable, g.state, d.state, g.opt, out = self._g_update(g.trainable, g.state, d.trainable, d.state, g.opt, batch, self.lr())
        self.step += 1
        return out

    def measure(self, batch) -> tuple[float, float]:
        """(mean D(fused), mean D(gt)), advancing state like the original's measuring run."""
        g, d = self.g, self.d
        g.state, d.state, d_real, d_fake = self._measure(g.trainable, g.state, d.trainable, d.state, batch)
        return float(d_fake), float(d_real)

    def train_batch(self, batch, index: int) -> dict:
        """D, then G; on every third batch the extra updates of the balancing rule."""
        out = balanced_batch(index, lambda: self.d_step(batch), lambda: self.g_step(batch), lambda: self.measure(batch), self.config)
        values = {k: float(v) for k, v in {**out.d_out, **out.g_out}.items()}
        return {**values, "d_updates": out.d_updates, "g_updates": out.g_updates}

    def validation_content(self, patches: np.ndarray, batch_size: int) -> float:
        losses = [
            float(self._infer(self.g.trainable, self.g.state, to_float(patches[i : i + batch_size])))
            for i in range(0, len(patches) - batch_size + 1, batch_size)
        ]
        return float(np.mean(losses)) if losses else float("nan")


def keep_moving(network: Network, old: list, new: list) -> list:
    """``new`` state with the batch-norm moving statistics of ``old``: a measuring run moves only ``u``."""
    return [o if moving else n for o, n, moving in zip(old, new, network.is_moving)]


def to_float(patches: np.ndarray) -> np.ndarray:
    return patches.astype(np.float32) / 255.0


def load_uint8(path: str | Path) -> np.ndarray:
    """The whole patch file as uint8 NHWC (accelerator hosts have the memory; 10k patches = 1.9 GB)."""
    with open_patches(path) as patches:
        return np.concatenate([np.round(b * 255).astype(np.uint8) for b in patches.batches(512)])


def flip(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal and vertical flips of each patch (all nine channels together)."""
    out = batch.copy()
    h = rng.random(len(batch)) < 0.5
    v = rng.random(len(batch)) < 0.5
    out[h] = out[h, :, ::-1]
    out[v] = out[v, ::-1]
    return out


def train(config: MEFGANConfig, data: str, val: str | None, out: Path, log_every: int = 50) -> dict:
    """Train for ``config.epochs`` epochs; write weights and a JSON history into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    patches = load_uint8(data)
    val_patches = load_uint8(val) if val else None
    batches_per_epoch = len(patches) // config.batch_size
    trainer = JaxTrainer(config, batches_per_epoch)
    history: dict = {"config": config.to_dict(), "batches_per_epoch": batches_per_epoch, "log": [], "epochs": []}
    start = time.time()
    for epoch in range(config.epochs):
        rng = np.random.default_rng([config.seed or 0, epoch])
        order = rng.permutation(len(patches))
        for index in range(batches_per_epoch):
            batch = patches[np.sort(order[index * config.batch_size : (index + 1) * config.batch_size])]
            batch = to_float(flip(batch, rng) if config.random_flips else batch)
            result = trainer.train_batch(batch, index)
            if not all(np.isfinite(v) for v in result.values()):
                raise FloatingPointError(f"non-finite loss at epoch {epoch} batch {index}: {result}")
            if index % log_every == 0:
                seconds = round(time.time() - start, 1)
                entry = {"epoch": epoch, "batch": index, "step": trainer.step, "lr": trainer.lr(), "seconds": seconds, **result}
                history["log"].append(entry)
                print(json.dumps(entry), flush=True)
        val_content = trainer.validation_content(val_patches, config.batch_size) if val_patches is not None else None
        seconds = round(time.time() - start, 1)
        history["epochs"].append({"epoch": epoch, "step": trainer.step, "val_content": val_content, "seconds": seconds})
        print(json.dumps(history["epochs"][-1]), flush=True)
        save(trainer, out, history)
    return history


def save(trainer: JaxTrainer, out: Path, history: dict) -> None:
    trainer.g.write_back()
    trainer.d.write_back()
    history["step"] = trainer.step
    for name, model in (("generator", trainer.g.model), ("discriminator", trainer.d.model)):
        tmp = out / f".{name}.tmp.weights.h5"  # a kill mid-write never damages the last good file
        model.save_weights(tmp)
        os.replace(tmp, out / f"{name}.weights.h5")
    (out / ".history.json").write_text(json.dumps(history, indent=1))
    os.replace(out / ".history.json", out / "history.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train MEF-GAN under Keras's JAX backend (no TensorFlow needed).")
    parser.add_argument("--data", required=True, help="training patches (HDF5, from `mefgan patches`)")
    parser.add_argument("--val", help="validation patches (content loss per epoch)")
    parser.add_argument("--out", required=True, type=Path, help="folder for weights and history.json")
    parser.add_argument("--config", help="YAML/JSON file of MEFGANConfig overrides")
    parser.add_argument("--epochs", type=int, help="override config.epochs")
    parser.add_argument("--flips", action="store_true", help="random flips (config.random_flips)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = MEFGANConfig.from_file(args.config) if args.config else MEFGANConfig()
    overrides = {"seed": args.seed, "random_flips": args.flips or config.random_flips}
    if args.epochs:
        overrides["epochs"] = args.epochs
    train(config.replace(**overrides), args.data, args.val, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
