"""The MEF-GAN discriminator: six strided units without batch norm, a dense layer, tanh/2 + 0.5."""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

from mefgan_tf.config import MEFGANConfig, NetworkConfig
from mefgan_tf.layers import ConvUnit, prob_from_logit

# (filters, stride, spectral norm) of conv1..conv6; 144 -> 72 -> 36 -> 18 -> 9 -> 5 -> 5.
D_LAYERS = ((64, 2, True), (64, 2, True), (96, 2, True), (128, 2, True), (256, 2, True), (512, 1, False))


@keras.saving.register_keras_serializable(package="mefgan")
class Discriminator(keras.Model):
    """MEF-GAN's D: the probability (0, 1) that a 144 x 144 RGB patch is a ground-truth image."""

    def __init__(self, config: MEFGANConfig | NetworkConfig | None = None, **kwargs: Any):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        self.config = MEFGANConfig.of(config)
        self.network_config = c = self.config.network
        # One attribute per layer (not a list): tf.train.Checkpoint tracks attributes, not Keras lists.
        for i, (filters, stride, sn) in enumerate(D_LAYERS):
            unit = ConvUnit(
                filters,
                strides=stride,
                spectral_norm=sn,
                batch_norm=False,
                kernel_stddev=c.d_kernel_stddev,
                leaky_slope=c.leaky_slope,
                name=f"conv{i + 1}",
            )
            setattr(self, f"conv{i + 1}", unit)
        self.dense = keras.layers.Dense(1, kernel_initializer="glorot_uniform", name="dense")

    @property
    def convs(self) -> list[ConvUnit]:
        return [getattr(self, f"conv{i + 1}") for i in range(len(D_LAYERS))]

    def call(self, images, training: bool = False):
        y = images
        for conv in self.convs:
            y = conv(y, training=training)
        y = ops.reshape(y, (ops.shape(y)[0], -1))
        return prob_from_logit(self.dense(y))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(config=self.network_config.to_dict())
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Discriminator:
        """Also reads the Keras configs of earlier versions, which held the whole run config."""
        config = dict(config)
        return cls(config=MEFGANConfig.from_saved(config.pop("config", {}), "discriminator config"), **config)


def build_discriminator(config: MEFGANConfig | NetworkConfig | None = None) -> Discriminator:
    """A built discriminator for ``config.patch_size`` square patches."""
    discriminator = Discriminator(config)
    size = discriminator.network_config.patch_size
    discriminator(ops.zeros((1, size, size, 3)))
    return discriminator
