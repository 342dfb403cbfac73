"""Fusion and training speed on an accelerator under Keras's JAX backend (no TensorFlow needed).

    KERAS_BACKEND=jax python -m benchmarks.bench_gpu --out bench/gpu.json [--sizes 1 12 24] [--precision default|highest]

For each size (megapixels, 4:3) the shipped generator fuses a random-content pair as one
``jax.jit`` of the whole image (no tiling): the first call (tracing and compiling for that image
size, then one run), the steady-state run (median of ``--repeats``), and the peak device memory
where JAX reports it (``memory_stats()``, GPUs). ``--compare-precision`` also runs the other
matmul precision (``jax.default_matmul_precision``: "default" lets a GPU use TF32, "highest" is
full float32) and reports its time and how far the two fused images are apart in 8-bit levels.
Then one training batch of the JAX trainer (``JaxTrainer.train_batch``: one D and one G update of
the original recipe) is timed on random patches, without and with the MEF-SSIM term.

Every case runs in a fresh process, so that its compile time and peak memory are its own. The
weights come from the shipped checkpoint, read without TensorFlow (``read_bundle``); ``--weights
G.weights.h5`` uses a Keras weight file instead, made on a machine with TensorFlow by

    KERAS_BACKEND=tensorflow python -c "from mefgan_tf.checkpoint import load_generator; \\
        load_generator('checkpoints/reference').save_weights('g.weights.h5')"

On a CPU-only machine it runs as a smoke check (e.g. ``--sizes 0.05``): fusion only, as a
training batch takes minutes there, unless ``--train-batch N`` asks for it. ``make bench`` runs it
only where JAX sees a GPU (``run``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (1.0, 12.0, 24.0)
PRECISIONS = ("default", "highest")
TRAIN_BATCH = 19  # the original's batch
MEF_SSIM_WEIGHT = 100.0  # the shipped generator's last stage
PATCH = 144
RESULT = "BENCH_GPU_RESULT "  # the line a case process reports on

# --- the shipped checkpoint without TensorFlow ------------------------------------------------
# A TensorFlow checkpoint is a "tensor bundle": an index (a LevelDB-format table mapping each
# variable's name to a BundleEntryProto: dtype, shape, shard, offset, size) and data files holding
# the raw little-endian bytes. The reader below covers what a tf.train.Checkpoint of plain
# (unpartitioned) variables writes, which is what `mefgan train` and the shipped generator use.
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_, 19: np.float16}
VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at ``pos``."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field of a serialized protocol buffer message."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported protocol buffer wire type {wire}")
        yield field, value


def table_block(table: bytes, handle: bytes) -> bytes:
    """The contents of the table block that a BlockHandle (offset, size) points to."""
    offset, pos = varint(handle, 0)
    size, _ = varint(handle, pos)
    if table[offset + size] != 0:
        raise ValueError("compressed checkpoint index blocks are not supported")
    return table[offset : offset + size]


def block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each entry of a table block (keys are prefix-compressed)."""
    restarts = int.from_bytes(block[-4:], "little")
    end, pos, key = len(block) - 4 - 4 * restarts, 0, b""
    while pos < end:
        shared, pos = varint(block, pos)
        unshared, pos = varint(block, pos)
        size, pos = varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + size]
        pos += size


