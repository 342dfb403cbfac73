"""`mefgan serve`: TensorFlow Serving's REST API on a real server, with real inference on tiny images."""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from mefgan_tf.checkpoint import save_model_checkpoint
from mefgan_tf.cli import main
from mefgan_tf.fusion import Fuser, FusionOptions
from mefgan_tf.images import to_float, to_uint8
from mefgan_tf.serve.app import MemoryBudget, Share, create_app
from mefgan_tf.serve.protocol import Limits, RequestError
from mefgan_tf.serve.server import served_model
from mefgan_tf.stages import generator_stages

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is beside the package, not installed with it
    sys.path.insert(0, str(REPO))
from benchmarks.bench_serve import readme_example, readme_request, same_form  # noqa: E402

PREDICT = "/v1/models/mefgan:predict"
MAX_BODY = 200_000
MAX_PIXELS = 100_000
MB = 2**20


def exposure_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(over, under) float32 RGB of a smooth random scene."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((height // 4 + 1, width // 4 + 1, 3), dtype=np.float32), (width, height))
    return np.clip(base * 1.8, 0, 1), base * 0.3


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    """``image`` (float RGB) as an 8-bit file of format ``ext``."""
    return cv2.imencode(ext, to_uint8(image)[..., ::-1])[1].tobytes()


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode("ascii")}


