"""The FastAPI application of `mefgan serve`: TensorFlow Serving's REST API (``serve.protocol``) and a
web page, fusing one request at a time on a worker thread.

Every request is fused at full resolution by ``fusion.Fuser`` (exact tiled inference, exposures
ordered by luminance). At most ``queue_size`` more requests may wait (503 with ``Retry-After`` past
that), bodies are limited in size (413) and must arrive within a deadline of their own (408), images
are limited in pixels, each and per request, from their headers (413), and all requests together
hold at most a memory budget (``MemoryBudget``: 413 for a request that never fits, 503 while others
hold it), reserved before parsing and before decoding. Each request has a deadline from its body's
arrival (504), and bad input is a 400 with one line. A request whose deadline passes or whose
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


BUDGET_SHARE = 0.5  # of the memory available at start (host or container): the default budget
PARSERS = 2  # threads that parse and decode requests


def megabytes(count: int) -> str:
    return f"{count / 2**20:.0f} MB" if count >= 2**20 else f"{count / 2**20:.2g} MB"


class MemoryBudget:
    """Bytes that all requests may hold at once: bodies, parsed JSON, decoded images, answers. Each
    request reserves its share (``Share``) before making it; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held, self.peak = limit, 0, 0
        self.lock = threading.Lock()

    def take(self, count: int, total: int, what: str, retry_after: int) -> None:
        """Reserve ``count`` more bytes for a request that will then hold ``total``: a 413 when
        ``total`` alone exceeds the budget, a 503 when the others hold too much of it now."""
        if total > self.limit:
            raise RequestError(f"{what} needs about {megabytes(total)} of memory, more than this server's budget of "
                               f"{megabytes(self.limit)} (mefgan serve --max-memory-mb)", 413)
        with self.lock:
            if self.held + count > self.limit:
                raise RequestError(f"server busy: other requests hold its memory budget of {megabytes(self.limit)}; "
                                   f"retry in {retry_after} s", 503, {"Retry-After": str(retry_after)})
            self.held += count
            self.peak = max(self.peak, self.held)

    def give(self, count: int) -> None:
        with self.lock:
            self.held -= count


class Share:
    """One request's part of the budget. Held by the handler and by each thread that works for the
    request (``enter``/``leave``): given back when the last of them leaves, as a job that was given up
    keeps its memory until it ends."""

    def __init__(self, budget: MemoryBudget, retry_after: Callable[[], int]) -> None:
        self.budget, self.retry_after = budget, retry_after
        self.bytes, self.users = 0, 1
        self.lock = threading.Lock()

    def reserve(self, total: int, what: str) -> None:
        """Hold ``total`` bytes in all (``MemoryBudget.take``); less than held already changes nothing."""
        with self.lock:
            if total > self.bytes:
                self.budget.take(total - self.bytes, total, what, self.retry_after())
                self.bytes = total

    def enter(self) -> None:
        with self.lock:
            self.users += 1

    def leave(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                self.budget.give(self.bytes)
                self.bytes = 0


class FusionQueue:
    """Runs jobs one at a time on a worker thread, admitting at most ``waiting`` more requests.

    A slot is taken when a request's body has arrived (a client that is slow to send one holds no
    slot; its bytes count in the memory budget) and given back when its job ends, even if the client
    gave up earlier: a job cannot be stopped once it runs, and it keeps its memory until then. Use
    from the event loop only.
    """

    def __init__(self, waiting: int) -> None:
        self.capacity = waiting + 1
        self.held = 0
        self.mean_seconds = 1.0  # running mean of job durations, for Retry-After
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mefgan-fuse")

    def full(self) -> bool:
        return self.held >= self.capacity

    def try_acquire(self) -> bool:
        if self.full():
            return False
        self.held += 1
        return True

    def release(self) -> None:
        self.held -= 1

    def retry_after(self) -> int:
        return max(1, math.ceil(self.mean_seconds * self.held))

    async def run(self, job: Callable[[], bytes], stop: threading.Event, share: Share) -> bytes:
        """Run ``job`` on the worker with the slot already acquired; the slot and ``share`` are released when it ends.
        Cancelled (deadline, client gone), a job that waits never runs and one that runs is told to
        stop (``stop``): it ends at its next step."""
        loop = asyncio.get_running_loop()

        def timed() -> bytes:
            start = time.perf_counter()
            try:
                return job()
            finally:
                self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.perf_counter() - start)

        share.enter()
        future: Future = self.executor.submit(timed)
        future.add_done_callback(lambda _: share.leave())
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


