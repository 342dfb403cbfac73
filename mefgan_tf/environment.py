"""What an entry point sets before TensorFlow or Keras is imported: quiet start-up, Keras's backend.

Importing the library changes nothing; the entry points (the ``mefgan`` command, the Python API
of ``mefgan_tf.api``) call ``set_environment`` and
``import_tensorflow_quietly`` first, so that TensorFlow's C++ start-up lines (no CUDA driver,
CPU features) stay out of the user's terminal. A command that reads its inputs first (``mefgan
fuse``) calls ``start_tensorflow_import``: TensorFlow's five seconds of start-up then pass while the
photos are read and aligned, and ``import_tensorflow_quietly`` waits for it where the model is needed.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TextIO

# What the entry point sets unless the user did: TensorFlow's C++ log level (warnings and errors
# only), Keras's backend, and OpenCV's log level (its "[ WARN:0@...]" lines on damaged files, which
# our one-line errors already explain).
ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "OPENCV_LOG_LEVEL": "ERROR"}
# Optional packages that TensorFlow and Keras import at start-up when they are installed, for
# features mefgan-tf never uses from them (TensorFlow Lite's JAX converter, Keras's image gallery
# plots): kept out of that import, they cost 1.6 of its 6 seconds on a 2-core CPU. They import as
# usual afterwards (`mefgan train --backend jax`, `mefgan evaluate`'s plots).
SKIPPED_AT_IMPORT = ("jax", "matplotlib")


def set_environment() -> None:
    """``ENVIRONMENT``, where the user has not set it: before TensorFlow or Keras is imported."""
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def optional_packages_skipped() -> Iterator[None]:
    """Within the block, ``SKIPPED_AT_IMPORT`` packages not yet imported fail to import (as if absent)."""
    skipped = [name for name in SKIPPED_AT_IMPORT if name not in sys.modules]
    sys.modules.update(dict.fromkeys(skipped))
    try:
        yield
    finally:
        for name in skipped:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def import_tensorflow(skip_optional: bool = False) -> None:
    """Import TensorFlow (probing its devices) and, for Keras's TensorFlow backend, Keras; with
    ``skip_optional``, without ``SKIPPED_AT_IMPORT`` (for the command line: its process is ours)."""
    with optional_packages_skipped() if skip_optional else contextlib.nullcontext():
        import tensorflow as tf

        tf.config.list_physical_devices()
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            import keras  # noqa: F401  (a second of its own)


@dataclass
class BackgroundImport:
    """TensorFlow being imported in a thread, file descriptor 2 sent to ``log`` meanwhile: ``saved``
    is the user's stderr, which Python's ``sys.stderr`` writes to until ``finish``."""

    thread: threading.Thread
    log: IO[bytes]
    saved: int
    stderr: TextIO
    error: BaseException | None = None

    def run(self) -> None:
        try:
            import_tensorflow(skip_optional=True)
        except BaseException as err:  # raised again by ``finish``, in the main thread
            self.error = err

    def finish(self) -> None:
        """Wait for the import; stderr as before; the hidden lines shown and the error raised if it failed."""
        self.thread.join()
        sys.stderr.flush()
        sys.stderr = self.stderr
        os.dup2(self.saved, 2)  # ``saved`` stays open: a progress bar made meanwhile may still write to it
        if self.error is not None:
            self.log.seek(0)
            sys.stderr.write(self.log.read().decode(errors="replace"))
        self.log.close()
        if self.error is not None:
            raise self.error


_background: list[BackgroundImport] = []  # the import started by ``start_tensorflow_import``, until finished


def start_tensorflow_import() -> None:
    """Import TensorFlow (and Keras) in a background thread, its C++ lines hidden, while the caller
    goes on: Python's own writes to ``sys.stderr`` (notes, errors, progress bars) still show. For
    the command line: it skips the optional packages (``import_tensorflow``).
    ``import_tensorflow_quietly`` (or ``finish_tensorflow_import``) waits for it."""
    if "tensorflow" in sys.modules or _background:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by ``finish``)
    stderr = sys.stderr
    if writes_to_fd2(stderr):  # a captured or replaced sys.stderr is kept: it never wrote to fd 2
        sys.stderr = open(saved, "w", encoding=stderr.encoding, errors=stderr.errors, buffering=1,  # noqa: SIM115
                          closefd=False)  # the user's stderr until ``finish``
    os.dup2(log.fileno(), 2)
    started = BackgroundImport(threading.Thread(target=lambda: started.run(), name="import tensorflow"),
                               log, saved, stderr)
    _background.append(started)
    started.thread.start()


def writes_to_fd2(stream: TextIO) -> bool:
    """Whether ``stream`` writes to file descriptor 2 (the process's stderr)."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def finish_tensorflow_import() -> None:
    """Wait for ``start_tensorflow_import``'s import, if one was started (raising its error)."""
    if _background:
        _background.pop().finish()


def import_tensorflow_quietly(skip_optional: bool = False) -> None:
    """Import TensorFlow and probe its devices with C++ log lines hidden; shown again if it fails.
    ``skip_optional``: see ``import_tensorflow``."""
    finish_tensorflow_import()
    if "tensorflow" in sys.modules:
        return
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import_tensorflow(skip_optional)
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
