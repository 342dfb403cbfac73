"""The building blocks of MEF-GAN as Keras 3 layers (written with ``keras.ops``, so any backend runs them).

- ``spectral_normalize``: one power iteration, as the original ``spectral_norm`` does.
- ``ConvUnit``: the original ``unit``: reflect pad, convolution, bias, optional spectral
  normalisation, batch normalisation and leaky ReLU.
- ``SelfAttention``: the SAGAN layer, computed in blocks of queries and keys (``flash_attention``)
  so that memory grows linearly with the number of positions and the work stays in cache; the
  result is the same as the full N x N softmax.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

from mefgan_tf.config import ATTENTION_BLOCKS

L2_EPS = 1e-12


def l2_normalize(x):
    """``x / (||x|| + 1e-12)`` over all elements, as the original ``l2_norm``."""
    return x / (ops.sqrt(ops.sum(ops.square(x))) + L2_EPS)


def spectral_normalize(kernel, u):
    """Return ``(kernel / sigma, u_new)`` after one power iteration from ``u`` ([1, out]).

    The kernel [k, k, in, out] is viewed as a matrix W [k*k*in, out]:
    v = l2n(u Wᵀ), u' = l2n(v W), sigma = v W u'ᵀ.
    """
    w = ops.reshape(kernel, (-1, ops.shape(kernel)[-1]))
    v = l2_normalize(ops.matmul(u, ops.transpose(w)))
    u_new = l2_normalize(ops.matmul(v, w))
    sigma = ops.sum(ops.matmul(v, w) * u_new)
    return kernel / sigma, ops.stop_gradient(u_new)


MOVING_STATISTICS = ("moving_mean", "moving_variance")
ATTENTION_METHODS = ("flash", "rows")  # SelfAttention(method=...): flash_attention, chunked_attention
# flash_attention's weights are exp(score - shift), the shift HEADROOM below a bound of the row's
# largest score: weights are at most e^HEADROOM and low scores are lifted a little away from the
# denormal range (a larger headroom costs precision: the shift enters every score's rounding).
# Where the bounds are more than SHIFT_LIMIT apart the exact row maximum is used instead, so that
# the largest weight is >= e^(HEADROOM - SHIFT_LIMIT) = e^-50 and the weights lost below float32's
# smallest normal (e^-87) are below e^-37 of it.
HEADROOM = 10.0
SHIFT_LIMIT = 60.0
SAMPLED_KEYS = 1024  # keys scored to bound each row's largest score from below


def moving_statistics(model: keras.Model) -> list:
    """The batch-norm moving mean and variance variables of ``model`` (what only updates may move)."""
    return [v for v in model.non_trainable_variables if v.name in MOVING_STATISTICS]


def freeze_statistics(model: keras.Model, frozen: bool = True) -> None:
    """Make every ``ConvUnit`` of ``model`` normalise with its batch norm's moving statistics even
    when called with ``training=True`` (the statistics then stay as they are; gamma, beta and the
    spectral-norm ``u`` still train). Fine-tuning this way trains what inference computes."""
    for layer in model._flatten_layers():
        if isinstance(layer, ConvUnit):
            layer.frozen_statistics = frozen


def reflect_pad(x, pad: int = 1):
    """Reflect-pad the two spatial axes of an NHWC tensor."""
    return ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def upsample_nearest(x, factor: int = 2):
    """Nearest-neighbour upsampling of an NHWC tensor (``tf.image.resize`` nearest at x2)."""
    return ops.repeat(ops.repeat(x, factor, axis=1), factor, axis=2)


def prob_from_logit(x):
    """``tanh(x) / 2 + 0.5``: the original's squashing of G's image and D's score into (0, 1)."""
    return ops.tanh(x) / 2.0 + 0.5


