"""Ctrl-C and SIGTERM: every command stops on them, and no output is completed after one.

Python turns SIGINT into a ``KeyboardInterrupt`` wherever the main thread happens to be. Raised
inside a garbage-collection callback or a ``__del__`` (TensorFlow runs many), it is printed as
"Exception ignored" and lost, and the command would finish as if nothing happened. So the handler
of ``interrupts_noticed`` also records each signal, and ``check_interrupted`` (called before an
output is renamed into place, and when a command ends) raises the lost interrupt again.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_received: list[int] = []  # signals whose KeyboardInterrupt has not yet been handled


def _interrupt(number: int, frame) -> None:
    _received.append(number)
    raise KeyboardInterrupt


def handled() -> None:
    """Mark the pending interrupts handled (by code that caught the ``KeyboardInterrupt``)."""
    _received.clear()


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C or SIGTERM came whose exception was lost."""
    if _received:
        handled()
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_noticed(terminate: bool = False) -> Iterator[None]:
    """Within the block, SIGINT (and SIGTERM when ``terminate``) raise ``KeyboardInterrupt`` and
    are recorded for ``check_interrupted``. The main thread only; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = (signal.SIGINT, signal.SIGTERM) if terminate else (signal.SIGINT,)
    previous = {number: signal.signal(number, _interrupt) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Defer SIGINT and SIGTERM until the block ends (the main thread only), so that a checkpoint is
    written whole; a deferred signal then stops the run as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: pending.append(number)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            raise KeyboardInterrupt
