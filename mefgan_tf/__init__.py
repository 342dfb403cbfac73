"""mefgan-tf: MEF-GAN multi-exposure image fusion in TensorFlow 2 / Keras 3.

The Python API (``mefgan_tf.api``): ``fuse``, ``load_model``, ``read_image``, ``write_image``.
Importing the package changes nothing in the environment and loads no TensorFlow: the entry
points (the ``mefgan`` command, the API's first model load) choose TensorFlow's log level and
Keras's backend.
"""
from pathlib import Path as _Path

__version__ = (_Path(__file__).with_name("VERSION")).read_text().strip()
__all__ = ["fuse", "load_model", "read_image", "write_image"]


def __getattr__(name: str):
    """The API's functions, imported on first use."""
    if name in __all__:
        from mefgan_tf import api

        return getattr(api, name)
    raise AttributeError(f"module 'mefgan_tf' has no attribute {name!r}")
