"""``FusionOptions``: every option of a fusion in one value, resolved and validated once.

Every way of fusing (`mefgan fuse`, `serve`, `evaluate`, `export`, the Python API) builds it with
``FusionOptions.resolve`` from what was given (None: not given), so that each option has one default
and one rule; an invalid value is a CommandError naming the command-line option.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.fusion.steps import (
    DEFAULT_MULTI,
    STRATEGIES,
    DetailTransfer,
    FullResolution,
    Step,
    ToneGuard,
    WorkingResolution,
    strategy,
)
from mefgan_tf.fusion.tiles import SIZE_MULTIPLE
from mefgan_tf.pyramid import DETAIL_LEVELS
from mefgan_tf.resolution import DEFAULT_UPSAMPLING, UPSAMPLING, WORK_SIZE, work_problem

MAX_TILE = 65536  # pixels: a tile larger than any image is the whole image
MAX_LEVELS = 16  # pyramid levels: 2^16 pixels across is more than any photo
AUTO = "auto"  # --tile auto: the tile size is chosen from the memory available (``plan.auto_tile``)
FULL, DEFAULT = "full", "default"  # --work-size full: the network on the photos; default: ``WORK_SIZE``


def tile_problem(tile: int) -> str | None:
    """Why ``tile`` cannot be a tile side (None when it can)."""
    if tile < 2 * SIZE_MULTIPLE or tile % SIZE_MULTIPLE or tile > MAX_TILE:
        return f"the tile side must be a multiple of {SIZE_MULTIPLE}, from {2 * SIZE_MULTIPLE} to {MAX_TILE}"
    return None


def detail_problem(levels: int) -> str | None:
    """Why ``levels`` cannot be the detail levels (None when it can)."""
    if not 0 <= levels <= MAX_LEVELS:
        return f"expected 0 (the network's own fusion) to {MAX_LEVELS} levels"
    return None


@dataclass(frozen=True)
class FusionOptions:
    """How a model fuses. ``tile``: "auto" (from the memory available), None (whole image) or a side
    in pixels; ``multi``: how three or more exposures are fused (``steps.STRATEGIES``); ``detail``: the
    finest Laplacian levels taken from the exposures (``pyramid.transfer_detail``; 0: the network's own
    fusion); ``work_size``: the long side of the copy the network fuses (``resolution``; None: the
    photos themselves); ``upsampling``: how that copy's fusion is brought back (``resolution.UPSAMPLING``);
    ``tone_guard``: keep the network's tone from a veil (``tone``; with the detail step only)."""

    tile: int | str | None = AUTO
    multi: str = DEFAULT_MULTI
    detail: int = DETAIL_LEVELS
    work_size: int | None = WORK_SIZE
    upsampling: str = DEFAULT_UPSAMPLING
    tone_guard: bool = True

    def __post_init__(self) -> None:
        checks = (
            ("--tile", self.tile, None if self.tile in (AUTO, None) else tile_problem(int(self.tile))),
            ("--multi", self.multi, None if self.multi in STRATEGIES else f"expected one of {', '.join(STRATEGIES)}"),
            ("--detail-levels", self.detail, detail_problem(self.detail)),
            ("--work-size", self.work_size, None if self.work_size is None else work_problem(self.work_size)),
            ("upsampling", self.upsampling, None if self.upsampling in UPSAMPLING else f"expected one of {', '.join(UPSAMPLING)}"),
        )
        for option, value, problem in checks:
            if problem:
                raise CommandError(f"{option} {value}: {problem}")

    @classmethod
    def resolve(cls, tile: int | str | None = AUTO, multi: str | None = None, detail: int | None = None,
                work_size: int | str | None = DEFAULT, upsampling: str | None = None,
                original_io: bool = False, tone_guard: bool | None = None) -> FusionOptions:
        """The options of what was given: ``tile`` "auto", 0 or None (whole image) or a side; ``multi``
        None for ``DEFAULT_MULTI``; ``detail`` None for ``DETAIL_LEVELS``, or 0 with the authors' test-time
        I/O (``original_io``: their pipeline has no detail transfer); ``work_size`` "default" for
        ``WORK_SIZE``, "full" or None for the photos themselves; ``tone_guard`` None for on."""
        return cls(
            tile=None if tile in (0, None) else tile if tile == AUTO else int(tile),
            multi=DEFAULT_MULTI if multi is None else multi,
            detail=(0 if original_io else DETAIL_LEVELS) if detail is None else detail,
            work_size=WORK_SIZE if work_size == DEFAULT else None if work_size in (FULL, None) else work_size,
            upsampling=DEFAULT_UPSAMPLING if upsampling is None else upsampling,
            tone_guard=True if tone_guard is None else tone_guard,
        )

    def resolution(self) -> FullResolution:
        """The resolution step: the working size applies only where the exposures give the detail."""
        if not self.detail or self.work_size is None:
            return FullResolution()
        return WorkingResolution(self.work_size, self.upsampling)

    def detail_step(self, bands: list[np.ndarray] | None = None) -> DetailTransfer | None:
        """The detail step (None without detail levels); ``bands``: its exposure bands made beforehand."""
        return DetailTransfer(self.detail, self.resolution(), bands) if self.detail else None

    def steps(self, bands: list[np.ndarray] | None = None) -> list[Step]:
        """The steps of a fusion with these options, in order: resolution, strategy, then with the detail
        step the detail and the tone guard (if on); the network alone (no detail) keeps its own tone.
        ``bands``: the detail step's exposure bands, made beforehand (``DetailTransfer.exposure_bands``)."""
        resolution = self.resolution()
        finish = [DetailTransfer(self.detail, resolution, bands)] + ([ToneGuard()] if self.tone_guard else [])
        return [resolution, strategy(self.multi)] + (finish if self.detail else [])


DEFAULT_OPTIONS = FusionOptions()  # what `mefgan fuse` does when given no option
