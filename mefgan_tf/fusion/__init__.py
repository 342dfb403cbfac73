"""Fusion at any size with bounded memory, from a model's stages (``stages.Stages``) and one
``FusionOptions``.

* ``tiles``: the network on one pair, exact and tiled (``fuse_pair``);
* ``steps``: the steps of a fusion, each with its plan and call: the strategies of ``--multi``
  (``STRATEGIES``), the resolution the network fuses at, the detail transfer;
* ``options``: ``FusionOptions``, every option resolved and validated once;
* ``plan``: what a fusion costs (``Plan``) and whether it fits in memory;
* ``progress``: one progress bar per fusion, and its cancellation;
* ``fuser``: ``fuse_images`` (the one reference of a fusion) and ``Fuser``.

Loading a model is ``models.load_fuser``'s: importing this package loads neither TensorFlow nor a
model loader.
"""
from __future__ import annotations

from mefgan_tf.fusion.fuser import Fuser, exposure_bands, fuse_images
from mefgan_tf.fusion.options import DEFAULT_OPTIONS, FusionOptions, tile_problem
from mefgan_tf.fusion.plan import Plan, auto_tile, check_memory, memory_needed
from mefgan_tf.fusion.progress import FusionCancelled, FusionProgress
from mefgan_tf.fusion.steps import DEFAULT_MULTI, MULTI, STRATEGIES, Strategy, check_exposures, strategy
from mefgan_tf.fusion.tiles import (
    SIZE_MULTIPLE,
    attention_maps,
    crop_to_multiple,
    full_resolution,
    fuse_pair,
    network_input,
    pad_to_multiple,
    tile_grid,
)

__all__ = [
    "DEFAULT_MULTI", "DEFAULT_OPTIONS", "MULTI", "SIZE_MULTIPLE", "STRATEGIES", "FusionCancelled", "FusionOptions", "FusionProgress",
    "Fuser", "Plan", "Strategy", "attention_maps", "auto_tile", "check_exposures", "check_memory", "crop_to_multiple",
    "exposure_bands", "full_resolution", "fuse_images", "fuse_pair", "memory_needed", "network_input", "pad_to_multiple", "strategy",
    "tile_grid", "tile_problem",
]
