"""The SavedModel of `mefgan export`: the generator for TensorFlow Serving (``--tflite`` writes a
LiteRT file for devices instead: see ``mefgan_tf.tflite``).

The SavedModel has two signatures:

- ``serving_default``: ``over`` and ``under`` float32 [B, H, W, 3] in [0, 1], any H and W of at
  least 8 (reflect padding to multiples of 8 and the crop back happen inside the graph) ->
  ``fused`` float32 [B, H, W, 3]. The inputs are used as named.
- ``fuse_images``: ``over_bytes`` and ``under_bytes``, string [B] of encoded JPEG/PNG/BMP/GIF
  files -> ``fused_png_bytes``, string [B] of 8-bit PNG files. A JPEG's EXIF orientation is
  applied, as ``mefgan fuse`` applies it, so phone photos come out upright. Each pair is ordered
  by mean luminance inside the graph, as ``mefgan fuse`` does (``scenes.over_under``'s rule in
  TensorFlow: the brighter one is "over"), so web clients may send the two exposures in any
  order, and the exposures' fine detail is transferred as ``mefgan fuse`` does it
  (``pyramid.graph_transfer_detail``, the levels fixed at export), then its tone guarded
  (``tone.graph_tone_guard``; ``--no-tone-guard`` at export leaves it out). The ``_bytes``
  suffixes make the REST API carry the values as ``{"b64": ...}``.

Inputs are checked inside the graph with the CLI's rules (rank 4, 3 channels, sides of at least
8 pixels, the two of one shape, values in [0, 1] without NaN): a bad request fails with an
``InvalidArgumentError`` whose message says what is expected, not deep inside the network.

It also keeps the two tiling stages of ``stages.TensorFlowStages`` (``attention_half`` and
``fuse_tile``), so ``mefgan fuse --model`` fuses large photos with a SavedModel in bounded memory.

TensorFlow is imported where a graph is built: choosing and checking what to export must not start it.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from mefgan_tf.checkpoint import write_metadata
from mefgan_tf.errors import CommandError
from mefgan_tf.files import atomic_dir, check_room
from mefgan_tf.fusion import DEFAULT_OPTIONS, SIZE_MULTIPLE, FusionOptions
from mefgan_tf.images import LUMA_WEIGHTS
from mefgan_tf.pyramid import graph_detail_onto, graph_pyramid_levels, graph_transfer_detail
from mefgan_tf.resolution import graph_extra_levels, graph_padded_shape, graph_residual, graph_work_dims
from mefgan_tf.stages import stages_class
from mefgan_tf.tone import graph_tone_guard

FLOAT_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "fuse_images"
# The two serving signatures, the one statement of the SavedModel's interface (``serving_class``
# builds its functions from it, ``mefgan serve`` describes it): name -> (inputs, outputs), each
# tensor name -> (dtype, shape), -1 for a dimension of any size.
TensorSpecs = dict[str, tuple[str, tuple[int, ...]]]
SIGNATURES: dict[str, tuple[TensorSpecs, TensorSpecs]] = {
    FLOAT_SIGNATURE: (
        {"over": ("float32", (-1, -1, -1, 3)), "under": ("float32", (-1, -1, -1, 3))},
        {"fused": ("float32", (-1, -1, -1, 3))},
    ),
    BYTES_SIGNATURE: (
        {"over_bytes": ("string", (-1,)), "under_bytes": ("string", (-1,))},
        {"fused_png_bytes": ("string", (-1,))},
    ),
}
METADATA_FOLDER = "assets.extra"  # extra files TensorFlow Serving ignores
EXIF_SEARCH_BYTES = 65536  # a JPEG's EXIF block (APP1) starts within its first 64 KiB
EXIF_MAX_ENTRIES = 64  # IFD0 entries searched for the orientation tag
ORIENTATION_TAG = 0x0112


def exif_orientation(data):
    """The EXIF orientation (1-8) of encoded image bytes, as a traced int32; 1 for anything that is
    not a JPEG with an APP1 EXIF block holding a valid orientation tag."""
    import tensorflow as tf

    size = EXIF_SEARCH_BYTES
    head = tf.io.decode_raw(tf.strings.substr(data, 0, tf.minimum(tf.strings.length(data), size)), tf.uint8)
    h = tf.pad(tf.cast(head, tf.int32), [[0, size - tf.size(head)]])

    def at(index):
        return tf.gather(h, tf.clip_by_value(index, 0, size - 1))

    marker = [0xFF, 0xE1, None, None, 0x45, 0x78, 0x69, 0x66, 0x00, 0x00]  # FF E1, length, "Exif\0\0"
    found = tf.ones([size - len(marker)], tf.bool)
    for offset, byte in enumerate(marker):
        if byte is not None:
            found &= h[offset : size - len(marker) + offset] == byte
    tiff = tf.cast(tf.argmax(tf.cast(found, tf.int32)), tf.int32) + len(marker)
    little = at(tiff) == 0x49  # "II": Intel byte order, else "MM"

    def u16(index):
        return tf.where(little, at(index) + 256 * at(index + 1), 256 * at(index) + at(index + 1))

    def u32(index):
        return tf.where(little, u16(index) + 65536 * u16(index + 2), 65536 * u16(index) + u16(index + 2))

    ifd = tiff + u32(tiff + 4)
    entries = ifd + 2 + 12 * tf.range(EXIF_MAX_ENTRIES)
    is_tag = (u16(entries) == ORIENTATION_TAG) & (tf.range(EXIF_MAX_ENTRIES) < u16(ifd))
    value = u16(tf.gather(entries, tf.argmax(tf.cast(is_tag, tf.int32))) + 8)
    valid = (h[0] == 0xFF) & (h[1] == 0xD8) & tf.reduce_any(found) & tf.reduce_any(is_tag) & (value >= 1) & (value <= 8)
    return tf.where(valid, value, 1)


def apply_orientation(image, orientation):
    """``image`` [H, W, C] turned upright for an EXIF ``orientation`` (1-8), as OpenCV and PIL do."""
    import tensorflow as tf

    def transposed():
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,  # 1: upright
        lambda: tf.reverse(image, [1]),  # 2: mirrored left-right
        lambda: tf.reverse(image, [0, 1]),  # 3: rotated 180
        lambda: tf.reverse(image, [0]),  # 4: mirrored top-bottom
        transposed,  # 5: transposed
        lambda: tf.reverse(transposed(), [1]),  # 6: rotate 90 clockwise
        lambda: tf.reverse(transposed(), [0, 1]),  # 7: transversed
        lambda: tf.reverse(transposed(), [0]),  # 8: rotate 90 counter-clockwise
    ]
    return tf.switch_case(orientation - 1, branches)


def check_image(image, name: str, min_side: int):
    """An op asserting that ``image`` is a float batch [B, H, W, 3] of sides >= ``min_side`` in [0, 1],
    checked in that order at run time (a client may send any shape), with messages naming ``name``."""
    import tensorflow as tf

    # The rank counted from the run-time shape: tf.rank (and grappler) would read the signature's
    # static rank 4 and fold the check away.
    rank = tf.reduce_sum(tf.cast(tf.shape(image) >= 0, tf.int32))
    rank = tf.debugging.assert_equal(rank, 4, message=f"{name} must be float32 [batch, height, width, 3]")
    with tf.control_dependencies([rank]):
        shape = tf.shape(image)
        sides = [
            tf.debugging.assert_equal(shape[-1], 3, message=f"{name} must have 3 channels (RGB)"),
            tf.debugging.assert_greater_equal(
                tf.reduce_min(shape[1:3]), min_side, message=f"{name}: height and width must be at least {min_side} pixels"
            ),
        ]
    with tf.control_dependencies(sides):
        return tf.debugging.Assert(
            tf.reduce_all((image >= 0.0) & (image <= 1.0)),  # False for NaN
            [f"{name} must hold values in [0, 1] (8-bit values / 255), without NaN; its min and max are",
             tf.reduce_min(image), tf.reduce_max(image)],
        )


def check_pair(over, under, min_side: int, names: tuple[str, str] = ("over", "under")):
    """An op asserting that ``over`` and ``under`` are valid inputs of one shape (the CLI's rules)."""
    import tensorflow as tf

    with tf.control_dependencies([check_image(over, names[0], min_side), check_image(under, names[1], min_side)]):
        return tf.debugging.assert_equal(
            tf.shape(over), tf.shape(under),
            message=f"{names[0]} and {names[1]} must have the same shape [batch, height, width, 3]",
        )


@functools.cache
def serving_class():
    """``ServingModule``: ``GeneratorStages`` plus the two serving signatures (built on first use)."""
    import tensorflow as tf

    def specs(signature: str) -> list[tf.TensorSpec]:
        inputs = SIGNATURES[signature][0]
        return [
            tf.TensorSpec([None if size < 0 else size for size in shape], tf.as_dtype(dtype), name=name)
            for name, (dtype, shape) in inputs.items()
        ]

    def decode(data):
        return tf.io.decode_image(data, channels=3, dtype=tf.float32, expand_animations=False)

    def mean_luma(image):
        return tf.reduce_mean(tf.tensordot(image, tf.constant(LUMA_WEIGHTS), axes=1))

    def ordered(first, second):
        """(over, under): the brighter first (``scenes.over_under``'s rule)."""
        return tf.cond(mean_luma(first) >= mean_luma(second), lambda: (first, second), lambda: (second, first))

    class ServingModule(stages_class()):
        def __init__(self, generator, detail: int, work_size: int | None, tone_guard: bool = True) -> None:
            super().__init__(generator)
            self.detail_levels = detail
            self.work_size = work_size
            self.tone_guard = tone_guard
            # The backing tf.Variables, tracked directly (as keras.export.ExportArchive does):
            # without this, TF1-style loaders (TensorFlow Serving, saved_model_cli) cannot find them.
            self.tf_variables = [v.value for v in generator.weights]

        def fuse_any_size(self, over, under):
            """The generator on a batch of pairs of any size: reflect-pad to multiples of 8, fuse, crop."""
            height, width = tf.shape(over)[1], tf.shape(over)[2]
            pad_h, pad_w = tf.math.floormod(-height, SIZE_MULTIPLE), tf.math.floormod(-width, SIZE_MULTIPLE)
            x = tf.pad(tf.concat([over, under], axis=-1), [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
            fused = self.fuse_tile(x, self.attention_half(x))
            return fused[:, :height, :width, :]

        def fuse_exposures(self, first, second):
            """``fusion.fuse_images`` of two [H, W, 3] exposures: at the working size where the photo is
            larger (the size and the levels fixed at export), else the network on the photos; then,
            with detail levels, the tone guard (``tone.graph_tone_guard``) unless it was turned off."""
            fused = self.detailed(first, second)
            if self.detail_levels and self.tone_guard:
                return graph_tone_guard(fused, [first, second])
            return fused

        def detailed(self, first, second):
            """The fusion of two [H, W, 3] exposures with the exposures' detail, before the tone guard."""
            height, width = tf.shape(first)[0], tf.shape(first)[1]

            def exact():
                over, under = ordered(first, second)
                return graph_transfer_detail(self.fuse_any_size(over[None], under[None])[0], [over, under],
                                             self.detail_levels)

            if not self.detail_levels or self.work_size is None:
                return exact()

            def working():
                work_h, work_w = graph_work_dims(height, width, self.work_size)
                over, under = ordered(*(tf.image.resize(x, tf.stack([work_h, work_w]), method="area")
                                        for x in (first, second)))
                pad_h, pad_w = graph_padded_shape(work_h, work_w, self.work_size)
                x = tf.pad(tf.concat([over, under], axis=-1)[None],
                           [[0, 0], [0, pad_h - work_h], [0, pad_w - work_w], [0, 0]], mode="REFLECT")
                fused = self.fuse_tile(x, self.attention_half(x))[0, :work_h, :work_w]
                levels = tf.minimum(self.detail_levels + graph_extra_levels(height, width, work_h, work_w),
                                    graph_pyramid_levels(height, width))
                return graph_detail_onto(lambda count: graph_residual(fused, height, width, count), [first, second],
                                         levels)

            return tf.cond(tf.maximum(height, width) > self.work_size, working, exact)

        @tf.function(input_signature=specs(FLOAT_SIGNATURE), autograph=False)
        def serve(self, over, under):
            with tf.control_dependencies([check_pair(over, under, SIZE_MULTIPLE)]):
                return {"fused": self.fuse_any_size(tf.identity(over), tf.identity(under))}

        @tf.function(input_signature=specs(BYTES_SIGNATURE), autograph=False)
        def serve_bytes(self, over_bytes, under_bytes):
            def fuse_one(pair):
                first, second = (apply_orientation(decode(data), exif_orientation(data)) for data in pair)
                checks = check_pair(first[None], second[None], SIZE_MULTIPLE, ("over_bytes", "under_bytes"))
                with tf.control_dependencies([checks]):
                    first, second = tf.identity(first), tf.identity(second)
                fused = self.fuse_exposures(first, second)
                return tf.io.encode_png(tf.cast(tf.round(tf.clip_by_value(fused, 0.0, 1.0) * 255.0), tf.uint8))

            png = tf.map_fn(fuse_one, (over_bytes, under_bytes), fn_output_signature=tf.string)
            return {"fused_png_bytes": png}

    return ServingModule


def check_version_folder(out: Path) -> None:
    if not out.name.isdigit():
        raise CommandError(
            f"{out}: TensorFlow Serving expects a numbered version folder; use e.g. --out {out / '1'}"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CommandError(f"{out}: already exists; choose a new version number")


SAVED_GRAPH_BYTES = 8 * 2**20  # a SavedModel's graphs and functions, beside its weights


def export_saved_model(generator, out: str | Path, source: str = "", options: FusionOptions = DEFAULT_OPTIONS) -> Path:
    """Write ``generator`` as a SavedModel at ``out`` (a new version folder); complete or absent.
    ``options``: the detail levels its ``fuse_images`` takes from the exposures and the size its
    network fuses at (``options.detail``, ``options.work_size``; the rest is the caller's)."""
    import tensorflow as tf

    out = Path(out)
    check_version_folder(out)
    weights = sum(int(np.prod(w.shape)) * 4 for w in generator.weights)
    check_room(out, 2 * weights + SAVED_GRAPH_BYTES, "a SavedModel")
    try:
        with atomic_dir(out) as tmp:
            module = serving_class()(generator, options.detail, options.work_size, options.tone_guard)
            signatures = {FLOAT_SIGNATURE: module.serve, BYTES_SIGNATURE: module.serve_bytes}
            tf.saved_model.save(module, str(tmp), signatures=signatures)
            (tmp / METADATA_FOLDER).mkdir()
            write_metadata(tmp / METADATA_FOLDER, generator.config, source=source)
    except (OSError, tf.errors.OpError) as err:
        reason = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err)
        if "No space left" in str(err):
            reason = "No space left on device"
        raise CommandError(f"{out}: cannot write ({reason.splitlines()[0]})") from None
    return out
