"""`mefgan export`: a versioned SavedModel that TensorFlow Serving loads, with a float and a bytes signature."""
from __future__ import annotations

import dataclasses
import io
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from mefgan_tf import fusion, models
from mefgan_tf.cli import main
from mefgan_tf.export import BYTES_SIGNATURE, FLOAT_SIGNATURE
from mefgan_tf.fusion import FusionOptions, attention_maps, fuse_pair, network_input
from mefgan_tf.images import read_image, to_uint8
from mefgan_tf.models import load_fuser
from mefgan_tf.pyramid import DETAIL_LEVELS
from mefgan_tf.stages import TensorFlowStages

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"


# generator, stages, checkpoint, savedmodel (`mefgan export` of the checkpoint), served: tests/conftest.py


def pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((height // 4 + 1, width // 4 + 1, 3), dtype=np.float32), (width, height))
    return np.clip(base * 1.8, 0, 1), base * 0.3


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", to_uint8(image)[..., ::-1])[1].tobytes()


def test_export_writes_a_versioned_savedmodel_with_both_signatures(savedmodel, served):
    assert savedmodel.name == "1" and (savedmodel / "saved_model.pb").is_file() and (savedmodel / "variables").is_dir()
    assert set(served.signatures) == {FLOAT_SIGNATURE, BYTES_SIGNATURE}
    inputs = served.signatures[FLOAT_SIGNATURE].structured_input_signature[1]
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
        "over": (tf.float32, [None, None, None, 3]),
        "under": (tf.float32, [None, None, None, 3]),
    }
    assert set(served.signatures[BYTES_SIGNATURE].structured_input_signature[1]) == {"over_bytes", "under_bytes"}


@pytest.mark.parametrize("height, width", [(37, 53), (40, 56), (9, 70)])
def test_float_signature_fuses_any_size_like_in_process_fusion(served, stages, height, width):
    over, under = pair(height, width)
    fused = served.signatures[FLOAT_SIGNATURE](over=tf.constant(over[None]), under=tf.constant(under[None]))["fused"]
    assert fused.shape == (1, height, width, 3)
    np.testing.assert_allclose(fused.numpy()[0], fuse_pair(stages, over, under), atol=1e-5)


def test_bytes_signature_turns_two_encoded_exposures_in_any_order_into_a_png_of_the_fusion(served, stages):
    over, under = pair(37, 53, seed=1)
    over8, under8 = (to_uint8(image).astype(np.float32) / np.float32(255) for image in (over, under))
    expected = to_uint8(fusion.Fuser(stages, FusionOptions(tile=None))([over8, under8]))  # as `mefgan fuse`
    call = served.signatures[BYTES_SIGNATURE]
    for first, second in ((over, under), (under, over)):
        result = call(over_bytes=tf.constant([png(first)]), under_bytes=tf.constant([png(second)]))
        encoded = result["fused_png_bytes"].numpy()
        assert encoded.shape == (1,) and encoded[0].startswith(b"\x89PNG")
        decoded = tf.io.decode_png(encoded[0]).numpy()
        assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1


def test_bytes_signature_fuses_a_photo_larger_than_the_working_size_as_mefgan_fuse_does(served, stages):
    over, under = pair(420, 620, seed=3)  # larger than WORK_SIZE: the network at 512 x 347
    over8, under8 = (to_uint8(image).astype(np.float32) / np.float32(255) for image in (over, under))
    expected = to_uint8(fusion.Fuser(stages, FusionOptions(tile=None))([under8, over8]))  # as `mefgan fuse`
    result = served.signatures[BYTES_SIGNATURE](over_bytes=tf.constant([png(under)]), under_bytes=tf.constant([png(over)]))
    decoded = tf.io.decode_png(result["fused_png_bytes"].numpy()[0]).numpy()
    assert decoded.shape == (420, 620, 3)
    error = np.abs(decoded.astype(int) - expected.astype(int))
    # Within one level but where neither exposure weighs a pixel (float rounding of nil weights: measured
    # 9 of 781,200 values, up to 4 levels, on this blocky synthetic pair).
    assert (error > 1).mean() < 1e-4 and error.max() <= 6


@pytest.mark.parametrize("guard", [True, False])
def test_fuse_images_guards_the_tone_as_mefgan_fuse_does_unless_exported_without(generator, stages, guard):
    from mefgan_tf.export import serving_class
    from mefgan_tf.resolution import WORK_SIZE
    from mefgan_tf.tone import tone_guard

    over, under = (to_uint8(image).astype(np.float32) / np.float32(255) for image in pair(96, 128, seed=3))
    options = FusionOptions(tile=None, tone_guard=guard)
    unguarded = fusion.Fuser(stages, dataclasses.replace(options, tone_guard=False))([over, under])
    assert not tone_guard(unguarded, [over, under]).identity  # a fusion the guard bends
    module = serving_class()(generator, DETAIL_LEVELS, WORK_SIZE, guard)
    graph = to_uint8(module.fuse_exposures(tf.constant(under), tf.constant(over)).numpy())
    error = np.abs(graph.astype(int) - to_uint8(fusion.Fuser(stages, options)([over, under])).astype(int))
    # within one level but where neither exposure weighs a pixel (as the test above)
    assert (error > 1).mean() < 1e-4 and error.max() <= 6


@pytest.mark.skipif(not SAVED_MODEL_CLI.exists(), reason="saved_model_cli not installed beside python")
def test_saved_model_cli_runs_the_serving_signature(savedmodel, stages, tmp_path):
    over, under = pair(21, 30, seed=2)
    np.save(tmp_path / "over.npy", over[None])
    np.save(tmp_path / "under.npy", under[None])
    command = [
        str(SAVED_MODEL_CLI), "run", "--dir", str(savedmodel), "--tag_set", "serve",
        "--signature_def", FLOAT_SIGNATURE, "--inputs",
        f"over={tmp_path / 'over.npy'};under={tmp_path / 'under.npy'}", "--outdir", str(tmp_path / "out"),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    fused = np.load(tmp_path / "out" / "fused.npy")
    np.testing.assert_allclose(fused[0], fuse_pair(stages, over, under), atol=1e-5)


def test_load_fuser_tiles_with_a_savedmodel_like_with_the_checkpoint(savedmodel, checkpoint):
    over, under = pair(45, 61, seed=3)
    from_saved = load_fuser(savedmodel, FusionOptions(tile=16))([under, over])
    from_checkpoint = load_fuser(checkpoint, FusionOptions(tile=None))([over, under])
    np.testing.assert_allclose(from_saved, from_checkpoint, atol=1e-4)


def test_savedmodel_runs_the_attention_rows_in_blocks_like_one_call(served, monkeypatch):
    monkeypatch.setattr(fusion.tiles, "ATTENTION_BLOCKS", dataclasses.replace(fusion.tiles.ATTENTION_BLOCKS, inference=50))
    x = network_input(*pair(64, 96, seed=4))  # 96 attention rows: 2 calls
    np.testing.assert_allclose(attention_maps(TensorFlowStages(served), x), served.attention_half(x).numpy(), atol=1e-5)


def test_export_without_a_shipped_generator_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "checkpoints" / "reference")
    assert main(["export", "--out", str(tmp_path / "export" / "1")]) == 1
    assert "the shipped generator is missing" in capsys.readouterr().err
    assert not (tmp_path / "export").exists()


def test_an_export_that_fails_midway_leaves_no_version_folder(monkeypatch, generator, tmp_path):
    from mefgan_tf import export

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError):
        export.export_saved_model(generator, tmp_path / "mefgan" / "1")
    assert list((tmp_path / "mefgan").iterdir()) == []
    shutil.rmtree(tmp_path / "mefgan")


