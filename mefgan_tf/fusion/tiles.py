"""The network on one pair at any size, exact and tiled (``fuse_pair``).

The generator's only global part is its attention branch, which works at 1/8 resolution and is
cheap to run on the whole image. Everything at full resolution (local block and merge block) is
3x3 convolutions with a receptive radius of ``generator.FULL_RES_HALO`` pixels. So ``fuse_pair``:

1. reflect-pads the pair once to a multiple of 8 (the output is cropped back to the input size;
   ``crop_to_multiple`` gives the original's way instead, for ``--original-io``);
2. runs the attention branch on the whole padded image (16 maps at half resolution);
3. runs the full-resolution blocks tile by tile, each tile grown by the halo (clipped at the
   image border, where the network's own reflect padding then sees what untiled inference sees),
   and keeps each tile's exact centre.

``generator`` (the halo and channel count) is imported where used: it imports Keras, which the
fusion core must not load on import.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from mefgan_tf.config import ATTENTION_BLOCKS
from mefgan_tf.errors import CommandError
from mefgan_tf.fusion.progress import FusionProgress, advance
from mefgan_tf.stages import Stages

SIZE_MULTIPLE = 8
# Time of one attention score in full-resolution pixels (CPU, benchmarks/bench_fusion.py): weighs
# the steps of the progress bar so that its ETA holds across attention and tiles.
SCORE_COST = 1.5e-4

FusePair = Callable[[np.ndarray, np.ndarray], np.ndarray]


def full_res_halo() -> int:
    """The receptive radius of the generator's full-resolution blocks (``generator.FULL_RES_HALO``)."""
    from mefgan_tf.generator import FULL_RES_HALO

    return FULL_RES_HALO


