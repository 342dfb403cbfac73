"""LiteRT (TFLite) exports of the shipped generator against its SavedModel: accuracy, size, latency.

Each variant (float32, float16, int8 calibrated on the bundled demo photos) runs ``serving_default``
on the demo pair and on the five SICE test pairs of ../shared/data/original_mefgan/test_imgs
(skipped when absent), shrunk to a longer side of ``SIDE`` and cropped to multiples of 8.
Against the SavedModel's float output: max and mean |difference|, PSNR, and MEF-SSIM of both.
Latency is the best of ``REPEATS`` runs on the demo pair, all CPU threads. ``scaling`` times the
float32 file's two stages at growing sizes, to extrapolate the attention's N^2 cost to a photo.
"""
from __future__ import annotations

import functools
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

SIDE = 640
REPEATS = 3
SCALING_SIZES = ((256, 256), (512, 512), (768, 1024))
SICE = Path(os.environ.get("MEFGAN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SICE_PAIRS = SICE / "original_mefgan" / "test_imgs"


def test_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (over, under) float32 [0, 1], sides multiples of 8."""
    from mefgan_tf.fusion import crop_to_multiple
    from mefgan_tf.images import read_image_uint8, shrink
    from mefgan_tf.samples import sample_pair

    under, over = sample_pair(max_side=512)
    raw = {"demo (astronaut)": (over, under)}
    for i in range(1, 6):
        files = [SICE_PAIRS / f"{kind}{i}.JPG" for kind in "ou"]
        if all(f.is_file() for f in files):
            raw[f"SICE {i}"] = tuple(read_image_uint8(f) for f in files)
    return {k: tuple(crop_to_multiple(shrink(im, SIDE)).astype(np.float32) / 255 for im in v) for k, v in raw.items()}


def best_seconds(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up (traces, allocates)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def psnr(a: np.ndarray, b: np.ndarray) -> float | None:
    """PSNR in dB for signals in [0, 1]; None when they are identical."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return round(10 * np.log10(1.0 / mse), 1) if mse else None


def scaling(model) -> list[dict]:
    """The float32 file's attention stage and whole-image full-resolution stage at growing sizes."""
    rows, base = [], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for height, width in SCALING_SIZES:
        x = np.random.default_rng(0).random((1, height, width, 6), dtype=np.float32)
        half = model.attention_half(x)
        n = height * width // 64
        rows.append({
            "size": f"{width}x{height}", "attention_positions": n,
            "full_attention_matrix_gb": round(n * n * 4 / 1e9, 2),
            "attention_seconds": round(best_seconds(functools.partial(model.attention_half, x), 1), 2),
            "full_resolution_seconds": round(best_seconds(functools.partial(model.fuse_tile, x, half), 1), 2),
            "peak_rss_growth_gb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 / 1e9, 2),
        })
    return rows


def run() -> dict:
    import tensorflow as tf

    from mefgan_tf import metrics, tflite
    from mefgan_tf.checkpoint import load_generator
    from mefgan_tf.export import FLOAT_SIGNATURE, export_saved_model
    from mefgan_tf.images import to_uint8
    from mefgan_tf.models import DEFAULT_MODEL

    generator = load_generator(DEFAULT_MODEL)
    pairs = test_pairs()
    with tempfile.TemporaryDirectory() as folder:
        served = tf.saved_model.load(str(export_saved_model(generator, Path(folder) / "1"))).signatures[FLOAT_SIGNATURE]

        def saved_model(over, under):
            return served(over=tf.constant(over[None]), under=tf.constant(under[None]))["fused"].numpy()[0]

        reference = {name: saved_model(*pair) for name, pair in pairs.items()}
        demo = pairs["demo (astronaut)"]
        demo_mp = demo[0].shape[0] * demo[0].shape[1] / 1e6
        report = {
            "cpu_threads": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1),
            "demo_size": f"{demo[0].shape[1]}x{demo[0].shape[0]}", "sice_side": SIDE,
            "savedmodel_seconds_per_megapixel": round(best_seconds(lambda: saved_model(*demo)) / demo_mp, 2),
            "variants": {},
        }
        for quantize in tflite.QUANTIZATIONS:
            data = tflite.convert_generator(generator, quantize)
            model = tflite.LiteModel(data, num_threads=os.cpu_count())
            per_pair = {}
            for name, (over, under) in pairs.items():
                fused, ref = model.fuse(over, under), reference[name]
                sources = [to_uint8(over), to_uint8(under)]
                per_pair[name] = {
                    "max_abs_diff": float(np.abs(fused - ref).max()), "mean_abs_diff": float(np.abs(fused - ref).mean()),
                    "psnr_db": psnr(fused, ref),
                    "mef_ssim": round(metrics.mef_ssim(*sources, to_uint8(fused)), 4),
                    "mef_ssim_savedmodel": round(metrics.mef_ssim(*sources, to_uint8(ref)), 4),
                }
            report["variants"][quantize] = {
                "file_mb": round(len(data) / 1e6, 2),
                "seconds_per_megapixel": round(best_seconds(functools.partial(model.fuse, *demo)) / demo_mp, 2),
                "pairs": per_pair,
            }
            if quantize == "none":
                report["scaling"] = scaling(model)
    return report
