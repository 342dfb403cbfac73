"""A whole fusion: ``fuse_images``, the one reference of what a fusion is, and ``Fuser``, which runs it
with a model's stages after planning its memory and progress from the steps' plans."""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mefgan_tf.fusion.options import AUTO, DEFAULT_OPTIONS, FusionOptions
from mefgan_tf.fusion.plan import Plan, auto_tile, check_memory
from mefgan_tf.fusion.progress import FusionProgress
from mefgan_tf.fusion.steps import Sizes, check_exposures
from mefgan_tf.fusion.tiles import fuse_pair, padded
from mefgan_tf.images import is_grey, to_grey
from mefgan_tf.stages import Stages


def fuse_images(pair: Callable[..., np.ndarray], images: Sequence[np.ndarray], options: FusionOptions = DEFAULT_OPTIONS,
                progress: FusionProgress | None = None, bands: list[np.ndarray] | None = None) -> np.ndarray:
    """The fusion of ``images`` (RGB float32 [0, 1], one size, any order) that every way of fusing gives
    (`mefgan fuse`, `serve`, `evaluate`, the API), with any pair model: ``pair(over, under, shape=None)``
    fuses two images of one size and returns that size; where ``shape`` is given, the pair is a
    working copy that the model takes reflect-padded at the bottom and right to ``shape``.

    With detail levels and a photo larger than the working size (``resolution``), the network fuses
    area-downscaled copies (``options.multi`` for three or more) and its fusion gives only the low-pass
    residual; the exposures give every finer level. Otherwise the network fuses the photos themselves
    and the exposures give ``options.detail`` levels (0: the network's own fusion). An app that runs a
    LiteRT file does the same: this function is its reference. ``progress`` is checked for a stop
    before each finishing step (detail, tone) and advanced by it. ``bands``: ``exposure_bands(images,
    options)`` made beforehand (while the model loaded), used up here."""
    resolution, strategy, *finish = options.steps(bands)
    fused = strategy(*resolution(pair, images))
    for step in finish:
        fused = step(fused, images, progress)
    return fused


def exposure_bands(images: Sequence[np.ndarray], options: FusionOptions = DEFAULT_OPTIONS) -> list[np.ndarray] | None:
    """What a fusion of ``images`` takes from the exposures alone, the detail step's bands
    (``steps.DetailTransfer.exposure_bands``; None without detail levels): made without a model, so
    `mefgan fuse` makes them while TensorFlow starts, then gives them to ``Fuser`` (used once)."""
    step = options.detail_step()
    return None if step is None else step.exposure_bands(images)


@dataclass
class Fuser:
    """Fuses a list of exposures with a model's stages as ``options`` say. ``progress``: one bar per
    call (``FusionProgress``): True, False, or None (on a terminal only)."""

    stages: Stages
    options: FusionOptions = field(default_factory=FusionOptions)
    progress: bool | None = False

    def tile_for(self, height: int, width: int) -> int | None:
        if self.options.tile != AUTO:
            return self.options.tile
        return auto_tile(*padded(height, width))

    def sizes(self, images: Sequence[np.ndarray]) -> Sizes:
        height, width = images[0].shape[:2]
        return Sizes(len(images), height, width, self.options.resolution().network_shape(height, width))

    def plan(self, sizes: Sizes) -> Plan:
        """The fusion's plan: its steps' plans added up."""
        return sum((step.plan(sizes) for step in self.options.steps()), Plan())

    def pair(self, over: np.ndarray, under: np.ndarray, progress: FusionProgress | None = None,
             shape: tuple[int, int] | None = None) -> np.ndarray:
        tile = self.tile_for(*(shape or over.shape[:2]))
        check_memory(*(shape or over.shape[:2]), tile)
        return fuse_pair(self.stages, over, under, tile, progress, shape)

    @staticmethod
    def silent_progress(stop: threading.Event | None) -> FusionProgress | None:
        """No bar, only the ``stop`` check for ``pair`` (None without ``stop``)."""
        return None if stop is None else FusionProgress(0, False, stop=stop)

    def __call__(self, images: Sequence[np.ndarray], stop: threading.Event | None = None,
                 bands: list[np.ndarray] | None = None) -> np.ndarray:
        """The fusion of ``images`` (``fuse_images``); grey exposures (all of them) give a grey image,
        their fusion's luma. ``stop``, once set, cancels it at the next step (``FusionCancelled``).
        ``bands``: ``exposure_bands(images, self.options)`` made beforehand (used up)."""
        check_exposures(images)
        sizes = self.sizes(images)
        plan = self.plan(sizes)
        check_memory(*sizes.network, self.tile_for(*sizes.network), extra=plan.memory)
        if self.progress is False and stop is None:
            fused = fuse_images(self.pair, images, self.options, bands=bands)
        else:
            progress = FusionProgress(plan.work, self.progress, stop=stop)
            try:
                fused = fuse_images(functools.partial(self.pair, progress=progress), images, self.options, progress, bands)
            finally:
                progress.close()
        return to_grey(fused) if all(is_grey(image) for image in images) else fused

