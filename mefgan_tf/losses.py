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

import numpy as np
from keras import ops

from mefgan_tf.config import MEFGANConfig
from mefgan_tf.mef_ssim_window import (
    EPS,
    K2,
    MAX_P,
    MS_WEIGHTS,
    RGB2GRAY_WEIGHTS,
    STRENGTH_FLOOR,
    WINDOW,
    gaussian_kernel,
    scales_that_fit,
)

# Laplacian-like kernel of the original's gradient operator: 1/8 at the neighbours, -1 at the centre.
GRADIENT_KERNEL = ((0.125, 0.125, 0.125), (0.125, -1.0, 0.125), (0.125, 0.125, 0.125))


class GeneratorLoss(NamedTuple):
    """G's loss and its parts: total = adversarial + lambda * content + mu * structure,
    content = mse + xi * gradient, structure = 1 - MEF-SSIM against the inputs (0 unless mu > 0)."""

    total: object
    adversarial: object
    content: object
    mse: object
    gradient: object
    structure: object


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


def generator_loss_per_example(d_fake, gt, fused, config: MEFGANConfig, sources=None) -> GeneratorLoss:
    """G's loss and its parts per example (each [B]): adversarial + lambda * (MSE + xi * gradient),
    plus ``mef_ssim_weight`` * (1 - MEF-SSIM of ``fused`` against ``sources`` = (over, under)) when
    that weight is set (not in the original)."""
    adversarial = g_adversarial_per_example(d_fake, config)
    squared = mse_per_example(gt, fused)
    gradient = gradient_loss_per_example(gt, fused, config)
    content = squared + config.gradient_weight * gradient
    total = adversarial + config.content_weight * content
    structure = ops.zeros_like(squared)
    if config.mef_ssim_weight:
        if sources is None:
            raise ValueError("mef_ssim_weight > 0 needs the sources (over, under) of the fused patches")
        structure = structure_loss_per_example(*sources, fused)
        total = total + config.mef_ssim_weight * structure
    return GeneratorLoss(total, adversarial, content, squared, gradient, structure)


def generator_loss(d_fake, gt, fused, config: MEFGANConfig, sources=None) -> GeneratorLoss:
    """G's loss and its parts as batch means (the total is what G minimises)."""
    return GeneratorLoss(*(ops.mean(term) for term in generator_loss_per_example(d_fake, gt, fused, config, sources)))


# ------------------------------------------------------------------ MEF-SSIM as a loss (not in the original)
def _window_filter(maps, kernel_1d: np.ndarray):
    """Each channel of ``maps`` [B, H, W, C] filtered over every full window (``valid``) with the
    separable kernel ``kernel_1d`` (outer product with itself)."""
    channels = maps.shape[-1]
    k = ops.convert_to_tensor(kernel_1d, dtype=maps.dtype)
    rows = ops.tile(ops.reshape(k, (-1, 1, 1, 1)), (1, 1, channels, 1))
    cols = ops.tile(ops.reshape(k, (1, -1, 1, 1)), (1, 1, channels, 1))
    return ops.depthwise_conv(ops.depthwise_conv(maps, rows, padding="valid"), cols, padding="valid")


def _grey255(images):
    """RGB in [0, 1] -> continuous MATLAB ``rgb2gray`` levels in [0, 255], [B, H, W]."""
    weights = ops.convert_to_tensor(RGB2GRAY_WEIGHTS * 255.0, dtype=images.dtype)
    return ops.sum(images * weights, axis=-1)


def _halve(grey):
    """MEF-SSIM's downsampling: 2x2 mean (``symmetric`` edge) and every other row and column."""
    if grey.shape[1] % 2 or grey.shape[2] % 2:
        grey = ops.pad(grey, ((0, 0), (0, grey.shape[1] % 2), (0, grey.shape[2] % 2)), mode="symmetric")
    return ops.squeeze(ops.average_pool(grey[..., None], 2, strides=2, padding="valid"), -1)