@keras.saving.register_keras_serializable(package="mefgan")
class ConvUnit(keras.layers.Layer):
    """The original ``unit``: reflect pad, conv (VALID), bias, [SN], [BN], [leaky ReLU 0.2].

    Weights: ``kernel`` [k, k, in, filters], ``bias`` [filters] (zeros, or truncated normal with
    ``bias_stddev``), ``u`` [1, filters] (non-trainable power-iteration vector, only with
    ``spectral_norm``), and a ``BatchNormalization`` sublayer
    (only with ``batch_norm``). ``u`` advances only when ``training=True``, so inference is
    deterministic and equals one call of the original graph.
    """

    CONFIG_KEYS = (
        "filters", "kernel_size", "strides", "padding", "spectral_norm", "batch_norm", "activation",
        "kernel_stddev", "bias_stddev", "leaky_slope", "bn_momentum", "bn_epsilon",
    )

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        padding: int = 1,
        spectral_norm: bool = True,
        batch_norm: bool = True,
        activation: bool = True,
        kernel_stddev: float = 0.5,
        bias_stddev: float | None = None,
        leaky_slope: float = 0.2,
        bn_momentum: float = 0.99,
        bn_epsilon: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.spectral_norm = spectral_norm
        self.batch_norm = batch_norm
        self.activation = activation
        self.kernel_stddev = kernel_stddev
        self.bias_stddev = bias_stddev
        self.leaky_slope = leaky_slope
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.frozen_statistics = False  # a training setting (``freeze_statistics``), not part of the network
        self.bn = (
            keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon, name="bn")
            if batch_norm
            else None
        )

    def build(self, input_shape) -> None:
        channels = input_shape[-1]
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, channels, self.filters),
            initializer=keras.initializers.TruncatedNormal(stddev=self.kernel_stddev),
        )
        bias_init = (
            "zeros"
            if self.bias_stddev is None
            else keras.initializers.TruncatedNormal(stddev=self.bias_stddev)
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=bias_init)
        if self.spectral_norm:
            self.u = self.add_weight(
                name="u",
                shape=(1, self.filters),
                initializer=keras.initializers.TruncatedNormal(stddev=1.0),
                trainable=False,
            )
        if self.bn is not None:
            self.bn.build(input_shape[:-1] + (self.filters,))

    def normalized_kernel(self, training: bool = False):
        """The kernel actually used: divided by its spectral norm estimate when ``spectral_norm``."""
        if not self.spectral_norm:
            return self.kernel
        kernel, u_new = spectral_normalize(self.kernel, self.u)
        if training:
            self.u.assign(u_new)
        return kernel

    def call(self, x, training: bool = False):
        if self.padding:
            x = reflect_pad(x, self.padding)
        kernel = ops.cast(self.normalized_kernel(training), x.dtype)
        y = ops.conv(x, kernel, strides=self.strides, padding="valid") + ops.cast(self.bias, x.dtype)
        if self.bn is not None:
            y = self.bn(y, training=training and not self.frozen_statistics)
        if self.activation:
            y = self.leaky_relu(y)
        return y

    def leaky_relu(self, y):
        """Leaky ReLU. Without batch norm it is written as ``max(y, slope * y)`` (the same values for
        slopes in [0, 1]): TensorFlow's remapper fuses conv + bias + LeakyRelu into one op while the
        gradient still needs the pre-activation, and its pass then fails on D's training graphs
        ("remapper failed: INVALID_ARGUMENT ... LeakyReluGrad ... missing node")."""
        if self.bn is None and 0.0 <= self.leaky_slope <= 1.0:
            return ops.maximum(y, self.leaky_slope * y)
        return ops.leaky_relu(y, negative_slope=self.leaky_slope)

    def compute_output_shape(self, input_shape):
        def size(n):
            return None if n is None else (n + 2 * self.padding - self.kernel_size) // self.strides + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **{key: getattr(self, key) for key in self.CONFIG_KEYS}}


def attention_rows(query, key, value):
    """``softmax(query keyᵀ) value`` for one block of queries: [B, q, c'], [B, N, c'], [B, N, C]."""
    scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
    return ops.matmul(ops.softmax(scores, axis=-1), value)


def blocks_of(n, block: int):
    """(block, blocks): ``block`` capped at n, and how many cover n (n may be a tensor)."""
    size = min(block, n) if isinstance(n, int) else ops.minimum(block, n)
    return size, (n + size - 1) // size


def query_blocks(query, chunk: int):
    """[B, n, c] -> ([blocks, B, block, c] zero-padded, n): the query rows ``chunk`` at a time."""
    batch, n, channels = ops.shape(query)[0], ops.shape(query)[1], ops.shape(query)[2]
    block, blocks = blocks_of(n, chunk)
    padded = ops.pad(query, ((0, 0), (0, blocks * block - n), (0, 0)))
    return ops.transpose(ops.reshape(padded, (batch, blocks, block, channels)), (1, 0, 2, 3)), n


