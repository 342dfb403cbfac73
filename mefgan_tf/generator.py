"""The MEF-GAN generator: a local detail block, a self-attention block at 1/8 resolution, a merge block.

Inputs are ``(over, under)`` RGB in [0, 1] with any height and width that are multiples of 8; the
output is the fused RGB image in [0, 1]. The three stages are public methods so that full-resolution
inference can run the global attention branch once and the full-resolution convolutions in tiles
(see ``fusion.py``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from mefgan_tf.config import MEFGANConfig, NetworkConfig
from mefgan_tf.layers import ConvUnit, SelfAttention, prob_from_logit, upsample_nearest

CHANNELS = 3  # RGB: each input exposure and the fused output
INPUT_CHANNELS = 2 * CHANNELS  # over | under, concatenated on channels
OUTPUT_CHANNELS = CHANNELS
HALF_CHANNELS = 16  # the attention block's maps at half resolution (decoder_conv2)
ATTENTION_CHANNELS = 32  # encoder_conv2's maps at 1/8 resolution: the self-attention layer's input
ATTENTION_REDUCTION = 4  # f and g have ATTENTION_CHANNELS // ATTENTION_REDUCTION channels
LOCAL_FILTERS = 40
LOCAL_LAYERS = 5
# Receptive-field radius of the full-resolution path (5 local + 3 merge 3x3 convolutions): a tile
# computed with this many extra pixels on each side is exact in its centre.
FULL_RES_HALO = LOCAL_LAYERS + 3


@keras.saving.register_keras_serializable(package="mefgan")
class Generator(keras.Model):
    """MEF-GAN's G. ``call((over, under))`` concatenates over-exposed first, as the original.

    ``config``: the run config it was built from (``checkpoint.write_metadata`` records it beside
    the weights); only its ``network_config`` defines the model and goes into its Keras config.
    """

    def __init__(
        self,
        config: MEFGANConfig | NetworkConfig | None = None,
        attention_chunk: int | None = None,
        attention_method: str = "flash",
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "generator")
        super().__init__(**kwargs)
        self.config = MEFGANConfig.of(config)
        self.network_config = c = self.config.network
        chunk = c.attention_chunk if attention_chunk is None else attention_chunk

        def unit(filters: int, name: str, **kw: Any) -> ConvUnit:
            return ConvUnit(
                filters,
                kernel_stddev=c.g_kernel_stddev,
                leaky_slope=c.leaky_slope,
                bn_momentum=c.bn_momentum,
                bn_epsilon=c.bn_epsilon,
                name=name,
                **kw,
            )

        # One attribute per layer (not a list): tf.train.Checkpoint tracks attributes, not Keras lists.
        for i in range(LOCAL_LAYERS):
            setattr(self, f"local_conv{i + 1}", unit(LOCAL_FILTERS, f"local_conv{i + 1}", spectral_norm=i > 0))
        self.encoder_conv1 = unit(16, "encoder_conv1", strides=2, spectral_norm=False)
        self.encoder_conv2 = unit(ATTENTION_CHANNELS, "encoder_conv2", strides=2)
        self.attention = SelfAttention(
            chunk=chunk, kernel_stddev=c.g_kernel_stddev, reduction=ATTENTION_REDUCTION, method=attention_method, name="self_attention"
        )
        self.decoder_conv1 = unit(20, "decoder_conv1")
        self.decoder_conv2 = unit(HALF_CHANNELS, "decoder_conv2")
        self.merge_conv1 = unit(128, "merge_conv1")
        self.merge_conv3 = unit(64, "merge_conv3")
        self.merge_conv4 = unit(OUTPUT_CHANNELS, "merge_conv4", spectral_norm=False, activation=False)

    @property
    def local_convs(self) -> list[ConvUnit]:
        return [getattr(self, f"local_conv{i + 1}") for i in range(LOCAL_LAYERS)]

    @staticmethod
    def stack_inputs(inputs) -> Any:
        """``(over, under)`` -> the 6-channel input, over-exposed first."""
        over, under = inputs
        return ops.concatenate([over, under], axis=-1)

    def local_features(self, x, training: bool = False):
        """The densely connected local detail block: 200 channels at full resolution."""
        features = [self.local_convs[0](x, training=training)]
        for conv in self.local_convs[1:]:
            inp = features[0] if len(features) == 1 else ops.concatenate(features, axis=-1)
            features.append(conv(inp, training=training))
        return ops.concatenate(features, axis=-1)

    def attention_encode(self, x, training: bool = False):
        """The encoder before the self-attention layer: 32 maps at H/8."""
        y = self.encoder_conv1(x, training=training)
        y = ops.max_pool(y, pool_size=2, strides=2, padding="valid")
        return self.encoder_conv2(y, training=training)

    def attention_decode(self, y, training: bool = False, upsample: Callable = upsample_nearest):
        """The decoder after the self-attention layer, up to (not including) its last x2 upsampling."""
        y = self.decoder_conv1(upsample(y), training=training)
        return self.decoder_conv2(upsample(y), training=training)

    def attention_features_half(
        self, x, training: bool = False, attend: Callable | None = None, upsample: Callable = upsample_nearest
    ):
        """The self-attention block up to (not including) its last x2 upsampling: 16 maps at H/2.

        The one statement of the attention branch. ``attend`` replaces the self-attention layer's
        call and ``upsample`` the x2 upsampling with ops of the same values (a LiteRT file loops
        over blocks of attention rows and upsamples with one resize op: ``tflite``)."""
        y = self.attention_encode(x, training)
        y = self.attention(y, training=training) if attend is None else attend(y)
        return self.attention_decode(y, training, upsample)

    def merge(self, local, attention, training: bool = False):
        """The merge block on [local 200, attention 16] at full resolution -> RGB in [0, 1]."""
        y = ops.concatenate([local, attention], axis=-1)
        y = self.merge_conv1(y, training=training)
        y = self.merge_conv3(y, training=training)
        return prob_from_logit(self.merge_conv4(y, training=training))

    def fuse_full_resolution(self, x, attention_full, training: bool = False):
        """The full-resolution path given the 6-channel input and the upsampled attention maps."""
        return self.merge(self.local_features(x, training), attention_full, training)

    def build(self, input_shape) -> None:
        """Create every weight by one call on a small input (Keras would trace the call symbolically:
        over a second on a CPU, at every start of ``mefgan fuse``)."""
        small = ops.zeros((1, 16, 16, input_shape[0][-1]))
        self.call((small, small))

    def call(self, inputs, training: bool = False):
        x = self.stack_inputs(inputs)
        attention = upsample_nearest(self.attention_features_half(x, training))
        return self.fuse_full_resolution(x, attention, training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            config=self.network_config.to_dict(), attention_chunk=self.attention.chunk, attention_method=self.attention.method
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Generator:
        """Also reads the Keras configs of earlier versions, which held the whole run config."""
        config = dict(config)
        model_config = MEFGANConfig.from_saved(config.pop("config", {}), "generator config")
        return cls(config=model_config, **config)


def build_generator(
    config: MEFGANConfig | NetworkConfig | None = None, attention_chunk: int | None = None, attention_method: str = "flash"
) -> Generator:
    """A built generator (weights created) accepting ``(over, under)`` of any size that is a multiple of 8.

    ``attention_chunk`` and ``attention_method``: how the exact attention is computed (``layers.SelfAttention``).
    """
    generator = Generator(config, attention_chunk=attention_chunk, attention_method=attention_method)
    dummy = ops.zeros((1, 16, 16, 3))
    generator((dummy, dummy))
    return generator
