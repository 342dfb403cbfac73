"""`mefgan export --tflite`: a LiteRT model of the generator, float32, float16 and int8, against the SavedModel."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from mefgan_tf import tflite
from mefgan_tf.errors import CommandError
from mefgan_tf.export import FLOAT_SIGNATURE
from mefgan_tf.fusion import fuse_pair
from mefgan_tf.stages import generator_stages

# |TFLite - SavedModel| on the pairs below with the random generator (seed 7), measured max / mean:
# float32 4.8e-7 / 9.3e-8, float16 7.9e-5 / 3.9e-5, int8 7.3e-3 / 1.5e-3 (calibrated on other smooth pairs; the
# bounds hold as well with the default calibration on the demo photos, which the int8 fixture uses).
# The bounds leave about 3x headroom.
TOLERANCE = {"none": 2e-6, "float16": 3e-4, "int8": 0.025}
MEAN_TOLERANCE = {"none": 3e-7, "float16": 1.2e-4, "int8": 0.005}


def pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((height // 4 + 1, width // 4 + 1, 3), dtype=np.float32), (width, height))
    return np.clip(base * 1.8, 0, 1), base * 0.3


# generator, checkpoint, served (the SavedModel of the same generator), litert_model: tests/conftest.py
@pytest.fixture(scope="module")
def exported(litert_model) -> dict[str, Path]:
    """`mefgan export --tflite` of the checkpoint in each quantization (int8 calibrated on the demo photos)."""
    return {quantize: litert_model(quantize) for quantize in tflite.QUANTIZATIONS}


def saved_model_fuse(served, over: np.ndarray, under: np.ndarray) -> np.ndarray:
    call = served.signatures[FLOAT_SIGNATURE]
    return call(over=tf.constant(over[None]), under=tf.constant(under[None]))["fused"].numpy()[0]


@pytest.mark.slow
@pytest.mark.parametrize("quantize", tflite.QUANTIZATIONS)
def test_each_variant_runs_any_multiple_of_8_within_its_measured_tolerance(exported, served, quantize):
    model = tflite.LiteModel(exported[quantize], num_threads=1)
    assert set(model.interpreter.get_signature_list()) == set(tflite.SIGNATURES)
    for height, width, seed in ((32, 48, 1), (40, 24, 2)):  # one interpreter, two sizes
        over, under = pair(height, width, seed)
        fused = model.fuse(over, under)
        expected = saved_model_fuse(served, over, under)
        assert fused.shape == (height, width, 3) and fused.dtype == np.float32
        difference = np.abs(fused - expected)
        assert difference.max() <= TOLERANCE[quantize] and difference.mean() <= MEAN_TOLERANCE[quantize]


def test_quantized_files_are_smaller(exported):
    sizes = {q: path.stat().st_size for q, path in exported.items()}
    assert sizes["int8"] < sizes["float16"] < sizes["none"]
    assert sizes["float16"] < 0.6 * sizes["none"] and sizes["int8"] < 0.35 * sizes["none"]


def test_attention_and_tile_signatures_fuse_a_padded_tiled_pair_like_the_savedmodel(exported, served):
    model = tflite.LiteModel(exported["none"], num_threads=1)
    over, under = pair(37, 53, seed=3)
    np.testing.assert_allclose(fuse_pair(model, over, under, tile=16), saved_model_fuse(served, over, under), atol=1e-5)


def test_int8_calibrates_on_the_bundled_demo_photos_by_default(exported, generator):
    pairs = tflite.calibration_pairs(side=32)
    assert len(pairs) == 3 * len(tflite.CALIBRATION_EVS) and all(o.shape == u.shape == (32, 32, 3) for o, u in pairs)
    assert all(o.mean() > u.mean() for o, u in pairs)
    model = tflite.LiteModel(exported["int8"], num_threads=1)  # exported without --calibration
    over, under = pair(16, 16)
    fused, reference = model.fuse(over, under), fuse_pair(generator_stages(generator), over, under)
    assert fused.shape == (16, 16, 3)  # and the calibration fits: within int8's measured error of float32
    assert np.abs(fused - reference).max() < TOLERANCE["int8"] and np.abs(fused - reference).mean() < MEAN_TOLERANCE["int8"]


def test_sizes_that_are_not_multiples_of_8_are_refused_in_one_line(exported):
    model = tflite.LiteModel(exported["none"], num_threads=1)
    with pytest.raises(CommandError, match="multiples of 8"):
        model.fuse(*pair(30, 48))
    with pytest.raises(CommandError, match="multiple of 8"):
        tflite.calibration_pairs(side=20)
    with pytest.raises(CommandError, match="no such .tflite file"):
        tflite.LiteModel(Path("missing.tflite"))


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(monkeypatch, generator, tmp_path):
    out = tmp_path / "mefgan.tflite"
    out.write_bytes(b"previous")
    monkeypatch.setattr(tflite, "convert_generator", lambda *args, **kwargs: b"x" * 1000)

    def disk_full(path: Path, data: bytes) -> int:
        with open(path, "wb") as f:
            f.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(CommandError, match="cannot write"):
        tflite.export_tflite(generator, out)
    assert out.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["mefgan.tflite"]


def test_a_plain_interpreter_without_signature_runner_runs_the_whole_generator(exported, served):
    from ai_edge_litert.interpreter import Interpreter

    over, under = pair(24, 32, seed=3)
    for quantize in ("none", "int8"):
        interpreter = Interpreter(model_path=str(exported[quantize]))
        inputs = {detail["name"]: detail["index"] for detail in interpreter.get_input_details()}
        assert sorted(inputs) == ["serving_default_over:0", "serving_default_under:0"], quantize
        for name in ("over", "under"):
            interpreter.resize_tensor_input(inputs[f"serving_default_{name}:0"], [1, 24, 32, 3])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inputs["serving_default_over:0"], over[None])
        interpreter.set_tensor(inputs["serving_default_under:0"], under[None])
        interpreter.invoke()
        fused = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        assert np.abs(fused - saved_model_fuse(served, over, under)).max() < TOLERANCE[quantize], quantize
        runner = tflite.LiteModel(exported[quantize])  # the signatures still find their subgraphs
        np.testing.assert_allclose(runner.fuse(over, under), fused, atol=1e-6)


def test_a_lite_model_runs_on_every_core_the_process_may_use_unless_told(monkeypatch):
    from ai_edge_litert import interpreter as litert

    made = []

    class Recording:
        def __init__(self, **kwargs):
            made.append(kwargs["num_threads"])

        def get_signature_runner(self, key):
            return key

    monkeypatch.setattr(litert, "Interpreter", Recording)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})  # as under `taskset -c 0-2`
    tflite.LiteModel(b"model")
    tflite.LiteModel(b"model", num_threads=1)
    assert made == [3, 1]


def test_calibration_folder_s_pairs_are_what_int8_calibrates_on(checkpoint, tmp_path, monkeypatch):
    from mefgan_tf.cli import main

    for i in (1, 2):
        over, under = pair(40, 56, seed=10 + i)
        cv2.imwrite(str(tmp_path / f"o{i}.png"), (over * 255).round().astype(np.uint8)[..., ::-1])
        cv2.imwrite(str(tmp_path / f"u{i}.png"), (under * 255).round().astype(np.uint8)[..., ::-1])
    used = []
    monkeypatch.setattr(tflite, "convert_generator", lambda generator, quantize, pairs, chunk: used.append(pairs) or b"x")
    out = tmp_path / "out" / "m.tflite"
    assert main(["export", "--tflite", "--checkpoint", str(checkpoint), "--out", str(out), "--quantize", "int8",
                 "--calibration", str(tmp_path)]) == 0
    (pairs,) = used
    expected = tflite.calibration_pairs(tmp_path)
    assert len(pairs) == 2 and all(np.array_equal(a, b) for got, want in zip(pairs, expected) for a, b in zip(got, want))
