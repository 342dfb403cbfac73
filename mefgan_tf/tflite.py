"""`mefgan export --tflite`: the generator as a LiteRT (TFLite) flatbuffer for phones and edge devices.

The file has three signatures, all float32 in [0, 1] with dynamic height and width:

- ``serving_default``: ``over``, ``under`` [1, H, W, 3] -> ``fused`` [1, H, W, 3]: the whole generator.
  H and W must be multiples of 8; padding (e.g. reflect, as ``fusion.pad_to_multiple``) and the
  crop back are the caller's.
- ``attention_half``: ``x`` [1, H, W, 6] (over | under on channels) -> ``attention_half``
  [1, H/2, W/2, 16]: the global attention branch, run once on the whole picture.
- ``fuse_tile``: ``x`` [1, h, w, 6] and the matching ``attention_half`` [1, h/2, w/2, 16] ->
  ``fused`` [1, h, w, 3]: the full-resolution blocks on one tile (even offsets and sizes). Tiles
  grown by ``generator.FULL_RES_HALO`` pixels and cropped back give the untiled result exactly
  (``fusion.full_resolution`` shows how), so large photos fuse in bounded memory.

The attention runs one block of query rows at a time (a WHILE loop with a static block of
``chunk`` rows), so its memory is ``chunk`` x N scores rather than N x N.

Quantization: ``float16`` stores the weights as float16 (half the file; CPUs compute in float32);
``int8`` is post-training integer quantization of weights and activations, calibrated on
exposure pairs made from the bundled demo photos (at several exposure gaps) or read from a folder;
the attention's softmax and its two matrix products stay float32 (each of N probabilities is
about 1/N, below int8's step), and inputs and outputs stay float32.
"""
from __future__ import annotations

import functools
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from mefgan_tf.config import ATTENTION_BLOCKS
from mefgan_tf.errors import CommandError
from mefgan_tf.files import write_bytes
from mefgan_tf.pairings import load_scene
from mefgan_tf.samples import SAMPLE_IMAGES, sample_pair
from mefgan_tf.scenes import find_scenes

# TensorFlow, Keras (layers, generator) and LiteRT are imported where used: a phone or server that only
# runs a .tflite file (``LiteModel``) has LiteRT without TensorFlow, and exporting needs no interpreter.

QUANTIZATIONS = ("none", "float16", "int8")
FUSE_SIGNATURE, ATTENTION_SIGNATURE, TILE_SIGNATURE = "serving_default", "attention_half", "fuse_tile"
SIGNATURES = (FUSE_SIGNATURE, ATTENTION_SIGNATURE, TILE_SIGNATURE)
CALIBRATION_SIDE = 256  # calibration pairs are centre crops of this side (all one size)
CALIBRATION_EVS = (1.0, 2.0, 3.0)  # stops between the demo photo and each of its two exposures
FLOAT_OPS = ("SOFTMAX", "BATCH_MATMUL")  # kept float32 in int8 files: the attention itself

# Operator options that name a subgraph (control flow): renumbered when subgraphs are reordered.
SUBGRAPH_INDEX_FIELDS = (
    "condSubgraphIndex", "bodySubgraphIndex", "thenSubgraphIndex", "elseSubgraphIndex", "initSubgraphIndex",
    "decompositionSubgraphIndex", "comparatorSubgraphIndex", "updateComputationSubgraphIndex",
)

Pair = tuple[np.ndarray, np.ndarray]  # (over, under) float32 [H, W, 3] in [0, 1]


def upsample2(x):
    """Nearest-neighbour x2 as one RESIZE_NEAREST_NEIGHBOR op (same values as ``layers.upsample_nearest``)."""
    import tensorflow as tf

    return tf.image.resize(x, 2 * tf.shape(x)[1:3], method="nearest")


def blocked_attention(layer, x, chunk: int):
    """``layers.SelfAttention`` on a [1, h, w, C] tensor, ``chunk`` query rows per loop step.

    The block has a static size (queries are zero-padded to whole blocks), which LiteRT's WHILE
    lowering needs; the result equals the layer's own."""
    import tensorflow as tf

    from mefgan_tf.layers import attention_rows

    shape = tf.shape(x)
    height, width, channels = shape[1], shape[2], x.shape[-1]

    def flat(t):
        return tf.reshape(t, [1, -1, t.shape[-1]])

    key, query, value = flat(layer.f(x)), flat(layer.g(x)), flat(layer.h(x))
    n = height * width
    blocks = (n + chunk - 1) // chunk
    padded = tf.reshape(tf.pad(query, [[0, 0], [0, blocks * chunk - n], [0, 0]]), [-1, chunk, query.shape[-1]])
    out = tf.map_fn(
        lambda q: attention_rows(q[None], key, value)[0],
        padded,
        fn_output_signature=tf.TensorSpec([chunk, channels], tf.float32),
    )
    out = tf.reshape(out, [1, -1, channels])[:, :n]
    return layer.gamma * tf.reshape(out, [1, height, width, channels]) + x