def rng_pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)


@pytest.mark.parametrize(
    "over, under, message",
    [
        (*rng_pair((1, 16, 16, 4)), "over must have 3 channels (RGB)"),
        (*rng_pair((16, 16, 3)), "over must be float32 [batch, height, width, 3]"),
        (rng_pair((1, 16, 16, 3))[0], rng_pair((1, 24, 16, 3))[1], "over and under must have the same shape"),
        (rng_pair((1, 16, 16, 3))[0], rng_pair((2, 16, 16, 3))[1], "over and under must have the same shape"),
        (*rng_pair((1, 1, 1, 3)), "over: height and width must be at least 8 pixels"),
        (*rng_pair((1, 7, 40, 3)), "over: height and width must be at least 8 pixels"),
        (rng_pair((1, 16, 16, 3))[0] * 255, rng_pair((1, 16, 16, 3))[1], "over must hold values in [0, 1]"),
        (rng_pair((1, 16, 16, 3))[0], np.full((1, 16, 16, 3), np.nan, np.float32), "under must hold values in [0, 1]"),
    ],
    ids=["4 channels", "rank 3", "sizes differ", "batches differ", "1x1", "7 rows", "0-255", "NaN"],
)
def test_float_signature_refuses_what_a_client_can_fix_with_a_message_saying_what_is_expected(served, over, under, message):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        served.signatures[FLOAT_SIGNATURE](over=tf.constant(over), under=tf.constant(under))
    first = next(line for line in str(error.value).splitlines() if "assertion failed" in line)
    assert message in first, first


