"""A Ctrl-C is never lost: not even when Python swallows its exception in a garbage-collection
callback, and no output is completed after one."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from mefgan_tf.cli import main
from mefgan_tf.files import atomic_dir, atomic_path
from mefgan_tf.images import write_image
from mefgan_tf.signals import check_interrupted, held_signals, interrupts_noticed

# Python reports the KeyboardInterrupt it swallows in ``__del__`` as unraisable: that is the case here.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class Finaliser:
    """An object whose ``__del__`` receives a Ctrl-C: Python prints "Exception ignored" and goes on."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # the handler runs here, inside __del__
            pass


def swallowed_interrupt() -> None:
    Finaliser()  # deleted at once


def test_an_interrupt_lost_in_a_finaliser_is_raised_again_when_checked():
    with interrupts_noticed():
        swallowed_interrupt()  # no exception reaches us
        with pytest.raises(KeyboardInterrupt):
            check_interrupted()
        check_interrupted()  # raised once only


@pytest.mark.parametrize("writer", [atomic_path, atomic_dir])
def test_no_output_is_renamed_into_place_after_a_lost_interrupt(tmp_path, writer):
    target = tmp_path / ("out.png" if writer is atomic_path else "out")
    with interrupts_noticed(), pytest.raises(KeyboardInterrupt), writer(target) as tmp:
        (tmp / "part" if tmp.is_dir() else tmp).write_bytes(b"written")
        swallowed_interrupt()
    assert list(tmp_path.iterdir()) == []


def test_a_signal_held_while_a_checkpoint_is_written_stops_after_it():
    with interrupts_noticed(), pytest.raises(KeyboardInterrupt), held_signals():
        os.kill(os.getpid(), signal.SIGINT)
        finished = True
    assert finished


@pytest.mark.slow
def test_fuse_and_export_stop_with_exit_130_and_write_nothing_when_the_interrupt_is_swallowed(monkeypatch, tmp_path, capsys):
    rng = np.random.default_rng(0)
    pair = [write_image(tmp_path / f"{name}.png", rng.random((16, 16, 3))) for name in ("a", "b")]
    import mefgan_tf.fusion as fusion

    real = fusion.fuse_pair

    def fuse_and_lose_an_interrupt(*args, **kwargs):
        swallowed_interrupt()
        return real(*args, **kwargs)

    monkeypatch.setattr(fusion.fuser, "fuse_pair", fuse_and_lose_an_interrupt)
    assert main(["fuse", "-q", *map(str, pair), "-o", str(tmp_path / "fused.png")]) == 130
    assert not (tmp_path / "fused.png").exists()

    def save_and_lose_an_interrupt(module, folder, signatures=None):
        (tmp_path / "saved").mkdir()
        swallowed_interrupt()
        open(os.path.join(folder, "saved_model.pb"), "wb").close()

    monkeypatch.setattr(tf.saved_model, "save", save_and_lose_an_interrupt)
    assert main(["export", "--out", str(tmp_path / "export" / "1")]) == 130
    assert (tmp_path / "saved").exists() and list((tmp_path / "export").iterdir()) == []
    assert capsys.readouterr().err.strip().splitlines()[-1] == "mefgan export: error: interrupted"
