"""mefgan-tf: MEF-GAN multi-exposure image fusion in TensorFlow 2 / Keras 3."""
import os as _os
from pathlib import Path as _Path

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = (_Path(__file__).with_name("VERSION")).read_text().strip()
