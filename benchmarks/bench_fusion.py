"""Full-resolution fusion speed and memory, with the attention and the convolutions apart.

Pairs of 1, 4, 12 and 24 megapixels (4:3) are fused by the shipped generator (random weights
if it is absent: the attention's speed depends a little on the scores) with the automatic tile
size (and untiled where the whole image fits in the memory the automatic choice plans for),
attention "flash". At
12 and 24 MP the attention stage is also run with the earlier row-wise softmax ("rows") for
comparison; its full-resolution stage is the same code and is not repeated. Each case runs in a
fresh process so that its peak resident memory is its own.

For each stage: seconds, exact floating-point operations (2 per multiply-add), achieved GFLOP/s
and the fraction of this machine's float32 matrix-multiply rate. The attention stage is the whole
attention branch (its small encoder and decoder convolutions included); its ``n²(C/4 + C)``
score and weighting products are nearly all of it. The report warns when other processes used the
CPU (from /proc/stat, whatever the load average says) before the benchmark or while a case ran:
such figures can be off by 2.5x.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MEGAPIXELS = (1, 4, 12, 24)
COMPARED = (12, 24)  # sizes whose attention is also timed with method "rows"
ROWS_CHUNK = 256  # the query block the row-wise attention used as the fusion default
BUSY_CORES = 0.1  # CPU of other processes (in cores, averaged over a case) above which a case is flagged
BUSY_SAMPLE_SECONDS = 3.0  # how long the machine is watched before the benchmark starts
ROOT = Path(__file__).resolve().parents[1]
# Output resolution of each convolution of G, as a divisor of the image side.
CONV_SCALE = {"encoder_conv1": 2, "encoder_conv2": 8, "decoder_conv1": 4, "decoder_conv2": 2}
ATTENTION_BRANCH = tuple(CONV_SCALE)


def photo_shape(megapixels: float) -> tuple[int, int]:
    """A 4:3 (height, width) of about ``megapixels``, both multiples of 8."""
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5 / 8) * 8
    return round(width * 3 / 4 / 8) * 8, width


def generator_flops(generator, height: int, width: int) -> dict[str, float]:
    """Floating-point operations (2 per multiply-add) of one generator call on an H x W pair:
    ``attention`` (the whole attention branch) and ``convolutions`` (the full-resolution blocks)."""
    from mefgan_tf.layers import ConvUnit

    macs = {"attention": 0.0, "convolutions": 0.0}
    for layer in generator.layers:
        if isinstance(layer, ConvUnit):
            scale = CONV_SCALE.get(layer.name, 1)
            stage = "attention" if layer.name in ATTENTION_BRANCH else "convolutions"
            macs[stage] += (height // scale) * (width // scale) * float(np.prod(layer.kernel.shape))
    attention = generator.attention
    n = (height // 8) * (width // 8)
    channels = attention.h.kernel.shape[-1]
    reduced = channels // attention.reduction
    macs["attention"] += n * channels * (2 * reduced + channels)  # f, g, h projections
    macs["attention"] += n * n * (reduced + channels)  # scores and weighted sum
    return {stage: 2.0 * value for stage, value in macs.items()}


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


def busy_cpu_seconds() -> float:
    """CPU seconds all processes have used since boot (/proc/stat), for telling others' load apart."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def scene_pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scene = rng.random((height // 16 + 1, width // 16 + 1, 3), dtype=np.float32)
    scene = np.repeat(np.repeat(scene, 16, 0), 16, 1)[:height, :width]
    return np.clip(scene * 1.7, 0, 1), scene * 0.3


def benchmark_generator(chunk: int, method: str):
    """The shipped generator if present, else a randomly initialised one."""
    from mefgan_tf.checkpoint import load_generator
    from mefgan_tf.generator import build_generator
    from mefgan_tf.models import DEFAULT_MODEL

    if not DEFAULT_MODEL.exists():
        return build_generator(attention_chunk=chunk, attention_method=method)
    generator = load_generator(DEFAULT_MODEL, attention_chunk=chunk)
    generator.attention.method = method  # "rows": the row-by-row softmax, compared here only
    return generator