def _desired_patch(x0, x1):
    """The sources' side of MEF-SSIM at one scale (``metrics.MefReference`` for two sources, in
    ``keras.ops``): per window the coefficients c_k of the desired patch r = sum c_k (x_k - m_k),
    the sources' window means m_k, and r's Gaussian mean and variance: (c_0, c_1, m_0, m_1, mean, var)."""
    area = float(WINDOW * WINDOW)
    box = _window_filter(ops.stack([x0, x1, x0 * x0, x0 * x1, x1 * x1], -1), np.ones(WINDOW))
    s0, s1, s00, s01, s11 = (box[..., i] for i in range(5))
    c00, c01, c11 = area * s00 - s0 * s0, area * s01 - s0 * s1, area * s11 - s1 * s1  # area^2 * covariances
    n0, n1 = ops.maximum(c00, 0.0) / area, ops.maximum(c11, 0.0) / area  # ||d_k||^2
    r0, r1 = ops.sqrt(n0), ops.sqrt(n1)
    strength0, strength1 = r0 + STRENGTH_FLOOR, r1 + STRENGTH_FLOOR
    numerator = ops.sqrt(ops.maximum(c00 + 2.0 * c01 + c11, 0.0) / area)
    consistency = ops.clip((numerator + EPS) / (r0 + r1 + EPS), 0.0, 0.95)  # p reaches MAX_P at R = 0.937
    p = ops.minimum(ops.tan(np.pi / 2 * consistency), MAX_P)
    w0, w1 = (strength0 / WINDOW) ** p + EPS, (strength1 / WINDOW) ** p + EPS
    a0 = ops.where(n0 > 0, w0 / (w0 + w1) / strength0, 0.0)
    a1 = ops.where(n1 > 0, w1 / (w0 + w1) / strength1, 0.0)
    r_norm2 = ops.maximum((a0 * a0 * c00 + 2.0 * a0 * a1 * c01 + a1 * a1 * c11) / area, 0.0)
    scale = ops.where(r_norm2 > 0, ops.maximum(strength0, strength1) / ops.sqrt(ops.maximum(r_norm2, 1e-12)), 1.0)
    a0, a1, m0, m1 = a0 * scale, a1 * scale, s0 / area, s1 / area
    gauss = _window_filter(ops.stack([x0, x1, x0 * x0, x0 * x1, x1 * x1], -1), gaussian_kernel())
    g0, g1, g00, g01, g11 = (gauss[..., i] for i in range(5))
    mu_r = a0 * (g0 - m0) + a1 * (g1 - m1)
    moment00 = g00 - 2.0 * m0 * g0 + m0 * m0
    moment01 = g01 - m1 * g0 - m0 * g1 + m0 * m1
    moment11 = g11 - 2.0 * m1 * g1 + m1 * m1
    var_r = a0 * a0 * moment00 + 2.0 * a0 * a1 * moment01 + a1 * a1 * moment11 - mu_r**2
    return a0, a1, m0, m1, mu_r, var_r


def _mef_ssim_scale(x0, x1, f):
    """Mean MEF-SSIM quality map per example at one scale; grey [B, H, W] in [0, 255]."""
    a0, a1, m0, m1, mu_r, var_r = (ops.stop_gradient(t) for t in _desired_patch(x0, x1))
    gauss = _window_filter(ops.stack([f, f * f, x0 * f, x1 * f], -1), gaussian_kernel())
    g_f, g_ff, g_0f, g_1f = (gauss[..., i] for i in range(4))
    r_f = a0 * (g_0f - m0 * g_f) + a1 * (g_1f - m1 * g_f)
    cov = r_f - mu_r * g_f
    var_f = g_ff - g_f**2
    c = (K2 * 255.0) ** 2
    return ops.mean((2.0 * cov + c) / (var_r + var_f + c), axis=(1, 2))


def mef_ssim_per_example(over, under, fused):
    """Multi-scale MEF-SSIM (as ``metrics.mef_ms_ssim`` reports it) of each fused patch against its
    two sources, differentiable with respect to ``fused``; RGB [B, H, W, 3] in [0, 1].

    Differs from the metric only where it must: grey levels are not rounded to integers, and
    patches too small for all three scales use the scales that fit (weights renormalised).
    """
    levels = scales_that_fit(min(fused.shape[1], fused.shape[2]))
    if levels == 0:
        raise ValueError(f"patches of {fused.shape[1]}x{fused.shape[2]} are smaller than MEF-SSIM's {WINDOW}x{WINDOW} window")
    weights = MS_WEIGHTS[:levels] / MS_WEIGHTS[:levels].sum()
    x0, x1, f = (_grey255(ops.cast(image, "float32")) for image in (over, under, fused))
    log_score = 0.0
    for level, weight in enumerate(weights):
        if level:
            x0, x1, f = _halve(x0), _halve(x1), _halve(f)
        log_score = log_score + float(weight) * ops.log(ops.maximum(_mef_ssim_scale(x0, x1, f), 1e-4))
    return ops.exp(log_score)


def structure_loss_per_example(over, under, fused):
    """1 - MEF-SSIM of each fused patch against its sources (see ``mef_ssim_per_example``)."""
    return 1.0 - mef_ssim_per_example(over, under, fused)


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