def padding_to_multiple(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """Rows and columns to add at the bottom and right to reach multiples of ``multiple``."""
    return (-height) % multiple, (-width) % multiple


def padded(height: int, width: int) -> tuple[int, int]:
    """``height`` x ``width`` padded to multiples of ``SIZE_MULTIPLE`` (what the network runs on)."""
    pad_h, pad_w = padding_to_multiple(height, width)
    return height + pad_h, width + pad_w


def check_side(image: np.ndarray, multiple: int) -> None:
    height, width = image.shape[:2]
    if min(height, width) < multiple:
        raise CommandError(f"image of {width}x{height} is too small: both sides must be at least {multiple} pixels")


def pad_to_multiple(image: np.ndarray, multiple: int = SIZE_MULTIPLE) -> np.ndarray:
    """Reflect-pad an (H, W, C) array at the bottom and right to multiples of ``multiple``."""
    check_side(image, multiple)
    pad_h, pad_w = padding_to_multiple(*image.shape[:2], multiple)
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def crop_to_multiple(image: np.ndarray, multiple: int = SIZE_MULTIPLE) -> np.ndarray:
    """The top-left part of an (H, W, ...) array whose sides are multiples of ``multiple``: what the
    original's ``generate.py`` fuses (it drops up to ``multiple - 1`` rows and columns)."""
    check_side(image, multiple)
    height, width = image.shape[:2]
    return image[: height // multiple * multiple, : width // multiple * multiple]


def tile_grid(height: int, width: int, tile: int, halo: int) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """(core, expanded) boxes ``(top, bottom, left, right)`` covering the image; expanded = core +
    halo, clipped at the border."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            expanded = (max(top - halo, 0), min(bottom + halo, height), max(left - halo, 0), min(right + halo, width))
            yield (top, bottom, left, right), expanded


def pair_work(height: int, width: int) -> float:
    """A pair's fusion work in full-resolution pixels (see ``FusionProgress``) for a network input of
    ``height`` x ``width`` (padded here to multiples of 8)."""
    padded_h, padded_w = padded(height, width)
    positions = padded_h * padded_w / SIZE_MULTIPLE**2
    return padded_h * padded_w + SCORE_COST * positions**2


def network_input(over: np.ndarray, under: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The generator's 6-channel input [1, H', W', 6] (over first), reflect-padded at the bottom and
    right to ``shape`` (a working copy's, ``resolution.padded_shape``) or else to multiples of 8."""
    x = np.concatenate([over, under], axis=-1).astype(np.float32)
    if shape is None:
        return pad_to_multiple(x)[None]
    return np.pad(x, ((0, shape[0] - x.shape[0]), (0, shape[1] - x.shape[1]), (0, 0)), mode="reflect")[None]


def attention_maps(stages: Stages, x: np.ndarray, progress: FusionProgress | None = None) -> np.ndarray:
    """The attention branch's half-size maps of the padded input ``x``: [1, H'/2, W'/2, 16].

    Runs the attention rows ``ATTENTION_BLOCKS.inference`` at a time (a progress step each) where
    the stages block the attention (``Stages.blocks_attention``), else ``attention_half`` in one
    call. Same result either way.
    """
    positions = x.shape[1] * x.shape[2] // SIZE_MULTIPLE**2
    if not stages.blocks_attention:
        half = stages.attention_half(x)
        advance(progress, SCORE_COST * positions**2, "attention")
        return half
    parts = stages.attention_parts(x)
    rows_per_call = ATTENTION_BLOCKS.inference
    starts = range(0, positions, rows_per_call)
    rows = []
    for number, start in enumerate(starts, 1):
        query = parts["g"][:, start : start + rows_per_call]
        rows.append(stages.attention_rows(query, parts["f"], parts["h"]))
        advance(progress, SCORE_COST * query.shape[1] * positions, f"attention {number}/{len(starts)}")
    return stages.attention_finish(parts["encoded"], np.concatenate(rows, axis=1))


def full_resolution(
    stages: Stages, x: np.ndarray, half: np.ndarray, tile: int | None = None, progress: FusionProgress | None = None
) -> np.ndarray:
    """The full-resolution blocks on the padded input ``x`` given the attention maps ``half``:
    whole (``tile=None``) or in tiles of ``tile`` pixels (``FusionOptions.tile``) grown by the halo.
    Returns [H', W', 3]."""
    padded_h, padded_w = x.shape[1:3]
    if tile is None or (tile >= padded_h and tile >= padded_w):
        fused = stages.fuse_tile(x, half)[0]
        advance(progress, padded_h * padded_w, "whole image")
        return fused
    fused = np.empty((padded_h, padded_w, x.shape[3] // 2), np.float32)  # RGB: half the input's channels
    boxes = list(tile_grid(padded_h, padded_w, tile, full_res_halo()))
    for number, ((top, bottom, left, right), (e_top, e_bottom, e_left, e_right)) in enumerate(boxes, 1):
        # Offsets and sizes are even (tiles are multiples of 8, the halo is 8), so the half-size
        # attention maps slice exactly.
        out = stages.fuse_tile(
            x[:, e_top:e_bottom, e_left:e_right], half[:, e_top // 2 : e_bottom // 2, e_left // 2 : e_right // 2]
        )[0]
        fused[top:bottom, left:right] = out[top - e_top : bottom - e_top, left - e_left : right - e_left]
        advance(progress, (bottom - top) * (right - left), f"tile {number}/{len(boxes)}")
    return fused


def fuse_pair(
    stages: Stages, over: np.ndarray, under: np.ndarray, tile: int | None = None, progress: FusionProgress | None = None,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Fuse one (over, under) pair of (H, W, 3) float32 [0, 1] arrays at full resolution.

    ``tile=None`` runs the full-resolution blocks on the whole image; an int tiles them (same
    result within float rounding). ``progress`` advances by ``pair_work(H, W)`` in all. ``shape``:
    the padded shape of a working copy (``network_input``).
    """
    height, width = over.shape[:2]
    if isinstance(progress, FusionProgress):
        progress.check_stop("the attention")
    x = network_input(over, under, shape)
    return full_resolution(stages, x, attention_maps(stages, x, progress), tile, progress)[:height, :width]
