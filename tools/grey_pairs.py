"""How neutral a generator keeps grey input: the channel spread of its fusion of constant grey pairs.

    python tools/grey_pairs.py MODEL [MODEL ...] [--side 64]

For each constant pair (a, b) with a <= b in {0.1, 0.3, 0.5, 0.7, 0.9}, prints the network's own
output (its mean RGB and the largest channel spread, in 8-bit levels) and the spread after
``Fuser``, which makes the fusion of grey exposures grey (0 by construction).
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

from mefgan_tf.fusion import Fuser, FusionOptions, fuse_pair
from mefgan_tf.images import to_uint8
from mefgan_tf.models import load_stages

LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)


def spreads(model: str, side: int) -> list[tuple[float, float, np.ndarray, int, int]]:
    """(a, b, mean RGB of the network's fusion, its channel spread, the Fuser's spread) per pair."""
    stages = load_stages(model)
    rows = []
    for a, b in itertools.combinations_with_replacement(LEVELS, 2):
        under, over = (np.full((side, side, 3), v, np.float32) for v in (a, b))
        raw = to_uint8(fuse_pair(stages, over, under)).astype(int)
        fused = to_uint8(Fuser(stages, FusionOptions(tile=None))([under, over])).astype(int)
        rows.append((a, b, raw.reshape(-1, 3).mean(0), int(np.ptp(raw, axis=-1).max()), int(np.ptp(fused, axis=-1).max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--side", type=int, default=64)
    args = parser.parse_args()
    for model in args.models:
        rows = spreads(model, args.side)
        print(f"{model}: largest channel spread {max(r[3] for r in rows)} levels (network), {max(r[4] for r in rows)} (fuse)")
        for a, b, mean, raw, fused in rows:
            print(f"  ({a:.1f}, {b:.1f}): RGB {mean.round(0).astype(int).tolist()} spread {raw} -> {fused}")


if __name__ == "__main__":
    main()
