"""The generator matches the original's forward pass and accepts any multiple-of-8 size."""
from __future__ import annotations

import numpy as np
import pytest
import reference_numpy as ref

from mefgan_tf.discriminator import build_discriminator
from mefgan_tf.generator import FULL_RES_HALO, build_generator


@pytest.fixture(scope="module")
def models(random_tf1_weights, load_tf1_weights):
    generator, discriminator = build_generator(), build_discriminator()
    weights = random_tf1_weights(generator, discriminator, seed=7)
    load_tf1_weights(weights, generator, discriminator)
    return generator, discriminator, weights


@pytest.mark.parametrize("height,width", [(32, 48), (64, 40)])
def test_generator_matches_numpy_reference_of_the_original(models, height, width):
    generator, _, weights = models
    rng = np.random.default_rng(height)
    over = rng.random((2, height, width, 3)).astype(np.float32)
    under = rng.random((2, height, width, 3)).astype(np.float32)
    expected = ref.generator(over, under, weights)
    got = generator((over, under)).numpy()
    assert got.shape == (2, height, width, 3)
    assert expected.std() > 0.02  # the comparison is not between two saturated images
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_generator_takes_over_exposed_first(models):
    generator, _, _ = models
    rng = np.random.default_rng(1)
    over = rng.random((1, 16, 16, 3)).astype(np.float32)
    under = rng.random((1, 16, 16, 3)).astype(np.float32)
    assert not np.allclose(generator((over, under)).numpy(), generator((under, over)).numpy(), atol=1e-3)


def test_generator_output_is_an_image_in_unit_range_for_any_multiple_of_8():
    generator = build_generator()
    for height, width in [(8, 8), (24, 136), (144, 144)]:
        x = np.full((1, height, width, 3), 0.5, np.float32)
        y = generator((x, x)).numpy()
        assert y.shape == (1, height, width, 3)
        assert y.min() >= 0.0 and y.max() <= 1.0


def test_generator_has_the_original_number_of_weights():
    generator = build_generator()
    # 12 units with kernel, bias, BN gamma and beta; f, g, h with kernel and bias; attention gamma
    assert len(generator.trainable_weights) == 12 * 4 + 3 * 2 + 1
    assert sum(int(np.prod(w.shape)) for w in generator.trainable_weights) == 487582
    assert FULL_RES_HALO == 8


def test_inference_is_deterministic_and_training_updates_state(models):
    generator, _, _ = models
    x = np.random.default_rng(2).random((2, 16, 16, 3)).astype(np.float32)
    a = generator((x, x)).numpy()
    b = generator((x, x)).numpy()
    np.testing.assert_array_equal(a, b)
    clone = build_generator()
    clone.set_weights(generator.get_weights())
    before = [w.numpy().copy() for w in clone.non_trainable_weights]
    clone((x, x), training=True)
    after = [w.numpy() for w in clone.non_trainable_weights]
    assert all(not np.array_equal(p, q) for p, q in zip(before, after))  # every u and BN moving stat moved
