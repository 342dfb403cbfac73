"""mefgan-tf: MEF-GAN multi-exposure fusion in TensorFlow 2 / Keras 3."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = (ROOT / "mefgan_tf" / "VERSION").read_text().strip()

INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "tensorboard==2.21.0",
    "numpy>=1.26",
    "h5py>=3.10",
    "opencv-python-headless>=4.9",
    "scikit-image>=0.22",
    "pillow>=10.0",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "pyyaml>=6.0",
    "fastapi>=0.110",
    "uvicorn>=0.29",
    "ai-edge-litert>=2.3",
]

setup(
    name="mefgan-tf",
    version=VERSION,
    description="MEF-GAN multi-exposure image fusion, re-implemented in TensorFlow 2 / Keras 3",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mefgan_tf", "mefgan_tf.*", "data_prep", "data_prep.*"]),
    package_data={"mefgan_tf": ["VERSION", "web/*.html"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest>=8.0", "httpx>=0.27", "selenium>=4.20", "ruff>=0.6"],
        # Keras's JAX backend: mefgan_tf.jax_trainer on accelerator hosts without TensorFlow
        "jax": ["jax>=0.4.30"],
    },
    entry_points={"console_scripts": ["mefgan=mefgan_tf.cli:main"]},
    license="MIT",
)
