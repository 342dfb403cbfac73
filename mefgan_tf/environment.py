"""What an entry point sets before TensorFlow or Keras is imported: quiet start-up, Keras's backend.

Importing the library changes nothing; the entry points (the ``mefgan`` command, the Python API
of ``mefgan_tf.api``) call ``set_environment`` and
``import_tensorflow_quietly`` first, so that TensorFlow's C++ start-up lines (no CUDA driver,
CPU features) stay out of the user's terminal.
"""
from __future__ import annotations

import os
import sys
import tempfile

# What the entry point sets unless the user did: TensorFlow's C++ log level (warnings and errors
# only), Keras's backend, and OpenCV's log level (its "[ WARN:0@...]" lines on damaged files, which
# our one-line errors already explain).
ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "OPENCV_LOG_LEVEL": "ERROR"}


def set_environment() -> None:
    """``ENVIRONMENT``, where the user has not set it: before TensorFlow or Keras is imported."""
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices with C++ log lines hidden; shown again if it fails."""
    if "tensorflow" in sys.modules:
        return
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
