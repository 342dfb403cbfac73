"""mefgan-tf: MEF-GAN multi-exposure image fusion in TensorFlow 2 / Keras 3.

Importing the package changes nothing in the environment: the entry points (``mefgan_tf.cli``,
``python -m mefgan_tf.jax_trainer``) choose TensorFlow's log level and Keras's backend.
"""
from pathlib import Path as _Path

__version__ = (_Path(__file__).with_name("VERSION")).read_text().strip()
