"""Spectral normalisation, the convolution unit and blocked self-attention behave as the original's TF1 code does."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from reference_numpy import conv, lrelu, sn_kernel

from mefgan_tf.layers import (
    SAMPLED_KEYS,
    SHIFT_LIMIT,
    ConvUnit,
    SelfAttention,
    attention_rows,
    chunked_attention,
    flash_attention,
    freeze_statistics,
    moving_statistics,
    score_bounds,
    spectral_normalize,
)


def test_spectral_normalize_does_one_power_iteration_like_the_original():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 5, 7)).astype(np.float32)
    u = rng.normal(size=(1, 7)).astype(np.float32)
    normalized, u_new = spectral_normalize(kernel, u)
    np.testing.assert_allclose(np.asarray(normalized), sn_kernel(kernel, u), rtol=1e-5, atol=1e-6)
    w = kernel.reshape(-1, 7)
    v = u @ w.T
    v /= np.linalg.norm(v)
    expected_u = v @ w
    np.testing.assert_allclose(np.asarray(u_new), expected_u / np.linalg.norm(expected_u), rtol=1e-5)


def test_spectral_norm_converges_to_largest_singular_value():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
    u = rng.normal(size=(1, 6)).astype(np.float32)
    for _ in range(500):
        normalized, u = spectral_normalize(kernel, u)
    top = np.linalg.svd(np.asarray(normalized).reshape(-1, 6), compute_uv=False)[0]
    assert top == pytest.approx(1.0, abs=1e-4)


def test_u_advances_only_in_training():
    layer = ConvUnit(8, batch_norm=False)
    x = np.random.default_rng(2).random((2, 10, 10, 3)).astype(np.float32)
    layer(x)
    u0 = layer.u.numpy().copy()
    first = layer(x, training=False).numpy()
    second = layer(x, training=False).numpy()
    np.testing.assert_array_equal(layer.u.numpy(), u0)
    np.testing.assert_array_equal(first, second)
    layer(x, training=True)
    assert not np.allclose(layer.u.numpy(), u0)
    assert layer.u.trainable is False


def test_frozen_statistics_normalise_with_the_moving_statistics_in_training_and_leave_them_while_beta_trains():
    layer = ConvUnit(4, spectral_norm=False)
    x = np.random.default_rng(3).random((2, 8, 8, 3)).astype(np.float32)
    layer(x, training=True)
    layer(x, training=True)  # moving statistics away from their start
    frozen = ConvUnit.from_config(layer.get_config())
    frozen.build(x.shape)
    frozen.set_weights(layer.get_weights())
    freeze_statistics(keras.Sequential([frozen]))
    statistics = [np.asarray(v) for v in moving_statistics(frozen)]
    inference = layer(x, training=False).numpy()
    with tf.GradientTape() as tape:
        y = frozen(x, training=True)
        loss = tf.reduce_mean(y)
    np.testing.assert_allclose(y.numpy(), inference, rtol=1e-6, atol=1e-6)
    assert not np.allclose(layer(x, training=True).numpy(), inference, atol=1e-3)  # unfrozen: batch statistics
    for variable, value in zip(moving_statistics(frozen), statistics, strict=True):
        np.testing.assert_array_equal(np.asarray(variable), value)
    grads = tape.gradient(loss, [frozen.bn.beta, frozen.bn.gamma, frozen.kernel])
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in grads)
    assert "frozen_statistics" not in frozen.get_config()  # a training setting, not the network


def test_conv_unit_is_reflect_pad_conv_bias_leaky_relu():
    rng = np.random.default_rng(3)
    layer = ConvUnit(4, strides=2, spectral_norm=False, batch_norm=False)
    x = rng.random((1, 9, 11, 3)).astype(np.float32)
    layer(x)
    layer.bias.assign(rng.normal(size=4).astype(np.float32))
    expected = lrelu(conv(x.astype(np.float64), layer.kernel.numpy(), layer.bias.numpy(), stride=2))
    got = layer(x).numpy()
    assert got.shape == (1, 5, 6, 4) == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_conv_unit_initialisers_follow_the_original():
    layer = ConvUnit(64, kernel_stddev=0.5)
    layer.build((None, None, None, 64))
    kernel = layer.kernel.numpy()
    assert np.abs(kernel).max() <= 1.0 + 1e-6  # truncated at two standard deviations
    assert kernel.std() == pytest.approx(0.5 * 0.88, rel=0.05)  # std of a normal truncated at 2 sigma
    assert np.all(layer.bias.numpy() == 0)
    assert layer.bn.momentum == 0.99 and layer.bn.epsilon == 1e-3


@pytest.mark.slow
def test_chunked_attention_equals_full_softmax():
    rng = np.random.default_rng(4)
    q = rng.normal(size=(2, 1000, 8)).astype(np.float32)
    k = rng.normal(size=(2, 1000, 8)).astype(np.float32)
    v = rng.normal(size=(2, 1000, 32)).astype(np.float32)
    full = np.asarray(attention_rows(q, k, v))
    for chunk in (1, 128, 333, 1000, 4096):
        np.testing.assert_allclose(np.asarray(chunked_attention(q, k, v, chunk)), full, rtol=1e-5, atol=1e-6)


def softmax_attention_float64(q, k, v):
    scores = q.astype(np.float64) @ np.swapaxes(k, 1, 2).astype(np.float64)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)) @ v.astype(np.float64)


def attention_inputs(n: int, scale: float, seed: int = 6):
    rng = np.random.default_rng(seed)
    q = (rng.normal(size=(2, n, 8)) * scale).astype(np.float32)
    return q, rng.normal(size=(2, n, 8)).astype(np.float32), rng.normal(size=(2, n, 32)).astype(np.float32)


@pytest.mark.parametrize(
    "n, scale, chunk, key_block, bounded",
    [
        (1000, 1.0, 256, 128, True),  # several query and key blocks, shift = upper bound
        (777, 1.0, 100, 300, True),  # blocks that do not divide N (padded queries and keys)
        (50, 1.0, 16, 1024, True),  # one key block larger than N
        (3001, 30.0, 1024, 512, False),  # bounds too far apart: shift = exact row maximum
    ],
)
def test_flash_attention_equals_the_full_softmax_to_float32_rounding(n, scale, chunk, key_block, bounded):
    q, k, v = attention_inputs(n, scale)
    upper, lower = score_bounds(q, k, k[:, :: max(1, n // SAMPLED_KEYS)])
    assert bool(np.max(np.asarray(upper) - np.asarray(lower)) <= SHIFT_LIMIT) == bounded
    exact = softmax_attention_float64(q, k, v)
    flash = np.asarray(flash_attention(q, k, v, chunk, key_block))
    rows = np.asarray(chunked_attention(q, k, v, chunk))
    # Measured: max |flash - exact| 1.1e-6 (scale 1) and 6.2e-5 (scale 30, scores up to ~900), the
    # same as the row-wise softmax's own float32 error.
    assert np.abs(flash - exact).max() <= max(2e-6, 1.5 * np.abs(rows - exact).max())


def test_flash_attention_in_a_graph_with_unknown_sizes_equals_eager():
    q, k, v = attention_inputs(1500, 1.0)
    specs = [tf.TensorSpec([None, None, 8]), tf.TensorSpec([None, None, 8]), tf.TensorSpec([None, None, 32])]
    graph = tf.function(lambda a, b, c: flash_attention(a, b, c, 512, 256), input_signature=specs)
    np.testing.assert_allclose(graph(q, k, v).numpy(), np.asarray(flash_attention(q, k, v, 512, 256)), atol=1e-6)
    np.testing.assert_allclose(graph(q[:, :40], k[:, :40], v[:, :40]).numpy(), softmax_attention_float64(q[:, :40], k[:, :40], v[:, :40]), atol=2e-6)


def test_self_attention_methods_flash_and_rows_agree_and_an_unknown_one_is_refused():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1, 40, 40, 32)).astype(np.float32)
    flash = SelfAttention(chunk=300)
    flash(x)
    rows = SelfAttention(chunk=300, method="rows")
    rows(x)
    rows.set_weights(flash.get_weights())
    np.testing.assert_allclose(flash(x).numpy(), rows(x).numpy(), atol=2e-5)
    with pytest.raises(ValueError, match="attention method 'fast'"):
        SelfAttention(method="fast")


def test_self_attention_layer_chunked_and_unchunked_agree():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 13, 17, 32)).astype(np.float32)
    chunked = SelfAttention(chunk=50)
    chunked(x)
    full = SelfAttention(chunk=None)
    full(x)
    full.set_weights(chunked.get_weights())
    np.testing.assert_allclose(chunked(x).numpy(), full(x).numpy(), rtol=1e-5, atol=1e-5)


def test_self_attention_gamma_and_biases_start_random_not_zero():
    layer = SelfAttention()
    layer.build((None, 4, 4, 32))
    assert layer.gamma.numpy()[0] != 0.0
    assert np.any(layer.f.bias.numpy() != 0.0)


def test_layers_round_trip_through_get_config():
    for layer in (ConvUnit(12, strides=2, spectral_norm=False, bias_stddev=0.3), SelfAttention(chunk=64, method="rows")):
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_object("mefgan>ConvUnit") is ConvUnit


JAX_FLASH = """
import json, numpy as np
from mefgan_tf.layers import flash_attention
rng = np.random.default_rng(6)
q, k = rng.normal(size=(1, 900, 8)).astype(np.float32), rng.normal(size=(1, 900, 8)).astype(np.float32)
v = rng.normal(size=(1, 900, 32)).astype(np.float32)
s = q.astype(np.float64) @ k[0].T.astype(np.float64)
w = np.exp(s - s.max(-1, keepdims=True))
exact = (w / w.sum(-1, keepdims=True)) @ v.astype(np.float64)
import keras
print(json.dumps({"backend": keras.backend.backend(), "diff": float(np.abs(np.asarray(flash_attention(q, k, v, 256, 200)) - exact).max())}))
"""


@pytest.mark.slow
def test_flash_attention_runs_exactly_under_the_jax_backend():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", JAX_FLASH], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax" and report["diff"] < 2e-6