def unblock(out, n):
    """The inverse of ``query_blocks`` on [blocks, B, block, C] results: [B, n, C]."""
    blocks, batch, block, channels = (ops.shape(out)[i] for i in range(4))
    return ops.reshape(ops.transpose(out, (1, 0, 2, 3)), (batch, blocks * block, channels))[:, :n, :]


def chunked_attention(query, key, value, chunk: int):
    """``softmax(query keyᵀ) value`` computed ``chunk`` queries at a time (same result, O(N) memory).

    Rows of the softmax are independent, so each block of queries is exact on its own. Each block
    writes, normalises and re-reads a ``chunk`` x N score matrix, so at large N this is bound by
    memory traffic; ``flash_attention`` is the fast way, this one is kept for comparison.
    """
    blocked, n = query_blocks(query, chunk)
    return unblock(ops.map(lambda q: attention_rows(q, key, value), blocked), n)


def score_bounds(query, key, sample):
    """Per query row, an upper and a lower bound of its largest score ``max_j q·k_j``.

    Upper: per channel the larger of q times the keys' largest and smallest value (the score with
    the corner of the keys' bounding box that q points to). Lower: the largest score over
    ``sample``, a subset of the keys.
    """
    most, least = ops.max(key, axis=1, keepdims=True), ops.min(key, axis=1, keepdims=True)
    upper = ops.sum(ops.maximum(query * most, query * least), axis=-1)
    lower = ops.max(ops.matmul(query, ops.transpose(sample, (0, 2, 1))), axis=-1)
    return upper, lower


def key_blocks(key, value, block: int):
    """Keys and values cut into blocks for ``flash_attention``: [nb, B, c'+1, block], [nb, B, block, C+1].

    Keys get a row of ones (so the score product also subtracts each query's shift) and values a
    column of ones (so the product that weighs the values also sums the weights). Padding keys
    repeat the last key, with all-zero value rows: finite weights that add nothing.
    """
    batch, n = ops.shape(key)[0], ops.shape(key)[1]
    block, blocks = blocks_of(n, block)
    rows = ops.minimum(ops.arange(blocks * block), n - 1)
    key = ops.take(ops.concatenate([key, ops.ones_like(key[..., :1])], axis=-1), rows, axis=1)
    value = ops.concatenate([value, ops.ones_like(value[..., :1])], axis=-1)
    value = ops.pad(value, ((0, 0), (0, blocks * block - n), (0, 0)))
    key = ops.transpose(ops.reshape(key, (batch, blocks, block, ops.shape(key)[-1])), (1, 0, 3, 2))
    value = ops.transpose(ops.reshape(value, (batch, blocks, block, ops.shape(value)[-1])), (1, 0, 2, 3))
    return key, value, blocks


