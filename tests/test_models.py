"""Loading any model a user names: the shipped generator, checkpoints, SavedModels and their version
folders, .tflite files; one-line errors for what is missing, including an extra that is not installed."""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from mefgan_tf import models
from mefgan_tf.checkpoint import save_model_checkpoint
from mefgan_tf.cli import main
from mefgan_tf.errors import CommandError, require
from mefgan_tf.fusion import FusionOptions
from mefgan_tf.images import read_image, write_image
from mefgan_tf.models import load_fuser


def pair(height: int = 40, width: int = 56, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.random((height, width, 3), dtype=np.float32)
    return np.clip(base * 1.8, 0, 1), base * 0.3


# generator, checkpoint, savedmodel (`mefgan export` of the checkpoint), litert_model: tests/conftest.py
@pytest.fixture(scope="module")
def versions(savedmodel, tmp_path_factory):
    """A TensorFlow Serving base folder with versions 1 and 10 (10 is the newest)."""
    base = tmp_path_factory.mktemp("served") / "mefgan"
    shutil.copytree(savedmodel, base / "1")
    shutil.copytree(savedmodel, base / "10")  # the same model again, as a newer version
    return base


def test_the_shipped_generator_lives_inside_the_package():
    assert models.DEFAULT_MODEL.parent.name == "mefgan_tf" and (models.DEFAULT_MODEL / "checkpoint").is_file()
    assert models.resolve_model(None) == models.DEFAULT_MODEL
    assert models.model_version(None) == (models.DEFAULT_MODEL, "1")


def test_a_versions_folder_resolves_to_its_newest_savedmodel(versions):
    assert models.model_version(versions) == (versions / "10", "10")
    assert models.model_version(versions / "1") == (versions / "1", "1")
    assert models.resolve_model(versions) == versions / "10"


def test_fuse_accepts_a_versions_folder_and_a_checkpoint_with_the_same_result(checkpoint, versions, tmp_path):
    over, under = pair()
    for i, image in enumerate((over, under)):
        write_image(tmp_path / f"{i}.png", image)
    outputs = {}
    for name, model in (("versions", versions), ("checkpoint", checkpoint)):
        out = tmp_path / f"{name}.png"
        assert main(["fuse", str(tmp_path / "0.png"), str(tmp_path / "1.png"), "-o", str(out), "--model", str(model), "--quiet"]) == 0
        outputs[name] = read_image(out)
    assert np.abs(outputs["versions"] - outputs["checkpoint"]).max() <= 1 / 255


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="the 'litert' extra is not installed")
def test_fuse_accepts_a_tflite_file(checkpoint, litert_model):
    over, under = pair(37, 53)
    lite = load_fuser(litert_model("none"), FusionOptions(tile=16))([under, over])
    keras = load_fuser(checkpoint, FusionOptions(tile=None))([under, over])
    assert lite.shape == (37, 53, 3)
    np.testing.assert_allclose(lite, keras, atol=1e-4)


def test_a_missing_extra_is_named_with_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(CommandError, match=r"mefgan serve needs the 'server' extra \(uvicorn is not installed\): "
                       r"pip install 'mefgan-tf\[server\]'"):
        require("uvicorn", "mefgan serve")
    assert main(["serve", "--port", "0"]) == 1


@pytest.mark.slow
def test_a_model_is_loaded_once_per_process_and_again_when_its_files_change(random_generator, tmp_path):
    from mefgan_tf.fusion import fuse_pair

    over, under = pair()
    run = save_model_checkpoint(tmp_path / "run", random_generator(seed=1))
    first = models.load_stages(run)
    assert models.load_stages(run) is first and models.load_stages(str(run)) is first
    assert models.load_stages(run, attention_chunk=64) is not first  # another block size is another model
    before = fuse_pair(first, over, under)
    shutil.rmtree(run)
    save_model_checkpoint(run, random_generator(seed=2))  # another model at the same path
    again = models.load_stages(run)
    assert again is not first
    assert np.abs(fuse_pair(again, over, under) - before).max() > 0.01
    models.LOADED.clear()
    assert models.load_stages(run) is not again


def test_a_model_loaded_for_one_fusion_runs_untraced_and_fuses_the_same_image(checkpoint):
    from mefgan_tf.fusion import fuse_pair
    from mefgan_tf.stages import Untraced

    over, under = pair(48, 64)
    once = models.load_stages(checkpoint, once=True)
    traced = models.load_stages(checkpoint)
    assert isinstance(once.module, Untraced) and not isinstance(traced.module, Untraced)
    assert models.load_stages(checkpoint, once=True) is once
    assert not traced.module.fuse_tile.experimental_get_tracing_count()
    np.testing.assert_allclose(fuse_pair(once, over, under), fuse_pair(traced, over, under), atol=2e-5)
    assert traced.module.fuse_tile.experimental_get_tracing_count() == 1
