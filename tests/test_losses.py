"""MEF-GAN's losses, lr schedule and balancing rule equal hand-computed values (the original's losses and training recipe)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from mefgan_tf import losses
from mefgan_tf.config import MEFGANConfig

CONFIG = MEFGANConfig(patch_size=16)
GREY_SUM = 0.2989 + 0.5870 + 0.1140  # grey value of a white pixel


def single_pixel(row: int, col: int, size: int = 16) -> np.ndarray:
    image = np.zeros((1, size, size, 3), np.float32)
    image[0, row, col] = 1.0
    return image


def test_generator_adversarial_loss_is_minus_mean_log_of_d_fake():
    d_fake = np.array([[0.5], [0.25]], np.float32)
    expected = -(math.log(0.5 + 1e-8) + math.log(0.25 + 1e-8)) / 2
    assert float(losses.g_adversarial_loss(d_fake, CONFIG)) == pytest.approx(expected, rel=1e-6)


def test_discriminator_loss_is_minus_log_d_real_minus_log_one_minus_d_fake():
    d_real, d_fake = np.array([[0.8], [0.6]], np.float32), np.array([[0.3], [0.1]], np.float32)
    expected = -(math.log(0.8) + math.log(0.6)) / 2 - (math.log(0.7) + math.log(0.9)) / 2
    assert float(losses.d_loss(d_real, d_fake, CONFIG)) == pytest.approx(expected, rel=1e-6)


def test_mse_averages_over_pixels_channels_and_batch():
    gt = np.zeros((2, 4, 4, 3), np.float32)
    fused = np.zeros_like(gt)
    fused[0, 0, 0, 0] = 1.0  # one squared error of 1 among 2 * 48 values
    assert float(losses.mse(gt, fused)) == pytest.approx(1 / 96)


def test_gradient_loss_of_a_single_pixel_is_centre_plus_eight_neighbours_over_patch_area():
    loss = losses.gradient_loss(single_pixel(5, 7), np.zeros((1, 16, 16, 3), np.float32), CONFIG)
    assert float(loss) == pytest.approx(GREY_SUM * (1 + 8 / 8) / 16**2, rel=1e-5)


def test_gradient_loss_pads_with_zeros_at_the_border():
    loss = losses.gradient_loss(single_pixel(0, 0), np.zeros((1, 16, 16, 3), np.float32), CONFIG)
    assert float(loss) == pytest.approx(GREY_SUM * (1 + 3 / 8) / 16**2, rel=1e-5)


def test_gradient_loss_divides_by_the_configured_patch_area_not_by_144_squared():
    gt, fused = single_pixel(5, 7), np.zeros((1, 16, 16, 3), np.float32)
    small = float(losses.gradient_loss(gt, fused, CONFIG))
    large = float(losses.gradient_loss(gt, fused, CONFIG.replace(patch_size=144)))
    assert small / large == pytest.approx(144**2 / 16**2, rel=1e-5)


def test_content_and_generator_loss_combine_with_xi_and_lambda():
    rng = np.random.default_rng(0)
    gt, fused = rng.random((2, 16, 16, 3), np.float32), rng.random((2, 16, 16, 3), np.float32)
    d_fake = np.array([[0.3], [0.7]], np.float32)
    mse, grad = float(losses.mse(gt, fused)), float(losses.gradient_loss(gt, fused, CONFIG))
    adversarial = float(losses.g_adversarial_loss(d_fake, CONFIG))
    content = mse + 0.6 * grad
    assert float(losses.content_loss(gt, fused, CONFIG)) == pytest.approx(content, rel=1e-5)
    total = losses.generator_loss(d_fake, gt, fused, CONFIG)
    assert float(total.total) == pytest.approx(adversarial + 500 * content, rel=1e-5)
    assert (float(total.mse), float(total.gradient)) == pytest.approx((mse, grad), rel=1e-5)
    per_example = losses.generator_loss_per_example(d_fake, gt, fused, CONFIG)
    assert float(np.mean(per_example.total)) == pytest.approx(float(total.total), rel=1e-5)


def test_learning_rate_decays_by_0_7_per_epoch_of_updates_continuously():
    assert losses.learning_rate(0, 100, CONFIG) == pytest.approx(3e-4)
    assert losses.learning_rate(100, 100, CONFIG) == pytest.approx(3e-4 * 0.7)
    assert losses.learning_rate(50, 100, CONFIG) == pytest.approx(3e-4 * 0.7**0.5)
    assert losses.learning_rate(0, 100, MEFGANConfig.paper()) == pytest.approx(6e-4)
    on_tensor = losses.learning_rate(tf.constant(150.0), 100, CONFIG)
    assert float(on_tensor) == pytest.approx(3e-4 * 0.7**1.5, rel=1e-6)


@pytest.mark.parametrize(
    "d_fake, d_real, n_d, extra",
    [(0.7, 0.5, 1, True), (0.5, 0.3, 1, True), (0.5, 0.5, 1, False), (0.9, 0.1, 4, False), (0.6, 0.4, 1, False)],
)
def test_extra_d_updates_while_d_is_fooled_and_fewer_than_four(d_fake, d_real, n_d, extra):
    assert losses.needs_extra_d(d_fake, d_real, n_d, CONFIG) is extra


@pytest.mark.parametrize(
    "d_fake, d_real, n_g, extra",
    [(0.5, 0.7, 1, True), (0.3, 0.5, 7, True), (0.5, 0.5, 1, False), (0.1, 0.9, 8, False), (0.4, 0.6, 1, False)],
)
def test_extra_g_updates_while_d_wins_and_fewer_than_eight(d_fake, d_real, n_g, extra):
    assert losses.needs_extra_g(d_fake, d_real, n_g, CONFIG) is extra


class ScriptedGame:
    """Counts updates; ``measure`` plays back scripted (D(fused), D(gt)) pairs."""

    def __init__(self, script):
        self.script, self.log = list(script), []

    def update_d(self):
        self.log.append("D")
        return len(self.log)

    def update_g(self):
        self.log.append("G")
        return len(self.log)

    def measure(self):
        self.log.append("m")
        return self.script.pop(0)


def test_balancing_batch_takes_extra_d_then_extra_g_updates_as_the_scripted_d_asks():
    game = ScriptedGame([(0.9, 0.5), (0.7, 0.5), (0.5, 0.7), (0.5, 0.5)])
    out = losses.balanced_batch(0, game.update_d, game.update_g, game.measure, CONFIG)
    assert "".join(game.log) == "DGmDmDmGm"
    assert (out.d_updates, out.g_updates, out.measured) == (3, 2, (0.5, 0.5))


def test_balancing_stops_at_four_d_and_eight_g_updates():
    game = ScriptedGame([(0.99, 0.99)] * 20)
    out = losses.balanced_batch(3, game.update_d, game.update_g, game.measure, CONFIG)
    assert (out.d_updates, out.g_updates) == (4, 8)
    assert game.log.count("D") == 4 and game.log.count("G") == 8


def test_batches_not_divisible_by_three_take_one_d_and_one_g_update_and_no_measurement():
    game = ScriptedGame([])
    out = losses.balanced_batch(4, game.update_d, game.update_g, game.measure, CONFIG)
    assert game.log == ["D", "G"] and out.measured is None


# ---------------------------------------------------------------- MEF-SSIM loss (an option, not the original)
def astronaut_patches(size: int = 144) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(over, under, fused) uint8 crops of the bundled demo pair; fused = their average."""
    from mefgan_tf.samples import sample_pair

    under, over = (image[100:100 + size, 150:150 + size] for image in sample_pair("astronaut"))
    return over, under, ((over.astype(np.float64) + under) / 2).round().astype(np.uint8)


