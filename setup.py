"""mefgan-tf's build entry point: the metadata is in pyproject.toml (PEP 621).

``data_prep/`` (dataset building) is a top-level folder of the repository but installs as
``mefgan_tf.data_prep``, so an installed mefgan-tf adds no generic top-level package.
"""
from setuptools import setup

setup(package_dir={"mefgan_tf.data_prep": "data_prep"})
