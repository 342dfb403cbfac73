"""Random but well-scaled weights for MEF-GAN, keyed by the original's TF1 variable names."""
from __future__ import annotations

import numpy as np

from mefgan_tf.tf1 import variable_map


def random_tf1_weights(generator, discriminator, seed: int = 0) -> dict[str, np.ndarray]:
    """One array per TF1 name of our models, scaled so activations neither vanish nor saturate."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, variable in variable_map(generator, discriminator).items():
        shape = tuple(variable.shape)
        leaf = name.rsplit("/", 1)[-1]
        if leaf == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf == "u":
            value = rng.normal(0.0, 1.0, shape)
        else:  # bias, beta, moving_mean
            value = rng.normal(0.0, 0.1, shape)
        weights[name] = value.astype(np.float32)
    return weights


def load_tf1_weights(weights: dict[str, np.ndarray], generator, discriminator) -> None:
    for name, variable in variable_map(generator, discriminator).items():
        variable.assign(weights[name])


def random_generator(seed: int, attention_chunk: int = 64):
    """A built generator with well-scaled random weights: its outputs neither saturate nor vanish."""
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.discriminator import build_discriminator
    from mefgan_tf.generator import build_generator

    generator, discriminator = build_generator(MEFGANConfig(attention_chunk=attention_chunk)), build_discriminator()
    load_tf1_weights(random_tf1_weights(generator, discriminator, seed=seed), generator, discriminator)
    return generator
