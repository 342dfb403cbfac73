"""The JAX-backend trainer (the one that made the shipped generator) runs the recipe on the CPU.

Keras fixes its backend when it is first imported, and this test process runs TensorFlow, so the
JAX trainer runs in a subprocess with ``KERAS_BACKEND=jax`` and reports what it saw as JSON.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX trainer needs the [jax] extra (make test installs it)")
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One batch under JAX from the weights and batch the TensorFlow side saved: the measurement's
# effect on the state, then the batch's updates; weights back into Keras files, numbers as JSON.
SCRIPT = """
import json, sys
import numpy as np
from pathlib import Path
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.jax_trainer import JaxTrainer

folder = Path(sys.argv[1])
config = MEFGANConfig.from_dict(json.loads((folder / "config.json").read_text()))
batch = np.load(folder / "batch.npy")
trainer = JaxTrainer(config, batches_per_epoch=4)
for network, name in ((trainer.g, "g0"), (trainer.d, "d0")):
    network.model.load_weights(folder / f"{name}.weights.h5")
    network.read_back()
moving = trainer.g.is_moving
before = [np.asarray(s).copy() for s in trainer.g.state]
probs = trainer.measure(batch)
after = [np.asarray(s) for s in trainer.g.state]
report = {
    "moving_count": int(sum(moving)),
    "moving_kept": all(np.array_equal(a, b) for a, b, m in zip(after, before, moving) if m),
    "u_advanced": all(not np.array_equal(a, b) for a, b, m in zip(after, before, moving) if not m),
    "probs": list(probs),
}
for network, name in ((trainer.g, "g0"), (trainer.d, "d0")):  # the batch starts from the saved state
    network.model.load_weights(folder / f"{name}.weights.h5")
    network.read_back()
result, fused = trainer.train_batch(batch, 1)
report.update(step=trainer.step, result=vars(result), fused_shape=list(fused.shape))
trainer.g.write_back()
trainer.d.write_back()
trainer.g.model.save_weights(folder / "g1.weights.h5")
trainer.d.model.save_weights(folder / "d1.weights.h5")

from mefgan_tf.jax_trainer import JaxStore
trainer.set_position(1)
JaxStore(trainer, folder / "run").save(1)
resumed = JaxTrainer(config, batches_per_epoch=4)  # fresh weights, then the checkpoint's
store = JaxStore(resumed, folder / "run")
store.restore_latest()
saved, loaded = trainer.arrays(), resumed.arrays()
report["resumed"] = {
    "latest": Path(store.latest).name, "steps_done": resumed.steps_done, "step": resumed.step,
    "same": sorted(saved) == sorted(loaded) and all(np.array_equal(saved[k], loaded[k]) for k in saved),
    "arrays": len(saved),
}
trainer.train_batch(batch, 1)  # each update's second call runs what its first one compiled
report["compilations"] = [trainer._d_update._cache_size(), trainer._g_update._cache_size()]
print(json.dumps(report))
"""


# The config of every JAX run here: one compilation, kept in JAX's cache and shared by the tests.
# adam_epsilon 1 makes G's first Adam step about lr * gradient (with 1e-8, lr * its sign): the
# comparison of the updates then sees the gradients themselves.
# 48 px patches: the recipe is the same, the steps 9 times cheaper than at 144.
CONFIG = {"batch_size": 2, "seed": 1, "mef_ssim_weight": 30.0, "adam_epsilon": 1.0, "summary_every": 1, "patch_size": 48}


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


def jax_env(cache) -> dict[str, str]:
    """A JAX process on the CPU with a persistent compilation cache (a later process does not compile
    again) and XLA's backend optimisations off: these runs are a few batches of 2, so compiling
    (some 500 programs, most of them the weight initialisers) is most of their time."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=REPO, JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
               XLA_FLAGS=" ".join([os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]).strip())
    return env


