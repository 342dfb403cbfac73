"""MEF-GAN's losses, learning-rate schedule and D/G balancing rule, as the authors' TF1 code has them.

The original minimises, for G, ``-log(D(fused) + eps) + lambda * (MSE + xi * gradient loss)`` with
Adam, and for D ``-log(D(gt) + eps) - log(1 - D(fused) + eps)`` with SGD at twice the rate, both
rates decaying continuously with one global step that every update advances. Each batch runs one D
and one G update; every third batch then adds D updates while D is fooled and G updates while D
wins (``balanced_batch``).

Everything here is backend-neutral: the losses use ``keras.ops`` only and the schedule and the
balancing rule are plain Python, so a JAX training script can import them unchanged. Each loss has
a per-example form (``*_per_example``, shape [B]) for distributed training, where every replica
sums its examples and divides by the global batch, and a batch-mean form as the original writes it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from keras import ops

from mefgan_tf.config import MEFGANConfig

# Laplacian-like kernel of the original's gradient operator: 1/8 at the neighbours, -1 at the centre.
GRADIENT_KERNEL = ((0.125, 0.125, 0.125), (0.125, -1.0, 0.125), (0.125, 0.125, 0.125))


class GeneratorLoss(NamedTuple):
    """G's loss and its parts: total = adversarial + lambda * content, content = mse + xi * gradient."""

    total: object
    adversarial: object
    content: object
    mse: object
    gradient: object


def g_adversarial_per_example(d_fake, config: MEFGANConfig):
    """``-log(D(fused) + eps)`` per example (the non-saturating form of the original code)."""
    return -ops.log(ops.reshape(d_fake, (-1,)) + config.eps)


def g_adversarial_loss(d_fake, config: MEFGANConfig):
    return ops.mean(g_adversarial_per_example(d_fake, config))


def d_loss_per_example(d_real, d_fake, config: MEFGANConfig):
    """``-log(D(gt) + eps) - log(1 - D(fused) + eps)`` per example."""
    real = ops.reshape(d_real, (-1,))
    fake = ops.reshape(d_fake, (-1,))
    return -ops.log(real + config.eps) - ops.log(1.0 - fake + config.eps)


def d_loss(d_real, d_fake, config: MEFGANConfig):
    """D's loss: ``-mean(log(D(gt) + eps)) - mean(log(1 - D(fused) + eps))``."""
    return ops.mean(d_loss_per_example(d_real, d_fake, config))


def mse_per_example(gt, fused):
    """Mean squared error over the pixels and channels of each image."""
    return ops.mean(ops.square(gt - fused), axis=(1, 2, 3))


def mse(gt, fused):
    return ops.mean(mse_per_example(gt, fused))


def grey(images, config: MEFGANConfig):
    """RGB [B, H, W, 3] -> grey [B, H, W, 1] with the original's weights (0.2989, 0.5870, 0.1140)."""
    weights = ops.convert_to_tensor(config.grey_weights, dtype=images.dtype)
    return ops.sum(images * weights, axis=-1, keepdims=True)


def image_gradient(grey_images):
    """The original's gradient operator: 3x3 Laplacian-like kernel, zero ('SAME') padding."""
    kernel = ops.reshape(ops.convert_to_tensor(GRADIENT_KERNEL, dtype=grey_images.dtype), (3, 3, 1, 1))
    return ops.conv(grey_images, kernel, strides=1, padding="same")


def gradient_loss_per_example(gt, fused, config: MEFGANConfig):
    """Per image ``sum |grad grey(gt) - grad grey(fused)| / patch_size**2``."""
    difference = ops.abs(image_gradient(grey(gt, config)) - image_gradient(grey(fused, config)))
    return ops.sum(difference, axis=(1, 2, 3)) / float(config.patch_size**2)


def gradient_loss(gt, fused, config: MEFGANConfig):
    return ops.mean(gradient_loss_per_example(gt, fused, config))


