"""The Python API: fuse paths or arrays of any dtype with any model, as `mefgan fuse` does."""
from __future__ import annotations

import numpy as np
import pytest

import mefgan_tf
from mefgan_tf.errors import CommandError
from mefgan_tf.fusion import FusionOptions
from mefgan_tf.images import to_uint8
from mefgan_tf.models import load_fuser

# checkpoint: the seeded generator's, tests/conftest.py


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    base = np.clip(rng.random((5, 7, 3)).repeat(8, 0).repeat(8, 1), 0, 1).astype(np.float32)
    return base * 0.3, np.clip(base * 2.0, 0, 1).astype(np.float32)


def test_the_package_exports_the_api_without_loading_tensorflow_on_import():
    import subprocess
    import sys

    code = "import sys, mefgan_tf; print('tensorflow' in sys.modules, callable(mefgan_tf.fuse), callable(mefgan_tf.load_model))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "True", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        mefgan_tf.nothing  # noqa: B018


@pytest.mark.slow
def test_paths_and_arrays_of_every_dtype_fuse_alike(checkpoint, scene, tmp_path):
    dark, bright = scene
    model = mefgan_tf.load_model(checkpoint, tile=None)
    expected = load_fuser(checkpoint, FusionOptions(tile=None))([dark, bright])
    as_float = mefgan_tf.fuse([bright, dark], model=model)  # any order
    np.testing.assert_allclose(as_float, expected, atol=1e-6)
    as_uint8 = mefgan_tf.fuse([to_uint8(dark), to_uint8(bright)], model=checkpoint)  # 8-bit inputs: x / 255
    np.testing.assert_allclose(as_uint8, model([to_uint8(dark) / np.float32(255), to_uint8(bright) / np.float32(255)]), atol=1e-6)
    uint16 = [np.round(im * 65535).astype(np.uint16) for im in (dark, bright)]
    # 16-bit rounding moves Mertens's weights of the detail where they are near nil: a quarter of an 8-bit level
    np.testing.assert_allclose(mefgan_tf.fuse(uint16, model=model), expected, atol=1e-3)
    for name, image in (("d.png", dark), ("b.tif", bright)):
        mefgan_tf.write_image(tmp_path / name, image, bit_depth=16)
    from_paths = mefgan_tf.fuse([tmp_path / "d.png", str(tmp_path / "b.tif")], model=model)
    np.testing.assert_allclose(from_paths, expected, atol=1e-3)
    assert from_paths.dtype == np.float32 and from_paths.shape == dark.shape


@pytest.mark.parametrize("bad, message", [
    (np.zeros((8, 8)), r"shape \[8, 8\]; expected \(height, width, 3\) RGB"),
    (np.zeros((8, 8, 3), np.int32), "is int32; expected uint8, uint16 or floats in"),
])
def test_bad_arrays_are_refused_in_one_line(checkpoint, bad, message):
    with pytest.raises(CommandError, match=message):
        mefgan_tf.fuse([bad, bad], model=checkpoint)


def test_one_exposure_or_exposures_of_two_sizes_are_refused(checkpoint, scene):
    model = mefgan_tf.load_model(checkpoint)
    with pytest.raises(CommandError, match="need at least two exposures"):
        mefgan_tf.fuse([scene[0]], model=model)
    with pytest.raises(CommandError, match="exposures differ in size"):
        mefgan_tf.fuse([scene[0], scene[1][:16]], model=model)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_are_refused_naming_the_exposure(checkpoint, scene, value):
    dark, bright = scene
    spoilt = bright.copy()
    spoilt[3, 4, 1] = value
    with pytest.raises(CommandError, match=r"^exposure 2 holds 1 NaN or infinite value\(s\), the first at row 3, column 4"):
        mefgan_tf.fuse([dark, spoilt], model=checkpoint)


def test_floats_outside_0_1_are_clipped_with_a_note_naming_the_exposure(checkpoint, scene):
    dark, bright = scene
    with pytest.warns(mefgan_tf.api.InputNote, match=r"exposure 1: values outside \[0, 1\] \(from -0.5 to 0.19"):
        fused = mefgan_tf.fuse([np.where(dark > 0.2, -0.5, dark), bright], model=checkpoint)
    assert np.isfinite(fused).all()


@pytest.mark.parametrize("exposures, message", [
    ("a.png", "exposures must be a list of two or more paths or arrays, got one str 'a.png'"),
    (np.zeros((8, 8, 3)), "exposures must be a list of two or more paths or arrays, got one ndarray"),
    (["a.png"], "need at least two exposures to fuse, got 1"),
])
def test_exposures_that_are_not_a_list_of_two_are_refused_before_anything_is_read(checkpoint, exposures, message):
    with pytest.raises(CommandError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        mefgan_tf.fuse(exposures, model=checkpoint)


def test_errors_are_one_exported_family_of_the_builtin_kinds(tmp_path):
    assert issubclass(mefgan_tf.CommandError, mefgan_tf.MefganError) and issubclass(mefgan_tf.CommandError, ValueError)
    assert issubclass(mefgan_tf.FileProblem, mefgan_tf.CommandError) and issubclass(mefgan_tf.FileProblem, OSError)
    mefgan_tf.write_image(tmp_path / "photo.png", np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"photo.png: is an image, not a model \(expected a checkpoint"):
        mefgan_tf.load_model(tmp_path / "photo.png")
    with pytest.raises(OSError, match="no such file or directory|cannot read"):
        mefgan_tf.read_image(tmp_path / "missing.png")


def test_shipped_names_the_shipped_generator_everywhere_a_model_is_asked_for():
    from mefgan_tf.models import DEFAULT_MODEL, model_version, named_model

    assert named_model("shipped") == named_model(None) == DEFAULT_MODEL
    assert model_version("shipped") == (DEFAULT_MODEL, "1")


def test_a_wrong_model_path_is_told_before_tensorflow_starts(tmp_path):
    import subprocess
    import sys

    code = ("import sys, mefgan_tf\ntry:\n    mefgan_tf.load_model(sys.argv[1])\nexcept ValueError as err:\n"
            "    print(err)\nprint('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == [f"{tmp_path / 'none'}: no such model (expected a checkpoint folder/prefix, a "
                                        "SavedModel folder or a .tflite file)", "False"], done.stderr[-1000:]
