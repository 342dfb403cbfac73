"""mefgan-tf: MEF-GAN multi-exposure image fusion in TensorFlow 2 / Keras 3.

The Python API (``mefgan_tf.api``): ``fuse``, ``load_model``, ``read_image``, ``write_image``; its
errors are one family (``mefgan_tf.errors``): ``MefganError``, ``CommandError`` (a ``ValueError``) and
``FileProblem`` (also an ``OSError``).
Importing the package changes nothing in the environment and loads no TensorFlow: the entry
points (the ``mefgan`` command, the API's first model load) choose TensorFlow's log level and
Keras's backend.
"""
from pathlib import Path as _Path

from mefgan_tf.errors import CommandError, FileProblem, MefganError

__version__ = (_Path(__file__).with_name("VERSION")).read_text().strip()
API = ["fuse", "load_model", "read_image", "write_image"]
__all__ = [*API, "MefganError", "CommandError", "FileProblem"]


def __getattr__(name: str):
    """The API's functions, imported on first use."""
    if name in API:
        from mefgan_tf import api

        return getattr(api, name)
    raise AttributeError(f"module 'mefgan_tf' has no attribute {name!r}")
