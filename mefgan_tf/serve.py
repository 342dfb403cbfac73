"""The server of `mefgan serve`: local fusion that speaks TensorFlow Serving's REST API, with a web page.

The endpoints are TensorFlow Serving's, for the model name ``mefgan``:

- ``GET /v1/models/mefgan[/versions/N]``: the model's status;
- ``GET /v1/models/mefgan[/versions/N]/metadata``: its two signatures, as ``mefgan export`` writes them;
- ``POST /v1/models/mefgan[/versions/N]:predict``: ``fuse_images`` (``{"b64": ...}`` JPEG/PNG in,
  ``{"b64": ...}`` PNG out) or ``serving_default`` (float [H, W, 3] in [0, 1] in and out), in the
  row (``instances`` -> ``predictions``) or columnar (``inputs`` -> ``outputs``) format. One
  extension: a ``fuse_images`` instance may give ``exposures_bytes``, a list of two or more
  images, instead of ``over_bytes`` and ``under_bytes``.
- ``GET /``: a page that fuses dropped exposures through ``:predict``.

Every request is fused at full resolution by ``fusion.Fuser`` (exact tiled inference, exposures
ordered by luminance), one at a time on a worker thread. At most ``queue_size`` more requests may
wait (503 with ``Retry-After`` past that), bodies are limited in size (413) and decoded images in
pixels (413), each request has a deadline (504), and bad input is a 400 with one line. Errors have
TensorFlow Serving's form, ``{"error": "..."}``.
"""
# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.
import asyncio
import base64
import binascii
import io
import json
import math
import signal
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.export import BYTES_SIGNATURE, FLOAT_SIGNATURE

MODEL_NAME = "mefgan"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8501
DEFAULT_QUEUE = 8  # requests that may wait while one is fused
DEFAULT_MAX_BODY_MB = 64.0
DEFAULT_MAX_MEGAPIXELS = 50.0  # per decoded image: bounds memory against small files of huge images
DEFAULT_TIMEOUT_S = 600.0
MIN_SIDE = 8  # the CLI's rule (fusion.pad_to_multiple)
EXPOSURES_INPUT = "exposures_bytes"  # our extension of fuse_images: 2 or more images in one list
PAGE = "index.html"