def decode_png(value: dict[str, str]) -> np.ndarray:
    """RGB uint8 of a ``{"b64": PNG}`` answer."""
    data = np.frombuffer(base64.b64decode(value["b64"]), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


@pytest.fixture(scope="module")
def generator(random_generator):
    return random_generator(seed=11)


@pytest.fixture(scope="module")
def fuser(generator) -> Fuser:
    return Fuser(generator_stages(generator))


@pytest.fixture(scope="module")
def server(fuser, running):
    limits = Limits(max_body_bytes=MAX_BODY, max_pixels=MAX_PIXELS, timeout_s=60)
    with running(create_app(fuser, limits=limits)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def files_of(*images: np.ndarray, ext: str = ".png") -> list[bytes]:
    return [encode(image, ext) for image in images]


def decoded(data: bytes) -> np.ndarray:
    """The float image the server fuses for an encoded file (8-bit round trip)."""
    import cv2

    return to_float(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].copy())


def fuse_images_body(*files: bytes) -> dict:
    instance = {"over_bytes": b64(files[0]), "under_bytes": b64(files[1])} if len(files) == 2 else {"exposures_bytes": [b64(f) for f in files]}
    return {"signature_name": "fuse_images", "instances": [instance]}


# --- status and metadata -------------------------------------------------------------------


def test_status_has_tensorflow_servings_shape_at_both_paths(client):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    for path in ("/v1/models/mefgan", "/v1/models/mefgan/versions/1"):
        response = client.get(path)
        assert response.status_code == 200 and response.json() == expected


def test_metadata_lists_both_signatures_as_exported(client):
    for path in ("/v1/models/mefgan/metadata", "/v1/models/mefgan/versions/1/metadata"):
        body = client.get(path).json()
        assert body["model_spec"] == {"name": "mefgan", "signature_name": "", "version": "1"}
        defs = body["metadata"]["signature_def"]["signature_def"]
        assert set(defs) == {"serving_default", "fuse_images"}
        assert {k: v["dtype"] for k, v in defs["serving_default"]["inputs"].items()} == {"over": "DT_FLOAT", "under": "DT_FLOAT"}
        assert [d["size"] for d in defs["serving_default"]["inputs"]["over"]["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "3"]
        assert set(defs["fuse_images"]["inputs"]) == {"over_bytes", "under_bytes"}
        assert set(defs["fuse_images"]["outputs"]) == {"fused_png_bytes"}


@pytest.mark.parametrize(
    "method, path, status, message",
    [
        ("GET", "/v1/models/other", 404, "Servable not found for request: Latest(other)"),
        ("GET", "/v1/models/mefgan/versions/2", 404, "Servable not found for request: Specific(mefgan, 2)"),
        ("POST", "/v1/models/mefgan/versions/7:predict", 404, "Servable not found for request: Specific(mefgan, 7)"),
        ("POST", "/v1/models/mefgan:classify", 400, '":classify" is not supported: this model answers ":predict" only (it has no classification or regression signature)'),
        ("PUT", "/v1/models/mefgan:predict", 405, "PUT is not allowed on /v1/models/mefgan:predict"),
        ("GET", "/nothing/here", 404, "no such endpoint: GET /nothing/here"),
        ("GET", "/v1/models/mefgan:predict", 405, "GET is not allowed on /v1/models/mefgan:predict: use POST"),
        ("GET", "/v1/models/mefgan/versions/1:predict", 405, "GET is not allowed on /v1/models/mefgan/versions/1:predict: use POST"),
    ],
)
def test_unknown_models_versions_and_endpoints_answer_in_tensorflow_servings_error_form(client, method, path, status, message):
    response = client.request(method, path, json={})
    assert response.status_code == status and response.json() == {"error": message}


# --- fuse_images ---------------------------------------------------------------------------


def test_fuse_images_answers_a_png_equal_to_in_process_fusion_in_either_order(client, fuser):
    over, under = exposure_pair(24, 40, seed=1)
    files = files_of(over, under)
    expected = to_uint8(fuser([decoded(f) for f in files]))
    for body in (fuse_images_body(*files), fuse_images_body(*files[::-1])):
        response = client.post(PREDICT, json=body)
        assert response.status_code == 200, response.text
        (prediction,) = response.json()["predictions"]
        assert set(prediction) == {"b64"}
        np.testing.assert_array_equal(decode_png(prediction), expected)


def test_fuse_images_columnar_batch_answers_outputs_and_jpeg_works(client, fuser):
    pairs = [exposure_pair(16, 24, seed=s) for s in (2, 3)]
    jpegs = [files_of(*pair, ext=".jpg") for pair in pairs]
    body = {"signature_name": "fuse_images", "inputs": {"over_bytes": [b64(f[0]) for f in jpegs], "under_bytes": [b64(f[1]) for f in jpegs]}}
    response = client.post("/v1/models/mefgan/versions/1:predict", json=body)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert len(outputs) == 2
    for output, files in zip(outputs, jpegs):
        np.testing.assert_array_equal(decode_png(output), to_uint8(fuser([decoded(f) for f in files])))


def test_three_exposures_through_the_exposures_bytes_extension(client, fuser):
    over, under = exposure_pair(16, 16, seed=4)
    files = files_of(over, under, (over + under) / 2)
    response = client.post(PREDICT, json=fuse_images_body(*files))
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(decode_png(response.json()["predictions"][0]), to_uint8(fuser([decoded(f) for f in files])))


def test_the_readme_example_works_as_written(client, server):
    url, body = readme_request(files_of(*exposure_pair(16, 16, seed=5)), server)
    assert url == f"{server}{PREDICT}"
    answer = client.post(url, json=body).json()
    assert same_form(answer, json.loads(readme_example()[2])), answer


# --- serving_default -------------------------------------------------------------------------


def test_serving_default_row_and_columnar_formats_equal_in_process_fusion(client, fuser):
    over, under = exposure_pair(9, 12, seed=6)
    expected = fuser.pair(over, under)
    row = client.post(PREDICT, json={"instances": [{"over": over.tolist(), "under": under.tolist()}]})
    assert row.status_code == 200, row.text
    np.testing.assert_array_equal(np.float32(row.json()["predictions"]), expected[None])
    columnar = client.post(PREDICT, json={"signature_name": "serving_default", "inputs": {"over": [over.tolist()], "under": [under.tolist()]}})
    assert columnar.status_code == 200, columnar.text
    np.testing.assert_array_equal(np.float32(columnar.json()["outputs"]), expected[None])


def test_a_tiled_server_gives_the_untiled_result(fuser, running):
    over, under = exposure_pair(40, 56, seed=7)
    with running(create_app(Fuser(fuser.stages, FusionOptions(tile=16)), warmup=False)) as url:
        response = httpx.post(url + PREDICT, json={"inputs": {"over": [over.tolist()], "under": [under.tolist()]}}, timeout=60)
    np.testing.assert_allclose(np.float32(response.json()["outputs"][0]), Fuser(fuser.stages, FusionOptions(tile=None)).pair(over, under), atol=1e-5)


# --- bad input -------------------------------------------------------------------------------

GOOD = encode(exposure_pair(16, 16)[0])
WIDE, TALL = encode(exposure_pair(16, 24)[0]), encode(exposure_pair(24, 16)[1])
TINY = encode(exposure_pair(5, 7)[0])
PIXEL = [[[0.5, 0.5, 0.5]] * 8] * 8


def bytes_body(over, under) -> dict:
    return {"signature_name": "fuse_images", "instances": [{"over_bytes": over, "under_bytes": under}]}


def float_body(over, under=PIXEL) -> dict:
    return {"instances": [{"over": over, "under": under}]}


BAD_REQUESTS = {
    "not JSON": (b"{instances", "request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    "not base64": (
        bytes_body({"b64": "not base64!"}, b64(GOOD)),
        "instances[0].over_bytes is not valid base64 (character ' ' at position 3 is not in the base64 alphabet)",
    ),
    "URL-safe base64": (
        bytes_body({"b64": "ab-_"}, b64(GOOD)),
        "instances[0].over_bytes is not valid base64 (character '-' at position 2 is not in the base64 alphabet; "
        "'-' and '_' are URL-safe base64: use the standard alphabet)",
    ),
    "cut base64": (
        bytes_body(b64(GOOD), {"b64": b64(GOOD)["b64"][:-3]}),
        f"instances[0].under_bytes is not valid base64 (its length, {len(b64(GOOD)['b64']) - 3}, is not a multiple of 4: "
        "cut short, or padding '=' missing)",
    ),
    "not an image": (bytes_body(b64(GOOD), b64(b"GIF? no, plain text")), "instances[0].under_bytes is not a readable image (expected JPEG, PNG, TIFF, BMP, WebP or PNM)"),
    "Radiance HDR": (
        bytes_body(b64(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 10000 +X 10000\n" + bytes(64)), b64(GOOD)),
        "instances[0].over_bytes is not a readable image (expected JPEG, PNG, TIFF, BMP, WebP or PNM)",
    ),
    "PNG with a broken header": (
        bytes_body(b64(GOOD[:8] + b"garbage" * 4), b64(GOOD)),
        "instances[0].over_bytes is not a readable image (expected JPEG, PNG, TIFF, BMP, WebP or PNM)",
    ),
    "signature_name a list": (
        {"signature_name": ["fuse_images"], "instances": [{}]}, "signature_name must be a string, got a list",
    ),
    "signature_name an object": ({"signature_name": {"a": 1}, "instances": [{}]}, "signature_name must be a string, got an object"),
    "long signature_name": (
        {"signature_name": "x" * 10_000, "instances": [{}]},
        f'signature_name "{"x" * 36}... not found (this model has serving_default and fuse_images)',
    ),
    "long field name": (
        {"y" * 10_000: 1, "instances": [{}]},
        f'unknown request field "{"y" * 36}... (expected signature_name and instances or inputs)',
    ),
    "signature_name null": ({"signature_name": None, "instances": [{}]}, "signature_name must be a string, got null"),
    "ragged floats": (
        float_body([[[0.5, 0.5, 0.5]] * 8] * 7 + [[[0.5, 0.5]] * 8]),
        "instances[0].over must be a [H, W, 3] array of numbers, got something else",
    ),
    "inputs a list": ({"inputs": [PIXEL, PIXEL]}, '"inputs" must be an object of named inputs'),
    "exposures not lists": (
        {"signature_name": "fuse_images", "inputs": {"exposures_bytes": [{"b64": "AAAA"}]}},
        'inputs.exposures_bytes[0] must be a list of {"b64": ...} images',
    ),
    "true in floats": (
        float_body([[[True, 0.5, 0.5]] + [[0.5, 0.5, 0.5]] * 7] * 8),
        "instances[0].over must be a [H, W, 3] array of numbers, got true or false in it",
    ),
    "false in columnar floats": (
        {"inputs": {"over": [PIXEL], "under": [[[[0.5, False, 0.5]] * 8] * 8]}},
        "inputs.under must be a [batch, H, W, 3] array of numbers, got true or false in it",
    ),
    "not b64 object": (bytes_body("abc", b64(GOOD)), 'instances[0].over_bytes must be {"b64": "<base64 JPEG/PNG>"}'),
    "different sizes": (bytes_body(b64(WIDE), b64(TALL)), "instances[0]: exposures differ in size: instances[0].over_bytes 24x16, instances[0].under_bytes 16x24"),
    "one exposure": (
        {"signature_name": "fuse_images", "instances": [{"exposures_bytes": [b64(GOOD)]}]},
        "instances[0]: need at least two exposures to fuse, got 1",
    ),
    "missing input": (
        {"signature_name": "fuse_images", "instances": [{"over_bytes": b64(GOOD)}]},
        'instances[0]: missing input "under_bytes" (fuse_images takes over_bytes and under_bytes, or exposures_bytes)',
    ),
    "too small image": (bytes_body(b64(TINY), b64(TINY)), "instances[0].over_bytes: image of 7x5 is too small: both sides must be at least 8 pixels"),
    "too small floats": (float_body([[[0.5, 0.5, 0.5]] * 7] * 5, [[[0.5, 0.5, 0.5]] * 7] * 5), "instances[0].over: image of 7x5 is too small: both sides must be at least 8 pixels"),
    "float sizes differ": (
        float_body(PIXEL, [[[0.5, 0.5, 0.5]] * 8] * 9),
        "instances[0]: exposures differ in size: instances[0].over 8x8, instances[0].under 8x9",
    ),
    "columnar batch sizes differ": (
        {"inputs": {"over": [PIXEL], "under": [PIXEL, PIXEL]}},
        "inputs: over and under have different batch sizes (1 and 2)",
    ),
    "above one": (float_body([[[1.5, 0.5, 0.5]] * 8] * 8), "instances[0].over: values must be in [0, 1], found 1.5"),
    "negative": (float_body(PIXEL, [[[0.5, -0.25, 0.5]] * 8] * 8), "instances[0].under: values must be in [0, 1], found -0.25"),
    "NaN": (json.dumps(float_body([[[float("nan"), 0.5, 0.5]] * 8] * 8)).encode(), "instances[0].over: values must be in [0, 1], found NaN"),
    "not numbers": (float_body([[["a", "b", "c"]] * 8] * 8), "instances[0].over must be a [H, W, 3] array of numbers, got something else"),
    "wrong shape": (float_body([[0.5, 0.5, 0.5, 0.5]] * 8), "instances[0].over must be a [H, W, 3] array of numbers, got shape [8, 4]"),
    "wrong signature": (
        {"signature_name": "classify", "instances": [{}]},
        'signature_name "classify" not found (this model has serving_default and fuse_images)',
    ),
    "no instances": ({"signature_name": "fuse_images"}, 'request must have either "instances" (row format) or "inputs" (columnar format), not both or neither'),
    "empty instances": ({"instances": []}, '"instances" must be a non-empty list'),
    "not UTF-8": (b'{"instances": "\xff\xfe"}', "request body is not UTF-8 text (byte 15): JSON must be UTF-8"),
    "deep JSON": (b"[" * 100_000 + b"]" * 100_000, "request body is not valid JSON here: it is nested too deeply"),
    "deep arrays": (
        json.dumps(float_body(json.loads("[" * 900 + "0.5" + "]" * 900))).encode(),
        "instances[0].over must be a [H, W, 3] array of numbers, got something else",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_a_400_with_one_clear_line(client, case):
    body, message = BAD_REQUESTS[case]
    response = client.post(PREDICT, content=body if isinstance(body, bytes) else json.dumps(body).encode())
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_base64_wrapped_at_76_columns_is_accepted(client):
    over, under = exposure_pair(16, 16, seed=12)
    wrapped = [{"b64": base64.encodebytes(f).decode("ascii")} for f in files_of(over, under)]  # a line break every 76
    assert "\n" in wrapped[0]["b64"]
    plain = client.post(PREDICT, json=bytes_body(*[b64(f) for f in files_of(over, under)]))
    response = client.post(PREDICT, json=bytes_body(*wrapped))
    assert response.status_code == 200 and response.json() == plain.json()


def test_too_large_bodies_and_images_are_413(client):
    response = client.post(PREDICT, content=b" " * (MAX_BODY + 1000))
    assert response.status_code == 413
    assert response.json() == {"error": "request body is larger than this server's limit of 0.191 MB (mefgan serve --max-body-mb)"}

    def chunks():  # no Content-Length: the limit is found while reading
        for _ in range(3):
            yield b" " * (MAX_BODY // 2)

    response = client.post(PREDICT, content=chunks())
    assert response.status_code == 413 and "larger than this server's limit" in response.json()["error"]
    big = encode(np.full((400, 300, 3), 0.5, np.float32))  # 120,000 pixels, a small file
    response = client.post(PREDICT, json=bytes_body(b64(big), b64(big)))
    assert response.status_code == 413
    assert response.json() == {"error": "instances[0].over_bytes is larger than this server's limit of 0.1 megapixels"}


# --- memory: pixels per request, the budget, the body deadline, a load of hostile requests ----


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG that says it is ``width`` x ``height`` (a few bytes: nothing to decode)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", b"")


def exposures_body(files: list[bytes]) -> dict:
    return {"signature_name": "fuse_images", "instances": [{"exposures_bytes": [b64(f) for f in files]}]}


def test_pixels_per_request_are_counted_from_headers_before_anything_is_decoded(fuser, running):
    limits = Limits(max_pixels=300_000, max_request_pixels=1_000_000, memory_bytes=64 * 2**20)
    app = create_app(fuser, limits=limits, warmup=False)
    with running(app) as url:
        response = httpx.post(url + PREDICT, json=exposures_body([png_header(500, 500)] * 12), timeout=60)
        assert response.status_code == 413
        assert response.json() == {"error": "request holds 3 megapixels in all, more than this server's limit of 1 per "
                                            "request (mefgan serve --max-request-megapixels)"}
        response = httpx.post(url + PREDICT, json=bytes_body(b64(png_header(20000, 20000)), b64(GOOD)), timeout=60)
        assert response.status_code == 413 and "larger than this server's limit of 0.3 megapixels" in response.text
    assert app.state.budget.peak < 100_000  # the JSON only: no image was decoded
    assert app.state.budget.held == 0


def test_a_request_that_never_fits_the_memory_budget_is_413_and_one_that_fits_is_answered(fuser, running):
    files = files_of(*exposure_pair(200, 200, seed=13))  # 80,000 pixels: 3.8 MB to hold
    app = create_app(fuser, limits=Limits(memory_bytes=2 * 2**20), warmup=False)
    with running(app) as url:
        response = httpx.post(url + PREDICT, json=fuse_images_body(*files), timeout=60)
        assert response.status_code == 413
        assert re.fullmatch(r"this request with its images needs about \d MB of memory, more than this server's budget of 2 MB "
                            r"\(mefgan serve --max-memory-mb\)", response.json()["error"])
        small = fuse_images_body(*files_of(*exposure_pair(16, 16, seed=13)))
        assert httpx.post(url + PREDICT, json=small, timeout=60).status_code == 200
    assert app.state.budget.held == 0


def test_the_budget_is_shared_a_request_that_would_go_past_it_is_503_and_a_share_is_given_back_by_its_last_user():
    budget = MemoryBudget(100 * MB)
    first, second = Share(budget, lambda: 3), Share(budget, lambda: 3)
    first.reserve(60 * MB, "parsing")
    first.reserve(40 * MB, "parsing")  # less than held: nothing more
    first.enter()  # a thread that works for the request
    with pytest.raises(RequestError) as busy:
        second.reserve(50 * MB, "this request")
    assert (busy.value.status, busy.value.headers) == (503, {"Retry-After": "3"})
    assert str(busy.value) == "server busy: other requests hold its memory budget of 100 MB; retry in 3 s"
    first.leave()
    assert budget.held == 60 * MB  # the thread still holds it
    first.leave()
    second.reserve(50 * MB, "this request")
    assert (budget.held, budget.peak) == (50 * MB, 60 * MB)


def stalled_request(url: str, length: int = 100_000) -> socket.socket:
    """A connection that sends a request's headers and one byte of its body, then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {length}\r\n\r\n{{".encode())
    return sock


def answer_status(sock: socket.socket) -> int:
    """The status of the answer on ``sock`` (0 if it is closed without one)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return 0
        data += chunk
    return int(data.split()[1])


def test_a_body_that_does_not_arrive_in_time_is_408_and_holds_no_slot(fuser, running):
    limits = Limits(body_timeout_s=1.0, memory_bytes=64 * 2**20)
    with running(create_app(fuser, queue_size=0, limits=limits, warmup=False)) as url:
        stalled = [stalled_request(url) for _ in range(3)]
        small = fuse_images_body(*files_of(*exposure_pair(16, 16, seed=14)))
        assert httpx.post(url + PREDICT, json=small, timeout=60).status_code == 200  # the one slot is free
        start = time.monotonic()
        assert [answer_status(sock) for sock in stalled] == [408] * 3
        assert time.monotonic() - start < 5
        for sock in stalled:
            sock.close()


def test_a_connection_whose_headers_do_not_arrive_in_time_is_closed(fuser, running):
    with running(create_app(fuser, warmup=False), header_timeout_s=1.0) as url:
        host, port = url.removeprefix("http://").split(":")
        silent, partial = (socket.create_connection((host, int(port)), timeout=30) for _ in range(2))
        partial.sendall(b"POST /v1/models/mefgan:predict HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        start = time.monotonic()
        assert [answer_status(silent), answer_status(partial)] == [0, 0]  # closed without an answer
        assert time.monotonic() - start < 5
        with httpx.Client(base_url=url, timeout=30) as client:  # a keep-alive client is served, then idles
            assert client.get("/v1/models/mefgan").status_code == 200
            time.sleep(1.5)
            assert client.get("/v1/models/mefgan").status_code == 200  # reconnects as clients do


def rss_bytes() -> int:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def test_a_load_of_oversized_slow_and_malformed_requests_leaves_the_server_within_budget_and_answering(fuser, running):
    budget = 24 * 2**20
    limits = Limits(max_body_bytes=2 * 2**20, max_pixels=250_000, max_request_pixels=600_000, timeout_s=30,
                    body_timeout_s=2.0, memory_bytes=budget)
    hostile = {
        "bomb header": (bytes_body(b64(png_header(20000, 20000)), b64(GOOD)), 413),
        "many images": (exposures_body([png_header(400, 400)] * 12), 413),
        "radiance": (bytes_body(b64(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 10000 +X 10000\n"), b64(GOOD)), 400),
        "signature list": ({"signature_name": ["fuse_images"], "instances": [{}]}, 400),
        "booleans": (float_body([[[True, 0.5, 0.5]] * 8] * 8), 400),
    }
    small = fuse_images_body(*files_of(*exposure_pair(16, 16, seed=15)))
    app = create_app(fuser, limits=limits, warmup=False)
    rss_before = rss_bytes()
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.post(PREDICT, json=small).status_code == 200  # traced once, before the attack
        stalled = [stalled_request(url) for _ in range(12)]
        host, port = url.removeprefix("http://").split(":")
        silent = [socket.create_connection((host, int(port)), timeout=30) for _ in range(12)]  # no headers at all
        statuses: dict[str, set[int]] = {name: set() for name in hostile}

        def attack(name: str) -> None:
            body, _ = hostile[name]
            with httpx.Client(base_url=url, timeout=60) as own:
                for _ in range(3):
                    statuses[name].add(own.post(PREDICT, json=body).status_code)

        with ThreadPoolExecutor(max_workers=18) as pool:
            attacks = [pool.submit(attack, name) for name in [*hostile, *hostile, *hostile]]
            latencies = []
            for _ in range(5):  # a client with a small, well-formed request keeps being answered
                start = time.monotonic()
                while (response := client.post(PREDICT, json=small)).status_code == 503:
                    time.sleep(0.1)
                assert response.status_code == 200
                latencies.append(time.monotonic() - start)
            for attack_done in attacks:
                attack_done.result()
        assert max(latencies) < 5, latencies
        assert [answer_status(sock) for sock in stalled] == [408] * len(stalled)
        for sock in stalled + silent:
            sock.close()
        for name, (_, status) in hostile.items():
            assert statuses[name] <= {status, 503}, (name, statuses[name])
    assert app.state.budget.peak <= budget and app.state.budget.held == 0
    assert rss_bytes() - rss_before < 400 * 2**20  # decoding one bomb would take 4.8 GB


# --- queue, deadline, page, command ----------------------------------------------------------


def post_in_thread(url: str, body: dict) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(httpx.post(url, json=body, timeout=60)))
    thread.start()
    return thread, result


def test_a_full_queue_answers_503_with_retry_after_and_loses_nothing(fuser, running, gated_fuser):
    gated = gated_fuser(fuser.stages)
    body = fuse_images_body(*files_of(*exposure_pair(16, 16, seed=8)))
    app = create_app(gated, queue_size=1, warmup=False)
    with running(app) as url:
        first, first_result = post_in_thread(url + PREDICT, body)
        assert gated.entered.wait(30)  # the worker holds the first request
        second, second_result = post_in_thread(url + PREDICT, body)  # waits in the queue
        deadline = time.monotonic() + 30
        while app.state.queue.held < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        third = httpx.post(url + PREDICT, json=body, timeout=60)
        assert third.status_code == 503
        assert int(third.headers["Retry-After"]) >= 1
        assert re.fullmatch(r"server busy: 2 requests are being fused or waiting; retry in \d+ s", third.json()["error"])
        gated.gate.set()
        first.join(60)
        second.join(60)
        assert [first_result[0].status_code, second_result[0].status_code] == [200, 200]
        assert first_result[0].json() == second_result[0].json()
        assert httpx.post(url + PREDICT, json=body, timeout=60).status_code == 200


def test_a_request_past_its_deadline_is_504_and_frees_its_slot_when_the_job_ends(fuser, running, gated_fuser):
    gated = gated_fuser(fuser.stages)
    body = fuse_images_body(*files_of(*exposure_pair(16, 16, seed=9)))
    with running(create_app(gated, queue_size=0, limits=Limits(timeout_s=0.5), warmup=False)) as url:
        response = httpx.post(url + PREDICT, json=body, timeout=60)
        assert response.status_code == 504
        assert response.json() == {"error": "request took longer than this server's limit of 0.5 s (mefgan serve --timeout)"}
        assert httpx.post(url + PREDICT, json=body, timeout=60).status_code == 503  # the job still runs
        gated.gate.set()
        deadline = time.monotonic() + 30
        while (status := httpx.post(url + PREDICT, json=body, timeout=60).status_code) in (503, 504) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200


class SlowStages:
    """A model's stages that take ``delay`` seconds per tile and count the tiles they fuse."""

    def __init__(self, stages, delay: float) -> None:
        self.stages, self.delay, self.tiles = stages, delay, 0

    def __getattr__(self, name):
        return getattr(self.stages, name)

    def fuse_tile(self, x, half):
        self.tiles += 1
        time.sleep(self.delay)
        return self.stages.fuse_tile(x, half)


@pytest.mark.parametrize("how", ["deadline", "client gone"])
def test_a_request_past_its_deadline_or_whose_client_left_stops_at_the_next_tile(fuser, running, how, capfd):
    slow = SlowStages(fuser.stages, delay=0.2)
    big = fuse_images_body(*files_of(*exposure_pair(96, 96, seed=4)))  # 36 tiles of 16: about 7 s
    small = fuse_images_body(*files_of(*exposure_pair(16, 16, seed=5)))
    timeout_s = 0.5 if how == "deadline" else 60
    app = create_app(Fuser(slow, FusionOptions(tile=16)), queue_size=0, limits=Limits(timeout_s=timeout_s), warmup=False)
    with running(app) as url:
        if how == "deadline":
            assert httpx.post(url + PREDICT, json=big, timeout=60).status_code == 504
        else:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(url + PREDICT, json=big, timeout=0.6)
        start = time.monotonic()
        while (response := httpx.post(url + PREDICT, json=small, timeout=60)).status_code == 503:
            assert time.monotonic() - start < 5, "the worker is still busy with the abandoned request"
            time.sleep(0.05)
        assert response.status_code == 200
        assert slow.tiles < 36 / 2  # the abandoned fusion stopped early (the small one adds 1 tile)
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out and "Exception" not in logged.err + logged.out


def test_head_requests_and_out_of_range_ports(client, capsys):
    assert client.head("/").status_code == 200
    assert client.head("/v1/models/mefgan").status_code == 200
    for port in ("65536", "-1", "http"):
        with pytest.raises(SystemExit) as exit_code:
            main(["serve", "--port", port])
        assert exit_code.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("mefgan serve: error: argument --port: ") and ("0 to 65535" in err or "port number" in err)


@pytest.mark.parametrize("option, value, message", [
    ("--queue", "-1", "--queue -1: must be from 0 to 10000"),
    ("--max-memory-mb", "0.5", "--max-memory-mb 0.5: must be from 1 to 1.07374e+09"),
    ("--body-timeout", "0", "--body-timeout 0: must be from 0.001 to 1e+07"),
    ("--max-request-megapixels", "1e9", "--max-request-megapixels 1e+09: must be from 0.001 to 1e+06"),
    ("--max-megapixels", "-5", "--max-megapixels -5: must be from 0.001 to 100000"),
])
def test_serve_numbers_out_of_range_are_one_line(option, value, message, capsys):
    assert main(["serve", option, value]) == 1
    assert capsys.readouterr().err == f"mefgan serve: error: {message}\n"


def test_the_page_is_served_and_talks_to_predict(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '"/v1/models/mefgan:predict"' in page and 'type="file"' in page and "<progress" in page


def test_the_served_version_is_the_savedmodel_folders_number_or_the_newest_in_a_base_folder(tmp_path):
    for version in ("1", "3", "12"):
        (tmp_path / "mefgan" / version).mkdir(parents=True)
        (tmp_path / "mefgan" / version / "saved_model.pb").touch()
    (tmp_path / "mefgan" / "20").mkdir()  # not a SavedModel: ignored, as TensorFlow Serving does
    assert served_model(str(tmp_path / "mefgan")) == (tmp_path / "mefgan" / "12", "12")
    assert served_model(str(tmp_path / "mefgan" / "3")) == (tmp_path / "mefgan" / "3", "3")
    (tmp_path / "run").mkdir()
    assert served_model(str(tmp_path / "run")) == (tmp_path / "run", "1")


def test_serve_with_a_missing_model_is_one_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such model" in err


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_the_command_serves_a_checkpoint_and_finishes_the_running_request_on_sigterm(generator, fuser, tmp_path):
    checkpoint = save_model_checkpoint(tmp_path / "run", generator)
    command = [sys.executable, "-m", "mefgan_tf.cli", "serve", "--model", str(checkpoint), "--port", "0", "--quiet",
               "--detail-levels", "2"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not (lines and "listening on" in lines[-1]):
            line = process.stdout.readline()
            assert line, f"server exited: {process.stderr.read()[-2000:]}"
            lines.append(line)
        url = re.search(r"(http://\S+?)/ ", lines[-1]).group(1)
        assert httpx.get(url + "/v1/models/mefgan", timeout=60).json()["model_version_status"][0]["state"] == "AVAILABLE"
        files = files_of(*exposure_pair(512, 512, seed=10))
        idle = cpu_seconds(process.pid)
        running_request, result = post_in_thread(url + PREDICT, fuse_images_body(*files))
        deadline = time.monotonic() + 30
        while cpu_seconds(process.pid) < idle + 0.5 and time.monotonic() < deadline:
            time.sleep(0.02)  # until the server is busy with the request (about 3 s of fusion on 2 cores)
        assert running_request.is_alive(), "the request finished before SIGTERM: use a larger image"
        process.send_signal(signal.SIGTERM)
        running_request.join(60)
        assert result and result[0].status_code == 200
        fused = dataclasses.replace(fuser, options=FusionOptions(detail=2))([decoded(f) for f in files])  # as --detail-levels 2 asks
        np.testing.assert_allclose(decode_png(result[0].json()["predictions"][0]), to_uint8(fused), atol=1)
        assert process.wait(timeout=30) == 0
        assert "mefgan serve: stopped (SIGTERM)" in process.stdout.read()
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/v1/models/mefgan")
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif", ".bmp", ".webp", ".ppm", ".pgm", ".pbm"])
def test_every_accepted_format_gives_its_size_from_its_header(ext):
    from mefgan_tf.serve.protocol import image_header

    grey = ext in (".pgm", ".pbm")
    data = cv2.imencode(ext, np.zeros((12, 20) if grey else (12, 20, 3), np.uint8))[1].tobytes()
    assert image_header(data, "x") == (12, 20)
    with pytest.raises(RequestError, match=r"^x is not a readable image \(expected JPEG, PNG, TIFF, BMP, WebP or PNM\)$"):
        image_header(data[:8] + b"\xff" * 12, "x")  # the format's signature, then no header PIL can read