def content_per_example(gt, fused, config: MEFGANConfig):
    """MSE + xi * gradient loss per example."""
    return mse_per_example(gt, fused) + config.gradient_weight * gradient_loss_per_example(gt, fused, config)


def content_loss(gt, fused, config: MEFGANConfig):
    return ops.mean(content_per_example(gt, fused, config))


def generator_loss_per_example(d_fake, gt, fused, config: MEFGANConfig) -> GeneratorLoss:
    """G's loss and its parts per example (each [B]): adversarial + lambda * (MSE + xi * gradient)."""
    adversarial = g_adversarial_per_example(d_fake, config)
    squared = mse_per_example(gt, fused)
    gradient = gradient_loss_per_example(gt, fused, config)
    content = squared + config.gradient_weight * gradient
    return GeneratorLoss(adversarial + config.content_weight * content, adversarial, content, squared, gradient)


def generator_loss(d_fake, gt, fused, config: MEFGANConfig) -> GeneratorLoss:
    """G's loss and its parts as batch means (the total is what G minimises)."""
    return GeneratorLoss(*(ops.mean(term) for term in generator_loss_per_example(d_fake, gt, fused, config)))


def learning_rate(step, batches_per_epoch: int, config: MEFGANConfig):
    """G's rate ``base * decay ** (step / batches_per_epoch)``, continuous; D's is ``d_lr_factor`` times it.

    ``step`` is the original's global step, shared by both optimizers (it advances on every G and
    every D update). Works on Python numbers and on backend tensors alike.
    """
    return config.learning_rate * config.lr_decay_rate ** (step / batches_per_epoch)


def is_balance_batch(batch_index: int, config: MEFGANConfig) -> bool:
    """Whether the adaptive extra updates run on this batch (index within the epoch % 3 == 0)."""
    return batch_index % config.balance_every == 0


def needs_extra_d(d_fake: float, d_real: float, n_d: int, config: MEFGANConfig) -> bool:
    """Update D again while it is fooled (D(fused) > 0.6 or D(gt) < 0.4) and it had < 4 updates this batch."""
    losing = d_fake > config.balance_high or d_real < config.balance_low
    return losing and n_d < config.max_d_updates


def needs_extra_g(d_fake: float, d_real: float, n_g: int, config: MEFGANConfig) -> bool:
    """Update G again while D wins (D(gt) > 0.6 or D(fused) < 0.4) and G had < 8 updates this batch."""
    losing = d_real > config.balance_high or d_fake < config.balance_low
    return losing and n_g < config.max_g_updates


class BalancedBatch(NamedTuple):
    """The outcome of one batch: the last D and G update outputs, the update counts, the last measurement."""

    d_out: Any
    g_out: Any
    d_updates: int
    g_updates: int
    measured: tuple[float, float] | None  # (mean D(fused), mean D(gt)) after the last update, if measured


def balanced_batch(
    batch_index: int,
    update_d: Callable[[], Any],
    update_g: Callable[[], Any],
    measure: Callable[[], tuple[float, float]],
    config: MEFGANConfig,
) -> BalancedBatch:
    """One batch of the original recipe: a D update, a G update, then on balancing batches extra D
    updates while D is fooled and extra G updates while D wins.

    ``update_d``/``update_g`` run one update each; ``measure`` returns ``(mean D(fused), mean D(gt))``.
    """
    d_out, g_out = update_d(), update_g()
    n_d = n_g = 1
    if not is_balance_batch(batch_index, config):
        return BalancedBatch(d_out, g_out, n_d, n_g, None)
    d_fake, d_real = measure()
    while needs_extra_d(d_fake, d_real, n_d, config):
        d_out, n_d = update_d(), n_d + 1
        d_fake, d_real = measure()
    while needs_extra_g(d_fake, d_real, n_g, config):
        g_out, n_g = update_g(), n_g + 1
        d_fake, d_real = measure()
    return BalancedBatch(d_out, g_out, n_d, n_g, (d_fake, d_real))
