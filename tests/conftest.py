"""Shared test fixtures: the real data beside the project, small deterministic inputs and models, a
running server. Helpers that several test files need are fixtures here (tests never import each other)."""
from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

# What the `mefgan` entry point sets (mefgan_tf.environment.ENVIRONMENT): the library itself sets nothing.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEFGAN_SHARED_DATA", REPO.parent / "shared" / "data"))


# The files that take most of the suite's time (measured on 2 cores), in the order that `make test`
# hands them out (whole files, two queued per process, `--no-loadscope-reorder`): the two processes
# start with the two longest and finish together.
LONGEST_FIRST = ("test_jax_trainer.py", "test_train_cli.py", "test_export_tflite.py", "test_trainer.py",
                 "test_errors.py", "test_export.py", "test_models.py", "test_evaluate.py")


# Fixtures that cost an export (a SavedModel is 25 s of tracing, each LiteRT variant about as much):
# the tests that use them are `slow`, like every test over 20 s (`make test-fast` leaves them out).
EXPORTS = {"savedmodel", "litert_model"}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need an export slow; run the longest files first (other files and the tests
    within a file keep their order)."""
    for item in items:
        if EXPORTS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def shared_path(*parts: str) -> Path:
    """A path under the optional data folder; the test skips when it is absent (users' clones lack it)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip("optional data not present (the tests that need it are skipped)")
    return path


@pytest.fixture
def shared_data():
    return shared_path


# ---------------------------------------------------------------------------------------- patch files
def write_patches(path: Path, n: int = 8, size: int = 144, seed: int = 0) -> Path:
    """A uint8 patch file like `mefgan patches` writes: blocky texture, over = 1.6 gt, under = 0.4 gt."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.2, 0.8, (n, size // 8, size // 8, 3)).repeat(8, 1).repeat(8, 2)
    data = np.concatenate([np.clip(gt * 1.6, 0, 1), gt * 0.4, gt], axis=-1)
    with h5py.File(path, "w") as f:
        f["data"] = (data * 255).round().astype(np.uint8)
    return path


@pytest.fixture(scope="session")
def make_patches():
    """``make_patches(path, n=8, size=144, seed=0)`` writes a small patch file and returns its path."""
    return write_patches


# ---------------------------------------------------------------------------------------- model weights
def tf1_weights(generator, discriminator, seed: int = 0) -> dict[str, np.ndarray]:
    """One array per TF1 name of our models, scaled so activations neither vanish nor saturate."""
    from mefgan_tf.tf1 import variable_map

    rng = np.random.default_rng(seed)
    weights = {}
    for name, variable in variable_map(generator, discriminator).items():
        shape = tuple(variable.shape)
        leaf = name.rsplit("/", 1)[-1]
        if leaf == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf == "u":
            value = rng.normal(0.0, 1.0, shape)
        else:  # bias, beta, moving_mean
            value = rng.normal(0.0, 0.1, shape)
        weights[name] = value.astype(np.float32)
    return weights


def assign_tf1_weights(weights: dict[str, np.ndarray], generator, discriminator) -> None:
    from mefgan_tf.tf1 import variable_map

    for name, variable in variable_map(generator, discriminator).items():
        variable.assign(weights[name])


def well_scaled_generator(seed: int, attention_chunk: int = 64):
    """A built generator with well-scaled random weights: its outputs neither saturate nor vanish."""
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.discriminator import build_discriminator
    from mefgan_tf.generator import build_generator

    generator, discriminator = build_generator(MEFGANConfig(attention_chunk=attention_chunk)), build_discriminator()
    assign_tf1_weights(tf1_weights(generator, discriminator, seed=seed), generator, discriminator)
    return generator


@pytest.fixture(scope="session")
def random_tf1_weights():
    """``random_tf1_weights(generator, discriminator, seed=0)``: well-scaled arrays by TF1 variable name."""
    return tf1_weights


@pytest.fixture(scope="session")
def load_tf1_weights():
    """``load_tf1_weights(weights, generator, discriminator)`` assigns arrays by TF1 variable name."""
    return assign_tf1_weights


@pytest.fixture(scope="session")
def random_generator():
    """``random_generator(seed, attention_chunk=64)``: a built generator with well-scaled random weights."""
    return well_scaled_generator


# ---------------------------------------------------------------------------------------- one seeded model
# The model of the tests that need "a" model: a well-scaled random generator (seed 7), its checkpoint,
# its SavedModel and LiteRT files. A file that needs another model defines its own fixture of that name.
SEED = 7


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """``name`` in the run's temporary folder, made by ``build(path)`` once for the whole run: the
    test processes of `pytest -n` share the folder above their own, and the first to ask builds while
    the others wait (a SavedModel export is 25 s of tracing). Built under a temporary name and
    renamed, so that a path that exists is complete."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / name
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            partial = root / f".partial-{name}"  # the same suffix: `mefgan export --tflite` checks it
            shutil.rmtree(partial, ignore_errors=True)
            partial.unlink(missing_ok=True)
            build(partial)
            partial.rename(path)
    return path


@pytest.fixture(scope="session")
def generator(random_generator):
    """The seeded generator (seed 7); tests must not change its weights."""
    return random_generator(seed=SEED)


@pytest.fixture(scope="session")
def stages(generator):
    from mefgan_tf.stages import generator_stages

    return generator_stages(generator)


@pytest.fixture(scope="session")
def checkpoint(generator, tmp_path_factory) -> Path:
    """The seeded generator's checkpoint folder (read it, never write into it)."""
    from mefgan_tf.checkpoint import save_model_checkpoint

    return save_model_checkpoint(tmp_path_factory.mktemp("model") / "run", generator)


@pytest.fixture(scope="session")
def savedmodel(checkpoint, tmp_path_factory) -> Path:
    """``mefgan export`` of the seeded checkpoint: a version folder ``.../mefgan/1`` (read it, never write into it)."""
    from mefgan_tf.cli import main

    def export(folder: Path) -> None:
        assert main(["export", "--checkpoint", str(checkpoint), "--out", str(folder / "mefgan" / "1")]) == 0

    return built_once(tmp_path_factory, "savedmodel", export) / "mefgan" / "1"


@pytest.fixture(scope="session")
def served(savedmodel):
    """The seeded SavedModel loaded with ``tf.saved_model.load``: the object that ``mefgan fuse --model``
    and ``load_fuser`` use in this process (``models.LOADED``), so that they do not load it again."""
    from mefgan_tf.models import load_stages

    return load_stages(savedmodel).module


@pytest.fixture(scope="session")
def litert_model(checkpoint, tmp_path_factory) -> Callable[[str], Path]:
    """``litert_model(quantize)``: ``mefgan export --tflite --quantize QUANTIZE`` of the seeded checkpoint,
    made on first use; int8 calibrates on its default pairs, the bundled demo photos (48 px crops keep it quick)."""
    from mefgan_tf import tflite
    from mefgan_tf.cli import main

    def export(quantize: str) -> Path:
        def build(out: Path) -> None:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(tflite, "CALIBRATION_SIDE", 48)
                assert main(["export", "--tflite", "--checkpoint", str(checkpoint), "--out", str(out),
                             "--quantize", quantize]) == 0

        return built_once(tmp_path_factory, f"mefgan_{quantize}.tflite", build)

    return export


# ---------------------------------------------------------------------------------------- serving
@contextmanager
def running_app(app, header_timeout_s: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) until the block ends, as `mefgan serve`
    does (its deadline for request headers); yields the base URL."""
    import uvicorn

    from mefgan_tf.serve.server import header_deadline_protocol, listening_socket

    sock = listening_socket("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, http=header_deadline_protocol(header_timeout_s))
    server = uvicorn.Server(config)
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


@pytest.fixture(scope="session")
def running():
    """``with running(app) as url:`` serves a real `mefgan serve` application in a thread of the test process."""
    return running_app


@pytest.fixture(scope="session")
def gated_fuser():
    """``gated_fuser(stages)``: a real fuser that waits for its ``gate`` event before each fusion (its
    ``entered`` event is set when it starts one), so tests can hold the server's worker busy."""
    from mefgan_tf.fusion import Fuser

    class GatedFuser(Fuser):
        def __init__(self, stages) -> None:
            super().__init__(stages)
            self.entered, self.gate = threading.Event(), threading.Event()

        def pair(self, over, under, progress=None):
            self.entered.set()
            self.gate.wait(30)
            return super().pair(over, under, progress)

    return GatedFuser
