"""Safe writing (mefgan_tf.files): temporaries left by killed runs are removed, a running writer's are kept."""
from __future__ import annotations

import os
import subprocess
import time

from mefgan_tf.files import STALE_AGE_S, atomic_path, remove_stale_temporaries


def finished_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_the_target_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / "p.h5"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        names = {
            f".p.h5.{finished_pid()}-abcd1234.h5": False,  # its writer is gone
            f".p.h5.{sleeper.pid}-abcd1234.h5": True,  # its writer still runs
            f".p.h5.{os.getpid()}-abcd1234.h5": True,  # ours
            ".p.h5.old_1234.h5": False,  # no process id (older versions), untouched for long
            ".p.h5.new_1234.h5": True,  # no process id, recent: maybe a writer's
            f".q.h5.{finished_pid()}-abcd1234.h5": True,  # another target's
            ".p.h5.notes": True,  # not of our naming
        }
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        old = time.time() - STALE_AGE_S - 60
        os.utime(tmp_path / ".p.h5.old_1234.h5", (old, old))
        stale_dir = tmp_path / f".export.{finished_pid()}-abcd1234"
        stale_dir.mkdir()
        (stale_dir / "saved_model.pb").write_bytes(b"x")

        removed = remove_stale_temporaries(target)
        assert sorted(p.name for p in removed) == sorted(n for n, kept in names.items() if not kept)
        assert {n for n in names if (tmp_path / n).exists()} == {n for n, kept in names.items() if kept}
        assert remove_stale_temporaries(tmp_path / "export", "") == [stale_dir] and not stale_dir.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_atomic_path_names_its_temporary_with_its_process_and_cleans_before_writing(tmp_path):
    stale = tmp_path / f".out.txt.{finished_pid()}-abcd1234.txt"
    stale.write_text("half")
    with atomic_path(tmp_path / "out.txt") as tmp:
        assert tmp.name.startswith(f".out.txt.{os.getpid()}-") and tmp.suffix == ".txt"
        assert not stale.exists()
        tmp.write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