def jax_batch(folder, cache) -> dict:
    env = {**jax_env(cache), "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_one_tensorflow_batch_and_one_jax_batch_from_the_same_weights_agree(tmp_path, jax_cache):
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.images import to_float
    from mefgan_tf.trainer import Trainer

    config = MEFGANConfig(**CONFIG)
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.2, 0.8, (2, 6, 6, 3)).repeat(8, 1).repeat(8, 2)
    batch = to_float((np.concatenate([np.clip(gt * 1.6, 0, 1), gt * 0.4, gt], -1) * 255).round().astype(np.uint8))
    trainer = Trainer(config, batches_per_epoch=4)
    trainer.generator.save_weights(tmp_path / "g0.weights.h5")
    trainer.discriminator.save_weights(tmp_path / "d0.weights.h5")
    np.save(tmp_path / "batch.npy", batch)
    (tmp_path / "config.json").write_text(config.to_json())
    tf_result, _ = trainer.train_batch(batch, 1)  # batch 1 is not a balancing batch: one D and one G update

    out = jax_batch(tmp_path, jax_cache)
    assert out["moving_count"] == 24 and out["moving_kept"] and out["u_advanced"]  # measuring moves u only
    assert all(0.0 < p < 1.0 for p in out["probs"])
    jax_result = out["result"]
    assert out["step"] == trainer.global_step() == 2 and out["fused_shape"] == [2, 48, 48, 3]
    assert (jax_result["d_updates"], jax_result["g_updates"]) == (tf_result.d_updates, tf_result.g_updates) == (1, 1)
    for term in ("d_loss", "d_real", "d_fake", "g_loss", "adversarial", "content", "mse", "gradient", "structure"):
        assert jax_result[term] == pytest.approx(getattr(tf_result, term), rel=1e-4, abs=1e-6), term
    assert 0 < jax_result["structure"] < 1  # with mef_ssim_weight, G's loss adds 30 * (1 - MEF-SSIM)
    resumed = out["resumed"]  # a checkpoint holds every array: weights, state, both optimizers, counters
    assert resumed == {"latest": "ckpt-1.npz", "steps_done": 1, "step": 2, "same": True, "arrays": resumed["arrays"]}
    assert resumed["arrays"] > 2 * (len(trainer.generator.weights) + len(trainer.discriminator.weights))
    assert out["compilations"] == [1, 1]
    terms = jax_result["adversarial"] + 500 * jax_result["content"] + 30 * jax_result["structure"]
    assert jax_result["g_loss"] == pytest.approx(terms, rel=1e-4)

    from mefgan_tf.discriminator import build_discriminator
    from mefgan_tf.generator import build_generator

    for build, prefix, trained in ((build_generator, "g", trainer.generator), (build_discriminator, "d", trainer.discriminator)):
        start, by_jax = build(config), build(config)
        start.load_weights(tmp_path / f"{prefix}0.weights.h5")
        by_jax.load_weights(tmp_path / f"{prefix}1.weights.h5")
        updates = [(w.path, np.asarray(w) - np.asarray(b), np.asarray(o) - np.asarray(b))
                   for w, b, o in zip(trained.weights, start.weights, by_jax.weights)]
        # Biases before batch norm get rounding noise for a gradient: compared at the network's scale.
        scale = max(np.abs(tf_update).max() for _, tf_update, _ in updates)
        for path, tf_update, jax_update in updates:
            np.testing.assert_allclose(jax_update, tf_update, rtol=1e-2, atol=1e-3 * scale, err_msg=path)


def test_importing_the_jax_trainer_on_another_backend_is_refused():
    import keras

    assert keras.backend.backend() == "tensorflow"  # this test process
    with pytest.raises(ImportError, match="KERAS_BACKEND=jax"):
        import mefgan_tf.jax_trainer  # noqa: F401


def jax_train(*args: str, cache) -> subprocess.CompletedProcess:
    """`mefgan train --backend jax ...` in a fresh process (Keras picks its backend once per process;
    the command chooses JAX itself)."""
    command = [sys.executable, "-m", "mefgan_tf.cli", "train", "--backend", "jax", *args]
    return subprocess.run(command, env=jax_env(cache), capture_output=True, text=True, timeout=600, check=False)


