"""Sweep the working size: each scene fused at full size and at each working size, scored as `mefgan
evaluate` scores (multi-scale MEF-SSIM and Q^AB/F on 8-bit images), with the PSNR of each fusion
against the full-size one and, for a photo given twice, against the photo.

    python tools/work_size_sweep.py SCENES_DIR --pairing extreme --pairing adjacent --pairing same \\
        --config full --config 512 --config 512:aligned --config 384 --out sweep.json

A config is ``full`` or ``SIZE[:UPSAMPLING]`` (``resolution.UPSAMPLING``; default bilinear). The model
is the shipped generator unless ``--model`` names another; three or more exposures (``--pairing all``)
are fused by ``blend``. One JSON line per fusion is printed as it is made.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float images after rounding to 8 bits."""
    error = np.mean((np.round(a * 255) / 255 - np.round(b * 255) / 255) ** 2)
    return float(10 * np.log10(1 / max(error, 1e-12)))


def parse_config(text: str) -> tuple[int | None, str]:
    if text == "full":
        return None, "bilinear"
    size, _, method = text.partition(":")
    return int(size), method or "bilinear"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", type=Path)
    parser.add_argument("--pairing", action="append", default=[])
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N scenes")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from mefgan_tf.environment import import_tensorflow_quietly, set_environment

    set_environment()
    import_tensorflow_quietly()
    from mefgan_tf.baselines import mertens
    from mefgan_tf.fusion import Fuser, FusionOptions
    from mefgan_tf.images import to_float, to_uint8
    from mefgan_tf.metrics import Sources
    from mefgan_tf.models import load_stages
    from mefgan_tf.pairings import load_scene
    from mefgan_tf.scenes import find_scenes

    stages = load_stages(args.model)
    configs = [parse_config(c) for c in args.config or ["full", "512"]]
    rows = []
    for scene in find_scenes(args.scenes)[: args.limit]:
        for pairing in args.pairing or ["extreme"]:
            loaded = load_scene(scene, pairing=pairing)
            inputs = [to_float(image) for image in loaded.inputs]
            sources = Sources(loaded.over, loaded.under, loaded.frames)
            reference = None
            for work_size, upsampling in configs + [("mertens", "")]:
                start = time.perf_counter()
                if work_size == "mertens":
                    fused = mertens(inputs)
                else:
                    fused = Fuser(stages, FusionOptions(multi="blend", work_size=work_size, upsampling=upsampling))(inputs)
                row = {"scene": scene.name, "pairing": pairing, "work_size": work_size or "full",
                       "upsampling": upsampling, "seconds": round(time.perf_counter() - start, 2),
                       "mef_ssim": sources.mef_ms_ssim(to_uint8(fused)), "qabf": sources.qabf(to_uint8(fused))}
                if pairing == "same":
                    row["psnr_photo"] = psnr(fused, inputs[0])
                if work_size != "mertens":
                    if reference is None:
                        reference = fused
                    else:
                        row["psnr_full"] = psnr(fused, reference)
                rows.append(row)
                print(json.dumps(row), flush=True)
            args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
