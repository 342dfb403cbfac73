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
result = trainer.train_batch(batch, 1)
report.update(step=trainer.step, result=vars(result))
trainer.g.write_back()
trainer.d.write_back()
trainer.g.model.save_weights(folder / "g1.weights.h5")
trainer.d.model.save_weights(folder / "d1.weights.h5")
print(json.dumps(report))
"""


def jax_batch(folder) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_one_tensorflow_batch_and_one_jax_batch_from_the_same_weights_agree(tmp_path):
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.images import to_float
    from mefgan_tf.trainer import Trainer

    # adam_epsilon 1 makes G's first Adam step about lr * gradient (with 1e-8, lr * its sign): the
    # comparison of the updates then sees the gradients themselves.
    config = MEFGANConfig(batch_size=2, seed=1, mef_ssim_weight=30.0, adam_epsilon=1.0)
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.2, 0.8, (2, 18, 18, 3)).repeat(8, 1).repeat(8, 2)
    batch = to_float((np.concatenate([np.clip(gt * 1.6, 0, 1), gt * 0.4, gt], -1) * 255).round().astype(np.uint8))
    trainer = Trainer(config, batches_per_epoch=4)
    trainer.generator.save_weights(tmp_path / "g0.weights.h5")
    trainer.discriminator.save_weights(tmp_path / "d0.weights.h5")
    np.save(tmp_path / "batch.npy", batch)
    (tmp_path / "config.json").write_text(config.to_json())
    tf_result, _ = trainer.train_batch(batch, 1)  # batch 1 is not a balancing batch: one D and one G update

    out = jax_batch(tmp_path)
    assert out["moving_count"] == 24 and out["moving_kept"] and out["u_advanced"]  # measuring moves u only
    assert all(0.0 < p < 1.0 for p in out["probs"])
    jax_result = out["result"]
    assert out["step"] == trainer.global_step() == 2
    assert (jax_result["d_updates"], jax_result["g_updates"]) == (tf_result.d_updates, tf_result.g_updates) == (1, 1)
    for term in ("d_loss", "d_real", "d_fake", "g_loss", "adversarial", "content", "mse", "gradient", "structure"):
        assert jax_result[term] == pytest.approx(getattr(tf_result, term), rel=1e-4, abs=1e-6), term
    assert 0 < jax_result["structure"] < 1  # with mef_ssim_weight, G's loss adds 30 * (1 - MEF-SSIM)
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


def jax_trainer(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # the program chooses JAX itself
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    command = [sys.executable, "-m", "mefgan_tf.jax_trainer", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_the_jax_trainer_program_fine_tunes_a_given_generator_keeps_epochs_and_writes_the_shared_scalars(
    tmp_path, make_patches
):
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.generator import build_generator

    data = make_patches(tmp_path / "p.h5", n=4)
    (tmp_path / "c.yaml").write_text("batch_size: 2\nsummary_every: 1\n")
    start = build_generator(MEFGANConfig())  # built by TensorFlow here; Keras weight files are backend-neutral
    start.save_weights(tmp_path / "start.weights.h5")
    proc = jax_trainer("--data", str(data), "--out", str(tmp_path / "run"), "--config", str(tmp_path / "c.yaml"),
                       "--epochs", "1", "--seed", "3", "--init-generator", str(tmp_path / "start.weights.h5"),
                       "--learning-rate", "1e-12", "--keep-epochs", "--mef-ssim-weight", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / "generator.weights.h5").is_file() and (run / "discriminator.weights.h5").is_file()
    history = json.loads((run / "history.json").read_text())
    assert history["batches_per_epoch"] == 2 and len(history["epochs"]) == 1
    assert history["config"]["learning_rate"] == 1e-12 and history["config"]["mef_ssim_weight"] == 5
    assert all(0 < entry["g_structure"] < 1 for entry in history["log"])
    tuned, kept = build_generator(MEFGANConfig()), build_generator(MEFGANConfig())
    tuned.load_weights(run / "generator.weights.h5")
    kept.load_weights(run / "generator-epoch01.weights.h5")
    for a, b, c in zip(start.trainable_weights, tuned.trainable_weights, kept.trainable_weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6)  # started there, barely moved
        np.testing.assert_array_equal(np.asarray(c), np.asarray(b))  # epoch 1's generator is the final one
    assert {"d_loss", "d_real", "d_fake", "g_total", "g_adversarial", "g_content", "g_mse", "g_gradient", "lr"} <= set(history["log"][0])

    import tensorflow as tf

    tags = {value.tag for path in (run / "logs").glob("events.out.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"loss/generator", "loss/discriminator", "D/real", "D/fake", "learning_rate"} <= tags  # as `mefgan train` writes


def test_the_jax_trainer_program_refuses_a_missing_start_generator(tmp_path, make_patches):
    data = make_patches(tmp_path / "p.h5", n=4)
    proc = jax_trainer("--data", str(data), "--out", str(tmp_path / "run"), "--init-generator", str(tmp_path / "no.weights.h5"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"jax_trainer: error: {tmp_path / 'no.weights.h5'}: no such generator weight file"
    assert not (tmp_path / "run").exists()