def attention_half(generator, x, chunk: int):
    """``Generator.attention_features_half`` with LiteRT-friendly attention (a loop over blocks of
    ``chunk`` rows) and upsampling (one resize op)."""
    return generator.attention_features_half(
        x, attend=lambda y: blocked_attention(generator.attention, y, chunk), upsample=upsample2
    )


@functools.cache
def lite_module_class():
    """``LiteModule``: the three signatures as traced functions over one generator (built on first use)."""
    import tensorflow as tf

    from mefgan_tf.generator import CHANNELS, HALF_CHANNELS, INPUT_CHANNELS

    def spec(channels: int, name: str) -> tf.TensorSpec:
        return tf.TensorSpec([1, None, None, channels], tf.float32, name=name)

    class LiteModule(tf.Module):
        def __init__(self, generator, chunk: int) -> None:
            super().__init__(name="mefgan_lite")
            self.generator, self.chunk = generator, chunk
            # The backing tf.Variables, tracked directly: the converter then freezes them into
            # constants (and folds spectral and batch normalisation into the convolutions).
            self.tf_variables = [v.value for v in generator.weights]

        def fused(self, x, half):
            g = self.generator
            return g.merge(g.local_features(x), upsample2(half))

        @tf.function(input_signature=[spec(CHANNELS, "over"), spec(CHANNELS, "under")], autograph=False)
        def fuse(self, over, under):
            x = tf.concat([over, under], axis=-1)
            return {"fused": self.fused(x, attention_half(self.generator, x, self.chunk))}

        @tf.function(input_signature=[spec(INPUT_CHANNELS, "x")], autograph=False)
        def attention(self, x):
            return {"attention_half": attention_half(self.generator, x, self.chunk)}

        @tf.function(input_signature=[spec(INPUT_CHANNELS, "x"), spec(HALF_CHANNELS, "attention_half")], autograph=False)
        def fuse_tile(self, x, attention_half):
            return {"fused": self.fused(x, attention_half)}

        def signatures(self) -> dict:
            return {FUSE_SIGNATURE: self.fuse, ATTENTION_SIGNATURE: self.attention, TILE_SIGNATURE: self.fuse_tile}

    return LiteModule


def centre_square(image: np.ndarray, side: int) -> np.ndarray:
    """The central square of ``image`` (uint8 RGB), area-resized to ``side`` x ``side``."""
    height, width = image.shape[:2]
    short = min(height, width)
    top, left = (height - short) // 2, (width - short) // 2
    return cv2.resize(image[top : top + short, left : left + short], (side, side), interpolation=cv2.INTER_AREA)


def calibration_pairs(folder: str | os.PathLike | None = None, side: int = CALIBRATION_SIDE) -> list[Pair]:
    """(over, under) float32 pairs for int8 calibration, each a centre square of ``side`` pixels.

    ``folder``: scenes as every command reads them (``scenes.find_scenes``: uN/oN pairs, or one
    subfolder of exposures per scene; darkest and brightest are used); None: the bundled demo photos."""
    if side % 8 or side < 16:
        raise CommandError(f"calibration side {side}: must be a multiple of 8, at least 16")
    if folder is None:
        raw = [sample_pair(name, ev)[::-1] for name in SAMPLE_IMAGES for ev in CALIBRATION_EVS]
    else:
        scenes = [s for s in find_scenes(Path(folder), None) if s.problem is None]
        if not scenes:
            raise CommandError(f"{folder}: no usable exposure pairs for calibration")
        raw = [(loaded.over, loaded.under) for loaded in map(load_scene, scenes)]
    return [tuple(centre_square(im, side).astype(np.float32) / np.float32(255) for im in pair) for pair in raw]


def representative_dataset(module, pairs: Sequence[Pair]) -> Iterator[tuple[str, dict]]:
    """(signature, inputs) samples covering all three signatures, as the converter's calibrator takes them."""
    for over, under in pairs:
        over, under = over[None], under[None]
        x = np.concatenate([over, under], axis=-1)
        half = module.attention(x)["attention_half"].numpy()
        yield FUSE_SIGNATURE, {"over": over, "under": under}
        yield ATTENTION_SIGNATURE, {"x": x}
        yield TILE_SIGNATURE, {"x": x, "attention_half": half}


def check_chunk(chunk: int) -> int:
    if not 1 <= chunk <= 2**20:
        raise CommandError(f"--attention-chunk {chunk}: must be from 1 to {2**20} rows")
    return chunk


