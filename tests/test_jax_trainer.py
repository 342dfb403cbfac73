"""The JAX-backend trainer (the one that made the shipped generator) runs the recipe on the CPU.

Keras fixes its backend when it is first imported, and this test process runs TensorFlow, so the
JAX side runs in one subprocess with ``KERAS_BACKEND=jax``: one batch from the weights and batch
that TensorFlow saved, then the `mefgan train --backend jax` command lines the tests prepared. It
reports what it saw as JSON; the tests below check that report (one JAX process start and one
network build for the whole file: they are most of a JAX run's time on the CPU).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX trainer needs the [jax] extra (make test installs it)")
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One batch under JAX from the weights and batch the TensorFlow side saved: the measurement's
# effect on the state, then the batch's updates; weights back into Keras files, numbers as JSON.
# Then each prepared `mefgan` command line, in order, through the real entry point.
SCRIPT = """
import contextlib, io, json, sys
import numpy as np
from pathlib import Path
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.training.jax_backend import JaxTrainer

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

from mefgan_tf.training.jax_backend import JaxStore
trainer.set_position(1)
store = JaxStore(trainer, folder / "run")
store.save(1)
saved = {k: np.array(v) for k, v in trainer.arrays().items()}
trainer.train_batch(batch, 1)  # each update's second call runs what its first one compiled
report["compilations"] = [trainer._d_update._cache_size(), trainer._g_update._cache_size()]
trained = trainer.arrays()
report["batch_changed"] = sum(not np.array_equal(saved[k], trained[k]) for k in saved)
store.restore_latest()  # every array back to the checkpoint's
loaded = trainer.arrays()
report["resumed"] = {
    "latest": Path(store.latest).name, "steps_done": trainer.steps_done, "step": trainer.step,
    "same": sorted(saved) == sorted(loaded) and all(np.array_equal(saved[k], loaded[k]) for k in saved),
    "arrays": len(saved),
}

from mefgan_tf.cli import main
report["commands"] = {}
for name, argv in json.loads((folder / "commands.json").read_text()).items():
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(argv)
    report["commands"][name] = {"code": code, "stderr": stderr.getvalue()}
print(json.dumps(report))
"""


# The config of every JAX run here: one compilation, kept in JAX's cache and shared by the runs.
# adam_epsilon 1 makes G's first Adam step about lr * gradient (with 1e-8, lr * its sign): the
# comparison of the updates then sees the gradients themselves.
# 48 px patches: the recipe is the same, the steps 9 times cheaper than at 144.
CONFIG = {"batch_size": 2, "seed": 1, "mef_ssim_weight": 30.0, "adam_epsilon": 1.0, "summary_every": 1, "patch_size": 48}


def jax_env(cache: Path) -> dict[str, str]:
    """A JAX process on the CPU with a persistent compilation cache (a run's second trainer does not
    compile again) and XLA's backend optimisations off: these runs are a few batches of 2, so compiling
    (some 500 programs, most of them the weight initialisers) is most of their time."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=REPO, JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
               XLA_FLAGS=" ".join([os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]).strip())
    return env


def train_command(*args: str) -> list[str]:
    return ["train", "--backend", "jax", *args]


def prepare_commands(folder: Path, make_patches) -> dict[str, list[str]]:
    """The `mefgan train --backend jax` command lines the JAX process runs, in order: a fine-tune from
    a Keras weights file with G's batch-norm statistics frozen, its resume into a second epoch, and two that must be refused."""
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.generator import build_generator

    data = make_patches(folder / "p.h5", n=4, size=48)  # batches of 2: 2 per epoch
    (folder / "c.json").write_text(json.dumps({k: v for k, v in CONFIG.items() if k != "seed"}))
    build_generator(MEFGANConfig()).save_weights(folder / "start.weights.h5")  # Keras weight files are backend-neutral
    (folder / "tf_run").mkdir()
    (folder / "tf_run" / "mefgan.json").write_text(json.dumps({"config": {"seed": 1}, "backend": "tensorflow"}))
    flags = ["--data", str(data), "--out", str(folder / "tuned"), "--config", str(folder / "c.json"), "--seed", "3",
             "--learning-rate", "1e-12", "--checkpoint-every", "1", "--quiet"]
    return {
        "first": train_command(*flags, "--epochs", "1", "--max-steps", "1", "--freeze-batch-norm",
                               "--init-generator", str(folder / "start.weights.h5")),
        "second": train_command(*flags, "--epochs", "2", "--max-steps", "3"),  # resumes at batch 1, into the second epoch
        "unreadable_start": train_command("--data", str(data), "--out", str(folder / "refused"), "--batch-size", "2",
                                          "--set", "patch_size=48", "--init-generator", str(folder / "no.weights.h5")),
        "tensorflow_run": train_command("--data", str(data), "--out", str(folder / "tf_run"), "--batch-size", "2"),
    }