def test_float_signature_takes_the_smallest_size_the_cli_takes(served):
    fused = served.signatures[FLOAT_SIGNATURE](**dict(zip(("over", "under"), map(tf.constant, rng_pair((1, 8, 8, 3))))))
    assert fused["fused"].shape == (1, 8, 8, 3)


def exif_jpeg(image: np.ndarray, orientation: int, big_endian: bool = False) -> bytes:
    """``image`` (float RGB) as a JPEG whose EXIF block says ``orientation``, after another tag."""
    from PIL import Image

    order = ">" if big_endian else "<"
    entries = [(0x010F, 2, 4, b"Cam\0"), (0x0112, 3, 1, struct.pack(order + "H", orientation) + b"\0\0")]
    ifd = struct.pack(order + "H", len(entries))
    ifd += b"".join(struct.pack(order + "HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    exif = b"Exif\0\0" + (b"MM" if big_endian else b"II") + struct.pack(order + "HI", 42, 8) + ifd + b"\0\0\0\0"
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("orientation, big_endian", [(2, False), (3, False), (6, False), (8, False), (5, True), (6, True)])
def test_bytes_signature_applies_exif_orientation_like_mefgan_fuse(served, stages, tmp_path, orientation, big_endian):
    over, under = pair(24, 40, seed=4)
    files = []
    for name, image in (("over", over), ("under", under)):
        files.append(tmp_path / f"{name}.jpg")
        files[-1].write_bytes(exif_jpeg(image, orientation, big_endian))
    upright = [read_image(path) for path in files]  # OpenCV applies the orientation, as `mefgan fuse` reads
    assert upright[0].shape[:2] == ((40, 24) if orientation >= 5 else (24, 40))
    expected = to_uint8(fusion.Fuser(stages, FusionOptions(tile=None))(upright))  # as `mefgan fuse`
    result = served.signatures[BYTES_SIGNATURE](
        over_bytes=tf.constant([files[0].read_bytes()]), under_bytes=tf.constant([files[1].read_bytes()])
    )
    decoded = tf.io.decode_png(result["fused_png_bytes"].numpy()[0]).numpy()
    assert decoded.shape == expected.shape
    # JPEG decoders differ by a level or two: the detail keeps it, and the tone guard's white-point
    # stretch can widen it by a third (a turned or mirrored fusion is tens of levels off)
    assert np.abs(decoded.astype(int) - expected).mean() < 3.5


def test_bytes_signature_refuses_images_below_8_pixels(served):
    tiny = png(np.full((4, 4, 3), 0.5, np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="over_bytes: height and width must be at least 8 pixels"):
        served.signatures[BYTES_SIGNATURE](over_bytes=tf.constant([tiny]), under_bytes=tf.constant([tiny]))


@pytest.mark.slow
def test_an_export_killed_midway_leaves_a_folder_that_the_next_export_removes(checkpoint, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / "mefgan" / f".2.{dead.pid}-abcd1234"
    stale.mkdir(parents=True)
    # --detail-levels 0: a fifth of the tracing, and the same folder handling
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "mefgan" / "2"), "--detail-levels", "0"]) == 0
    assert sorted(p.name for p in (tmp_path / "mefgan").iterdir()) == ["2"]


def test_the_metadata_that_serve_answers_is_the_exported_savedmodels_signature_defs(savedmodel):
    from tensorflow.core.protobuf import saved_model_pb2

    from mefgan_tf.serve.protocol import metadata_body

    saved = saved_model_pb2.SavedModel.FromString((savedmodel / "saved_model.pb").read_bytes())
    real = saved.meta_graphs[0].signature_def
    described = metadata_body("mefgan", "1")["metadata"]["signature_def"]["signature_def"]
    assert set(described) == {FLOAT_SIGNATURE, BYTES_SIGNATURE} <= set(real)

    def tensors(infos) -> dict:
        return {key: (info.name, tf.dtypes.as_dtype(info.dtype).name, [d.size for d in info.tensor_shape.dim]) for key, info in infos.items()}

    def described_tensors(infos: dict) -> dict:
        dtypes = {"DT_FLOAT": "float32", "DT_STRING": "string"}
        return {key: (info["name"], dtypes[info["dtype"]], [int(d["size"]) for d in info["tensor_shape"]["dim"]]) for key, info in infos.items()}

    for name, signature in described.items():
        assert described_tensors(signature["inputs"]) == tensors(real[name].inputs), name
        assert described_tensors(signature["outputs"]) == tensors(real[name].outputs), name
        assert signature["method_name"] == real[name].method_name
