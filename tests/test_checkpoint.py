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


def test_keras_weight_files_become_a_checkpoint_with_the_same_outputs(tmp_path):
    generator, discriminator = build_generator(), build_discriminator()
    generator.save_weights(tmp_path / "g.weights.h5")
    discriminator.save_weights(tmp_path / "d.weights.h5")
    out = import_keras_weights(tmp_path / "ckpt", tmp_path / "g.weights.h5", tmp_path / "d.weights.h5", step=7)
    x = np.random.default_rng(1).random((1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(load_generator(out)((x, x)).numpy(), generator((x, x)).numpy())
