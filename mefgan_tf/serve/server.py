"""`mefgan serve` as a process: the model to serve, the listening socket, uvicorn, a graceful stop."""
from __future__ import annotations

import signal
import socket
from pathlib import Path

from mefgan_tf.align import PreparedFuser
from mefgan_tf.errors import CommandError
from mefgan_tf.fusion import DEFAULT_OPTIONS, FusionOptions
from mefgan_tf.models import load_fuser, model_version
from mefgan_tf.serve.app import DEFAULT_QUEUE, create_app
from mefgan_tf.serve.protocol import DEFAULT_LIMITS, MODEL_NAME, Limits

# uvicorn is imported where the server starts: it is an optional dependency (`pip install mefgan-tf[serve]`).
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8501
HEADER_TIMEOUT_S = 10.0  # for a request's headers to arrive (the body has --body-timeout)


def header_deadline_protocol(timeout_s: float = HEADER_TIMEOUT_S):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers have not all arrived
    ``timeout_s`` after it opened or after its last answer: a client that sends nothing, or headers
    a byte at a time, holds no connection for ever."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.arm_header_deadline()

        def arm_header_deadline(self) -> None:
            self.loop.call_later(timeout_s, self.headers_late, self.cycle)

        def headers_late(self, cycle) -> None:
            """Close the connection if no request started since the deadline was set and none runs."""
            if self.cycle is cycle and (cycle is None or cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


def served_model(path: str | None) -> tuple[Path, str]:
    """(model path, version): a checkpoint (version 1), a SavedModel version folder (its number) or
    a TensorFlow Serving base folder of numbered versions (the highest, as TensorFlow Serving picks)."""
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
    options: FusionOptions = DEFAULT_OPTIONS,
    queue_size: int = DEFAULT_QUEUE,
    limits: Limits = DEFAULT_LIMITS,
    quiet: bool = False,
    align: bool = False,
    deghost: bool = False,
) -> None:
    """Serve ``model`` (``served_model``; default: the shipped generator) fusing as ``options`` say on
    ``host``:``port`` until SIGTERM or SIGINT, then shut down gracefully."""
    import uvicorn

    path, version = served_model(model)
    sock = listening_socket(host, port)  # before loading: a busy port fails fast
    fuser = load_fuser(path, options)
    if align or deghost:  # exposures aligned and/or deghosted first (mefgan serve --align, --deghost)
        fuser = PreparedFuser(fuser, align, deghost)
    app = create_app(fuser, version=version, queue_size=queue_size, limits=limits)
    config = uvicorn.Config(
        app, log_level="warning" if quiet else "info", access_log=not quiet, http=header_deadline_protocol(),
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
