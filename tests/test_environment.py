"""What the entry points set up before TensorFlow runs: its C++ start-up lines hidden, TensorFlow
imported in the background while `mefgan fuse` reads its photos, optional packages kept out of it."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python(code: str, fake_tensorflow: Path | None = None, **environment: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python (the repository importable; ``fake_tensorflow`` first on the path)."""
    paths = [str(fake_tensorflow)] if fake_tensorflow else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(ROOT)]), **environment}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300)


def fake_tensorflow(folder: Path, body: str) -> Path:
    """A folder holding a ``tensorflow`` package whose import runs ``body``."""
    (folder / "tensorflow").mkdir(parents=True)
    (folder / "tensorflow" / "__init__.py").write_text(textwrap.dedent(body))
    return folder


@pytest.mark.slow
def test_a_background_import_hides_tensorflows_lines_but_shows_pythons_own():
    result = python("""
        import sys
        from mefgan_tf.environment import import_tensorflow_quietly, set_environment, start_tensorflow_import
        set_environment()
        start_tensorflow_import()
        print("note: written while TensorFlow starts", file=sys.stderr)
        import_tensorflow_quietly()
        print("note: written after", file=sys.stderr)
        import tensorflow as tf
        print(int(tf.constant(2).numpy()) * 3)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["note: written while TensorFlow starts", "note: written after"]
    assert result.stdout.split() == ["6"]


def test_a_failed_background_import_shows_its_hidden_lines_and_raises_in_the_caller(tmp_path):
    broken = fake_tensorflow(tmp_path, """
        import os
        os.write(2, b"C++: cannot open libtensorflow_cc.so.2\\n")
        raise ImportError("libtensorflow_cc.so.2: cannot open shared object file")
    """)
    result = python("""
        import sys
        from mefgan_tf.environment import import_tensorflow_quietly, start_tensorflow_import
        start_tensorflow_import()
        print("meanwhile", file=sys.stderr)
        try:
            import_tensorflow_quietly()
        except ImportError as err:
            print("raised:", err)
        print("after", file=sys.stderr)
    """, broken, KERAS_BACKEND="tensorflow")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "raised: libtensorflow_cc.so.2: cannot open shared object file"
    assert result.stderr.splitlines() == ["meanwhile", "C++: cannot open libtensorflow_cc.so.2", "after"]


def test_a_captured_stderr_keeps_what_is_written_while_tensorflow_starts(tmp_path):
    fake = fake_tensorflow(tmp_path, """
        import os
        os.write(2, b"C++ start-up line\\n")
        class config:
            list_physical_devices = staticmethod(lambda: [])
    """)
    result = python("""
        import io, sys
        from mefgan_tf.environment import finish_tensorflow_import, start_tensorflow_import
        captured = io.StringIO()
        sys.stderr = captured
        start_tensorflow_import()
        print("note: aligned", file=sys.stderr)
        finish_tensorflow_import()
        sys.stderr = sys.__stderr__
        print(repr(captured.getvalue()))
    """, fake, KERAS_BACKEND="jax")  # no Keras import: it would need the real TensorFlow
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr("note: aligned\n")
    assert "C++ start-up line" not in result.stderr


@pytest.mark.parametrize("skip", [True, False])
def test_optional_packages_stay_out_of_the_command_lines_import_and_import_afterwards(tmp_path, skip):
    recording = fake_tensorflow(tmp_path, """
        import importlib
        found = {}
        for name in ("matplotlib", "jax"):
            try:
                importlib.import_module(name)
                found[name] = True
            except ImportError:
                found[name] = False
        class config:
            list_physical_devices = staticmethod(lambda: [])
    """)
    result = python(f"""
        import importlib.util, sys
        from mefgan_tf.environment import import_tensorflow_quietly
        import_tensorflow_quietly(skip_optional={skip})
        import tensorflow
        import matplotlib.pyplot
        installed = importlib.util.find_spec("jax") is not None
        if installed:
            import jax
        print(tensorflow.found["matplotlib"], tensorflow.found["jax"], installed)
    """, recording, KERAS_BACKEND="jax")  # no Keras import: it would need the real TensorFlow
    assert result.returncode == 0, result.stderr
    matplotlib_seen, jax_seen, jax_installed = result.stdout.split()
    assert matplotlib_seen == str(not skip)
    assert jax_seen == str(not skip and jax_installed == "True")
    assert jax_installed == str(importlib.util.find_spec("jax") is not None)
