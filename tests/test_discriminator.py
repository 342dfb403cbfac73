"""The discriminator matches the original's forward pass on 144 x 144 patches."""
from __future__ import annotations

import numpy as np
import reference_numpy as ref

from mefgan_tf.discriminator import build_discriminator
from mefgan_tf.generator import build_generator


def test_discriminator_matches_numpy_reference_of_the_original(random_tf1_weights, load_tf1_weights):
    generator, discriminator = build_generator(), build_discriminator()
    weights = random_tf1_weights(generator, discriminator, seed=3)
    load_tf1_weights(weights, generator, discriminator)
    images = np.random.default_rng(0).random((3, 144, 144, 3)).astype(np.float32)
    expected = ref.discriminator(images, weights)
    got = discriminator(images).numpy()
    assert got.shape == (3, 1)
    assert np.ptp(expected) > 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_discriminator_shapes_follow_the_original():
    discriminator = build_discriminator()
    x = np.zeros((1, 144, 144, 3), np.float32)
    sizes = []
    for conv in discriminator.convs:
        x = conv(x)
        sizes.append(x.shape[1:])
    assert sizes == [(72, 72, 64), (36, 36, 64), (18, 18, 96), (9, 9, 128), (5, 5, 256), (5, 5, 512)]
    assert tuple(discriminator.dense.kernel.shape) == (12800, 1)
    assert all(conv.bn is None for conv in discriminator.convs)
    assert [conv.spectral_norm for conv in discriminator.convs] == [True] * 5 + [False]
    kernel = discriminator.convs[5].kernel.numpy()
    assert abs(kernel.std() - 0.1 * 0.88) < 0.01


def test_discriminator_output_is_a_probability():
    discriminator = build_discriminator()
    y = discriminator(np.random.default_rng(1).random((4, 144, 144, 3)).astype(np.float32)).numpy()
    assert np.all((y > 0) & (y < 1))
