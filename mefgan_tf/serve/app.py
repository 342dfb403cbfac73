"""The FastAPI application of `mefgan serve`: TensorFlow Serving's REST API (``serve.protocol``) and a
web page, fusing one request at a time on a worker thread.

Every request is fused at full resolution by ``fusion.Fuser`` (exact tiled inference, exposures
ordered by luminance). At most ``queue_size`` more requests may wait (503 with ``Retry-After`` past
that), bodies are limited in size (413) and decoded images in pixels (413), each request has a
deadline (504), and bad input is a 400 with one line. A request whose deadline passes or whose
client goes away is cancelled: its fusion stops at the next tile, so the worker is free for the
next one. Errors have TensorFlow Serving's form, ``{"error": "..."}``.
"""
# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.
import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.serve.protocol import (
    DEFAULT_LIMITS,
    MIN_SIDE,
    MODEL_NAME,
    Limits,
    RequestError,
    answer,
    metadata_body,
    parse_predict,
    status_body,
)

DEFAULT_QUEUE = 8  # requests that may wait while one is fused
PAGE = "index.html"
CLIENT_CLOSED = 499  # the status logged for a request whose client went away (nginx's convention)
DISCONNECT_POLL_S = 0.25  # how often a running request checks that its client is still there


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

    async def run(self, job: Callable[[], bytes], stop: threading.Event) -> bytes:
        """Run ``job`` on the worker with the slot already acquired; the slot is released when it ends.
        Cancelled (deadline, client gone), a job that waits never runs and one that runs is told to
        stop (``stop``): it ends at its next step."""
        loop = asyncio.get_running_loop()

        def timed() -> bytes:
            start = time.perf_counter()
            try:
                return job()
            finally:
                self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.perf_counter() - start)

        future: Future = self.executor.submit(timed)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.release))
        result = asyncio.wrap_future(future)
        result.add_done_callback(lambda done: done.cancelled() or done.exception())  # nobody may await a cancelled job
        try:
            return await asyncio.shield(result)
        except asyncio.CancelledError:
            stop.set()
            future.cancel()
            raise

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


async def client_left(request, task: asyncio.Future, submitted: asyncio.Event) -> bool:
    """Wait for ``task``; True (and ``task`` cancelled) if the client disconnects first. The
    connection is watched once the body is read (before, reading it notices)."""
    while not task.done():
        await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if not task.done() and submitted.is_set() and await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return True
    return False


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
    limits: Limits = DEFAULT_LIMITS,
    warmup: bool = True,
):
    """The FastAPI application serving ``fuser`` (a ``fusion.Fuser``) as TensorFlow Serving would."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

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

    def check_model(name: str, requested: str | None, request: Request) -> None:
        if ":" in (requested or name):  # a verb: GET .../mefgan:predict
            raise RequestError(f"{request.method} is not allowed on {request.url.path}: use POST", 405, {"Allow": "POST"})
        if name != model_name:
            raise RequestError(f"Servable not found for request: Latest({name})", 404)
        if requested is not None and requested != version:
            raise RequestError(f"Servable not found for request: Specific({name}, {requested})", 404)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    @app.api_route("/v1/models/{name}", methods=["GET", "HEAD"])
    @app.api_route("/v1/models/{name}/versions/{requested}", methods=["GET", "HEAD"])
    async def model_status(request: Request, name: str, requested: str | None = None) -> dict:
        check_model(name, requested, request)
        return status_body(version)

    @app.api_route("/v1/models/{name}/metadata", methods=["GET", "HEAD"])
    @app.api_route("/v1/models/{name}/versions/{requested}/metadata", methods=["GET", "HEAD"])
    async def model_metadata(request: Request, name: str, requested: str | None = None) -> dict:
        check_model(name, requested, request)
        return metadata_body(name, version)

    @app.post("/v1/models/{name}:predict")
    @app.post("/v1/models/{name}/versions/{requested}:predict")
    async def predict(request: Request, name: str, requested: str | None = None) -> Response:
        check_model(name, requested, request)
        if not queue.try_acquire():
            seconds = queue.retry_after()
            raise RequestError(
                f"server busy: {queue.held} requests are being fused or waiting; retry in {seconds} s", 503, {"Retry-After": str(seconds)}
            )
        submitted, stop = asyncio.Event(), threading.Event()

        async def handle() -> bytes:
            body = await read_body(request, limits.max_body_bytes)
            prediction = await asyncio.to_thread(parse_predict, body, limits)
            submitted.set()
            return await queue.run(lambda: answer(fuser, prediction, stop), stop)

        try:
            task = asyncio.ensure_future(asyncio.wait_for(handle(), limits.timeout_s))
            if await client_left(request, task, submitted):
                return Response(status_code=CLIENT_CLOSED)  # nobody reads it: the job was cancelled
            content = await task
        except asyncio.TimeoutError:  # noqa: UP041 - the builtin only from Python 3.11 on
            limit = f"{limits.timeout_s:g} s (mefgan serve --timeout)"
            raise RequestError(f"request took longer than this server's limit of {limit}", 504) from None
        except ClientDisconnect:  # gone while sending its body
            return Response(status_code=CLIENT_CLOSED)
        finally:
            if not submitted.is_set():
                queue.release()
        return Response(content, media_type="application/json")

    @app.post("/v1/models/{name}:{verb}")
    @app.post("/v1/models/{name}/versions/{requested}:{verb}")
    async def other_verb(request: Request, name: str, verb: str, requested: str | None = None) -> Response:
        check_model(name, requested, request)
        raise RequestError(
            f'":{verb}" is not supported: this model answers ":predict" only (it has no classification or regression signature)'
        )

    return app


