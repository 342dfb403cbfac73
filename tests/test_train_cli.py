"""`mefgan train`: config resolution and printing, clear errors, and a real two-worker run on 127.0.0.1."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mefgan_tf.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 48  # the training runs here use 48 px patches: the recipe is the same, the steps 9 times cheaper
SMALL = ["--set", f"patch_size={SIZE}"]


def printed_config(capsys, *flags) -> dict:
    assert main(["train", "--print-config", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_print_config_shows_the_original_recipe_by_default(capsys, tmp_path):
    assert main(["train", "--print-config", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr()
    config = json.loads(printed.out)
    expected = {"learning_rate": 3e-4, "batch_size": 19, "epochs": 4, "content_weight": 500.0, "gradient_weight": 0.6}
    assert {k: config[k] for k in expected} == expected
    assert (config["clip_value"], config["checkpoint_every"], config["balance_every"]) == (8.0, 100, 3)
    assert config["seed"] is None  # drawn when the run starts (and saved), so none is shown
    assert "seed null: the run draws one at random" in printed.err


def test_paper_variant_file_flags_and_set_override_in_that_order(capsys, tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 7\ncontent_weight: 100\n")
    config = printed_config(
        capsys, "--out", str(tmp_path / "run"), "--paper", "--config", str(tmp_path / "c.yaml"),
        "--batch-size", "8", "--set", "gradient_weight=0.5", "--seed", "3",
    )
    assert (config["learning_rate"], config["epochs"], config["content_weight"]) == (6e-4, 7, 100)
    assert (config["batch_size"], config["gradient_weight"], config["seed"]) == (8, 0.5, 3)


def test_missing_patch_file_is_a_one_line_error_and_writes_nothing(capsys, tmp_path):
    assert main(["train", "--data", str(tmp_path / "none.h5"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mefgan train: error: ") and "none.h5: no such patch file" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_refuses_a_folder_that_is_not_a_run_and_a_resume_with_another_batch_size(capsys, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["train", "--out", str(tmp_path / "other")]) == 1
    assert "holds no mefgan run" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "mefgan.json").write_text(json.dumps({"config": {"batch_size": 4, "seed": 1}}))
    assert main(["train", "--out", str(run), "--batch-size", "8"]) == 1
    assert "started with batch_size 4" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["batch_size"] == 4  # a resumed run keeps its saved config


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_localhost_train_in_lockstep_and_finish_with_identical_weights(tmp_path, make_patches):
    import tensorflow as tf

    data = make_patches(tmp_path / "p.h5", n=4, size=SIZE)
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        command = [sys.executable, "-m", "mefgan_tf.cli", "train", "--data", str(data), "--out", str(tmp_path / f"w{index}"),
                   "--batch-size", "2", "--max-steps", "1", "--seed", "5", "--quiet", *SMALL]
        procs.append(subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]

    chief, other = tmp_path / "w0", tmp_path / "w1" / "worker-1"  # non-chief workers write beside the run
    assert tf.train.latest_checkpoint(str(chief)).endswith("ckpt-1") and (chief / "mefgan.json").exists()
    a, b = tf.train.load_checkpoint(str(chief)), tf.train.load_checkpoint(str(other))
    names = [n for n, _ in tf.train.list_variables(str(chief)) if not n.startswith("_CHECKPOINTABLE")]
    assert any(n.startswith("generator/") for n in names) and any("optimizer" in n for n in names)
    for name in names:
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
    assert int(a.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) >= 2  # at least one D and one G update


@pytest.mark.slow
def test_sigkill_mid_run_keeps_a_valid_checkpoint_and_the_run_resumes_from_it(tmp_path, make_patches):
    import tensorflow as tf

    data = make_patches(tmp_path / "p.h5", n=6, size=SIZE)
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    command = [sys.executable, "-m", "mefgan_tf.cli", "train", "--data", str(data), "--out", str(out),
               "--batch-size", "2", "--max-steps", "1000", "--checkpoint-every", "1", "--seed", "3", "--quiet", *SMALL]
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not str(tf.train.latest_checkpoint(str(out)) or "").endswith("ckpt-2"):
            assert proc.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
        time.sleep(0.5)  # somewhere inside the next step or checkpoint write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    survivor = tf.train.latest_checkpoint(str(out))
    batches_done = int(survivor.rsplit("-", 1)[1])
    assert batches_done >= 2
    reader = tf.train.load_checkpoint(survivor)  # complete and readable
    assert any(n.startswith("generator/") for n in reader.get_variable_to_shape_map())

    assert main(["train", "--data", str(data), "--out", str(out), "--max-steps", str(batches_done + 1), "--quiet"]) == 0
    assert tf.train.latest_checkpoint(str(out)).endswith(f"ckpt-{batches_done + 1}")


@pytest.mark.slow
def test_init_generator_starts_g_from_a_checkpoint_and_is_recorded_in_the_run(tmp_path, make_patches, capsys):
    from mefgan_tf.checkpoint import load_generator

    data = str(make_patches(tmp_path / "p.h5", n=2, size=SIZE))
    run = tmp_path / "run"
    flags = ["--data", data, "--batch-size", "1", "--max-steps", "1", "--seed", "3", "--quiet", *SMALL]
    # a vanishing learning rate: after one step G still holds the weights it started from
    loud = [flag for flag in flags if flag != "--quiet"]  # standard error is not a terminal: progress lines
    assert main(["train", *loud, "--out", str(run), "--learning-rate", "1e-12", "--init-generator",
                 os.path.join(REPO, "checkpoints", "reference")]) == 0
    assert "\nstep 1/1: G " in capsys.readouterr().err
    reference = load_generator(os.path.join(REPO, "checkpoints", "reference"))
    tuned = load_generator(run)
    for got, want in zip(tuned.trainable_weights, reference.trainable_weights, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
    assert json.loads((run / "mefgan.json").read_text())["init_generator"].endswith("reference")
    capsys.readouterr()  # another generator for the same run is refused (the same command again resumes it)
    assert main(["train", *flags, "--out", str(run), "--learning-rate", "1e-12", "--init-generator", "shipped"]) == 1
    assert capsys.readouterr().err.strip().endswith(f"--init-generator shipped: {run} is a run already, started from "
                                                    f"{os.path.join(REPO, 'checkpoints', 'reference')}, which resumes from "
                                                    "its own checkpoint; drop --init-generator to resume it, or give a new "
                                                    "--out to start from that generator")
    start = ["--init-generator", os.path.join(REPO, "checkpoints", "reference")]
    assert main(["train", *flags, "--out", str(run), *start]) == 0  # the same command resumes: nothing left
    assert "note: nothing to train: the run has 1 steps already (--max-steps 1); raise --max-steps" in capsys.readouterr().err
    other = tmp_path / "other.h5"
    other.write_bytes(Path(data).read_bytes())  # the same size, another file
    assert main(["train", *flags[2:], "--data", str(other), "--out", str(run)]) == 1
    assert f"{other}: {run} was trained on {data}, a run keeps its data" in capsys.readouterr().err


@pytest.mark.parametrize("given, message", [
    ("nothing", "nothing: no such checkpoint folder or prefix"),
    ("g.tflite", "g.tflite: a LiteRT model holds no trainable weights; give the checkpoint it was exported from"),
    ("photo.png", "photo.png: is an image, not a model (expected a run folder"),
    ("notes.txt", "notes.txt: is a file, not a checkpoint (expected a run folder"),
])
def test_init_generator_that_is_not_a_checkpoint_is_a_one_line_error(capsys, tmp_path, make_patches, given, message):
    data = str(make_patches(tmp_path / "p.h5", n=2))
    if given != "nothing":
        (tmp_path / given).write_bytes(b"garbage")
    assert main(["train", "--data", data, "--out", str(tmp_path / "run"), "--batch-size", "1", "--quiet",
                 "--init-generator", str(tmp_path / given)]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_good_run_shows_no_error_lines_and_a_resume_with_other_settings_is_announced_and_recorded(tmp_path, capsys, make_patches):
    data = str(make_patches(tmp_path / "p.h5", n=2, size=SIZE))
    run = tmp_path / "run"
    flags = ["--data", data, "--out", str(run), "--batch-size", "1", "--seed", "3", "--quiet", *SMALL]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", PYTHONPATH=REPO)  # every C++ log line
    result = subprocess.run([sys.executable, "-m", "mefgan_tf.cli", "train", *flags, "--max-steps", "1"],
                            env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    # TensorFlow's remapper used to fail on D's conv + bias + LeakyRelu: "E0000 ... remapper failed"
    assert not [line for line in result.stderr.splitlines() if line.startswith("E0") or "remapper" in line]

    # a resume that changes settings (--max-steps 1: nothing left to train, the notice and record come first)
    assert main(["train", *flags, "--max-steps", "1", "--learning-rate", "1e-4", "--set", "content_weight=100"]) == 0
    err = capsys.readouterr().err
    assert "notice: resuming" in err and "at step 1" in err
    assert "content_weight 500.0 -> 100.0" in err and "learning_rate 0.0003 -> 0.0001" in err
    saved = json.loads((run / "mefgan.json").read_text())
    assert saved["config"]["learning_rate"] == 1e-4
    (entry,) = saved["history"]
    assert entry["step"] == 1 and entry["changed"] == {"content_weight": [500.0, 100.0], "learning_rate": [3e-4, 1e-4]}
    assert main(["train", *flags, "--max-steps", "1"]) == 0  # the same settings again: nothing to announce
    assert "notice" not in capsys.readouterr().err
    assert len(json.loads((run / "mefgan.json").read_text())["history"]) == 1


def test_mef_ssim_weight_flag_sets_mu_and_a_negative_one_is_a_one_line_error(capsys, tmp_path):
    assert printed_config(capsys, "--out", str(tmp_path / "run"))["mef_ssim_weight"] == 0.0  # the original
    assert printed_config(capsys, "--out", str(tmp_path / "run"), "--mef-ssim-weight", "100")["mef_ssim_weight"] == 100.0
    assert main(["train", "--print-config", "--out", str(tmp_path / "run"), "--mef-ssim-weight", "-1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "mefgan train: error: --mef-ssim-weight -1: must be 0 or more"


@pytest.mark.parametrize(
    "source, expected",
    [
        (("--batch-size", "0"), "--batch-size 0: must be at least 1"),
        (("--grey-fraction", "1.5"), "--grey-fraction 1.5: must be in [0, 1]"),
        (("--checkpoint-minutes", "-2"), "--checkpoint-minutes -2: must be 0 or more"),
        (("--set", "lr_decay_rate=0"), "--set lr_decay_rate=0: 0.0 must be positive"),
        (("--set", "seed=-1"), "--set seed=-1: -1 must be in [0, 2**32)"),
        ("file:learning_rate: -0.001\n", "c.yaml: learning_rate: -0.001 must be positive"),
        ("file:balance_high: 3\n", "c.yaml: balance_high: 3.0 must be in [0, 1]"),
        ("file:warp: 1\n", "c.yaml: unknown config key 'warp'"),
    ],
)
def test_an_out_of_range_setting_names_where_it_came_from_flag_file_key_or_set(capsys, tmp_path, source, expected):
    if isinstance(source, str):
        (tmp_path / "c.yaml").write_text(source.removeprefix("file:"))
        source = ("--config", str(tmp_path / "c.yaml"))
    assert main(["train", "--print-config", "--out", str(tmp_path / "run"), *source]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "run").exists()


def test_a_config_file_can_set_a_resumed_runs_value_back_to_the_default(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "mefgan.json").write_text(json.dumps({"config": {"learning_rate": 1e-4, "random_flips": True, "seed": 1}}))
    (tmp_path / "c.yaml").write_text("learning_rate: 0.0003\nrandom_flips: false\n")  # both the defaults
    config = printed_config(capsys, "--out", str(run), "--config", str(tmp_path / "c.yaml"))
    assert (config["learning_rate"], config["random_flips"], config["seed"]) == (3e-4, False, 1)
    assert printed_config(capsys, "--out", str(run))["learning_rate"] == 1e-4  # without the file: the saved value