@pytest.fixture(scope="module")
def jax_side(tmp_path_factory, make_patches) -> SimpleNamespace:
    """One TensorFlow batch from saved weights, then the JAX process: its report and the folders."""
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.images import to_float
    from mefgan_tf.training.tensorflow_backend import Trainer

    folder = tmp_path_factory.mktemp("jax")
    config = MEFGANConfig(**CONFIG)
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.2, 0.8, (2, 6, 6, 3)).repeat(8, 1).repeat(8, 2)
    batch = to_float((np.concatenate([np.clip(gt * 1.6, 0, 1), gt * 0.4, gt], -1) * 255).round().astype(np.uint8))
    trainer = Trainer(config, batches_per_epoch=4)
    trainer.generator.save_weights(folder / "g0.weights.h5")
    trainer.discriminator.save_weights(folder / "d0.weights.h5")
    np.save(folder / "batch.npy", batch)
    (folder / "config.json").write_text(config.to_json())
    (folder / "commands.json").write_text(json.dumps(prepare_commands(folder, make_patches)))
    tf_result, _ = trainer.train_batch(batch, 1)  # batch 1 is not a balancing batch: one D and one G update

    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], env=jax_env(folder / "cache"),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return SimpleNamespace(folder=folder, config=config, trainer=trainer, tf_result=tf_result, report=report)


def test_one_tensorflow_batch_and_one_jax_batch_from_the_same_weights_agree(jax_side):
    out, trainer, tf_result, folder = jax_side.report, jax_side.trainer, jax_side.tf_result, jax_side.folder
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
    assert out["batch_changed"] > resumed["arrays"] // 2  # the restore had most arrays to put back
    assert out["compilations"] == [1, 1]
    terms = jax_result["adversarial"] + 500 * jax_result["content"] + 30 * jax_result["structure"]
    assert jax_result["g_loss"] == pytest.approx(terms, rel=1e-4)

    from mefgan_tf.discriminator import build_discriminator
    from mefgan_tf.generator import build_generator

    for build, prefix, trained in ((build_generator, "g", trainer.generator), (build_discriminator, "d", trainer.discriminator)):
        start, by_jax = build(jax_side.config), build(jax_side.config)
        start.load_weights(folder / f"{prefix}0.weights.h5")
        by_jax.load_weights(folder / f"{prefix}1.weights.h5")
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
        import mefgan_tf.training.jax_backend  # noqa: F401


def test_a_jax_run_fine_tunes_resumes_logs_the_shared_scalars_and_is_a_model_fuse_and_export_load(jax_side):
    import tensorflow as tf

    from mefgan_tf.checkpoint import load_generator
    from mefgan_tf.cli import main
    from mefgan_tf.config import MEFGANConfig
    from mefgan_tf.generator import build_generator
    from mefgan_tf.images import write_image
    from mefgan_tf.layers import moving_statistics

    folder, commands = jax_side.folder, jax_side.report["commands"]
    run = folder / "tuned"
    assert commands["first"]["code"] == 0, commands["first"]["stderr"][-3000:]
    assert commands["second"]["code"] == 0, commands["second"]["stderr"][-3000:]
    assert "with changed settings: epochs 1 -> 2" in commands["second"]["stderr"]
    assert sorted(p.name for p in run.glob("ckpt-*")) == [f"ckpt-{n}.npz" for n in (1, 2, 3)]
    metadata = json.loads((run / "mefgan.json").read_text())
    assert metadata["backend"] == "jax" and metadata["init_generator"] == str(folder / "start.weights.h5")
    assert metadata["config"]["learning_rate"] == 1e-12 and metadata["config"]["mef_ssim_weight"] == 30
    assert metadata["config"]["frozen_statistics"] is True
    tags = {value.tag for path in (run / "logs").glob("events.out.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"loss/generator", "loss/discriminator", "loss/structure", "D/real", "D/fake", "learning_rate"} <= tags

    start = build_generator(MEFGANConfig())
    start.load_weights(folder / "start.weights.h5")
    tuned = load_generator(run)  # the run folder is a model
    for a, b in zip(start.trainable_weights, tuned.trainable_weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6)  # started there, barely moved
    for a, b in zip(moving_statistics(start), moving_statistics(tuned), strict=True):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))  # frozen: 3 batches of updates left them
    rng = np.random.default_rng(0)
    pair = [write_image(folder / f"{n}.png", rng.random((16, 16, 3)) * g) for n, g in (("a", 0.4), ("b", 1.0))]
    assert main(["fuse", "-q", *map(str, pair), "--model", str(run), "-o", str(folder / "fused.png")]) == 0
    # --detail-levels 0: a fifth of the tracing; the run's weights load as for any export
    assert main(["export", "--checkpoint", str(run), "--out", str(folder / "export" / "1"), "--detail-levels", "0"]) == 0
    assert (folder / "export" / "1" / "saved_model.pb").is_file()


def test_a_jax_run_refuses_a_start_generator_it_cannot_read_and_a_run_of_the_other_backend(jax_side):
    folder, commands = jax_side.folder, jax_side.report["commands"]
    unreadable = commands["unreadable_start"]
    assert unreadable["code"] == 1
    assert unreadable["stderr"].strip().splitlines()[-1].startswith(
        f"mefgan train: error: --init-generator {folder / 'no.weights.h5'}: no JAX run folder or Keras .weights.h5 file")
    assert not (folder / "refused").exists()
    other = commands["tensorflow_run"]
    assert other["code"] == 1
    assert "this run was trained with --backend tensorflow; resume it with the same backend" in other["stderr"]
    assert sorted(p.name for p in (folder / "tf_run").iterdir()) == ["mefgan.json"]  # the other run is left as it was