def others_cores(action) -> float:
    """Cores that processes other than this one and its children used while ``action()`` ran."""
    busy, own, start = busy_cpu_seconds(), children_cpu_seconds() + self_cpu_seconds(), time.perf_counter()
    action()
    wall = time.perf_counter() - start
    others = (busy_cpu_seconds() - busy) - (children_cpu_seconds() + self_cpu_seconds() - own)
    return max(0.0, others / wall)


def measure(height: int, width: int, tile: int | None, method: str) -> dict:
    """One fusion in this process (the attention stage only for method "rows"): timings and memory."""
    from mefgan_tf.config import ATTENTION_BLOCKS
    from mefgan_tf.fusion import attention_maps, full_resolution, network_input
    from mefgan_tf.stages import generator_stages

    generator = benchmark_generator(ATTENTION_BLOCKS.inference if method == "flash" else ROWS_CHUNK, method)
    stages = generator_stages(generator)
    over, under = scene_pair(height, width)
    warm = network_input(over[:192, :192], under[:192, :192])  # 576 rows > a block: traces every stage
    full_resolution(stages, warm, attention_maps(stages, warm), 32)
    baseline = current_rss()
    start = time.perf_counter()
    x = network_input(over, under)
    half = attention_maps(stages, x)
    middle = time.perf_counter()
    if method == "flash":
        full_resolution(stages, x, half, tile)
    end = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "attention_seconds": middle - start,
        "convolution_seconds": end - middle,
        "peak_rss_gb": round(peak / 1e9, 2),
        "rss_growth_gb": round((peak - baseline) / 1e9, 2),
        "flops": generator_flops(generator, *x.shape[1:3]),
    }


def measure_in_child(height: int, width: int, tile: int | None, method: str) -> tuple[dict, float]:
    """``measure`` in a fresh process, and the CPU (in cores) other processes used meanwhile."""
    command = [sys.executable, "-m", "benchmarks.bench_fusion", str(height), str(width), str(tile or 0), method]
    results = []
    others = others_cores(lambda: results.append(subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)))
    return json.loads(results[0].stdout.strip().splitlines()[-1]), others


def stage_report(seconds: float, flops: float, matmul_rate: float) -> dict:
    return {
        "seconds": round(seconds, 2),
        "gflop": round(flops / 1e9, 1),
        "achieved_gflops": round(flops / seconds / 1e9, 1),
        "fraction_of_matmul_rate": round(flops / seconds / matmul_rate, 3),
    }


def case_report(height: int, width: int, tile: int | None, method: str, matmul_rate: float) -> dict:
    measured, others = measure_in_child(height, width, tile, method)
    flops = measured.pop("flops")
    megapixels = height * width / 1e6
    report = {
        "megapixels": round(megapixels, 2),
        "size": f"{width}x{height}",
        "attention_method": method,
        "tile": (tile or "untiled") if method == "flash" else "attention only",
        "attention": stage_report(measured.pop("attention_seconds"), flops["attention"], matmul_rate),
    }
    convolution_seconds = measured.pop("convolution_seconds")
    if method == "flash":
        report["convolutions"] = stage_report(convolution_seconds, flops["convolutions"], matmul_rate)
        total = report["attention"]["seconds"] + convolution_seconds
        report.update(seconds=round(total, 2), seconds_per_megapixel=round(total / megapixels, 2))
    report.update(measured, other_processes_cores=round(others, 2))
    if others > BUSY_CORES:
        report["warning"] = f"other processes used {others:.2f} cores while this ran: figures are not reliable"
    return report


