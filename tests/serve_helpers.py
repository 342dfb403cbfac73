"""A real `mefgan serve` application on an ephemeral 127.0.0.1 port, in a thread of the test process."""
from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from mefgan_tf.fusion import Fuser
from mefgan_tf.images import to_uint8


@contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    import uvicorn

    from mefgan_tf.serve import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


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


class GatedFuser(Fuser):
    """A real fuser that waits for ``gate`` before each fusion, so tests can hold the worker busy."""

    def __init__(self, stages) -> None:
        super().__init__(stages)
        self.entered, self.gate = threading.Event(), threading.Event()

    def pair(self, over, under):
        self.entered.set()
        self.gate.wait(30)
        return super().pair(over, under)
