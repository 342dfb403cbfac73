"""`mefgan serve`: fusion over TensorFlow Serving's REST API, with a web page (``serve``)."""
from __future__ import annotations

import argparse

from mefgan_tf.cli.types import add_fusion_options, finite_float, fusion_options, port_number
from mefgan_tf.errors import CommandError, require
from mefgan_tf.serve.app import DEFAULT_QUEUE
from mefgan_tf.serve.protocol import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_MAX_MEGAPIXELS,
    DEFAULT_MAX_REQUEST_MEGAPIXELS,
    DEFAULT_TIMEOUT_S,
    Limits,
)
from mefgan_tf.serve.server import DEFAULT_HOST, DEFAULT_PORT, serve_forever

# FastAPI and uvicorn are imported when the server starts (``serve``): they are an optional extra.


def limit_options() -> tuple[tuple[str, float | None, str, str], ...]:
    """The server's limits: option, default, metavar and help (each a finite number, range-checked by ``check``)."""
    return (
        ("--max-body-mb", DEFAULT_MAX_BODY_MB, "MB", "largest request body; larger ones get 413"),
        ("--max-megapixels", DEFAULT_MAX_MEGAPIXELS, "MP",
         "largest image, from its header, before decoding; larger ones get 413"),
        ("--max-request-megapixels", DEFAULT_MAX_REQUEST_MEGAPIXELS, "MP",
         "most pixels of all images of one request together; more get 413"),
        ("--max-memory-mb", None, "MB",
         "memory that all requests together may hold (bodies, parsed JSON, decoded images); a request that would go "
         "past it gets 503, one that never fits 413 (default: half of the memory available at start, a container's "
         "limit included)"),
        ("--body-timeout", DEFAULT_BODY_TIMEOUT_S, "SECONDS", "deadline for receiving a request's body; later ones get 408"),
        ("--timeout", DEFAULT_TIMEOUT_S, "SECONDS",
         "deadline of one request from the arrival of its body, queueing included; later ones get 504"),
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", metavar="PATH",
        help="mefgan-tf checkpoint folder/prefix, SavedModel folder from `mefgan export`, or a folder of "
        "numbered SavedModel versions (default: shipped, the generator that comes with mefgan-tf)",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT,
        help="port to listen on, 0 to 65535; 0 picks a free one (default: %(default)s)",
    )
    add_fusion_options(parser)
    parser.add_argument("--align", action="store_true",
                        help="align each request's exposures first, as `mefgan fuse --align` (default: off, so that "
                             "answers match TensorFlow Serving's)")
    parser.add_argument("--deghost", action="store_true",
                        help="take moving things from the best-exposed frame first, as `mefgan fuse --deghost` "
                             "(default: off)")
    parser.add_argument(
        "--queue", type=int, default=DEFAULT_QUEUE, metavar="N",
        help="requests that may wait while one is fused; more get 503 with Retry-After (default: %(default)s)",
    )
    for option, default, metavar, text in limit_options():
        shown = " (default: %(default)s)" if default is not None else ""
        parser.add_argument(option, type=finite_float, default=default, metavar=metavar, help=text + shown)
    parser.add_argument("-q", "--quiet", action="store_true", help="no access log")


# option -> (least, most): what each number of `mefgan serve` may be
RANGES = {"queue": (0, 10_000), "max_body_mb": (1e-3, 2**20), "max_megapixels": (1e-3, 1e5),
          "max_request_megapixels": (1e-3, 1e6), "max_memory_mb": (1.0, 2**30), "timeout": (1e-3, 1e7),
          "body_timeout": (1e-3, 1e7)}


def check(args: argparse.Namespace):
    """Before TensorFlow starts: the fusion's options (``args.fusion``) and the ``Limits`` of the others;
    CommandError naming an option out of its range."""
    args.fusion = fusion_options(args)
    return limits_of(args)


def limits_of(args: argparse.Namespace):
    """The ``Limits`` of the options; CommandError naming an option out of its range."""
    for name, (low, high) in RANGES.items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            raise CommandError(f"--{name.replace('_', '-')} {value:g}: must be from {low:g} to {high:g}")
    memory = None if args.max_memory_mb is None else int(args.max_memory_mb * 2**20)
    return Limits(int(args.max_body_mb * 2**20), int(args.max_megapixels * 1e6), args.timeout,
                  int(args.max_request_megapixels * 1e6), args.body_timeout, memory)


def run(args: argparse.Namespace) -> int:
    for module in ("fastapi", "uvicorn"):
        require(module, "mefgan serve")
    serve_forever(args.model, args.host, args.port, args.fusion, args.queue, limits_of(args), args.quiet, args.align,
                  args.deghost)
    return 0