def flash_attention(query, key, value, chunk: int, key_block: int = ATTENTION_BLOCKS.keys):
    """``softmax(query keyᵀ) value`` exactly, in ``chunk`` x ``key_block`` tiles of scores that stay in cache.

    A softmax row is unchanged by subtracting any shift; the shift only has to keep ``exp`` from
    overflowing and the largest weight from underflowing. Each block of query rows takes as shift
    ``HEADROOM`` below the upper bound of ``score_bounds`` where that is within ``SHIFT_LIMIT`` of
    the lower bound, else below the exact row maximum (one more pass over the keys): every weight
    is then <= e^HEADROOM and the largest >= e^(HEADROOM - SHIFT_LIMIT), so nothing that counts in
    float32 is lost. Then per key block one
    product gives the shifted scores, one ``exp``, and one product both weighs the values and sums
    the weights: the online-softmax recurrence, without its running rescaling.
    """
    keys, values, blocks = key_blocks(key, value, key_block)
    n = ops.shape(key)[1]
    stride = max(1, n // SAMPLED_KEYS) if isinstance(n, int) else ops.maximum(1, n // SAMPLED_KEYS)
    sample = ops.take(key, ops.arange(0, n, stride), axis=1)

    def row_max(q):
        q = ops.concatenate([q, ops.zeros_like(q[..., :1])], axis=-1)
        first = ops.max(ops.matmul(q, keys[0]), axis=-1)
        return ops.fori_loop(1, blocks, lambda i, m: ops.maximum(m, ops.max(ops.matmul(q, keys[i]), axis=-1)), first)

    def rows(q):
        upper, lower = score_bounds(q, key, sample)
        shift = ops.cond(ops.max(upper - lower) <= SHIFT_LIMIT, lambda: upper, lambda: row_max(q)) - HEADROOM
        q = ops.concatenate([q, -shift[..., None]], axis=-1)
        start = ops.zeros((ops.shape(q)[0], ops.shape(q)[1], ops.shape(values)[-1]), dtype=q.dtype)
        total = ops.fori_loop(0, blocks, lambda i, acc: acc + ops.matmul(ops.exp(ops.matmul(q, keys[i])), values[i]), start)
        return total[..., :-1] / total[..., -1:]

    blocked, rows_n = query_blocks(query, chunk)
    return unblock(ops.map(rows, blocked), rows_n)


@keras.saving.register_keras_serializable(package="mefgan")
class SelfAttention(keras.layers.Layer):
    """SAGAN self-attention as in the original: f, g (C -> C/4) and h (C -> C) are spectrally
    normalised 1x1 convolutions with bias; ``y = gamma * softmax(g fᵀ) h + x``.

    ``chunk`` bounds the number of query rows whose scores are held at once; ``chunk=None``
    computes the full N x N matrix (for tests and tiny inputs), as does any input whose N is known
    and within ``chunk`` (training patches). ``method``: "flash" (``flash_attention``) or "rows"
    (``chunked_attention``, the earlier memory-bound way, kept for comparison); same results.
    """

    def __init__(
        self,
        chunk: int | None = 1024,
        kernel_stddev: float = 0.5,
        reduction: int = 4,
        method: str = "flash",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if method not in ATTENTION_METHODS:
            raise ValueError(f"attention method {method!r}: choose one of {', '.join(ATTENTION_METHODS)}")
        self.chunk = chunk
        self.kernel_stddev = kernel_stddev
        self.reduction = reduction
        self.method = method

    def build(self, input_shape) -> None:
        channels = input_shape[-1]
        self.f = self._projection(channels // self.reduction, "f_conv")
        self.g = self._projection(channels // self.reduction, "g_conv")
        self.h = self._projection(channels, "h_conv")
        for layer in (self.f, self.g, self.h):
            layer.build(input_shape)
        self.gamma = self.add_weight(
            name="gamma",
            shape=(1,),
            initializer=keras.initializers.TruncatedNormal(stddev=self.kernel_stddev),
        )

    def _projection(self, filters: int, name: str) -> ConvUnit:
        """A 1x1 spectrally normalised convolution with a bias drawn like its kernel."""
        return ConvUnit(
            filters,
            kernel_size=1,
            padding=0,
            batch_norm=False,
            activation=False,
            kernel_stddev=self.kernel_stddev,
            bias_stddev=self.kernel_stddev,
            name=name,
        )

    def project(self, x, training: bool = False):
        """The projections (f, g, h) of x, flattened: [B, N, C/4], [B, N, C/4], [B, N, C]."""
        shape = ops.shape(x)
        batch, positions = shape[0], shape[1] * shape[2]
        maps = (self.f(x, training=training), self.g(x, training=training), self.h(x, training=training))
        return tuple(ops.reshape(t, (batch, positions, ops.shape(t)[-1])) for t in maps)

    def attend(self, g, f, h):
        """``softmax(g fᵀ) h`` for any subset of the query rows g (rows are independent)."""
        n = ops.shape(f)[1]
        if self.chunk is None or (isinstance(n, int) and n <= self.chunk):
            return attention_rows(g, f, h)
        if self.method == "rows":
            return chunked_attention(g, f, h, self.chunk)
        return flash_attention(g, f, h, self.chunk)

    def combine(self, o, x):
        """``gamma * o + x``, the attention output o [B, N, C] put back in the shape of x."""
        return ops.cast(self.gamma, x.dtype) * ops.reshape(o, ops.shape(x)) + x

    def call(self, x, training: bool = False):
        f, g, h = self.project(x, training)
        return self.combine(self.attend(g, f, h), x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(chunk=self.chunk, kernel_stddev=self.kernel_stddev, reduction=self.reduction, method=self.method)
        return config
