"""Run every benchmark module (``benchmarks/bench_*.py``, each with ``run() -> dict``) into one JSON file."""
from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from mefgan_tf import __version__
from mefgan_tf.files import atomic_path


def discover(only: list[str] | None) -> list[str]:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    return [n for n in names if not only or any(o in n for o in only)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run mefgan-tf benchmarks and write a JSON report.")
    parser.add_argument("--out", default="bench/report.json", help="report path (default: %(default)s)")
    parser.add_argument("--only", nargs="*", help="run only benchmarks whose name contains one of these")
    args = parser.parse_args(argv)
    report = {
        "version": __version__,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "numpy": np.__version__},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "results": {},
    }
    for name in discover(args.only):
        print(f"[bench] {name} ...", flush=True)
        start = time.perf_counter()
        result = importlib.import_module(f"benchmarks.{name}").run()
        result["wall_seconds"] = round(time.perf_counter() - start, 2)
        report["results"][name.removeprefix("bench_")] = result
        print(json.dumps(result, indent=2), flush=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    print(f"[bench] report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
