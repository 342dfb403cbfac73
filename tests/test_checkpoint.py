"""mefgan-tf checkpoints hold every weight of G and D and restore them exactly."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mefgan_tf.checkpoint import import_keras_weights, load_generator, read_config, save_model_checkpoint
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.discriminator import build_discriminator
from mefgan_tf.errors import CommandError
from mefgan_tf.generator import build_generator


@pytest.mark.slow
def test_checkpoint_holds_every_variable_and_restores_the_generator_exactly(tmp_path):
    generator, discriminator = build_generator(MEFGANConfig(attention_chunk=64)), build_discriminator()
    out = save_model_checkpoint(tmp_path / "run", generator, discriminator, step=42)
    entries = [n for n, _ in tf.train.list_variables(str(out)) if n.endswith("VARIABLE_VALUE")]
    # every G and D weight, the step counter and the checkpoint's own save counter
    assert len(entries) == len(generator.weights) + len(discriminator.weights) + 2
    assert read_config(out).attention_chunk == 64

    x = np.random.default_rng(0).random((1, 16, 24, 3)).astype(np.float32)
    restored = load_generator(out)
    np.testing.assert_array_equal(restored((x, x)).numpy(), generator((x, x)).numpy())


def test_saving_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    with pytest.raises(CommandError, match="not empty"):
        save_model_checkpoint(tmp_path / "run", build_generator())
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"


def test_loading_a_folder_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no checkpoint in this folder"):
        load_generator(tmp_path)


@pytest.mark.slow
def test_keras_weight_files_become_a_checkpoint_with_the_same_outputs(tmp_path):
    generator, discriminator = build_generator(), build_discriminator()
    generator.save_weights(tmp_path / "g.weights.h5")
    discriminator.save_weights(tmp_path / "d.weights.h5")
    out = import_keras_weights(tmp_path / "ckpt", tmp_path / "g.weights.h5", tmp_path / "d.weights.h5", step=7)
    x = np.random.default_rng(1).random((1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(load_generator(out)((x, x)).numpy(), generator((x, x)).numpy())


def test_a_state_file_naming_a_missing_step_falls_back_to_the_latest_there_with_a_note(tmp_path, capfd):
    from mefgan_tf.checkpoint import resolve_checkpoint
    from mefgan_tf.images import InputNote

    folder = save_model_checkpoint(tmp_path / "run", build_generator(MEFGANConfig(), attention_chunk=64))
    prefix = resolve_checkpoint(folder)
    (folder / "checkpoint").write_text('model_checkpoint_path: "ckpt-9"\nall_model_checkpoint_paths: "ckpt-9"\n')
    with pytest.warns(InputNote, match=r"checkpoint names ckpt-9, which is missing; using ckpt-0, the latest there is"):
        assert resolve_checkpoint(folder) == prefix
    assert "ckpt-9" not in capfd.readouterr().err  # no TensorFlow ERROR line about it


@pytest.mark.parametrize("damage, message", [
    ("flipped bytes", "damaged: its checksum does not match, so bytes of it were changed"),
])
def test_damaged_checkpoint_data_is_one_short_line(tmp_path, damage, message):
    folder = save_model_checkpoint(tmp_path / "run", build_generator(MEFGANConfig(), attention_chunk=64))
    data = next(folder.glob("ckpt-*.data-*"))
    flipped = bytearray(data.read_bytes())
    for i in range(1000, 1100):
        flipped[i] ^= 0xFF
    data.write_bytes(bytes(flipped))
    with pytest.raises(CommandError) as refused:
        load_generator(folder)
    assert str(refused.value) == f"{data}: {message} (a bad copy or disk?)"
