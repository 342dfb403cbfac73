"""The steps of a fusion, each an object with its plan (pairs, memory, work) and its call.

* a strategy (``--multi``, ``STRATEGIES``): how a pair model fuses two or more exposures, sorted by
  mean luminance: folded in turn in an order (the paper folds from the two darkest up), or ``Blend``:
  each frame fused with the middle one and the fusions blended where each one's other frame is well
  exposed (the default); in every pair the brighter image (mean BT.601 luma) is the over-exposed
  input (the rules of ``scenes``);
* the resolution the network fuses at (``FullResolution``, ``WorkingResolution``: a photo larger
  than the working size is fused as a downscaled copy, its fusion giving only the coarse levels);
* the detail transfer (``DetailTransfer``): the exposures' own fine detail onto the fusion (``pyramid``),
  then the tone guard (``ToneGuard``, ``tone``).

A new strategy is a ``Strategy`` subclass and one line of ``STRATEGIES``; ``Fuser`` adds up the plans
of the steps ``FusionOptions.steps`` gives.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.fusion.plan import Plan
from mefgan_tf.fusion.progress import FusionProgress, advance, check_stop
from mefgan_tf.fusion.tiles import FusePair, pair_work
from mefgan_tf.pyramid import (
    DETAIL_COST,
    blend_memory,
    detail_bands,
    detail_memory,
    detail_onto,
    detail_strip_rows,
    exposure_weight,
    gaussian_pyramid,
    pyramid_blend,
)
from mefgan_tf.resolution import downscale, levels_for, padded_shape, residual, work_dims
from mefgan_tf.scenes import exposure_order, middle, over_under
from mefgan_tf.tone import tone_guard


@dataclass(frozen=True)
class Sizes:
    """The sizes a fusion's steps plan with: ``frames`` exposures of ``height`` x ``width`` whose
    pairs the network fuses at ``network`` (height, width; before padding to multiples of 8)."""

    frames: int
    height: int
    width: int
    network: tuple[int, int]


class Step(Protocol):
    def plan(self, sizes: Sizes) -> Plan: ...


def check_exposures(images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> None:
    """CommandError unless there are at least two RGB exposures of one size."""
    names = list(names) if names is not None else [f"exposure {i + 1}" for i in range(len(images))]
    if len(images) < 2:
        raise CommandError(f"need at least two exposures to fuse, got {len(images)}")
    sizes = [image.shape[:2] for image in images]
    if len(set(sizes)) > 1:
        listed = ", ".join(f"{n} {s[1]}x{s[0]}" for n, s in zip(names, sizes))
        raise CommandError(f"exposures differ in size: {listed}")


# ---------------------------------------------------------------------------------------- strategies
class Strategy:
    """How a pair model fuses ``count`` exposures ordered darkest first: a fold of them in ``order``
    (ranks, 0 darkest), each new one fused with the fusion so far. Subclasses give ``order`` and may
    replace ``combine`` (and ``memory``, what ``combine`` holds beyond the pair fusions). ``summary``:
    what it does, in the help of ``--multi``."""

    summary: ClassVar[str]

    def order(self, count: int) -> list[int]:
        raise NotImplementedError

    def pairs(self, count: int) -> int:
        """How many pair fusions ``self`` makes of ``count`` exposures."""
        return len(self.order(count)) - 1

    def memory(self, sizes: Sizes) -> int:
        return 0

    def plan(self, sizes: Sizes) -> Plan:
        pairs = self.pairs(sizes.frames)
        return Plan(pairs, self.memory(sizes), pairs * pair_work(*sizes.network))

    def __call__(self, pair: FusePair, images: Sequence[np.ndarray]) -> np.ndarray:
        """The fusion of ``images`` (any order) with ``pair(over, under)``."""
        check_exposures(images)
        ordered = [images[i] for i in exposure_order(images)]
        return self.combine(pair, [ordered[rank] for rank in self.order(len(ordered))])

    def combine(self, pair: FusePair, images: Sequence[np.ndarray]) -> np.ndarray:
        """The fold of ``images`` (in this strategy's order); in each pair the brighter is over-exposed."""
        fused = images[0]
        for image in images[1:]:
            fused = pair(*over_under(image, fused))
        return fused


class DarkestFirst(Strategy):
    """Folded in from the darkest up (the paper's way)."""

    summary = "folded in by exposure from the darkest up"

    def order(self, count: int) -> list[int]:
        return list(range(count))


class BrightestFirst(Strategy):
    """Folded in from the brightest down."""

    summary = "folded in from the brightest down"

    def order(self, count: int) -> list[int]:
        return list(range(count - 1, -1, -1))


class Extremes(Strategy):
    """Only the darkest with the brightest."""

    summary = "only the darkest with the brightest"

    def order(self, count: int) -> list[int]:
        return [0, count - 1] if count > 1 else [0]


class MiddleOut(Strategy):
    """Folded in from the middle one outwards: then alternately the next darker and the next brighter."""

    summary = "folded in from the middle one outwards"

    def order(self, count: int) -> list[int]:
        m = middle(count)
        darker, brighter = list(range(m - 1, -1, -1)), list(range(m + 1, count))
        return [m] + [i for pair in itertools.zip_longest(darker, brighter) for i in pair if i is not None]


class Blend(MiddleOut):
    """Each frame fused with the middle one (``MiddleOut``'s order), the fusions blended in a
    Laplacian pyramid, each weighted where the frame it brought is well exposed (Mertens's weights).
    Each fusion is of two source frames, so none inherits another's drift in tone, as a fold does;
    the fusions are made one at a time into the pyramid, so only one is held."""

    summary = ("each frame fused with the middle one, the fusions blended, each where the frame it brought is well "
               "exposed (Mertens's weights)")

    def memory(self, sizes: Sizes) -> int:
        fusions = self.pairs(sizes.frames)
        return blend_memory(*sizes.network, fusions) if fusions > 1 else 0

    def combine(self, pair: FusePair, images: Sequence[np.ndarray]) -> np.ndarray:
        fused = (pair(*over_under(image, images[0])) for image in images[1:])
        if len(images) == 2:
            return next(fused)
        return pyramid_blend(fused, [exposure_weight(image) for image in images[1:]])


# The ways of ``--multi``: name -> strategy .
STRATEGIES: dict[str, type[Strategy]] = {
    "darkest-first": DarkestFirst,
    "middle-out": MiddleOut,
    "brightest-first": BrightestFirst,
    "extremes": Extremes,
    "blend": Blend,
}
MULTI = tuple(STRATEGIES)  # the names of ``--multi``
DEFAULT_MULTI = "blend"  # the best on MEF-SSIM against all frames of the held-out scenes, and the least washed out


def strategy(multi: str) -> Strategy:
    """The strategy ``multi`` names (``STRATEGIES``); CommandError for an unknown name."""
    if multi not in STRATEGIES:
        raise CommandError(f"unknown way to fuse several exposures {multi!r}; expected one of {', '.join(STRATEGIES)}")
    return STRATEGIES[multi]()


# ---------------------------------------------------------------------------------------- resolution
class FullResolution:
    """The network fuses the photos themselves; the detail transfer starts from its fusion's pyramid."""

    def network_shape(self, height: int, width: int) -> tuple[int, int]:
        return height, width

    def plan(self, sizes: Sizes) -> Plan:
        return Plan()

    def levels(self, height: int, width: int, detail: int) -> int:
        return levels_for(height, width, None, detail)

    def __call__(self, pair: Callable[..., np.ndarray], images: Sequence[np.ndarray]) -> tuple[FusePair, list[np.ndarray]]:
        """(pair, images) as the strategy fuses them: unchanged."""
        return pair, list(images)

    def low(self, fused: np.ndarray, height: int, width: int, levels: int) -> np.ndarray:
        """The low-pass residual after ``levels`` halvings of the network's fusion."""
        return gaussian_pyramid(fused, levels)[-1]


@dataclass(frozen=True)
class WorkingResolution(FullResolution):
    """The network fuses area-downscaled copies of photos larger than ``size`` (``resolution``), padded
    to one of a few shapes; its fusion gives only the low-pass residual, brought back by ``upsampling``."""

    size: int
    upsampling: str

    def work(self, height: int, width: int) -> tuple[int, int] | None:
        return work_dims(height, width, self.size)

    def network_shape(self, height: int, width: int) -> tuple[int, int]:
        work = self.work(height, width)
        return (height, width) if work is None else padded_shape(*work, self.size)

    def levels(self, height: int, width: int, detail: int) -> int:
        return levels_for(height, width, self.work(height, width), detail)

    def __call__(self, pair: Callable[..., np.ndarray], images: Sequence[np.ndarray]) -> tuple[FusePair, list[np.ndarray]]:
        """(pair, images) as the strategy fuses them: the copies, and the pair taking them at their padded shape."""
        work = self.work(*images[0].shape[:2])
        if work is None:
            return pair, list(images)
        return functools.partial(pair, shape=padded_shape(*work, self.size)), [downscale(image, work) for image in images]

    def low(self, fused: np.ndarray, height: int, width: int, levels: int) -> np.ndarray:
        if self.work(height, width) is None:
            return super().low(fused, height, width, levels)
        return residual(fused, height, width, levels, self.upsampling)


# ------------------------------------------------------------------------------------------ tone
@dataclass(frozen=True)
class ToneGuard:
    """The finished fusion bent by one global curve, in place, where its tone is worse than the
    classical fusion's by more than a margin: lifted blacks, a darker scene with no more contrast,
    paler colours (``tone``); the fusion is measured on a preview, against Mertens's fusion
    (``tone.tone_reference``)."""

    def plan(self, sizes: Sizes) -> Plan:
        return Plan(0, TONE_BYTES_PER_PIXEL * sizes.height * sizes.width, 0.0)

    def __call__(self, fused: np.ndarray, images: Sequence[np.ndarray], progress: FusionProgress | None) -> np.ndarray:
        check_stop(progress, "the tone")
        curve = tone_guard(fused, images)
        return fused if curve.identity else curve(fused, in_place=True)


TONE_BYTES_PER_PIXEL = 16  # the chroma step's grey image and its three-channel form, float32


# ---------------------------------------------------------------------------------------- detail
@dataclass(frozen=True)
class DetailTransfer:
    """The ``levels`` finest Laplacian levels (more where the network fused a smaller copy) taken from
    the exposures, each from where it is well exposed (``pyramid.detail_onto``); the rest from the fusion."""

    levels: int
    resolution: FullResolution
    bands: list[np.ndarray] | None = field(default=None, compare=False, repr=False)  # ``bands`` made beforehand

    def plan(self, sizes: Sizes) -> Plan:
        return Plan(0, detail_memory(sizes.height, sizes.width, sizes.frames, self.levels),
                    DETAIL_COST * sizes.height * sizes.width)

    def levels_of(self, images: Sequence[np.ndarray]) -> int:
        return self.resolution.levels(*images[0].shape[:2], self.levels)

    def exposure_bands(self, images: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """What this step takes from the exposures (``pyramid.detail_bands``): no model needed, so a
        caller may make it while the model loads, and give it to ``fuse_images`` (used once). None
        where the step goes in strips (``pyramid.detail_onto``): their bands are made one at a time."""
        height, width = images[0].shape[:2]
        levels = self.levels_of(images)
        return detail_bands(images, levels) if detail_strip_rows(height, width, levels) >= height else None

    def __call__(self, fused: np.ndarray, images: Sequence[np.ndarray], progress: FusionProgress | None) -> np.ndarray:
        check_stop(progress, "the detail")
        height, width = images[0].shape[:2]
        levels = self.levels_of(images)
        detailed = detail_onto(self.resolution.low(fused, height, width, levels), images, levels, self.bands)
        advance(progress, DETAIL_COST * height * width, "detail")
        return detailed
