"""The built wheel works anywhere: installed into a fresh virtual environment outside the repository,
`mefgan` and the Python API fuse a pair with the shipped generator, which travels inside the package."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mefgan_tf.images import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


def run(*argv, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the source (a stale build/ folder in the checkout could add old files)."""
    import shutil

    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "data", "checkpoints", "*.egg-info", "__pycache__", ".pytest_cache"))
    done = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", folder, source, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "!!" not in done.stderr  # no setuptools banner (license, layout)
    return next(folder.glob("mefgan_tf-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A new virtual environment with the wheel installed; its dependencies come from this one's
    site-packages through a .pth file (installing TensorFlow again would take minutes)."""
    venv = new_venv(tmp_path_factory.mktemp("venv"))
    done = run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", "-q",
               wheel, cwd=venv.parent)
    assert done.returncode == 0, done.stderr
    return venv


def test_the_wheel_carries_the_generator_and_no_generic_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("mefgan_tf-")} == {"mefgan_tf"}
    assert "mefgan_tf/shipped_generator/checkpoint" in names and "mefgan_tf/data_prep/build.py" in names
    weights = [n for n in names if n.startswith("mefgan_tf/shipped_generator/ckpt-") and n.endswith(".data-00000-of-00001")]
    assert len(weights) == 1 and zipfile.ZipFile(wheel).getinfo(weights[0]).file_size > 1_000_000


def new_venv(folder: Path) -> Path:
    """A virtual environment without pip whose dependencies come from this one's site-packages (a .pth file)."""
    venv = folder / "env"
    assert run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=folder).returncode == 0
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (purelib / "project_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def test_the_makefile_s_editable_install_prints_nothing_and_imports_data_prep_from_its_folder(tmp_path):
    makefile = (ROOT / "Makefile").read_text()
    (environment,) = [line.split(":=", 1)[1].split("$(BIN)")[0].strip() for line in makefile.splitlines()
                      if line.startswith("EDITABLE :=")]
    name, value = environment.split("=", 1)
    venv = new_venv(tmp_path)
    done = run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index",
               "--no-build-isolation", "--quiet", "-e", ROOT, cwd=tmp_path, env={**os.environ, name: value.strip('"')})
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location")] == []
    where = run(venv / "bin" / "python", "-c", "import mefgan_tf.data_prep.build as b; print(b.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()) == ROOT / "data_prep" / "build.py", where.stderr


@pytest.mark.slow
def test_mefgan_and_the_python_api_fuse_with_the_shipped_generator_outside_the_repository(installed, tmp_path):
    work = tmp_path / "photos"
    rng = np.random.default_rng(0)
    scene = np.clip(rng.random((6, 8, 3)).repeat(8, 0).repeat(8, 1), 0, 1).astype(np.float32)
    write_image(work / "dark.png", scene * 0.25)
    write_image(work / "bright.png", np.clip(scene * 2.5, 0, 1))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cli = run(installed / "bin" / "mefgan", "fuse", "dark.png", "bright.png", "-o", "cli.png", cwd=work, env=env)
    assert cli.returncode == 0, cli.stderr
    code = ("import mefgan_tf, sys; assert sys.prefix != sys.base_prefix; print(mefgan_tf.__file__); "
            "mefgan_tf.write_image('api.png', mefgan_tf.fuse(['dark.png', 'bright.png']))")
    api = run(installed / "bin" / "python", "-c", code, cwd=work, env=env)
    assert api.returncode == 0, api.stderr
    assert Path(api.stdout.strip()).is_relative_to(installed) and not Path(api.stdout.strip()).is_relative_to(ROOT)
    assert api.stderr.strip() == ""  # TensorFlow's start-up lines stay hidden
    cli_image, api_image = read_image(work / "cli.png"), read_image(work / "api.png")
    assert cli_image.shape == (48, 64, 3)
    assert np.abs(cli_image - api_image).max() <= 1 / 255
    assert (scene * 0.25).mean() < cli_image.mean() < np.clip(scene * 2.5, 0, 1).mean()
    patches = run(installed / "bin" / "mefgan", "patches", "--help", cwd=work, env=env)
    assert patches.returncode == 0 and "--pairing" in patches.stdout