def read_bundle(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every numeric tensor of the TensorFlow checkpoint ``prefix`` (``.../ckpt-600``), by name."""
    table = Path(f"{prefix}.index").read_bytes()
    footer = table[-FOOTER_BYTES:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise ValueError(f"{prefix}.index: not a TensorFlow checkpoint index")
    _, pos = varint(footer, varint(footer, 0)[1])  # skip the metaindex handle
    index_start = pos
    _, pos = varint(footer, varint(footer, index_start)[1])
    entries = {}
    for _, handle in block_entries(table_block(table, footer[index_start:pos])):
        entries.update(block_entries(table_block(table, handle)))
    shards = dict(proto_fields(entries.pop(b""))).get(1, 1)  # BundleHeaderProto.num_shards
    tensors, data = {}, {}
    for key, value in entries.items():
        fields = list(proto_fields(value))  # BundleEntryProto
        entry = dict(fields)
        if 7 in entry:
            raise ValueError(f"{prefix}: {key.decode()} is a partitioned variable, which this reader does not support")
        dtype = DTYPES.get(entry.get(1, 0))
        if dtype is None:  # strings: the object graph
            continue
        shape = [dict(proto_fields(dim)).get(1, 0) for field, dim in proto_fields(entry.get(2, b"")) if field == 2]
        shard = entry.get(3, 0)
        if shard not in data:
            data[shard] = Path(f"{prefix}.data-{shard:05d}-of-{shards:05d}").read_bytes()
        offset, size = entry.get(4, 0), entry.get(5, 0)
        tensors[key.decode()] = np.frombuffer(data[shard][offset : offset + size], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    return tensors


def checkpoint_prefix(folder: Path) -> Path:
    """The latest checkpoint of a checkpoint folder, from its ``checkpoint`` state file."""
    match = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', (folder / "checkpoint").read_text(), re.MULTILINE)
    if not match:
        raise ValueError(f"{folder / 'checkpoint'}: no model_checkpoint_path")
    return folder / match.group(1)


def tracked_variables(layer, path: str = "") -> dict:
    """A Keras layer's variables by the path a tf.train.Checkpoint gives them: its attribute names."""
    import keras

    found = {}
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue
        if isinstance(value, keras.Variable):
            found[path + name] = value
        elif isinstance(value, keras.layers.Layer):
            found.update(tracked_variables(value, f"{path}{name}/"))
    return found


def load_checkpoint(generator, folder: Path) -> None:
    """Assign the generator's weights from the mefgan-tf checkpoint folder ``folder``, without TensorFlow."""
    tensors = read_bundle(checkpoint_prefix(folder))
    saved = {k[len("generator/") : -len(VALUE_SUFFIX)]: v for k, v in tensors.items() if k.startswith("generator/")}
    variables = tracked_variables(generator)
    if set(saved) != set(variables) or len({id(v) for v in variables.values()}) != len(generator.weights):
        raise ValueError(f"{folder}: the checkpoint's generator variables do not match the model's "
                         f"(missing {sorted(set(variables) - set(saved))[:3]}, unexpected {sorted(set(saved) - set(variables))[:3]})")
    for name, variable in variables.items():
        if tuple(saved[name].shape) != tuple(variable.shape):
            raise ValueError(f"{folder}: {name} has shape {list(saved[name].shape)}, the model {list(variable.shape)}")
        variable.assign(saved[name])


def shipped_generator(weights: str | None):
    """The shipped generator (its config and weights) under the current Keras backend."""
    from mefgan_tf.checkpoint import read_config
    from mefgan_tf.generator import build_generator
    from mefgan_tf.models import DEFAULT_MODEL

    generator = build_generator(read_config(DEFAULT_MODEL))
    if weights:
        generator.load_weights(weights)
    else:
        load_checkpoint(generator, DEFAULT_MODEL)
    return generator


# --- the cases, each in its own process ----------------------------------------------------------


def machine() -> dict:
    import jax
    import keras

    device = jax.devices()[0]
    return {
        "devices": [str(d) for d in jax.devices()],
        "device_kind": device.device_kind,
        "platform": device.platform,
        "memory_limit_gb": gigabytes((memory_stats() or {}).get("bytes_limit")),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "host": platform.platform(),
        "python": platform.python_version(),
    }


def memory_stats() -> dict | None:
    import jax

    try:
        return jax.devices()[0].memory_stats()
    except Exception:  # backends without allocator statistics
        return None


def gigabytes(value: int | None) -> float | None:
    return None if value is None else round(value / 1e9, 2)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def levels(image) -> np.ndarray:
    return np.round(np.clip(np.asarray(image, np.float32), 0, 1) * 255).astype(np.int16)


def working_size_case(generator, fuse, height: int, width: int, work_size: int, repeats: int) -> dict:
    """`mefgan fuse`'s default path: the jitted network on the working copy (padded to one of a few
    shapes, ``resolution.padded_shape``), the exposures' detail on the host (``fusion.fuse_images``)."""
    import jax

    from benchmarks.bench_fusion import scene_pair
    from mefgan_tf.fusion import FusionOptions, fuse_images

    trainable = [v.value for v in generator.trainable_variables]
    state = [v.value for v in generator.non_trainable_variables]

    def pair(over, under, shape=None):
        size = shape or over.shape[:2]
        padded = [np.pad(x, ((0, size[0] - x.shape[0]), (0, size[1] - x.shape[1]), (0, 0)), mode="reflect")[None]
                  for x in (over, under)]
        fused = jax.block_until_ready(fuse(trainable, state, *padded))
        return np.asarray(fused)[0, : over.shape[0], : over.shape[1]]

    images = list(scene_pair(height, width))
    options = FusionOptions(work_size=work_size)
    first, _ = timed(lambda: fuse_images(pair, images, options))
    runs = [timed(lambda: fuse_images(pair, images, options))[0] for _ in range(repeats)]
    return {"work_size": work_size, "first_call_s": round(first, 3), "run_s": round(statistics.median(runs), 4),
            "runs_s": [round(r, 4) for r in runs], "compiled_shapes": fuse._cache_size()}


def fuse_case(megapixels: float, precision: str, repeats: int, compare: bool, weights: str | None,
              work_size: int | None = None) -> dict:
    """Whole-image fusion of one size: first call, steady state, peak memory, optionally the other
    precision; with ``work_size``, the network at the working size and the detail on the host."""
    import jax

    from benchmarks.bench_fusion import photo_shape, scene_pair

    generator = shipped_generator(weights)
    height, width = photo_shape(megapixels)

    def forward(trainable, state, over, under):
        return generator.stateless_call(trainable, state, (over, under), training=False)[0]

    fuse = jax.jit(forward)
    if work_size:
        with jax.default_matmul_precision(precision):
            result = working_size_case(generator, fuse, height, width, work_size, repeats)
        result.update(megapixels=round(height * width / 1e6, 2), height=height, width=width, precision=precision,
                      s_per_mp=round(result["run_s"] / (height * width / 1e6), 4))
        result["peak_gb"] = gigabytes((memory_stats() or {}).get("peak_bytes_in_use"))
        return result
    over, under = (jax.device_put(np.asarray(a, np.float32)[None]) for a in scene_pair(height, width))
    trainable = [v.value for v in generator.trainable_variables]
    state = [v.value for v in generator.non_trainable_variables]

    def run(mode: str):
        with jax.default_matmul_precision(mode):  # part of jit's cache key: each mode compiles once
            return jax.block_until_ready(fuse(trainable, state, over, under))

    def measure(mode: str) -> tuple[dict, np.ndarray]:
        first, fused = timed(lambda: run(mode))
        runs = [timed(lambda: run(mode))[0] for _ in range(repeats)]
        steady = statistics.median(runs)
        return {"first_call_s": round(first, 3), "run_s": round(steady, 4), "runs_s": [round(r, 4) for r in runs]}, np.asarray(fused)

    result = {"megapixels": round(height * width / 1e6, 2), "height": height, "width": width, "precision": precision}
    timing, fused = measure(precision)
    result.update(timing)
    result["s_per_mp"] = round(timing["run_s"] / result["megapixels"], 4)
    stats = memory_stats()
    result["peak_gb"] = gigabytes((stats or {}).get("peak_bytes_in_use"))
    if compare:
        other = next(p for p in PRECISIONS if p != precision)
        timing, other_fused = measure(other)
        diff = np.abs(levels(fused) - levels(other_fused))
        result["compared"] = {
            "precision": other,
            **timing,
            "max_8bit_diff": int(diff.max()),
            "pixels_differing": round(float((diff.max(axis=-1) > 0).mean()), 5),
            "max_abs_diff": float(np.abs(fused - other_fused).max()),
        }
    return result


def random_patches(batch: int) -> np.ndarray:
    """A batch of [batch, 144, 144, 9] over | under | gt patches in [0, 1] (blocky random scenes)."""
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.2, 0.8, (batch, PATCH // 8, PATCH // 8, 3)).repeat(8, 1).repeat(8, 2)
    return np.concatenate([np.clip(gt * 1.6, 0, 1), gt * 0.4, gt], axis=-1).astype(np.float32)


def train_case(batch_size: int, repeats: int, mef_ssim_weight: float) -> dict:
    """One training batch of the JAX trainer (a D and a G update, no balancing): first call and steady state."""
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.training.jax_backend import JaxTrainer

    config = MEFGANConfig(seed=0).replace(batch_size=batch_size, mef_ssim_weight=mef_ssim_weight)
    trainer = JaxTrainer(config, batches_per_epoch=1000)
    batch = random_patches(batch_size)
    index = 1  # not a balancing batch (index % 3 == 0 may add measured extra updates)
    first, _ = timed(lambda: trainer.train_batch(batch, index))
    runs = [timed(lambda: trainer.train_batch(batch, index))[0] for _ in range(repeats)]
    return {
        "batch": batch_size,
        "mef_ssim_weight": mef_ssim_weight,
        "first_call_s": round(first, 3),
        "step_s": round(statistics.median(runs), 4),
        "runs_s": [round(r, 4) for r in runs],
        "peak_gb": gigabytes((memory_stats() or {}).get("peak_bytes_in_use")),
    }


def run_case(args: argparse.Namespace) -> dict:
    kind, value = args.case.split(":")
    if kind == "fuse":
        if args.compile_cache:
            import jax

            jax.config.update("jax_compilation_cache_dir", str(args.compile_cache))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        result = fuse_case(float(value), args.precision, args.repeats, args.compare_precision, args.weights,
                           args.work_size)
    else:
        result = train_case(args.train_batch or TRAIN_BATCH, args.repeats, float(value))
    return {"machine": machine(), "result": result}


# --- the driver -----------------------------------------------------------------------------------


def case_process(case: str, args: argparse.Namespace) -> dict:
    """Run one case in a fresh Python process under Keras's JAX backend; its report, or the error."""
    command = [sys.executable, "-m", "benchmarks.bench_gpu", "--case", case, "--precision", args.precision,
               "--repeats", str(args.repeats)]
    if args.compare_precision:
        command.append("--compare-precision")
    if args.weights:
        command += ["--weights", str(Path(args.weights).resolve())]
    if args.train_batch:
        command += ["--train-batch", str(args.train_batch)]
    if args.work_size:
        command += ["--work-size", str(args.work_size)]
    if args.compile_cache:
        command += ["--compile-cache", str(Path(args.compile_cache).resolve())]
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"[bench_gpu] {case} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    reports = [line[len(RESULT):] for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not reports:
        return {"error": f"{case}: the case process exited with status {done.returncode} (its messages are above)"}
    return json.loads(reports[-1])


def table(report: dict) -> str:
    def cell(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [f"{report['machine'].get('device_kind', '?')} ({report['machine'].get('platform', '?')}), "
             f"jax {report['machine'].get('jax', '?')}, precision {report['settings']['precision']}",
             f"{'size':>12} {'MP':>6} {'compile+run s':>14} {'run s':>8} {'s/MP':>7} {'peak GB':>8}  other precision"]
    for row in report["fusion"]:
        if "error" in row:
            lines.append(f"{'':>12} {row['error']}")
            continue
        other = row.get("compared")
        note = (f"{other['precision']}: {other['run_s']:.4g} s, max 8-bit diff {other['max_8bit_diff']} "
                f"({other['pixels_differing']:.1%} of pixels)") if other else ""
        size, peak = f"{row['width']}x{row['height']}", cell(row["peak_gb"], ">8.2f")
        line = f"{size:>12} {row['megapixels']:>6.2f} {row['first_call_s']:>14.3f} {row['run_s']:>8.4f} {row['s_per_mp']:>7.4f} {peak}"
        lines.append(f"{line}  {note}".rstrip())
    for row in report["training"]:
        if "error" in row or "skipped" in row:
            lines.append(f"training: {row.get('error') or row['skipped']}")
            continue
        lines.append(f"training batch of {row['batch']} (MEF-SSIM weight {row['mef_ssim_weight']:g}): {row['step_s']:.4g} s a batch "
                     f"(first call {row['first_call_s']:.3g} s)")
    return "\n".join(lines)


def benchmark(args: argparse.Namespace) -> dict:
    report: dict = {
        "machine": {},
        "settings": {"sizes_mp": args.sizes, "precision": args.precision, "repeats": args.repeats,
                     "compare_precision": args.compare_precision,
                     "weights": args.weights or "shipped checkpoint (mefgan_tf/shipped_generator)",
                     "what": "whole image in one jax.jit, Keras JAX backend; training: JaxTrainer.train_batch (one D and one G update)"},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "fusion": [],
        "training": [],
    }
    for size in args.sizes:
        out = case_process(f"fuse:{size:g}", args)
        report["machine"] = report["machine"] or out.get("machine", {})
        report["fusion"].append(out.get("result", out))
    if args.no_train:
        return report
    if report["machine"].get("platform") == "cpu" and not args.train_batch:
        report["training"].append({"skipped": "JAX has only a CPU here: training is timed there only with --train-batch N"})
        return report
    for weight in (0.0, MEF_SSIM_WEIGHT):
        out = case_process(f"train:{weight:g}", args)
        report["machine"] = report["machine"] or out.get("machine", {})
        report["training"].append(out.get("result", out))
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_gpu",
        description="Fusion and training speed under Keras's JAX backend (GPU; a smoke check on CPU).",
    )
    parser.add_argument("--out", default="bench/gpu.json", help="JSON report (default: %(default)s)")
    parser.add_argument("--sizes", type=float, nargs="+", default=list(DEFAULT_SIZES),
                        help="image sizes in megapixels, 4:3 (default: 1 12 24)")
    parser.add_argument("--precision", choices=PRECISIONS, default="default",
                        help="jax.default_matmul_precision of the timed runs: 'default' lets GPUs use TF32, 'highest' is "
                             "full float32 (default: %(default)s)")
    parser.add_argument("--compare-precision", action="store_true",
                        help="also run the other precision: its time and the largest 8-bit difference between the two")
    parser.add_argument("--repeats", type=int, default=3, help="steady-state runs after the first call; the median is "
                                                              "reported (default: %(default)s)")
    parser.add_argument("--weights", help="a generator's Keras weight file (.weights.h5) instead of the shipped checkpoint")
    parser.add_argument("--train-batch", type=int,
                        help=f"patches in the timed training batch (default: {TRAIN_BATCH}; on a CPU training is skipped unless given)")
    parser.add_argument("--no-train", action="store_true", help="time fusion only")
    parser.add_argument("--work-size", type=int,
                        help="fuse as `mefgan fuse` does: the network at this working size (padded to one of a few "
                             "shapes), the exposures' detail on the host; the first call is the compile")
    parser.add_argument("--compile-cache", metavar="DIR",
                        help="JAX's persistent compilation cache: a later process loads the compiled network from DIR")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in its own process
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.train_batch is not None and args.train_batch < 1:
        parser.error("--train-batch must be at least 1")
    if any(size <= 0 for size in args.sizes):
        parser.error("--sizes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.case:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        print(RESULT + json.dumps(run_case(args)), flush=True)
        return 0
    report = benchmark(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"[bench_gpu] report written to {out}")
    return 0 if all("error" not in row for row in report["fusion"] + report["training"]) else 1


def run() -> dict:
    """For ``make bench`` (``benchmarks/run.py``): the benchmark at its default sizes where JAX sees a GPU."""
    probe = subprocess.run([sys.executable, "-c", "import jax; print(jax.default_backend())"],
                           capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    backend = probe.stdout.strip().splitlines()[-1] if probe.returncode == 0 and probe.stdout.strip() else None
    if backend != "gpu":
        return {"skipped": f"JAX sees no GPU ({backend or 'JAX is not installed'}); see python -m benchmarks.bench_gpu --help"}
    return benchmark(parse_args([]))


if __name__ == "__main__":
    sys.exit(main())
