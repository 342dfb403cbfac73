"""What a fusion will cost before it starts: each step's ``Plan`` (pairs, memory, work), the pair
fusions' own memory by tile size (``memory_needed``, ``auto_tile``) and the check that it fits
(``check_memory``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from mefgan_tf.errors import CommandError
from mefgan_tf.fusion.tiles import SIZE_MULTIPLE, full_res_halo, padded
from mefgan_tf.memory import available_memory

# Peak bytes per pixel of untiled full-resolution blocks on CPU (measured ~3.2 KB at 0.5-1 MP).
BYTES_PER_PIXEL = 3400
# Peak bytes per padded pixel of what is held for the whole image however it is tiled: the 6-channel
# input, the attention branch (its encoder runs on the whole image), its half-size maps and the
# output (measured on CPU: 53-101 B/px from 1 to 9 MP, rising with size; planned with headroom).
WHOLE_IMAGE_BYTES_PER_PIXEL = 160
MEMORY_FRACTION = 0.5  # share of the available memory that the automatic tile size plans for
# Tiles of ~512 px run faster than whole images (cache-friendly; see benchmarks/bench_fusion.py),
# so the automatic choice never exceeds this side even when memory would allow more.
PREFERRED_TILE, MIN_TILE = 512, 64


@dataclass(frozen=True)
class Plan:
    """What one step of a fusion costs: the pair fusions it makes, the bytes it holds beyond its
    inputs and the pair fusions' own work, and its work in progress units (full-resolution pixels
    of the network, ``progress.FusionProgress``) beside its pairs'. Steps run one after another, so
    plans add up pairs and work and keep the largest memory."""

    pairs: int = 0
    memory: int = 0
    work: float = 0.0

    def __add__(self, other: Plan) -> Plan:
        return Plan(self.pairs + other.pairs, max(self.memory, other.memory), self.work + other.work)


def auto_tile(height: int, width: int, available: int | None = None) -> int | None:
    """The tile side for a padded ``height`` x ``width`` image: ``PREFERRED_TILE``, or less where a
    tile plus its halo would not fit in ``MEMORY_FRACTION`` of the available memory; None (untiled)
    when one tile covers the image."""
    budget = MEMORY_FRACTION * (available_memory() if available is None else available)
    fitting = int(math.sqrt(budget / BYTES_PER_PIXEL)) - 2 * full_res_halo()
    tile = max(MIN_TILE, min(PREFERRED_TILE, fitting // SIZE_MULTIPLE * SIZE_MULTIPLE))
    return None if tile >= height and tile >= width else tile


def memory_needed(height: int, width: int, tile: int | None) -> int:
    """Bytes a pair fusion of a padded ``height`` x ``width`` image needs beyond its inputs: the
    whole-image part plus one tile (grown by the halo) or, untiled, the whole image's blocks."""
    pixels = height * width
    if tile is None or (tile >= height and tile >= width):
        return (WHOLE_IMAGE_BYTES_PER_PIXEL + BYTES_PER_PIXEL) * pixels
    halo = full_res_halo()
    grown = (min(tile, height) + 2 * halo) * (min(tile, width) + 2 * halo)
    return WHOLE_IMAGE_BYTES_PER_PIXEL * pixels + BYTES_PER_PIXEL * grown


def check_memory(height: int, width: int, tile: int | None, available: int | None = None, extra: int = 0) -> None:
    """CommandError, before any work, when fusing a ``height`` x ``width`` pair (and ``extra`` bytes
    more, which grow with the image's area) cannot fit in the available memory: what it needs, what
    there is, and what would fit."""
    padded_h, padded_w = padded(height, width)
    needed = memory_needed(padded_h, padded_w, tile) + extra
    available = available_memory() if available is None else available
    if needed <= available:
        return
    tiled = memory_needed(padded_h, padded_w, MIN_TILE) + extra
    if tiled <= available:
        advice = f"fuse in tiles (--tile {PREFERRED_TILE}, or the default --tile auto)"
    else:
        scale = math.sqrt(available / tiled)
        advice = f"resize the exposures (about {int(width * scale)}x{int(height * scale)} would fit) or free memory"
    raise CommandError(
        f"fusing {width}x{height} needs about {needed / 2**30:.1f} GiB of memory, but {available / 2**30:.1f} GiB "
        f"are available: {advice}"
    )
