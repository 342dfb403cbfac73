"""`mefgan fuse` side by side with OpenCV's Mertens on the same photos, in one run: the table a user
compares us by.

Pairs of 1, 4, 12 and 24 megapixels and a 5-frame 12 MP bracket (a bundled sample photo, upscaled
and exposed 2 stops apart; the bracket 1 stop apart) are fused by OpenCV's Mertens, by `mefgan fuse`'s
default (the network at the working size, ``resolution.WORK_SIZE``) and by the network at full size
(``--work-size full``). Each case runs in a fresh process with its images already read, after one
small fusion that traces the model (start-up is not counted), so that its peak resident memory is its
own. A second table times whole processes at 12 MP, start-up included: ``mefgan fuse a.png b.png -o
out.png`` against a Python process that reads the pair, runs Mertens and writes the result.

``python -m benchmarks.bench_speed --no-full`` leaves out the full-size network (about 20 minutes
of the run on a 2-core CPU). The report warns when other processes used the CPU meanwhile.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.bench_fusion import BUSY_CORES, current_rss, others_cores, photo_shape

ROOT = Path(__file__).resolve().parents[1]
CASES = ((1, 2), (4, 2), (12, 2), (24, 2), (12, 5))  # (megapixels, frames)
METHODS = ("mertens", "ours", "ours-full")
PAIR_EV, BRACKET_EV = 2.0, 1.0  # stops between the darkest and brightest frame and the middle one
PROCESS_MEGAPIXELS = 12
MERTENS_SCRIPT = (
    "import sys, cv2; from mefgan_tf.baselines import mertens; from mefgan_tf.images import read_image, write_image; "
    "write_image(sys.argv[3], mertens([read_image(sys.argv[1]), read_image(sys.argv[2])]))"
)


def write_bracket(folder: Path, megapixels: int, frames: int) -> list[Path]:
    """PNG exposures of the sample photo at ``megapixels`` (4:3), darkest first."""
    from mefgan_tf.samples import exposed, sample_photo

    height, width = photo_shape(megapixels)
    photo = sample_photo("astronaut")[64:448]  # 384 x 512: 4:3
    evs = np.linspace(-PAIR_EV, PAIR_EV, 2) if frames == 2 else np.linspace(-2 * BRACKET_EV, 2 * BRACKET_EV, frames)
    paths = []
    for number, ev in enumerate(evs, 1):
        image = cv2.resize(exposed(photo, float(ev)), (width, height), interpolation=cv2.INTER_CUBIC)
        path = folder / f"{megapixels}mp_{frames}_{number}.png"
        cv2.imwrite(str(path), image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
        paths.append(path)
    return paths


def fuse_case(method: str, paths: list[Path]) -> dict:
    """One fusion in this process, images read and the model traced first: seconds and memory."""
    from mefgan_tf.baselines import mertens
    from mefgan_tf.images import read_image

    images = [read_image(p) for p in paths]
    if method == "mertens":
        fuse = mertens
    else:
        from mefgan_tf.api import load_model

        fuse = load_model(work_size="full" if method == "ours-full" else "default", tile="auto")
        small = [cv2.resize(image, (800, 600), interpolation=cv2.INTER_AREA) for image in images[:2]]
        fuse(small)  # traces the network at the working size's shape and at another
    baseline = current_rss()
    start = time.perf_counter()
    fuse(images)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": round(seconds, 2), "peak_rss_gb": round(peak / 1e9, 2),
            "rss_growth_gb": round((peak - baseline) / 1e9, 2)}


def in_child(command: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """``command`` run to its end: the process, its wall seconds, and the cores other processes used."""
    done: list[subprocess.CompletedProcess] = []
    start = time.perf_counter()
    others = others_cores(lambda: done.append(subprocess.run(command, cwd=ROOT, capture_output=True, text=True)))
    if done[0].returncode:
        raise RuntimeError(f"{' '.join(command[:4])} failed: {done[0].stderr.strip().splitlines()[-1:]}")
    return done[0], time.perf_counter() - start, others


def case_row(method: str, paths: list[Path]) -> dict:
    command = [sys.executable, "-m", "benchmarks.bench_speed", "--case", method, *map(str, paths)]
    done, _, others = in_child(command)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    if others > BUSY_CORES:
        row["warning"] = f"other processes used {others:.2f} cores: not reliable"
    return row


def process_rows(folder: Path) -> dict:
    """Whole processes at ``PROCESS_MEGAPIXELS``, start-up, reading and writing included."""
    under, over = write_bracket(folder, PROCESS_MEGAPIXELS, 2)
    mefgan = Path(sys.executable).parent / "mefgan"
    commands = {
        "mertens_process": [sys.executable, "-c", MERTENS_SCRIPT, str(under), str(over), str(folder / "mertens.png")],
        "mefgan_fuse_process": [str(mefgan), "fuse", str(under), str(over), "-o", str(folder / "ours.png"), "-y", "-q"],
    }
    rows = {}
    for name, command in commands.items():
        _, seconds, others = in_child(command)
        rows[name] = {"seconds": round(seconds, 2), "other_processes_cores": round(others, 2)}
    rows["ratio"] = round(rows["mefgan_fuse_process"]["seconds"] / rows["mertens_process"]["seconds"], 2)
    return rows


def table(rows: list[dict]) -> str:
    """The report as a Markdown table: seconds, ratio to Mertens and peak memory per case and method."""
    lines = ["| case | " + " | ".join(f"{m}: s (x Mertens), peak GB" for m in METHODS) + " |",
             "|---|" + "---:|" * len(METHODS)]
    for row in rows:
        mertens = row["mertens"]["seconds"]
        cells = []
        for method in METHODS:
            if method not in row:
                cells.append("not run")
                continue
            found = row[method]
            cells.append(f"{found['seconds']} ({found['seconds'] / mertens:.1f}x), {found['peak_rss_gb']}")
        lines.append(f"| {row['case']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(full: bool = True) -> dict:
    before = others_cores(lambda: time.sleep(3.0))
    report = {"other_processes_cores_before": round(before, 2), "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for megapixels, frames in CASES:
            paths = write_bracket(folder, megapixels, frames)
            row = {"case": f"{megapixels} MP, {frames} frames", "megapixels": megapixels, "frames": frames}
            for method in METHODS:
                if method != "ours-full" or full:
                    row[method] = case_row(method, paths)
            report["cases"].append(row)
            print(json.dumps(row), flush=True)
            for path in paths:
                path.unlink()
        report["processes_12mp"] = process_rows(folder)
    report["table"] = table(report["cases"])
    print(report["table"], flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs="+", metavar=("METHOD", "IMAGE"), help=argparse.SUPPRESS)
    parser.add_argument("--no-full", action="store_true", help="leave out the network at full size")
    parser.add_argument("--out", type=Path, help="also write the report here (JSON)")
    args = parser.parse_args(argv)
    if args.case:
        from mefgan_tf.environment import import_tensorflow_quietly, set_environment

        set_environment()
        import_tensorflow_quietly()
        print(json.dumps(fuse_case(args.case[0], [Path(p) for p in args.case[1:]])))
        return 0
    report = run(full=not args.no_full)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