def test_a_jax_run_fine_tunes_resumes_logs_the_shared_scalars_and_is_a_model_fuse_and_export_load(
    tmp_path, make_patches, jax_cache
):
    import tensorflow as tf

    from mefgan_tf.checkpoint import load_generator
    from mefgan_tf.cli import main
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.generator import build_generator
    from mefgan_tf.images import write_image

    data = make_patches(tmp_path / "p.h5", n=4, size=48)  # batches of 2: 2 per epoch
    (tmp_path / "c.json").write_text(json.dumps({k: v for k, v in CONFIG.items() if k != "seed"}))
    start = build_generator(MEFGANConfig())  # built by TensorFlow here; Keras weight files are backend-neutral
    start.save_weights(tmp_path / "start.weights.h5")
    run, cache = tmp_path / "run", jax_cache
    flags = ["--data", str(data), "--out", str(run), "--config", str(tmp_path / "c.json"), "--seed", "3",
             "--learning-rate", "1e-12", "--checkpoint-every", "1", "--quiet"]
    first = jax_train(*flags, "--epochs", "1", "--max-steps", "1", "--init-generator", str(tmp_path / "start.weights.h5"),
                      cache=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-1.npz"]
    second = jax_train(*flags, "--epochs", "2", "--max-steps", "3", cache=cache)  # resumes at batch 1, into the second epoch
    assert second.returncode == 0, second.stderr[-3000:]
    assert "with changed settings: epochs 1 -> 2" in second.stderr
    assert sorted(p.name for p in run.glob("ckpt-*")) == [f"ckpt-{n}.npz" for n in (1, 2, 3)]
    metadata = json.loads((run / "mefgan.json").read_text())
    assert metadata["backend"] == "jax" and metadata["init_generator"] == str(tmp_path / "start.weights.h5")
    assert metadata["config"]["learning_rate"] == 1e-12 and metadata["config"]["mef_ssim_weight"] == 30
    tags = {value.tag for path in (run / "logs").glob("events.out.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"loss/generator", "loss/discriminator", "loss/structure", "D/real", "D/fake", "learning_rate"} <= tags

    tuned = load_generator(run)  # the run folder is a model
    for a, b in zip(start.trainable_weights, tuned.trainable_weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6)  # started there, barely moved
    rng = np.random.default_rng(0)
    pair = [write_image(tmp_path / f"{n}.png", rng.random((16, 16, 3)) * g) for n, g in (("a", 0.4), ("b", 1.0))]
    assert main(["fuse", "-q", *map(str, pair), "--model", str(run), "-o", str(tmp_path / "fused.png")]) == 0
    assert main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "export" / "1")]) == 0
    assert (tmp_path / "export" / "1" / "saved_model.pb").is_file()


def test_a_jax_run_refuses_a_start_generator_it_cannot_read_and_a_run_of_the_other_backend(tmp_path, make_patches):
    data = make_patches(tmp_path / "p.h5", n=4)
    proc = jax_train("--data", str(data), "--out", str(tmp_path / "run"), "--batch-size", "2",
                     "--init-generator", str(tmp_path / "no.weights.h5"), cache=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"mefgan train: error: --init-generator {tmp_path / 'no.weights.h5'}: no JAX run folder or Keras .weights.h5 file")
    assert not (tmp_path / "run").exists()
    (tmp_path / "tf_run").mkdir()
    (tmp_path / "tf_run" / "mefgan.json").write_text(json.dumps({"config": {"seed": 1}, "backend": "tensorflow"}))
    proc = jax_train("--data", str(data), "--out", str(tmp_path / "tf_run"), "--batch-size", "2", cache=tmp_path)
    assert proc.returncode == 1
    assert "this run was trained with --backend tensorflow; resume it with the same backend" in proc.stderr