# Inputs and output of each signature, as `mefgan export` writes them: name -> (dtype, shape).
SIGNATURES: dict[str, dict[str, dict[str, tuple[str, list[int]]]]] = {
    FLOAT_SIGNATURE: {
        "inputs": {"over": ("DT_FLOAT", [-1, -1, -1, 3]), "under": ("DT_FLOAT", [-1, -1, -1, 3])},
        "outputs": {"fused": ("DT_FLOAT", [-1, -1, -1, 3])},
    },
    BYTES_SIGNATURE: {
        "inputs": {"over_bytes": ("DT_STRING", [-1]), "under_bytes": ("DT_STRING", [-1])},
        "outputs": {"fused_png_bytes": ("DT_STRING", [-1])},
    },
}
OUTPUT_TENSORS = {FLOAT_SIGNATURE: "StatefulPartitionedCall:0", BYTES_SIGNATURE: "StatefulPartitionedCall_1:0"}


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` with a one-line ``message``."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 2**20)
    max_pixels: int = int(DEFAULT_MAX_MEGAPIXELS * 1e6)
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass
class Prediction:
    """A parsed ``:predict`` request: per instance, the exposures to fuse (float32 RGB in [0, 1])."""

    signature: str
    columnar: bool  # "inputs" (answered with "outputs") rather than "instances" ("predictions")
    scenes: list[list[np.ndarray]]


# ---------------------------------------------------------------------------------------------
# Request parsing: every problem is a RequestError naming the offending field.


def parse_json(body: bytes) -> dict:
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(f"request body is not valid JSON: {err}") from None
    if not isinstance(request, dict):
        raise RequestError('request body must be a JSON object with "instances" or "inputs"')
    return request


def decode_b64(value: Any, where: str) -> bytes:
    if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
        raise RequestError(f'{where} must be {{"b64": "<base64 JPEG/PNG>"}}')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{where} is not valid base64") from None


def image_pixels(data: bytes) -> int | None:
    """Width x height from the file's header (no decoding), or None if PIL cannot tell."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except Image.DecompressionBombError:
        return sys.maxsize
    except Exception:  # noqa: BLE001 - any header PIL cannot read: OpenCV decides below
        return None


def decode_exposure(data: bytes, where: str, limits: Limits) -> np.ndarray:
    """RGB float32 [0, 1] of an encoded image (8 or 16 bits, EXIF orientation applied)."""
    from mefgan_tf.images import decode_image_raw, to_float

    pixels = image_pixels(data)
    if pixels is not None and pixels > limits.max_pixels:
        raise RequestError(f"{where} is larger than this server's limit of {limits.max_pixels / 1e6:g} megapixels", 413)
    try:
        image = decode_image_raw(data, where)
    except CommandError:
        raise RequestError(f"{where} is not a readable image (expected JPEG, PNG, TIFF, BMP or WebP)") from None
    check_image_size(image, where, limits)
    return to_float(image)


def check_image_size(image: np.ndarray, where: str, limits: Limits) -> None:
    height, width = image.shape[:2]
    if height * width > limits.max_pixels:
        raise RequestError(f"{where} is larger than this server's limit of {limits.max_pixels / 1e6:g} megapixels", 413)
    if min(height, width) < MIN_SIDE:
        raise RequestError(
            f"{where}: image of {width}x{height} is too small: both sides must be at least {MIN_SIDE} pixels"
        )


def float_image(value: Any, where: str, rank: int, limits: Limits) -> np.ndarray:
    """A float32 array of ``rank`` dimensions, the last 3, every value in [0, 1]."""
    shape_text = "[H, W, 3]" if rank == 3 else "[batch, H, W, 3]"
    try:
        array = np.asarray(value)
    except ValueError:
        array = None
    if array is None or array.dtype.kind not in "iuf" or array.ndim != rank or array.shape[-1] != 3:
        got = f"shape {list(array.shape)}" if array is not None and array.dtype.kind in "iuf" else "something else"
        raise RequestError(f"{where} must be a {shape_text} array of numbers, got {got}")
    bad = ~((array >= 0) & (array <= 1))
    if bad.any():
        found = array[bad].flat[0]
        raise RequestError(f"{where}: values must be in [0, 1], found {'NaN' if np.isnan(found) else repr(float(found))}")
    images = array.astype(np.float32)
    for i, image in enumerate(images if rank == 4 else [images]):
        check_image_size(image, f"{where}[{i}]" if rank == 4 else where, limits)
    return images


def scene(images: dict[str, np.ndarray], where: str) -> list[np.ndarray]:
    """The exposures of one scene (named in messages by their keys), checked: two or more, one size."""
    if len(images) < 2:
        raise RequestError(f"{where}: need at least two exposures to fuse, got {len(images)}")
    sizes = {name: image.shape[:2] for name, image in images.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} {w}x{h}" for name, (h, w) in sizes.items())
        raise RequestError(f"{where}: exposures differ in size: {listed}")
    return list(images.values())


def check_inputs(names: set[str], signature: str, where: str) -> None:
    expected = set(SIGNATURES[signature]["inputs"])
    allowed = expected | ({EXPOSURES_INPUT} if signature == BYTES_SIGNATURE else set())
    unknown = sorted(names - allowed)
    takes = " and ".join(sorted(expected)) + (f", or {EXPOSURES_INPUT}" if signature == BYTES_SIGNATURE else "")
    if unknown:
        raise RequestError(f'{where}: unknown input "{unknown[0]}" ({signature} takes {takes})')
    if signature == BYTES_SIGNATURE and EXPOSURES_INPUT in names:
        if names != {EXPOSURES_INPUT}:
            raise RequestError(f"{where}: give either {EXPOSURES_INPUT} or over_bytes and under_bytes, not both")
        return
    missing = sorted(expected - names)
    if missing:
        raise RequestError(f'{where}: missing input "{missing[0]}" ({signature} takes {takes})')


def exposures_list(value: Any, where: str, limits: Limits) -> dict[str, np.ndarray]:
    if not isinstance(value, list):
        raise RequestError(f'{where} must be a list of {{"b64": ...}} images')
    return {f"{where}[{i}]": decode_exposure(decode_b64(v, f"{where}[{i}]"), f"{where}[{i}]", limits) for i, v in enumerate(value)}


def parse_instance(instance: Any, signature: str, where: str, limits: Limits) -> list[np.ndarray]:
    """The exposures of one row-format instance."""
    if not isinstance(instance, dict):
        raise RequestError(f"{where} must be an object of named inputs")
    check_inputs(set(instance), signature, where)
    if signature == FLOAT_SIGNATURE:
        images = {f"{where}.{name}": float_image(instance[name], f"{where}.{name}", 3, limits) for name in ("over", "under")}
    elif EXPOSURES_INPUT in instance:
        images = exposures_list(instance[EXPOSURES_INPUT], f"{where}.{EXPOSURES_INPUT}", limits)
    else:
        images = {
            f"{where}.{name}": decode_exposure(decode_b64(instance[name], f"{where}.{name}"), f"{where}.{name}", limits)
            for name in ("over_bytes", "under_bytes")
        }
    return scene(images, where)


def parse_columns(inputs: Any, signature: str, limits: Limits) -> list[list[np.ndarray]]:
    """The exposures of each batch entry of a columnar request."""
    if not isinstance(inputs, dict):
        raise RequestError('"inputs" must be an object of named inputs')
    check_inputs(set(inputs), signature, "inputs")
    if signature == FLOAT_SIGNATURE:
        columns = {name: list(float_image(inputs[name], f"inputs.{name}", 4, limits)) for name in ("over", "under")}
    elif EXPOSURES_INPUT in inputs:
        scenes = inputs[EXPOSURES_INPUT]
        if not isinstance(scenes, list) or not scenes:
            raise RequestError(f'inputs.{EXPOSURES_INPUT} must be a non-empty list of lists of {{"b64": ...}} images')
        return [
            scene(exposures_list(images, f"inputs.{EXPOSURES_INPUT}[{i}]", limits), f"inputs.{EXPOSURES_INPUT}[{i}]")
            for i, images in enumerate(scenes)
        ]
    else:
        columns = {}
        for name in ("over_bytes", "under_bytes"):
            values = inputs[name]
            if not isinstance(values, list) or not values:
                raise RequestError(f'inputs.{name} must be a non-empty list of {{"b64": ...}} images')
            columns[name] = [
                decode_exposure(decode_b64(v, f"inputs.{name}[{i}]"), f"inputs.{name}[{i}]", limits) for i, v in enumerate(values)
            ]
    first, second = columns.values()
    if len(first) != len(second):
        raise RequestError(f"inputs: {' and '.join(columns)} have different batch sizes ({len(first)} and {len(second)})")
    names = list(columns)
    return [
        scene({f"inputs.{names[0]}[{i}]": a, f"inputs.{names[1]}[{i}]": b}, f"inputs[{i}]")
        for i, (a, b) in enumerate(zip(first, second))
    ]


def parse_predict(body: bytes, limits: Limits) -> Prediction:
    """Parse and check a ``:predict`` body; RequestError (400/413) says what is wrong."""
    request = parse_json(body)
    signature = request.get("signature_name", FLOAT_SIGNATURE)
    if signature not in SIGNATURES:
        raise RequestError(
            f"signature_name {json.dumps(signature)} not found (this model has {FLOAT_SIGNATURE} and {BYTES_SIGNATURE})"
        )
    unknown = sorted(set(request) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise RequestError(f'unknown request field "{unknown[0]}" (expected signature_name and instances or inputs)')
    if ("instances" in request) == ("inputs" in request):
        raise RequestError('request must have either "instances" (row format) or "inputs" (columnar format), not both or neither')
    if "inputs" in request:
        return Prediction(signature, True, parse_columns(request["inputs"], signature, limits))
    instances = request["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError('"instances" must be a non-empty list')
    scenes = [parse_instance(instance, signature, f"instances[{i}]", limits) for i, instance in enumerate(instances)]
    return Prediction(signature, False, scenes)


# ---------------------------------------------------------------------------------------------
# Fusion and answers.


def encode_png(image: np.ndarray) -> bytes:
    """8-bit RGB PNG of a float [0, 1] image (what the SavedModel's fuse_images returns)."""
    import cv2

    from mefgan_tf.images import to_uint8

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(to_uint8(image)[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def answer(fuser, prediction: Prediction) -> bytes:
    """The JSON answer to ``prediction``: every scene fused with ``fuser``."""
    results: list[Any] = []
    for exposures in prediction.scenes:
        if prediction.signature == FLOAT_SIGNATURE:
            results.append(fuser.pair(exposures[0], exposures[1]).tolist())  # used as named, like the SavedModel
        else:
            results.append({"b64": base64.b64encode(encode_png(fuser(exposures))).decode("ascii")})
    key = "outputs" if prediction.columnar else "predictions"
    return json.dumps({key: results}, separators=(",", ":")).encode()


def status_body(version: str) -> dict:
    return {"model_version_status": [{"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def tensor_info(dtype: str, shape: list[int], name: str) -> dict:
    dims = [{"size": str(size), "name": ""} for size in shape]
    return {"dtype": dtype, "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": name}


def metadata_body(name: str, version: str) -> dict:
    """GetModelMetadata's answer: the SavedModel's signature_def map."""
    signature_defs = {}
    for signature, spec in SIGNATURES.items():
        inputs = {k: tensor_info(*v, f"{signature}_{k}:0") for k, v in spec["inputs"].items()}
        outputs = {k: tensor_info(*v, OUTPUT_TENSORS[signature]) for k, v in spec["outputs"].items()}
        signature_defs[signature] = {"inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict", "defaults": {}}
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {"signature_def": {"signature_def": signature_defs}},
    }


class FusionQueue:
    """Runs jobs one at a time on a worker thread, admitting at most ``waiting`` more requests.

    A slot is taken when a request is admitted (before its body is read, so that bodies in memory
    are bounded too) and given back when its job ends, even if the client gave up earlier: a job
    cannot be stopped once it runs, and it keeps its memory until then. Use from the event loop only.
    """

    def __init__(self, waiting: int) -> None:
        self.capacity = waiting + 1
        self.held = 0
        self.mean_seconds = 1.0  # running mean of job durations, for Retry-After
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mefgan-fuse")

    def try_acquire(self) -> bool:
        if self.held >= self.capacity:
            return False
        self.held += 1
        return True

    def release(self) -> None:
        self.held -= 1

    def retry_after(self) -> int:
        return max(1, math.ceil(self.mean_seconds * self.held))

    async def run(self, job: Callable[[], bytes]) -> bytes:
        """Run ``job`` on the worker with the slot already acquired; the slot is released when it ends."""
        loop = asyncio.get_running_loop()

        def timed() -> bytes:
            start = time.perf_counter()
            try:
                return job()
            finally:
                self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.perf_counter() - start)

        future: Future = self.executor.submit(timed)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.release))
        try:
            return await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            future.cancel()  # a job that has not started yet never runs
            raise

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


async def read_body(request, limit: int) -> bytes:
    """The request body, or a 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = RequestError(f"request body is larger than this server's limit of {limit / 2**20:.3g} MB (mefgan serve --max-body-mb)", 413)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def page_html() -> bytes:
    return resources.files("mefgan_tf").joinpath("web", PAGE).read_bytes()


def create_app(
    fuser,
    *,
    model_name: str = MODEL_NAME,
    version: str = "1",
    queue_size: int = DEFAULT_QUEUE,
    limits: Limits = Limits(),
    warmup: bool = True,
):
    """The FastAPI application serving ``fuser`` (a ``fusion.Fuser``) as TensorFlow Serving would."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException

    queue = FusionQueue(queue_size)
    page = page_html()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warmup:  # trace the graphs now, not in the first request
            tiny = np.full((2 * MIN_SIDE, 2 * MIN_SIDE, 3), 0.5, np.float32)
            await asyncio.get_running_loop().run_in_executor(queue.executor, fuser, [tiny, tiny * 0.5])
        yield
        queue.shutdown()

    app = FastAPI(title="mefgan serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.queue = queue

    def error(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return error(str(err), err.status, err.headers)

    @app.exception_handler(CommandError)
    async def command_error(request: Request, err: CommandError) -> JSONResponse:
        return error(str(err), 400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return error(f"bad request: {err.errors()[0].get('msg', 'invalid')}", 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        message = {
            404: f"no such endpoint: {request.method} {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }
        return error(message.get(err.status_code, str(err.detail)), err.status_code, getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        return error(f"internal error: {type(err).__name__}: {err}".splitlines()[0], 500)

    def check_model(name: str, requested: str | None) -> None:
        if name != model_name:
            raise RequestError(f"Servable not found for request: Latest({name})", 404)
        if requested is not None and requested != version:
            raise RequestError(f"Servable not found for request: Specific({name}, {requested})", 404)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    @app.get("/v1/models/{name}")
    @app.get("/v1/models/{name}/versions/{requested}")
    async def model_status(name: str, requested: str | None = None) -> dict:
        check_model(name, requested)
        return status_body(version)

    @app.get("/v1/models/{name}/metadata")
    @app.get("/v1/models/{name}/versions/{requested}/metadata")
    async def model_metadata(name: str, requested: str | None = None) -> dict:
        check_model(name, requested)
        return metadata_body(name, version)

    @app.post("/v1/models/{name}:predict")
    @app.post("/v1/models/{name}/versions/{requested}:predict")
    async def predict(request: Request, name: str, requested: str | None = None) -> Response:
        check_model(name, requested)
        if not queue.try_acquire():
            seconds = queue.retry_after()
            raise RequestError(
                f"server busy: {queue.held} requests are being fused or waiting; retry in {seconds} s", 503, {"Retry-After": str(seconds)}
            )
        submitted = False

        async def handle() -> bytes:
            nonlocal submitted
            body = await read_body(request, limits.max_body_bytes)
            prediction = await asyncio.to_thread(parse_predict, body, limits)
            submitted = True
            return await queue.run(lambda: answer(fuser, prediction))

        try:
            content = await asyncio.wait_for(handle(), limits.timeout_s)
        except asyncio.TimeoutError:  # noqa: UP041 - the builtin only from Python 3.11 on
            limit = f"{limits.timeout_s:g} s (mefgan serve --timeout)"
            raise RequestError(f"request took longer than this server's limit of {limit}", 504) from None
        finally:
            if not submitted:
                queue.release()
        return Response(content, media_type="application/json")

    @app.post("/v1/models/{name}:{verb}")
    @app.post("/v1/models/{name}/versions/{requested}:{verb}")
    async def other_verb(name: str, verb: str, requested: str | None = None) -> Response:
        check_model(name, requested)
        raise RequestError(
            f'":{verb}" is not supported: this model answers ":predict" only (it has no classification or regression signature)'
        )

    return app


# ---------------------------------------------------------------------------------------------
# The command.


def served_model(path: str | None) -> tuple[Path, str]:
    """(model path, version): a checkpoint (version 1), a SavedModel version folder (its number) or
    a TensorFlow Serving base folder of numbered versions (the highest, as TensorFlow Serving picks)."""
    from mefgan_tf.models import model_version

    return model_version(path)


def listening_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        raise CommandError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    return sock


def serve_forever(
    model: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    tile: int | str | None = "auto",
    queue_size: int = DEFAULT_QUEUE,
    limits: Limits = Limits(),
    quiet: bool = False,
) -> None:
    """Serve ``model`` (``served_model``; default: the shipped generator) on ``host``:``port`` until
    SIGTERM or SIGINT, then shut down gracefully."""
    import uvicorn

    from mefgan_tf.fusion import load_fuser

    path, version = served_model(model)
    sock = listening_socket(host, port)  # before loading: a busy port fails fast
    fuser = load_fuser(path, tile=tile)
    app = create_app(fuser, version=version, queue_size=queue_size, limits=limits)
    config = uvicorn.Config(
        app, log_level="warning" if quiet else "info", access_log=not quiet,
        timeout_graceful_shutdown=int(limits.timeout_s) + 5,
    )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"mefgan serve: model {path}, version {version}", flush=True)
    print(f"mefgan serve: listening on http://{shown}:{port}/ (page; REST API at /v1/models/{MODEL_NAME})", flush=True)
    stopped: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):  # uvicorn shuts down gracefully, then re-raises these
        signal.signal(sig, lambda number, frame: stopped.append(number))
    uvicorn.Server(config).run(sockets=[sock])
    print(f"mefgan serve: stopped{f' ({signal.Signals(stopped[0]).name})' if stopped else ''}", flush=True)
