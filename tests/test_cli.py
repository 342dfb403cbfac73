"""`mefgan --help` lists every subcommand, and each one has its own help."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mefgan_tf.cli import COMMANDS, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mefgan {command}")
    assert out.count("--") >= 2  # documents its options, not just -h


def test_import_tf1_help_names_its_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["import-tf1", "--help"])
    out = capsys.readouterr().out
    assert "CKPT_PREFIX" in out and "--out" in out


def test_console_script_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "mefgan_tf.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("mefgan-tf ")


@pytest.mark.slow
def test_a_user_error_is_one_line_on_stderr_without_tensorflow_chatter(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mefgan_tf.cli", "fuse", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), "-o", str(tmp_path / "f.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"mefgan fuse: error: {tmp_path / 'a.jpg'}: cannot read (No such file or directory)"]
    assert not (tmp_path / "f.png").exists()


def test_importing_the_library_changes_no_environment_and_help_needs_no_tensorflow():
    script = (
        "import os, sys\n"
        "import mefgan_tf, mefgan_tf.config, mefgan_tf.scenes, mefgan_tf.fusion, mefgan_tf.evaluate.report\n"
        "print(os.environ.get('KERAS_BACKEND'), os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
        "from mefgan_tf.cli import COMMANDS, main\n"
        "for argv in [['--help']] + [[name, '--help'] for name in COMMANDS]:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "None None"  # the library sets nothing ...
    assert lines[-1] == "False False"  # ... and no command's --help loads TensorFlow or Keras


@pytest.mark.slow
def test_the_console_script_ends_with_the_commands_code_and_output_after_tensorflow_ran(tmp_path):
    from mefgan_tf.images import write_image
    from mefgan_tf.samples import exposed, sample_photo

    photo = sample_photo("astronaut")[::8, ::8]
    paths = [tmp_path / "dark.png", tmp_path / "bright.png"]
    for path, ev in zip(paths, (-2.0, 2.0)):
        write_image(path, exposed(photo, ev))

    def fuse(*options: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "mefgan_tf.cli", "fuse", *map(str, paths), *options]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    fused = fuse("-o", str(tmp_path / "fused.png"))
    assert fused.returncode == 0, fused.stderr
    assert fused.stdout == f"fused 2 exposures into {tmp_path / 'fused.png'}\n"
    assert (tmp_path / "fused.png").stat().st_size > 1000
    failed = fuse("--model", str(tmp_path / "missing"), "-o", str(tmp_path / "other.png"))
    assert failed.returncode == 1 and failed.stdout == ""
    (line,) = [line for line in failed.stderr.splitlines() if not line.startswith("note:")]
    assert line.startswith(f"mefgan fuse: error: {tmp_path / 'missing'}")
    assert not (tmp_path / "other.png").exists()
