"""Fusion at any size with bounded memory: the network on a pair (exact, tiled), the whole fusion.

The generator's only global part is its attention branch, which works at 1/8 resolution and is
cheap to run on the whole image. Everything at full resolution (local block and merge block) is
3x3 convolutions with a receptive radius of ``generator.FULL_RES_HALO`` pixels. So ``fuse_pair``:

1. reflect-pads the pair once to a multiple of 8 (the output is cropped back to the input size;
   ``crop_to_multiple`` gives the original's way instead, for ``--original-io``);
2. runs the attention branch on the whole padded image (16 maps at half resolution);
3. runs the full-resolution blocks tile by tile, each tile grown by the halo (clipped at the
   image border, where the network's own reflect padding then sees what untiled inference sees),
   and keeps each tile's exact centre.

Every fusion ends with the exposures' own fine detail (``pyramid``); a photo larger than the
working size is fused by the network as a downscaled copy, its fusion giving only the coarse levels
(``resolution``, ``fuse_images``, the one reference of what a fusion is).

More than two exposures are fused by a pair model (``fuse_exposures``) in one of the ways of
``MULTI``, sorted by mean luminance: folded in turn (the paper folds from the two darkest up), or
each fused with the middle one and the fusions blended where each one's other frame is well exposed
(``blend``, the default); in every pair the brighter image (mean BT.601 luma) is the over-exposed
input (the rules of ``scenes``).
"""
from __future__ import annotations

import functools
import itertools
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mefgan_tf.config import ATTENTION_BLOCKS
from mefgan_tf.errors import CommandError
from mefgan_tf.images import is_grey, to_grey
from mefgan_tf.pyramid import DETAIL_LEVELS, detail_onto, exposure_weight, gaussian_pyramid, pyramid_blend
from mefgan_tf.resolution import (
    DEFAULT_UPSAMPLING,
    WORK_SIZE,
    downscale,
    levels_for,
    padded_shape,
    residual,
    work_dims,
    work_problem,
)
from mefgan_tf.scenes import DEFAULT_MULTI, MULTI, exposure_order, middle, over_under
from mefgan_tf.stages import Stages

SIZE_MULTIPLE = 8
# Peak bytes per pixel of untiled full-resolution blocks on CPU (measured ~3.2 KB at 0.5-1 MP).
BYTES_PER_PIXEL = 3400
# Peak bytes per padded pixel of what is held for the whole image however it is tiled: the 6-channel
# input, the attention branch (its encoder runs on the whole image), its half-size maps and the
# output (measured on CPU: 53-101 B/px from 1 to 9 MP, rising with size; planned with headroom).
WHOLE_IMAGE_BYTES_PER_PIXEL = 160
# Peak bytes per pixel that ``blend`` holds beside its inputs: one fusion, its pyramids, the blended
# pyramid and one weight map per fusion (measured at 6 MP: 103, 127 and 151 B/px for 2, 4 and 6
# fusions; planned with headroom).
BLEND_BYTES_PER_FUSION, BLEND_BYTES_BASE = 16, 96
# Peak bytes per pixel that the detail transfer holds beside its inputs, its output included, with a weight
# map per exposure (``pyramid.detail_onto``, measured at 6 MP: 52, 63 and 79 B/px for 2, 4 and 6
# exposures, at 4 to 8 levels; planned with headroom); its time in network pixels of the progress bar
# (measured at 12 MP: about 1/80 of a pixel the network fuses).
DETAIL_BYTES_PER_FRAME, DETAIL_BYTES_BASE, DETAIL_COST = 10, 48, 0.0125
MEMORY_FRACTION = 0.5  # share of the available memory that the automatic tile size plans for
# Tiles of ~512 px run faster than whole images (cache-friendly; see benchmarks/bench_fusion.py),
# so the automatic choice never exceeds this side even when memory would allow more.
PREFERRED_TILE, MIN_TILE = 512, 64
# Time of one attention score in full-resolution pixels (CPU, benchmarks/bench_fusion.py): weighs
# the steps of the progress bar so that its ETA holds across attention and tiles.
SCORE_COST = 1.5e-4

FusePair = Callable[[np.ndarray, np.ndarray], np.ndarray]


