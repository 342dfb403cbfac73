"""Full-resolution fusion speed and memory: seconds per megapixel, peak memory, FLOP/s efficiency.

Pairs of 1, 4 and 12 megapixels (4:3) are fused with the automatic tile size, and untiled where
the whole image fits in the memory the automatic choice plans for. Each case runs in a fresh
process so that its peak resident memory is its own. The achieved FLOP/s (an exact count of the
generator's multiply-adds, attention included) is compared with this machine's float32
matrix-multiply rate.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MEGAPIXELS = (1, 4, 12)
ROOT = Path(__file__).resolve().parents[1]
# Output resolution of each convolution of G, as a divisor of the image side.
CONV_SCALE = {"encoder_conv1": 2, "encoder_conv2": 8, "decoder_conv1": 4, "decoder_conv2": 2}


def photo_shape(megapixels: float) -> tuple[int, int]:
    """A 4:3 (height, width) of about ``megapixels``, both multiples of 8."""
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5 / 8) * 8
    return round(width * 3 / 4 / 8) * 8, width


def generator_flops(generator, height: int, width: int) -> float:
    """Floating-point operations (2 per multiply-add) of one generator call on an H x W pair."""
    from mefgan_tf.layers import ConvUnit

    macs = 0.0
    for layer in generator.layers:
        if isinstance(layer, ConvUnit):
            scale = CONV_SCALE.get(layer.name, 1)
            macs += (height // scale) * (width // scale) * float(np.prod(layer.kernel.shape))
    attention = generator.attention
    n = (height // 8) * (width // 8)
    channels = attention.h.kernel.shape[-1]
    reduced = channels // attention.reduction
    macs += n * channels * (2 * reduced + channels)  # f, g, h projections
    macs += n * n * (reduced + channels)  # scores and weighted sum
    return 2.0 * macs


def matmul_flops_per_second(size: int = 2048, repeats: int = 10) -> float:
    import tensorflow as tf

    a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
    tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def current_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(height: int, width: int, tile: int | None) -> dict:
    """One fusion in this process: stage timings and memory."""
    from mefgan_tf.fusion import ATTENTION_CHUNK, full_resolution, generator_stages, network_input
    from mefgan_tf.generator import build_generator

    generator = build_generator(attention_chunk=ATTENTION_CHUNK)
    stages = generator_stages(generator)
    rng = np.random.default_rng(0)
    scene = rng.random((height // 16 + 1, width // 16 + 1, 3), dtype=np.float32)
    scene = np.repeat(np.repeat(scene, 16, 0), 16, 1)[:height, :width]
    over, under = np.clip(scene * 1.7, 0, 1), scene * 0.3
    warm = network_input(over[:64, :64], under[:64, :64])
    full_resolution(stages, warm, stages.attention_half(warm).numpy(), 32)  # trace both stages
    baseline = current_rss()
    start = time.perf_counter()
    x = network_input(over, under)
    half = stages.attention_half(x).numpy()
    middle = time.perf_counter()
    full_resolution(stages, x, half, tile)
    end = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "attention_seconds": round(middle - start, 2),
        "full_resolution_seconds": round(end - middle, 2),
        "seconds": round(end - start, 2),
        "peak_rss_gb": round(peak / 1e9, 2),
        "rss_growth_gb": round((peak - baseline) / 1e9, 2),
        "flops": generator_flops(generator, *x.shape[1:3]),
    }


def measure_in_child(height: int, width: int, tile: int | None) -> dict:
    command = [sys.executable, "-m", "benchmarks.bench_fusion", str(height), str(width), str(tile or 0)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run() -> dict:
    from mefgan_tf.fusion import BYTES_PER_PIXEL, MEMORY_FRACTION, auto_tile, available_memory

    matmul_rate = matmul_flops_per_second()
    report = {"matmul_gflops": round(matmul_rate / 1e9, 1), "cases": []}
    for megapixels in MEGAPIXELS:
        height, width = photo_shape(megapixels)
        tiles = [auto_tile(height, width)]
        if height * width * BYTES_PER_PIXEL <= MEMORY_FRACTION * available_memory() and tiles[0] is not None:
            tiles.append(None)
        for tile in tiles:
            case = measure_in_child(height, width, tile)
            flops = case.pop("flops")
            report["cases"].append(
                {
                    "megapixels": round(height * width / 1e6, 2),
                    "size": f"{width}x{height}",
                    "tile": tile or "untiled",
                    **case,
                    "seconds_per_megapixel": round(case["seconds"] / (height * width / 1e6), 2),
                    "gflop": round(flops / 1e9, 1),
                    "achieved_gflops": round(flops / case["seconds"] / 1e9, 1),
                    "fraction_of_matmul_rate": round(flops / case["seconds"] / matmul_rate, 3),
                }
            )
            print(json.dumps(report["cases"][-1]), flush=True)
    return report


if __name__ == "__main__":
    h, w, t = (int(v) for v in sys.argv[1:4])
    print(json.dumps(measure(h, w, t or None)))