async def read_body(request, limit: int, share: Share) -> bytes:
    """The request body, or a 413 as soon as it is known to exceed ``limit`` bytes; what has arrived
    is held in ``share`` (twice: the chunks, then the whole)."""
    too_large = RequestError(f"request body is larger than this server's limit of {limit / 2**20:.3g} MB (mefgan serve --max-body-mb)", 413)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        share.reserve(2 * size, "this request's body")
        chunks.append(chunk)
    return b"".join(chunks)


def default_budget() -> int:
    """``BUDGET_SHARE`` of the memory available now (``memory.available_memory``: a container's limit
    counts); the rest is for the fusion that runs."""
    from mefgan_tf.memory import available_memory

    return int(BUDGET_SHARE * available_memory())


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
    budget = MemoryBudget(limits.memory_bytes or default_budget())
    parsers = ThreadPoolExecutor(max_workers=PARSERS, thread_name_prefix="mefgan-parse")
    page = page_html()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warmup:  # trace the graphs now, not in the first request
            tiny = np.full((2 * MIN_SIDE, 2 * MIN_SIDE, 3), 0.5, np.float32)
            await asyncio.get_running_loop().run_in_executor(queue.executor, fuser, [tiny, tiny * 0.5])
        yield
        queue.shutdown()
        parsers.shutdown(wait=True)

    app = FastAPI(title="mefgan serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.queue = queue
    app.state.budget = budget

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

    def busy() -> RequestError:
        seconds = queue.retry_after()
        return RequestError(
            f"server busy: {queue.held} requests are being fused or waiting; retry in {seconds} s", 503, {"Retry-After": str(seconds)}
        )

    async def receive(request: Request, share: Share) -> bytes:
        """The body within its deadline (408 past it)."""
        try:
            return await asyncio.wait_for(read_body(request, limits.max_body_bytes, share), limits.body_timeout_s)
        except asyncio.TimeoutError:  # noqa: UP041 - the builtin only from Python 3.11 on
            limit = f"{limits.body_timeout_s:g} s (mefgan serve --body-timeout)"
            raise RequestError(f"request body did not arrive within this server's limit of {limit}", 408) from None

    async def parse(body: bytes, share: Share):
        """``parse_predict`` on a parser thread, its memory reserved in ``share`` until it ends."""
        share.enter()
        future = parsers.submit(parse_predict, body, limits, share.reserve)
        future.add_done_callback(lambda _: share.leave())
        return await asyncio.wrap_future(future)

    @app.post("/v1/models/{name}:predict")
    @app.post("/v1/models/{name}/versions/{requested}:predict")
    async def predict(request: Request, name: str, requested: str | None = None) -> Response:
        check_model(name, requested, request)
        if queue.full():
            raise busy()
        share = Share(budget, queue.retry_after)
        try:
            return await fuse_request(request, share)
        except ClientDisconnect:  # gone while sending its body
            return Response(status_code=CLIENT_CLOSED)
        finally:
            share.leave()

    async def fuse_request(request: Request, share: Share) -> Response:
        body = await receive(request, share)
        if not queue.try_acquire():
            raise busy()
        submitted, stop = asyncio.Event(), threading.Event()

        async def handle() -> bytes:
            prediction = await parse(body, share)
            submitted.set()
            return await queue.run(lambda: answer(fuser, prediction, stop), stop, share)

        try:
            task = asyncio.ensure_future(asyncio.wait_for(handle(), limits.timeout_s))
            if await client_left(request, task, submitted):
                return Response(status_code=CLIENT_CLOSED)  # nobody reads it: the job was cancelled
            content = await task
        except asyncio.TimeoutError:  # noqa: UP041 - the builtin only from Python 3.11 on
            limit = f"{limits.timeout_s:g} s (mefgan serve --timeout)"
            raise RequestError(f"request took longer than this server's limit of {limit}", 504) from None
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


