"""Spectral normalisation, the convolution unit and chunked self-attention behave as the original's TF1 code does."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from reference_numpy import conv, lrelu, sn_kernel

from mefgan_tf.layers import ConvUnit, SelfAttention, attention_rows, chunked_attention, spectral_normalize


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


def test_chunked_attention_equals_full_softmax():
    rng = np.random.default_rng(4)
    q = rng.normal(size=(2, 1000, 8)).astype(np.float32)
    k = rng.normal(size=(2, 1000, 8)).astype(np.float32)
    v = rng.normal(size=(2, 1000, 32)).astype(np.float32)
    full = np.asarray(attention_rows(q, k, v))
    for chunk in (1, 128, 333, 1000, 4096):
        np.testing.assert_allclose(np.asarray(chunked_attention(q, k, v, chunk)), full, rtol=1e-5, atol=1e-6)


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
    for layer in (ConvUnit(12, strides=2, spectral_norm=False, bias_stddev=0.3), SelfAttention(chunk=64)):
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_object("mefgan>ConvUnit") is ConvUnit
