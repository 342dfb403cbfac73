"""The training core that both trainers share; only their step functions are backend-specific.

``tensorflow_backend.Trainer`` (``tf.function`` steps under ``tf.distribute``) and
``jax_backend.JaxTrainer`` (Keras's stateless API under ``jax.jit``) each implement the three steps
of the original recipe on a batch: a D update (``d_step``), a G update (``g_step``) and a measurement
of mean D(fused) and D(gt) (``measured``) that advances each spectral-norm ``u`` but leaves the
batch-norm moving statistics as they were (the original attaches ``UPDATE_OPS`` to its two
``minimize`` calls only). Everything else is here and used by both:

* the optimizers (``make_optimizers``): Adam for G, SGD for D, at rates driven by the global step;
* the step accounting (``TrainingCore``): the global step advances on every D and every G update,
  as the original's does, and sets the learning rate (``losses.learning_rate``); ``batch_positions``
  walks (epoch, batch) over epochs from any point, so a run can resume;
* the batch (``TrainingCore.train_batch``): the balancing rule (``losses.balanced_batch``) and what
  a batch reports (``BatchResult``);
* the batches themselves: ``pipeline.PatchBatches`` (the order of each epoch, random flips);
* the TensorBoard scalars (``summary_scalars``: one set of tags) and the guard against non-finite
  losses (``check_finite``);
* a fine-tune's start (``initialize_generator``): another model's generator weights.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mefgan_tf.checkpoint import load_generator
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.errors import CommandError
from mefgan_tf.losses import BalancedBatch, balanced_batch, learning_rate
from mefgan_tf.models import named_model


def make_optimizers(config: MEFGANConfig, g_learning_rate, d_learning_rate) -> tuple[keras.optimizers.Optimizer, ...]:
    """(G's Adam, D's SGD) as the original builds them; a rate may be a callable, read at every update."""
    g_optimizer = keras.optimizers.Adam(
        learning_rate=g_learning_rate, beta_1=config.g_beta1, beta_2=config.g_beta2, epsilon=config.adam_epsilon
    )
    return g_optimizer, keras.optimizers.SGD(learning_rate=d_learning_rate)


@dataclass
class BatchResult:
    """What one training batch reports (global means over the batch)."""

    d_loss: float
    g_loss: float
    adversarial: float
    content: float
    mse: float
    gradient: float
    d_real: float
    d_fake: float
    d_updates: int
    g_updates: int
    structure: float = 0.0  # 1 - MEF-SSIM, when mef_ssim_weight > 0

    @classmethod
    def of(cls, outcome: BalancedBatch) -> BatchResult:
        """The report of a balanced batch whose steps return ``d_loss``/``d_real``/``d_fake`` and ``g_<term>``."""
        d, g = outcome.d_out, outcome.g_out
        d_fake, d_real = outcome.measured or (float(d["d_fake"]), float(d["d_real"]))
        return cls(
            d_loss=float(d["d_loss"]),
            g_loss=float(g["g_total"]),
            adversarial=float(g["g_adversarial"]),
            content=float(g["g_content"]),
            mse=float(g["g_mse"]),
            gradient=float(g["g_gradient"]),
            d_real=d_real,
            d_fake=d_fake,
            d_updates=outcome.d_updates,
            g_updates=outcome.g_updates,
            structure=float(g.get("g_structure", 0.0)),
        )

    def finite(self) -> bool:
        return all(math.isfinite(v) for v in asdict(self).values())


class TrainingCore:
    """The recipe on a trainer's step functions. Subclasses set ``config`` and ``batches_per_epoch``
    and provide ``global_step``, ``d_step``, ``g_step`` and ``measured``."""

    config: MEFGANConfig
    batches_per_epoch: int

    def global_step(self) -> int:
        """Updates so far, D's and G's together (the original's global step)."""
        raise NotImplementedError

    def d_step(self, batch) -> dict:
        """One D update: its ``d_loss``, ``d_real`` and ``d_fake``."""
        raise NotImplementedError

    def g_step(self, batch) -> dict:
        """One G update: its loss terms ``g_total``, ``g_adversarial``, ``g_content``, ``g_mse``, ``g_gradient``
        (and ``g_structure``)."""
        raise NotImplementedError

    def measured(self, batch) -> tuple[float, float]:
        """(mean D(fused), mean D(gt)) of ``batch``, batch-norm moving statistics left unchanged."""
        raise NotImplementedError

    def current_learning_rate(self) -> float:
        """G's learning rate at the current global step (D's is ``d_lr_factor`` times it)."""
        return float(learning_rate(self.global_step(), self.batches_per_epoch, self.config))

    def train_batch(self, batch, index: int) -> tuple[BatchResult, Any]:
        """One batch of the original recipe (``losses.balanced_batch``): its report, and the output of
        its last G update."""
        outcome = balanced_batch(
            index, lambda: self.d_step(batch), lambda: self.g_step(batch), lambda: self.measured(batch), self.config
        )
        return BatchResult.of(outcome), outcome.g_out


def batch_positions(done: int, stop: int, batches_per_epoch: int) -> Iterator[tuple[int, int]]:
    """(epoch, batch index) of the batches after the first ``done``, up to ``stop`` (counted over epochs)."""
    for step in range(done, stop):
        yield divmod(step, batches_per_epoch)


def summary_scalars(result: BatchResult, lr: float, patches_per_second: float) -> dict[str, float]:
    """The TensorBoard scalars of a batch, by tag (both trainers write these)."""
    scalars = {f"loss/{n}": getattr(result, n) for n in ("content", "adversarial", "mse", "gradient", "structure")}
    scalars.update({
        "loss/generator": result.g_loss,
        "loss/discriminator": result.d_loss,
        "D/real": result.d_real,
        "D/fake": result.d_fake,
        "balance/d_updates": result.d_updates,
        "balance/g_updates": result.g_updates,
        "learning_rate": lr,
        "patches_per_second": patches_per_second,
    })
    return {tag: float(value) for tag, value in scalars.items()}


def data_problem(batches: Sequence[np.ndarray], path: Path) -> str | None:
    """What is wrong with the values of a training batch (given as its replicas' slices), if anything."""
    for values in batches:
        if not np.isfinite(values).all():
            return f"the batch read from {path} holds NaN or infinite values"
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 1:
            return f"the batch read from {path} has values in [{low:g}, {high:g}], outside [0, 1]"
    return None


def check_finite(
    result: BatchResult, step: int, kept: str | None, batches: Callable[[], Sequence[np.ndarray]], path: Path
) -> None:
    """CommandError when a batch's losses are not finite: training stops without saving, so ``kept``
    (the last good checkpoint, if any) stays the last one; blames the data when the batch (its
    replicas' slices, from ``batches``) is bad."""
    if result.finite():
        return
    cause = data_problem(batches(), path)
    kept_text = f"the last good checkpoint {kept} is kept" if kept else "no checkpoint was written"
    advice = f"{cause}: fix the patch file" if cause else "try a lower --learning-rate"
    raise CommandError(
        f"non-finite loss at step {step} (G loss {result.g_loss}, D loss {result.d_loss}); "
        f"training stopped and {kept_text} ({advice})"
    )


def initialize_generator(generator, path: str, scope=None) -> None:
    """Copy the generator weights of the model ``path`` (a run folder of either backend, a checkpoint,
    a Keras ``.weights.h5`` file or ``shipped``) into ``generator`` (D stays fresh); ``scope``: a
    distribution scope."""
    source = load_generator(named_model(path))
    with scope or contextlib.nullcontext():
        for variable, value in zip(generator.weights, source.weights, strict=True):
            variable.assign(np.asarray(value))