def as_batch(*images: np.ndarray) -> list[tf.Tensor]:
    return [tf.constant(image[None].astype(np.float32) / 255.0) for image in images]


def test_mef_ssim_loss_equals_the_multi_scale_metric_on_real_patches():
    from mefgan_tf.metrics import mef_ms_ssim

    over, under, fused = astronaut_patches()
    for candidate in (fused, over, under):
        expected = mef_ms_ssim(over, under, candidate)
        got = float(losses.mef_ssim_per_example(*as_batch(over, under, candidate))[0])
        assert got == pytest.approx(expected, abs=2e-3)  # the metric rounds grey levels to integers
    assert float(losses.mef_ssim_per_example(*as_batch(over, under, fused))[0]) < 0.99


def test_mef_ssim_loss_on_small_patches_uses_the_scales_that_fit_with_renormalised_weights():
    from mefgan_tf.metrics import MS_WEIGHTS, Sources

    over, under, fused = astronaut_patches(24)  # 24 and 12 px hold the 11 px window; 6 px does not
    scales = Sources(over, under).mef_ms_ssim_scales(fused, 2)
    weights = MS_WEIGHTS[:2] / MS_WEIGHTS[:2].sum()
    expected = float(np.prod(np.asarray(scales) ** weights))
    assert float(losses.mef_ssim_per_example(*as_batch(over, under, fused))[0]) == pytest.approx(expected, abs=3e-3)
    with pytest.raises(ValueError, match="smaller than MEF-SSIM's 11x11 window"):
        losses.mef_ssim_per_example(*as_batch(*astronaut_patches(10)))


@pytest.mark.slow
def test_gradient_steps_on_the_structure_loss_raise_the_measured_mef_ssim():
    from mefgan_tf.metrics import mef_ms_ssim

    over, under, fused = astronaut_patches(96)
    over_t, under_t, start = as_batch(over, under, fused)
    image, optimizer = tf.Variable(start), tf.keras.optimizers.Adam(3e-3)
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(losses.structure_loss_per_example(over_t, under_t, image))
        grad = tape.gradient(loss, image)
        assert np.isfinite(grad.numpy()).all()
        optimizer.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
    after = (image.numpy()[0] * 255).round().astype(np.uint8)
    assert mef_ms_ssim(over, under, after) > mef_ms_ssim(over, under, fused) + 0.02


def test_generator_loss_adds_mu_times_one_minus_mef_ssim_only_when_mu_is_set():
    over, under, fused = as_batch(*astronaut_patches(48))
    gt, d_fake = fused * 0.9, np.full((1, 1), 0.5, np.float32)
    config = MEFGANConfig(patch_size=48)
    plain = losses.generator_loss(d_fake, gt, fused, config)
    assert float(plain.structure) == 0.0
    with_mu = losses.generator_loss(d_fake, gt, fused, config.replace(mef_ssim_weight=50.0), sources=(over, under))
    score = float(losses.mef_ssim_per_example(over, under, fused)[0])
    assert float(with_mu.structure) == pytest.approx(1 - score, abs=1e-6)
    assert float(with_mu.total) - float(plain.total) == pytest.approx(50.0 * (1 - score), rel=1e-4)
    with pytest.raises(ValueError, match="needs the sources"):
        losses.generator_loss(d_fake, gt, fused, config.replace(mef_ssim_weight=50.0))