def convert_generator(
    generator, quantize: str = "none", pairs: Sequence[Pair] | None = None, chunk: int = ATTENTION_BLOCKS.litert
) -> bytes:
    """The generator as a LiteRT flatbuffer; ``pairs`` calibrate ``int8`` (default: the demo photos)."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise CommandError(f"--quantize {quantize}: choose from {', '.join(QUANTIZATIONS)}")
    module = lite_module_class()(generator, check_chunk(chunk))
    with tempfile.TemporaryDirectory(prefix="mefgan-tflite-") as saved:
        tf.saved_model.save(module, saved, signatures=module.signatures())
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(SIGNATURES))
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize != "int8":
            return serving_default_first(converter.convert())
        samples = list(calibration_pairs() if pairs is None else pairs)
        converter.representative_dataset = lambda: representative_dataset(module, samples)
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_OPS))
        with warnings.catch_warnings():
            # The calibrator runs tf.lite.Interpreter internally, which warns of its own deprecation.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=converter.representative_dataset, debug_options=options
            )
            return serving_default_first(debugger.get_nondebug_quantized_model())


def serving_default_first(content: bytes) -> bytes:
    """The flatbuffer with ``serving_default``'s subgraph first: a plain interpreter (``invoke()``
    without a signature runner, as many phone apps call it) runs subgraph 0. The converter orders
    signatures by name; every subgraph index (signatures, WHILE/IF/CALL_ONCE ops) is renumbered."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    keys = {_text(signature.signatureKey): signature.subgraphIndex for signature in model.signatureDefs}
    first = keys[FUSE_SIGNATURE]
    if first == 0:
        return content
    order = [first] + [i for i in range(len(model.subgraphs)) if i != first]
    renumbered = {old: new for new, old in enumerate(order)}
    model.subgraphs = [model.subgraphs[i] for i in order]
    for signature in model.signatureDefs:
        signature.subgraphIndex = renumbered[signature.subgraphIndex]
    for subgraph in model.subgraphs:
        for op in subgraph.operators or []:
            for options in (op.builtinOptions, getattr(op, "builtinOptions2", None)):
                for field in SUBGRAPH_INDEX_FIELDS:
                    if options is not None and hasattr(options, field):
                        setattr(options, field, renumbered[getattr(options, field)])
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def check_tflite_path(out: Path) -> None:
    if out.suffix != ".tflite":
        raise CommandError(f"{out}: a LiteRT model file must end in .tflite")
    if out.is_dir():
        raise CommandError(f"{out}: is a folder; --out names the .tflite file to write")


def export_tflite(
    generator,
    out: str | os.PathLike,
    quantize: str = "none",
    calibration: str | os.PathLike | None = None,
    chunk: int = ATTENTION_BLOCKS.litert,
) -> Path:
    """Write the generator as a ``.tflite`` file at ``out``, complete or not at all."""
    out = Path(out)
    check_tflite_path(out)
    pairs = calibration_pairs(calibration, CALIBRATION_SIDE) if quantize == "int8" else None
    return write_bytes(out, convert_generator(generator, quantize, pairs, chunk))


def check_size(height: int, width: int) -> None:
    if height % 8 or width % 8 or min(height, width) < 8:
        raise CommandError(f"{width}x{height}: the LiteRT model takes sides that are multiples of 8 (pad first)")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's or ``taskset``'s limit)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LiteModel:
    """A ``.tflite`` file from ``export_tflite`` run by LiteRT (``ai_edge_litert``) on the CPU.

    ``fuse(over, under)`` runs ``serving_default`` on [H, W, 3] float32 arrays; ``attention_half``
    and ``fuse_tile`` make it ``stages.Stages``, so ``fusion.fuse_pair(model, over, under, tile)``
    pads, tiles and crops exactly as with a checkpoint. Its attention loops inside the graph, so it
    does not run in blocks from outside."""

    blocks_attention = False

    def __init__(self, model: str | os.PathLike | bytes, num_threads: int | None = None) -> None:
        """``num_threads``: LiteRT's CPU threads; by default one per core this process may use (LiteRT's
        own default is one thread: half the speed on 2 cores)."""
        from ai_edge_litert.interpreter import Interpreter

        num_threads = num_threads or usable_cores()

        content = model if isinstance(model, bytes) else None
        path = None if content is not None else str(model)
        if path is not None and not Path(path).is_file():
            raise CommandError(f"{path}: no such .tflite file")
        self.interpreter = Interpreter(model_path=path, model_content=content, num_threads=num_threads)
        self.runners = {key: self.interpreter.get_signature_runner(key) for key in SIGNATURES}

    def fuse(self, over: np.ndarray, under: np.ndarray) -> np.ndarray:
        """The whole generator on one pair of [H, W, 3] float32 arrays (sides multiples of 8)."""
        check_size(*over.shape[:2])
        inputs = {"over": over[None].astype(np.float32), "under": under[None].astype(np.float32)}
        return self.runners[FUSE_SIGNATURE](**inputs)["fused"][0]

    def attention_half(self, x: np.ndarray) -> np.ndarray:
        check_size(*x.shape[1:3])
        return self.runners[ATTENTION_SIGNATURE](x=np.asarray(x, np.float32))["attention_half"]

    def fuse_tile(self, x: np.ndarray, half: np.ndarray) -> np.ndarray:
        inputs = {"x": np.asarray(x, np.float32), "attention_half": np.asarray(half, np.float32)}
        return self.runners[TILE_SIGNATURE](**inputs)["fused"]