def padding_to_multiple(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """Rows and columns to add at the bottom and right to reach multiples of ``multiple``."""
    return (-height) % multiple, (-width) % multiple


def pad_to_multiple(image: np.ndarray, multiple: int = SIZE_MULTIPLE) -> np.ndarray:
    """Reflect-pad an (H, W, C) array at the bottom and right to multiples of ``multiple``."""
    height, width = image.shape[:2]
    if min(height, width) < multiple:
        raise CommandError(f"image of {width}x{height} is too small: both sides must be at least {multiple} pixels")
    pad_h, pad_w = padding_to_multiple(height, width, multiple)
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def crop_to_multiple(image: np.ndarray, multiple: int = SIZE_MULTIPLE) -> np.ndarray:
    """The top-left part of an (H, W, ...) array whose sides are multiples of ``multiple``: what the
    original's ``generate.py`` fuses (it drops up to ``multiple - 1`` rows and columns)."""
    height, width = image.shape[:2]
    if min(height, width) < multiple:
        raise CommandError(f"image of {width}x{height} is too small: both sides must be at least {multiple} pixels")
    return image[: height // multiple * multiple, : width // multiple * multiple]


def tile_grid(height: int, width: int, tile: int, halo: int) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """(core, expanded) boxes ``(top, bottom, left, right)`` covering the image; expanded = core +
    halo, clipped at the border."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            expanded = (max(top - halo, 0), min(bottom + halo, height), max(left - halo, 0), min(right + halo, width))
            yield (top, bottom, left, right), expanded


def available_memory() -> int:
    """Bytes of memory available to new allocations: the host's, or a container's limit less its use
    (``memory.available_memory``)."""
    from mefgan_tf.memory import available_memory as available

    return available()


def auto_tile(height: int, width: int, available: int | None = None) -> int | None:
    """The tile side for a padded ``height`` x ``width`` image: ``PREFERRED_TILE``, or less where a
    tile plus its halo would not fit in ``MEMORY_FRACTION`` of the available memory; None (untiled)
    when one tile covers the image."""
    from mefgan_tf.generator import FULL_RES_HALO

    budget = MEMORY_FRACTION * (available_memory() if available is None else available)
    fitting = int(math.sqrt(budget / BYTES_PER_PIXEL)) - 2 * FULL_RES_HALO
    tile = max(MIN_TILE, min(PREFERRED_TILE, fitting // SIZE_MULTIPLE * SIZE_MULTIPLE))
    return None if tile >= height and tile >= width else tile


def memory_needed(height: int, width: int, tile: int | None) -> int:
    """Bytes a pair fusion of a padded ``height`` x ``width`` image needs beyond its inputs: the
    whole-image part plus one tile (grown by the halo) or, untiled, the whole image's blocks."""
    from mefgan_tf.generator import FULL_RES_HALO

    pixels = height * width
    if tile is None or (tile >= height and tile >= width):
        return (WHOLE_IMAGE_BYTES_PER_PIXEL + BYTES_PER_PIXEL) * pixels
    grown = (min(tile, height) + 2 * FULL_RES_HALO) * (min(tile, width) + 2 * FULL_RES_HALO)
    return WHOLE_IMAGE_BYTES_PER_PIXEL * pixels + BYTES_PER_PIXEL * grown


def blend_memory(height: int, width: int, fusions: int) -> int:
    """Bytes ``blend`` needs beyond its inputs and the pair fusions' own work, for ``fusions`` fusions."""
    return (BLEND_BYTES_BASE + BLEND_BYTES_PER_FUSION * fusions) * height * width


def detail_memory(height: int, width: int, frames: int, levels: int) -> int:
    """Bytes ``pyramid.transfer_detail`` needs beyond its inputs and the fusion, for ``frames`` exposures."""
    return 0 if levels <= 0 else (DETAIL_BYTES_BASE + DETAIL_BYTES_PER_FRAME * frames) * height * width


def resolve_detail(given: int | None, original_io: bool = False) -> int:
    """The detail levels of a fusion: ``given``, else 0 with the authors' test-time I/O (their
    pipeline has no detail transfer), else ``DETAIL_LEVELS``."""
    if given is not None:
        return check_detail_levels(given)
    return 0 if original_io else DETAIL_LEVELS


def check_detail_levels(levels: int) -> int:
    if levels < 0:
        raise CommandError(f"--detail-levels {levels}: expected 0 (the network's own fusion) or more levels")
    return levels


def check_memory(height: int, width: int, tile: int | None, available: int | None = None, extra: int = 0) -> None:
    """CommandError, before any work, when fusing a ``height`` x ``width`` pair (and ``extra`` bytes
    more, which grow with the image's area) cannot fit in the available memory: what it needs, what
    there is, and what would fit."""
    pad_h, pad_w = padding_to_multiple(height, width)
    needed = memory_needed(height + pad_h, width + pad_w, tile) + extra
    available = available_memory() if available is None else available
    if needed <= available:
        return
    tiled = memory_needed(height + pad_h, width + pad_w, MIN_TILE) + extra
    if tiled <= available:
        advice = f"fuse in tiles (--tile {PREFERRED_TILE}, or the default --tile auto)"
    else:
        scale = math.sqrt(available / tiled)
        advice = f"resize the exposures (about {int(width * scale)}x{int(height * scale)} would fit) or free memory"
    raise CommandError(
        f"fusing {width}x{height} needs about {needed / 2**30:.1f} GiB of memory, but {available / 2**30:.1f} GiB "
        f"are available: {advice}"
    )


def check_work_size(size: int | None) -> int | None:
    problem = None if size is None else work_problem(size)
    if problem:
        raise CommandError(f"--work-size {size}: {problem}")
    return size


def tile_problem(tile: int) -> str | None:
    """Why ``tile`` cannot be a tile side (None when it can): the one rule of ``--tile`` and ``Fuser``."""
    if tile < 2 * SIZE_MULTIPLE or tile % SIZE_MULTIPLE:
        return f"the tile side must be a multiple of {SIZE_MULTIPLE}, at least {2 * SIZE_MULTIPLE}"
    return None


def check_tile(tile: int) -> int:
    problem = tile_problem(tile)
    if problem:
        raise CommandError(f"--tile {tile}: {problem}")
    return tile


class FusionCancelled(Exception):
    """A fusion stopped at a step because its ``stop`` event was set (its requester is gone)."""


class FusionProgress:
    """One progress bar over a whole fusion (attention rows, then tiles, pair after pair) with an
    ETA: steps are weighed in full-resolution pixels, an attention score counting ``SCORE_COST``.
    ``enabled``: True, False, or None (only when stderr is a terminal). ``stop``: an event that,
    once set, makes the next step raise ``FusionCancelled`` (steps are attention blocks and tiles)."""

    def __init__(self, total: float, enabled: bool | None = None, desc: str = "fusing",
                 stop: threading.Event | None = None) -> None:
        from tqdm import tqdm

        bar_format = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"
        disable = None if enabled is None else not enabled
        # Every step is shown (mininterval 0): steps are attention blocks and tiles, never tiny.
        self.bar = tqdm(total=total, desc=desc, leave=False, disable=disable, bar_format=bar_format, file=sys.stderr,
                        mininterval=0)
        self.stop = stop

    def check_stop(self, step: str) -> None:
        if self.stop is not None and self.stop.is_set():
            raise FusionCancelled(f"fusion cancelled before {step}")

    def advance(self, work: float, step: str) -> None:
        self.check_stop(step)
        self.bar.set_postfix_str(step, refresh=False)
        self.bar.update(work)

    def close(self) -> None:
        self.bar.close()


def pair_work(height: int, width: int) -> float:
    """A pair's fusion work in full-resolution pixels (see ``FusionProgress``) for a network input of
    ``height`` x ``width`` (padded here to multiples of 8)."""
    pad_h, pad_w = padding_to_multiple(height, width)
    positions = (height + pad_h) * (width + pad_w) / SIZE_MULTIPLE**2
    return (height + pad_h) * (width + pad_w) + SCORE_COST * positions**2


def advance(progress: FusionProgress | None, work: float, step: str) -> None:
    if progress is not None:
        progress.advance(work, step)


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
    whole (``tile=None``) or in tiles of ``tile`` pixels grown by the halo. Returns [H', W', 3]."""
    from mefgan_tf.generator import FULL_RES_HALO, OUTPUT_CHANNELS

    padded_h, padded_w = x.shape[1:3]
    if tile is None or (tile >= padded_h and tile >= padded_w):
        fused = stages.fuse_tile(x, half)[0]
        advance(progress, padded_h * padded_w, "whole image")
        return fused
    fused = np.empty((padded_h, padded_w, OUTPUT_CHANNELS), np.float32)
    boxes = list(tile_grid(padded_h, padded_w, check_tile(tile), FULL_RES_HALO))
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


def check_exposures(images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> None:
    """CommandError unless there are at least two RGB exposures of one size."""
    names = list(names) if names is not None else [f"exposure {i + 1}" for i in range(len(images))]
    if len(images) < 2:
        raise CommandError(f"need at least two exposures to fuse, got {len(images)}")
    sizes = [image.shape[:2] for image in images]
    if len(set(sizes)) > 1:
        listed = ", ".join(f"{n} {s[1]}x{s[0]}" for n, s in zip(names, sizes))
        raise CommandError(f"exposures differ in size: {listed}")


def fold_order(count: int, multi: str) -> list[int]:
    """Ranks (0 darkest) of ``count`` exposures in the order ``multi`` brings them in (``MULTI``)."""
    if multi not in MULTI:
        raise CommandError(f"unknown way to fuse several exposures {multi!r}; expected one of {', '.join(MULTI)}")
    if multi == "darkest-first":
        return list(range(count))
    if multi == "brightest-first":
        return list(range(count - 1, -1, -1))
    if multi == "extremes":
        return [0, count - 1] if count > 1 else [0]
    m = middle(count)  # middle-out and blend: the middle one, then alternately the next darker and brighter
    darker, brighter = list(range(m - 1, -1, -1)), list(range(m + 1, count))
    return [m] + [i for pair in itertools.zip_longest(darker, brighter) for i in pair if i is not None]


def pair_count(count: int, multi: str) -> int:
    """How many pair fusions ``fuse_exposures`` makes of ``count`` exposures."""
    return len(fold_order(count, multi)) - 1


def fuse_exposures(pair: FusePair, images: Sequence[np.ndarray], multi: str = DEFAULT_MULTI) -> np.ndarray:
    """Fuse any number (>= 2) of exposures with ``pair(over, under)`` in the way ``multi`` names
    (``MULTI``): folded in its order, or blended; in each pair the brighter image is the over-exposed input."""
    check_exposures(images)
    ordered = [images[i] for i in exposure_order(images)]
    order = fold_order(len(ordered), multi)
    if multi == "blend":
        return blend_with_middle(pair, [ordered[i] for i in order])
    fused = ordered[order[0]]
    for rank in order[1:]:
        fused = pair(*over_under(ordered[rank], fused))
    return fused


def blend_with_middle(pair: FusePair, images: Sequence[np.ndarray]) -> np.ndarray:
    """``blend``: each of ``images[1:]`` fused with ``images[0]`` (the middle exposure), the fusions
    blended in a Laplacian pyramid, each weighted where the frame it brought is well exposed
    (Mertens's weights of that frame: contrast, saturation, well-exposedness). Each fusion is of two
    source frames, so none inherits another's drift in tone, as a fold does; the fusions are made one
    at a time into the pyramid, so only one is held."""
    fused = (pair(*over_under(image, images[0])) for image in images[1:])
    if len(images) == 2:
        return next(fused)
    return pyramid_blend(fused, [exposure_weight(image) for image in images[1:]])


def fuse_images(pair: Callable[..., np.ndarray], images: Sequence[np.ndarray], multi: str = DEFAULT_MULTI,
                detail: int = DETAIL_LEVELS, work_size: int | None = WORK_SIZE,
                upsampling: str = DEFAULT_UPSAMPLING, progress: FusionProgress | None = None) -> np.ndarray:
    """The fusion of ``images`` (RGB float32 [0, 1], one size, any order) that every way of fusing gives
    (`mefgan fuse`, `serve`, `evaluate`, the API), with any pair model: ``pair(over, under, shape=None)``
    fuses two images of one size and returns that size; where ``shape`` is given, the pair is a
    working copy that the model takes reflect-padded at the bottom and right to ``shape``.

    With ``detail`` levels and a photo larger than ``work_size`` (``resolution``), the network fuses
    area-downscaled copies (``multi`` for three or more) and its fusion gives only the low-pass
    residual; the exposures give every finer level. Otherwise the network fuses the photos themselves
    and the exposures give ``detail`` levels (0: the network's own fusion). An app that runs a LiteRT
    file does the same: this function is its reference. ``progress`` is checked for a stop before the
    detail step and advanced by it."""
    height, width = images[0].shape[:2]
    work = work_dims(height, width, work_size) if detail else None
    if work is None:
        fused = fuse_exposures(pair, images, multi)
    else:
        small = [downscale(image, work) for image in images]
        fused = fuse_exposures(functools.partial(pair, shape=padded_shape(*work, work_size)), small, multi)
    if not detail:
        return fused
    if progress is not None:
        progress.check_stop("the detail")
    levels = levels_for(height, width, work, detail)
    low = gaussian_pyramid(fused, levels)[-1] if work is None else residual(fused, height, width, levels, upsampling)
    detailed = detail_onto(low, images, levels)
    advance(progress, DETAIL_COST * height * width, "detail")
    return detailed


@dataclass
class Fuser:
    """Fuses a list of exposures with a model's stages. ``tile``: "auto", None (untiled) or a side.
    ``progress``: one bar per call (``FusionProgress``): True, False, or None (on a terminal only).
    ``multi``: how three or more exposures are fused (``MULTI``); ``detail``: the finest Laplacian
    levels taken from the exposures (``pyramid.transfer_detail``; 0: the network's own fusion);
    ``work_size``: the long side of the copy the network fuses (``resolution``; None: full size)."""

    stages: Stages
    tile: int | str | None = "auto"
    progress: bool | None = False
    multi: str = DEFAULT_MULTI
    detail: int = DETAIL_LEVELS
    work_size: int | None = WORK_SIZE
    upsampling: str = DEFAULT_UPSAMPLING

    def tile_for(self, height: int, width: int) -> int | None:
        if self.tile != "auto":
            return self.tile
        pad_h, pad_w = padding_to_multiple(height, width)
        return auto_tile(height + pad_h, width + pad_w)

    def network_shape(self, height: int, width: int) -> tuple[int, int]:
        """The size of the network's input for a ``height`` x ``width`` fusion (before padding to 8)."""
        work = work_dims(height, width, self.work_size) if self.detail else None
        return (height, width) if work is None else padded_shape(*work, self.work_size)

    def pair(self, over: np.ndarray, under: np.ndarray, progress: FusionProgress | None = None,
             shape: tuple[int, int] | None = None) -> np.ndarray:
        tile = self.tile_for(*(shape or over.shape[:2]))
        check_memory(*(shape or over.shape[:2]), tile)
        return fuse_pair(self.stages, over, under, tile, progress, shape)

    @staticmethod
    def silent_progress(stop: threading.Event | None) -> FusionProgress | None:
        """No bar, only the ``stop`` check for ``pair`` (None without ``stop``)."""
        return None if stop is None else FusionProgress(0, False, stop=stop)

    def __call__(self, images: Sequence[np.ndarray], stop: threading.Event | None = None) -> np.ndarray:
        """The fusion of ``images`` (``fuse_images``); grey exposures (all of them) give a grey image,
        their fusion's luma. ``stop``, once set, cancels it at the next step (``FusionCancelled``)."""
        check_exposures(images)
        height, width = images[0].shape[:2]
        net_h, net_w = self.network_shape(height, width)
        check_memory(net_h, net_w, self.tile_for(net_h, net_w), extra=self.extra_memory(len(images), height, width))
        if self.progress is False and stop is None:
            fused = self._fuse(images, self.pair, None)
        else:
            pairs = pair_count(len(images), self.multi)
            total = pairs * pair_work(net_h, net_w) + (DETAIL_COST * height * width if self.detail else 0)
            progress = FusionProgress(total, self.progress)
            progress.stop = stop
            try:
                fused = self._fuse(images, functools.partial(self.pair, progress=progress), progress)
            finally:
                progress.close()
        return to_grey(fused) if all(is_grey(image) for image in images) else fused

    def extra_memory(self, count: int, height: int, width: int) -> int:
        """Bytes beyond the pair fusions' own work: the blend of several fusions, then the detail."""
        fusions = pair_count(count, self.multi)
        net_h, net_w = self.network_shape(height, width)
        blend = blend_memory(net_h, net_w, fusions) if self.multi == "blend" and fusions > 1 else 0
        return max(blend, detail_memory(height, width, count, self.detail))

    def _fuse(self, images: Sequence[np.ndarray], pair: Callable[..., np.ndarray],
              progress: FusionProgress | None) -> np.ndarray:
        return fuse_images(pair, images, self.multi, self.detail, self.work_size, self.upsampling, progress)


def load_fuser(path: str | os.PathLike | None = None, tile: int | str | None = "auto", progress: bool | None = False,
               multi: str = DEFAULT_MULTI, detail: int = DETAIL_LEVELS, work_size: int | None = WORK_SIZE) -> Fuser:
    """A callable fusing a list of RGB float32 [0, 1] exposures (any order, one size) into one image.

    ``path``: any model of ``models.load_stages`` (default: the shipped generator); ``multi``: how
    three or more exposures are fused (``MULTI``); ``detail``: the finest levels of detail taken from
    the exposures (``DETAIL_LEVELS``; 0: the network's own fusion); ``work_size``: the long side of the
    copy the network fuses (``resolution.WORK_SIZE``; None: the photos themselves).
    """
    if tile not in ("auto", None):
        check_tile(int(tile))
    fold_order(2, multi)
    check_detail_levels(detail)
    check_work_size(work_size)
    from mefgan_tf.models import load_stages

    return Fuser(load_stages(path), tile, progress, multi, detail, work_size)
