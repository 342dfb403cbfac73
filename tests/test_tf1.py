"""The name map covers the authors' checkpoint exactly, and `mefgan import-tf1` converts one."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import reference_numpy as ref
import tensorflow as tf

from mefgan_tf.checkpoint import load_generator, make_checkpoint, resolve_checkpoint
from mefgan_tf.cli import main
from mefgan_tf.discriminator import build_discriminator
from mefgan_tf.generator import build_generator
from mefgan_tf.tf1 import is_optimizer_entry, variable_map

ORIGINAL_VARIABLES = Path(__file__).parent / "fixtures" / "original_variables.json"


@pytest.fixture(scope="module")
def models():
    return build_generator(), build_discriminator()


@pytest.fixture
def original_manifest():
    """Name -> shape of every entry of the authors' ``model.ckpt`` (``tf.train.list_variables`` of its index)."""
    return json.loads(ORIGINAL_VARIABLES.read_text())


def test_the_checked_in_variable_list_is_the_authors_checkpoint_index(tmp_path, shared_data):
    index = shared_data("original_mefgan", "model.ckpt.index")
    shutil.copy(index, tmp_path / "model.ckpt.index")
    assert dict(tf.train.list_variables(str(tmp_path / "model.ckpt"))) == json.loads(ORIGINAL_VARIABLES.read_text())


def test_every_original_variable_maps_to_exactly_one_of_ours_with_the_same_shape(original_manifest, models):
    ours = variable_map(*models)
    theirs = {n: s for n, s in original_manifest.items() if not is_optimizer_entry(n)}
    assert set(theirs) == set(ours)
    for name, shape in theirs.items():
        assert list(ours[name].shape) == shape, name
    assert len({id(v) for v in ours.values()}) == len(models[0].weights) + len(models[1].weights)


def test_adam_slots_exist_exactly_for_our_trainable_generator_variables(original_manifest, models):
    generator, _ = models
    slotted = {n[: -len("/Adam")] for n in original_manifest if n.endswith("/Adam")}
    trainable = {name for name, v in variable_map(generator).items() if v.trainable}
    assert slotted == trainable
    assert {"beta1_power", "beta2_power", "Variable"} <= set(original_manifest)


def write_tf1_checkpoint(prefix, tensors):
    """Write a checkpoint the way the original does: TF1 graph variables saved by a Saver."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name) for name, value in tensors.items()}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix))


def tf1_tensors(models, random_tf1_weights, seed=11):
    tensors = random_tf1_weights(*models, seed=seed)
    tensors["Variable"] = np.int32(1234)
    tensors["beta1_power"] = np.float32(0.0)
    tensors["Generator_10/Merge_net/conv1/kernel/Adam"] = np.zeros((3, 3, 216, 128), np.float32)
    return tensors


@pytest.mark.slow
def test_import_tf1_puts_every_tensor_in_the_right_variable(tmp_path, models, random_tf1_weights):
    tensors = tf1_tensors(models, random_tf1_weights)
    write_tf1_checkpoint(tmp_path / "orig" / "model.ckpt", tensors)
    assert main(["import-tf1", str(tmp_path / "orig" / "model.ckpt"), "--out", str(tmp_path / "ours")]) == 0

    generator, discriminator = build_generator(), build_discriminator()
    step = tf.Variable(0, dtype=tf.int64)
    make_checkpoint(generator=generator, discriminator=discriminator, step=step).restore(
        resolve_checkpoint(tmp_path / "ours")
    ).assert_existing_objects_matched()
    for name, variable in variable_map(generator, discriminator).items():
        np.testing.assert_array_equal(variable.numpy(), tensors[name], err_msg=name)
    assert int(step.numpy()) == 1234

    rng = np.random.default_rng(0)
    over, under = (rng.random((1, 24, 32, 3)).astype(np.float32) for _ in range(2))
    loaded = load_generator(tmp_path / "ours")
    np.testing.assert_allclose(loaded((over, under)).numpy(), ref.generator(over, under, tensors), atol=1e-4)
    patches = rng.random((2, 144, 144, 3)).astype(np.float32)
    np.testing.assert_allclose(discriminator(patches).numpy(), ref.discriminator(patches, tensors), atol=1e-4)


@pytest.mark.slow
def test_import_tf1_names_missing_and_misshaped_variables(tmp_path, models, capsys, random_tf1_weights):
    tensors = tf1_tensors(models, random_tf1_weights)
    del tensors["Generator/Merge_net/conv1/b/u"]
    tensors["Discriminator/conv6/bias"] = np.zeros(7, np.float32)
    write_tf1_checkpoint(tmp_path / "bad" / "model.ckpt", tensors)
    assert main(["import-tf1", str(tmp_path / "bad" / "model.ckpt"), "--out", str(tmp_path / "ours")]) == 1
    err = capsys.readouterr().err
    assert "Generator/Merge_net/conv1/b/u" in err and "missing 1 variable" in err
    assert "Discriminator/conv6/bias [7] (expected [512])" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ours").exists()


def test_import_tf1_lists_a_few_names_of_a_long_list_and_says_how_many_more(tmp_path, models, capsys, random_tf1_weights):
    tensors = {name: value for name, value in tf1_tensors(models, random_tf1_weights).items() if "Generator" not in name}
    write_tf1_checkpoint(tmp_path / "d_only" / "model.ckpt", tensors)
    assert main(["import-tf1", str(tmp_path / "d_only" / "model.ckpt"), "--out", str(tmp_path / "ours")]) == 1
    err = capsys.readouterr().err.strip()
    missing = len([n for n in variable_map(models[0]) if n.startswith("Generator")])
    assert f"missing {missing} variable(s): " in err and f" and {missing - 5} more" in err
    assert len(err.splitlines()) == 1 and len(err) < 500


def test_import_tf1_says_what_kind_of_checkpoint_a_mefgan_tf_one_is(tmp_path, capsys):
    assert main(["import-tf1", str(Path(__file__).parents[1] / "checkpoints" / "reference"), "--out", str(tmp_path / "ours")]) == 1
    err = capsys.readouterr().err.strip()
    assert "a mefgan-tf checkpoint already: `mefgan fuse --model` and `mefgan export` load it as it is" in err
    assert len(err.splitlines()) == 1 and len(err) < 500
    assert not (tmp_path / "ours").exists()


def test_import_tf1_reports_a_path_that_is_no_checkpoint(tmp_path, capsys):
    assert main(["import-tf1", str(tmp_path / "nothing" / "model.ckpt"), "--out", str(tmp_path / "o")]) == 1
    assert "not a readable TF checkpoint" in capsys.readouterr().err
