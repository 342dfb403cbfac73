"""The network's settings apart from the run's, and configs saved by earlier versions still load."""
from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from mefgan_tf.checkpoint import load_generator, read_config, save_model_checkpoint
from mefgan_tf.config import PAPER, RETIRED_KEYS, ConfigWarning, MEFGANConfig, NetworkConfig
from mefgan_tf.errors import CommandError

REPO = Path(__file__).resolve().parents[1]
# mefgan.json of the generator shipped with version 0.1.0, with the keys no version read
# (shuffle_buffer, extra): kept here so that the test outlives the shipped model.
OLD_METADATA = Path(__file__).with_name("fixtures") / "mefgan-0.1.0.json"


def test_the_run_config_starts_with_the_network_fields_and_their_defaults():
    network = dataclasses.fields(NetworkConfig)
    run = dataclasses.fields(MEFGANConfig)[: len(network)]
    assert [(f.name, f.type, f.default) for f in run] == [(f.name, f.type, f.default) for f in network]
    config = MEFGANConfig(patch_size=16, attention_chunk=8, learning_rate=1e-4)
    assert config.network == NetworkConfig(patch_size=16, attention_chunk=8)
    assert MEFGANConfig.of(config.network) == MEFGANConfig(patch_size=16, attention_chunk=8)
    assert MEFGANConfig.paper() == MEFGANConfig(**PAPER) and PAPER == {"learning_rate": 6e-4, "epochs": 2}


def test_a_mefgan_json_written_before_the_split_loads_without_a_warning(tmp_path):
    saved = json.loads(OLD_METADATA.read_text())["config"]
    assert set(saved) >= RETIRED_KEYS
    (tmp_path / "mefgan.json").write_text(OLD_METADATA.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = read_config(tmp_path)
    expected = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k not in RETIRED_KEYS}
    added = {"mef_ssim_weight": 0.0, "grey_fraction": 0.0, "checkpoint_minutes": 0.0, "frozen_statistics": False}
    assert config.to_dict() == {**expected, **added}  # keys added since take the original's value


@pytest.mark.slow
def test_the_shipped_generator_and_a_checkpoint_with_an_old_mefgan_json_load(tmp_path, random_generator):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_config(REPO / "checkpoints" / "reference").patch_size == 144
        load_generator(REPO / "checkpoints" / "reference")
        folder = save_model_checkpoint(tmp_path / "ckpt", random_generator(seed=0))
        shutil.copy(OLD_METADATA, folder / "mefgan.json")
        generator = load_generator(folder)
    assert generator.config == MEFGANConfig.from_saved(json.loads(OLD_METADATA.read_text())["config"])


def test_unknown_keys_of_a_saved_config_are_ignored_with_a_warning_but_refused_from_the_user(tmp_path):
    (tmp_path / "mefgan.json").write_text(json.dumps({"config": {"epochs": 3, "warp_drive": True}}))
    with pytest.warns(ConfigWarning, match=r"mefgan.json: ignoring unknown config key\(s\) warp_drive"):
        assert read_config(tmp_path).epochs == 3
    (tmp_path / "c.yaml").write_text("warp_drive: true\n")
    with pytest.raises(CommandError, match="unknown config key"):
        MEFGANConfig.from_file(tmp_path / "c.yaml")
    with pytest.raises(CommandError, match="unknown config key"):
        MEFGANConfig().replace(shuffle_buffer=4)  # retired: no longer a setting
    (tmp_path / "mefgan.json").write_text(json.dumps({"config": {"epochs": "three"}}))
    with pytest.raises(CommandError, match="epochs: expected an integer"):
        read_config(tmp_path)


def test_the_networks_keras_config_holds_the_network_only_and_old_ones_still_load():
    from mefgan_tf.discriminator import Discriminator
    from mefgan_tf.generator import Generator

    generator = Generator(MEFGANConfig(learning_rate=1e-4, attention_chunk=64))
    saved = generator.get_config()
    assert saved["config"] == NetworkConfig(attention_chunk=64).to_dict() and saved["attention_chunk"] == 64
    assert Generator.from_config(saved).network_config == generator.network_config
    old = {**saved, "config": json.loads(OLD_METADATA.read_text())["config"]}  # 0.1.0 saved the run config
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Generator.from_config(old).config.lr_decay_rate == 0.867
        assert Discriminator.from_config({"name": "discriminator", "config": old["config"]}).network_config == NetworkConfig()


@pytest.mark.slow
def test_a_command_shows_the_warning_of_an_unknown_saved_key_as_one_line(tmp_path, random_generator, capsys):
    from mefgan_tf.cli import main
    from mefgan_tf.images import write_image

    folder = save_model_checkpoint(tmp_path / "ckpt", random_generator(seed=0))
    saved = json.loads((folder / "mefgan.json").read_text())
    saved["config"]["warp_drive"] = True
    (folder / "mefgan.json").write_text(json.dumps(saved))
    for name, level in (("a.png", 0.2), ("b.png", 0.8)):
        write_image(tmp_path / name, np.full((16, 16, 3), level, np.float32) * [1.0, 0.8, 0.6])  # not grey: no note
    assert main(["fuse", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "f.png"),
                 "--model", str(folder), "-q"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mefgan fuse: warning: {folder / 'mefgan.json'}: ignoring unknown config key(s) warp_drive "
                   "(written by a newer mefgan-tf?)"]
