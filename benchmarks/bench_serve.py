"""`mefgan serve` under load: every request answered, none lost, memory flat, latency percentiles.

Starts `mefgan serve` (the shipped generator) on a free 127.0.0.1 port in its own process and sends
``REQUESTS`` fusions of a small demo pair from ``CONCURRENCY`` client threads. Every request is the
REST body that README.md documents (its example, with the placeholders filled in), and every answer
is checked against the README's answer form and decoded. The server's resident memory is sampled
throughout. Run alone: ``python -m benchmarks.bench_serve --requests 50``.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REQUESTS, CONCURRENCY, SIDE = 200, 4, 64
IMAGE_PLACEHOLDER = "<base64 JPEG/PNG>"
START_TIMEOUT_S = 180


def readme_example(readme: Path = README) -> tuple[str, str, str]:
    """(URL, request body template, answer template) of the README's ``:predict`` example."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"^POST (http\S+:predict)\n(.*?)^-> (.*?)$", text, re.MULTILINE | re.DOTALL)
    if not match:
        raise ValueError(f"{readme}: no 'POST http...:predict' example followed by '-> answer'")
    return match.group(1), match.group(2).strip(), match.group(3).strip()


def fill(template: str, images: list[bytes]) -> dict:
    """The request body of ``template`` with its image placeholders replaced, in order, by ``images``."""
    remaining = list(images)

    def walk(value: Any) -> Any:
        if value == IMAGE_PLACEHOLDER:
            return base64.b64encode(remaining.pop(0)).decode("ascii")
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    body = walk(json.loads(template))
    if remaining:
        raise ValueError(f"the README example takes fewer images than the {len(images)} given")
    return body


def same_form(answer: Any, template: Any) -> bool:
    """True when ``answer`` has the README answer's structure (placeholders match any string)."""
    if isinstance(template, dict):
        return isinstance(answer, dict) and answer.keys() == template.keys() and all(same_form(answer[k], template[k]) for k in template)
    if isinstance(template, list):
        return isinstance(answer, list) and len(answer) == len(template) and all(map(same_form, answer, template))
    return isinstance(answer, type(template))


def readme_request(images: list[bytes], base_url: str) -> tuple[str, dict]:
    """(URL on ``base_url``, body) of the README example for ``images``."""
    url, template, _ = readme_example()
    path = url.split("/", 3)[3]
    return f"{base_url.rstrip('/')}/{path}", fill(template, images)


def check_answer(answer: dict, size: tuple[int, int]) -> None:
    """The answer has the README's form and holds a PNG of ``size`` (height, width) that is not blank."""
    import cv2

    if not same_form(answer, json.loads(readme_example()[2])):
        raise AssertionError(f"answer does not have the README's form: {str(answer)[:200]}")
    png = base64.b64decode(answer["predictions"][0]["b64"])
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != size or image.std() < 1:
        raise AssertionError(f"fused PNG is wrong: {None if image is None else image.shape}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start_server(extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """`mefgan serve` on a free 127.0.0.1 port; returns (process, base URL) once it answers."""
    command = [sys.executable, "-m", "mefgan_tf.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--quiet", *(extra or [])]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found: list[str] = []

    def read() -> None:
        for line in process.stdout:
            match = re.search(r"listening on (http://\S+?)/ ", line)
            if match:
                found.append(match.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not found:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"mefgan serve did not start: {process.stderr.read()[-2000:]}")
        time.sleep(0.1)
    return process, found[0]


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4)


def run(requests: int = REQUESTS, concurrency: int = CONCURRENCY, side: int = SIDE) -> dict:
    import cv2
    import httpx

    from mefgan_tf.samples import sample_pair

    under, over = sample_pair("astronaut", max_side=side)
    files = [cv2.imencode(".png", image[..., ::-1])[1].tobytes() for image in (over, under)]
    size = over.shape[:2]
    process, base_url = start_server(["--queue", str(concurrency)])
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample_memory() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_bytes(process.pid)))
            stop.wait(0.2)

    try:
        with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
            url, body = readme_request(files, base_url)
            first = client.post(url, json=body)  # the README's example, as documented; also warms up
            first.raise_for_status()
            check_answer(first.json(), size)
            rss_start = rss_bytes(process.pid)
            threading.Thread(target=sample_memory, daemon=True).start()
            statuses: dict[int, int] = {}
            latencies: list[float] = []
            failures: list[str] = []
            lock = threading.Lock()

            def one(i: int) -> None:
                url, body = readme_request(files if i % 2 else files[::-1], base_url)
                start = time.perf_counter()
                code, problem = 0, None
                try:
                    response = client.post(url, json=body)
                    code = response.status_code
                    if code == 200:
                        check_answer(response.json(), size)
                    else:
                        problem = f"HTTP {code}: {response.text[:200]}"
                except Exception as err:  # noqa: BLE001 - counted and reported: the point of a load test
                    problem = f"{type(err).__name__}: {err}"
                with lock:
                    latencies.append(time.perf_counter() - start)
                    statuses[code] = statuses.get(code, 0) + 1
                    if problem:
                        failures.append(problem)

            began = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(one, range(requests)))
            wall = time.perf_counter() - began
        stop.set()
        rss_end = rss_bytes(process.pid)
    finally:
        stop.set()
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            exit_code = process.wait()
    quarter = max(1, len(samples) // 4)
    first_quarter = [rss for _, rss in samples[:quarter]] or [rss_start]
    last_quarter = [rss for _, rss in samples[-quarter:]] or [rss_end]
    mib = 2**20
    return {
        "requests": requests,
        "concurrency": concurrency,
        "image": f"{size[1]}x{size[0]} PNG pair (astronaut demo pair)",
        "readme_example_ok": True,
        "answered": requests - statuses.get(0, 0),
        "ok": statuses.get(200, 0) - sum(f.startswith("AssertionError") for f in failures),
        "lost": statuses.get(0, 0),
        "failed": len(failures),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failures": failures[:5],
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_max_s": round(max(latencies), 4),
        "requests_per_s": round(requests / wall, 2),
        "rss_start_mib": round(rss_start / mib, 1),
        "rss_end_mib": round(rss_end / mib, 1),
        "rss_max_mib": round(max([rss for _, rss in samples] + [rss_end]) / mib, 1),
        "rss_first_quarter_mean_mib": round(float(np.mean(first_quarter)) / mib, 1),
        "rss_last_quarter_mean_mib": round(float(np.mean(last_quarter)) / mib, 1),
        "server_exit_code": exit_code,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--side", type=int, default=SIDE, help="longer side of the demo pair in pixels")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.requests, args.concurrency, args.side), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
