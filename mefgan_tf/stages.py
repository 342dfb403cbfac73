"""The fusion core's interface: the stages of a model that ``fusion`` runs, NumPy in and out.

A fusion needs two stages of the generator (see ``fusion``): ``attention_half(x)``, the attention
branch on the whole padded 6-channel input -> 16 maps at half resolution, and ``fuse_tile(x, half)``,
the full-resolution blocks on any region of x given the matching region of those maps. Stages that
can also split the attention (``blocks_attention``) give ``attention_parts``, ``attention_rows``
and ``attention_finish``, so that the attention rows run a block at a time with progress and
cancellation between blocks. Every kind of model has one implementation:

- ``TensorFlowStages``: a Keras generator (``generator_stages``) or a SavedModel from ``mefgan
  export``, which keeps the same traced functions (``stages_class`` is the ``tf.Module`` of both);
- ``tflite.LiteModel``: a LiteRT file (no attention blocks: its attention loops inside the graph).

``models.load_stages`` returns the right one for any ``--model``.
"""
from __future__ import annotations

import functools
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Stages(Protocol):
    """What ``fusion`` needs of a model. Arrays are float32 [1, H, W, C]; H and W multiples of 8."""

    blocks_attention: bool  # True: the attention_parts / attention_rows / attention_finish below work

    def attention_half(self, x: np.ndarray) -> np.ndarray:
        """[1, H, W, 6] -> the attention branch's maps [1, H/2, W/2, 16]."""

    def fuse_tile(self, x: np.ndarray, half: np.ndarray) -> np.ndarray:
        """[1, h, w, 6] and the matching [1, h/2, w/2, 16] maps -> the fused [1, h, w, 3]."""

    def attention_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{encoded, f, g, h}: the attention's input and its projections ([1, N, C] rows)."""

    def attention_rows(self, g: np.ndarray, f: np.ndarray, h: np.ndarray) -> np.ndarray:
        """The attention output of any block of query rows ``g``."""

    def attention_finish(self, encoded: np.ndarray, o: np.ndarray) -> np.ndarray:
        """The maps [1, H/2, W/2, 16] from the encoder output and all attention rows ``o``."""


class TensorFlowStages:
    """``Stages`` of a ``tf.Module`` with ``GeneratorStages``'s functions: a Keras generator's
    (``generator_stages``) or a loaded SavedModel's (older SavedModels lack the attention blocks)."""

    def __init__(self, module) -> None:
        self.module = module
        self.blocks_attention = all(hasattr(module, name) for name in ("attention_parts", "attention_rows", "attention_finish"))

    def attention_half(self, x: np.ndarray) -> np.ndarray:
        return self.module.attention_half(x).numpy()

    def fuse_tile(self, x: np.ndarray, half: np.ndarray) -> np.ndarray:
        return self.module.fuse_tile(x, half).numpy()

    def attention_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self.module.attention_parts(x).items()}

    def attention_rows(self, g: np.ndarray, f: np.ndarray, h: np.ndarray) -> np.ndarray:
        return self.module.attention_rows(g, f, h).numpy()

    def attention_finish(self, encoded: np.ndarray, o: np.ndarray) -> np.ndarray:
        return self.module.attention_finish(encoded, o).numpy()


def generator_stages(generator, traced: bool = True) -> TensorFlowStages:
    """The ``Stages`` of a Keras generator: its inference stages traced as ``tf.function``s, or run
    eagerly (``traced=False``: for one fusion, which then saves the second that tracing costs on a
    CPU, while each call takes a little longer)."""
    module = stages_class()(generator)
    return TensorFlowStages(module if traced else Untraced(module))


class Untraced:
    """A ``GeneratorStages`` whose functions run eagerly: the Python functions its ``tf.function``s trace."""

    def __init__(self, module) -> None:
        self.module = module

    def __getattr__(self, name: str):
        import tensorflow as tf

        function = getattr(type(self.module), name).python_function
        return lambda *args: function(self.module, *(tf.convert_to_tensor(arg) for arg in args))


@functools.cache
def stages_class():
    """The ``GeneratorStages`` class (built on first use so that importing this module stays light)."""
    import tensorflow as tf

    from mefgan_tf.generator import ATTENTION_CHANNELS, ATTENTION_REDUCTION, HALF_CHANNELS, INPUT_CHANNELS
    from mefgan_tf.layers import upsample_nearest

    x_spec = tf.TensorSpec([None, None, None, INPUT_CHANNELS], tf.float32, name="x")
    half_spec = tf.TensorSpec([None, None, None, HALF_CHANNELS], tf.float32, name="attention_half")
    encoded_spec = tf.TensorSpec([None, None, None, ATTENTION_CHANNELS], tf.float32, name="encoded")

    def rows_spec(channels: int, name: str) -> tf.TensorSpec:
        return tf.TensorSpec([None, None, channels], tf.float32, name=name)

    key_spec = rows_spec(ATTENTION_CHANNELS // ATTENTION_REDUCTION, "f")
    query_spec = rows_spec(ATTENTION_CHANNELS // ATTENTION_REDUCTION, "g")
    value_spec, output_spec = rows_spec(ATTENTION_CHANNELS, "h"), rows_spec(ATTENTION_CHANNELS, "o")

    class GeneratorStages(tf.Module):
        """``attention_half(x)``: the attention branch on the whole 6-channel input (H, W multiples
        of 8) -> 16 maps at H/2 x W/2. ``fuse_tile(x, half)``: the full-resolution blocks on a
        region of x (even offsets and sizes) given the matching region of the half-size maps.

        ``attention_half`` in three steps, so that a caller can run the attention rows in blocks
        (and show progress): ``attention_parts(x)`` -> {encoded, f, g, h}; ``attention_rows(g, f,
        h)`` for any block of the query rows g; ``attention_finish(encoded, o)`` with all rows o.
        """

        def __init__(self, generator) -> None:
            super().__init__(name="mefgan")
            self.generator = generator

        # Traced without AutoGraph: the network's loops are graph ops already (Keras ``ops``), and
        # AutoGraph's rewriting of every call is 2 s of each process's start on 2 cores.

        @tf.function(input_signature=[x_spec], autograph=False)
        def attention_half(self, x):
            return self.generator.attention_features_half(x, training=False)

        @tf.function(input_signature=[x_spec, half_spec], autograph=False)
        def fuse_tile(self, x, half):
            return self.generator.fuse_full_resolution(x, upsample_nearest(half), training=False)

        @tf.function(input_signature=[x_spec], autograph=False)
        def attention_parts(self, x):
            encoded = self.generator.attention_encode(x, training=False)
            f, g, h = self.generator.attention.project(encoded, training=False)
            return {"encoded": encoded, "f": f, "g": g, "h": h}

        @tf.function(input_signature=[query_spec, key_spec, value_spec], autograph=False)
        def attention_rows(self, g, f, h):
            return self.generator.attention.attend(g, f, h)

        @tf.function(input_signature=[encoded_spec, output_spec], autograph=False)
        def attention_finish(self, encoded, o):
            return self.generator.attention_decode(self.generator.attention.combine(o, encoded), training=False)

    return GeneratorStages