def block_profile(rate: float, repeats: int = 200) -> dict:
    """Nanoseconds per attention score of each operation of one ``flash_attention`` block step
    (ATTENTION_BLOCKS.inference x ATTENTION_BLOCKS.keys scores), each alone in a loop: where the attention's time goes,
    and the fraction of the matmul rate that the three together allow."""
    import tensorflow as tf

    from mefgan_tf.config import ATTENTION_BLOCKS
    from mefgan_tf.generator import ATTENTION_CHANNELS, ATTENTION_REDUCTION

    rng = np.random.default_rng(0)
    reduced = ATTENTION_CHANNELS // ATTENTION_REDUCTION
    query = tf.constant(rng.normal(size=(ATTENTION_BLOCKS.inference, reduced + 1)).astype(np.float32))
    keys = tf.constant(rng.normal(size=(reduced + 1, ATTENTION_BLOCKS.keys)).astype(np.float32) * 0.3)
    values = tf.constant(rng.normal(size=(ATTENTION_BLOCKS.keys, ATTENTION_CHANNELS + 1)).astype(np.float32))
    scores = tf.matmul(query, keys) - 10.0
    steps = {  # each reads an input made fresh per iteration (so nothing is hoisted out of the loop)
        "score_product": lambda i: tf.matmul(query + i, keys),
        "exp": lambda i: tf.exp(scores + i),
        "weighting_product": lambda i: tf.matmul(scores + i, values),
        "fresh_scores_only": lambda i: scores + i,
    }
    seconds = {}
    for name, step in steps.items():
        loop = tf.function(lambda step=step: tf.while_loop(
            lambda i, total: i < repeats, lambda i, total: (i + 1, total + step(tf.cast(i, tf.float32) * 1e-9)[0, 0]), (0, 0.0)
        ))
        loop()
        start = time.perf_counter()
        loop()
        seconds[name] = (time.perf_counter() - start) / repeats / (ATTENTION_BLOCKS.inference * ATTENTION_BLOCKS.keys) * 1e9
    fresh = seconds.pop("fresh_scores_only")  # the exp and the weighting product read a fresh block of scores
    net = {name: value if name == "score_product" else max(0.0, value - fresh) for name, value in seconds.items()}
    flops = 2.0 * ATTENTION_CHANNELS * (1 + 1 / ATTENTION_REDUCTION)  # per score, as generator_flops counts
    return {
        "block": f"{ATTENTION_BLOCKS.inference}x{ATTENTION_BLOCKS.keys}",
        "ns_per_score": {name: round(value, 3) for name, value in net.items()},
        "fraction_of_matmul_rate_these_allow": round(flops / (sum(net.values()) * 1e-9) / rate, 3),
    }


def benchmark_weights_shipped() -> bool:
    from mefgan_tf.models import DEFAULT_MODEL

    return DEFAULT_MODEL.exists()


def cases() -> list[tuple[int, int, int | None, str]]:
    from mefgan_tf.fusion.plan import BYTES_PER_PIXEL, MEMORY_FRACTION, auto_tile, available_memory

    planned = []
    for megapixels in MEGAPIXELS:
        height, width = photo_shape(megapixels)
        tile = auto_tile(height, width)
        planned.append((height, width, tile, "flash"))
        if tile is not None and height * width * BYTES_PER_PIXEL <= MEMORY_FRACTION * available_memory():
            planned.append((height, width, None, "flash"))
        if megapixels in COMPARED:
            planned.append((height, width, tile, "rows"))
    return planned


def run() -> dict:
    before = others_cores(lambda: time.sleep(BUSY_SAMPLE_SECONDS))
    report = {
        "load_average_before": round(os.getloadavg()[0], 2),
        "other_processes_cores_before": round(before, 2),
        "weights": "shipped" if benchmark_weights_shipped() else "random",
        "matmul_gflops": round(matmul_flops_per_second() / 1e9, 1),
        "cases": [],
    }
    if before > BUSY_CORES:
        report["warning"] = f"other processes used {before:.2f} cores before the benchmark: figures are not reliable"
        print(f"[bench] warning: {report['warning']}", file=sys.stderr, flush=True)
    report["attention_block_profile"] = block_profile(report["matmul_gflops"] * 1e9)
    print(json.dumps(report["attention_block_profile"]), flush=True)
    for height, width, tile, method in cases():
        case = case_report(height, width, tile, method, report["matmul_gflops"] * 1e9)
        report["cases"].append(case)
        if "warning" in case:
            print(f"[bench] warning: {case['size']}: {case['warning']}", file=sys.stderr, flush=True)
        print(json.dumps(case), flush=True)
    return report


if __name__ == "__main__":
    h, w, t = (int(v) for v in sys.argv[1:4])
    print(json.dumps(measure(h, w, t or None, sys.argv[4])))
