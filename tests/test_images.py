"""The original's test-time image I/O: scipy's bytescale, PIL reading without EXIF rotation, JPEG q75."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mefgan_tf.errors import CommandError
from mefgan_tf.images import (
    bytescale,
    decode_image_raw,
    encode_image_original,
    read_image_original_raw,
    read_image_raw,
    write_image_original,
)


def scipy_bytescale(data, cmin=None, cmax=None, high=255, low=0):
    """scipy.misc.bytescale (scipy 1.1), line for line."""
    if data.dtype == np.uint8:
        return data
    if cmin is None:
        cmin = data.min()
    if cmax is None:
        cmax = data.max()
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(high - low) / cscale
    bytedata = (data - cmin) * scale + low
    return (bytedata.clip(low, high) + 0.5).astype(np.uint8)


def pil_jpeg(image: np.ndarray, **options) -> Image.Image:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_bytescale_is_scipys_on_a_random_image():
    data = np.random.default_rng(0).normal(0.4, 0.2, (31, 45, 3))  # float64, values outside [0, 1] too
    data[..., 2] += 2.0  # a far brighter blue channel
    expected = scipy_bytescale(data)
    result = bytescale(data)
    assert result.dtype == np.uint8 and result.shape == data.shape
    np.testing.assert_array_equal(result, expected)
    assert result.min() == 0 and result.max() == 255
    # one stretch for all channels jointly: red and green stay far below blue
    assert result[..., 2].max() == 255 and result[..., :2].max() < 160 and result[..., 2].min() > 100


def test_bytescale_of_float32_uses_numpy1_casting_of_the_original():
    data = np.random.default_rng(1).random((40, 40, 3), dtype=np.float32) * 0.6 + 0.1
    cmin, cmax = data.min(), data.max()
    # NumPy 1.x: 255.0 / float32 is a float64 scalar, cast to float32 against a float32 array
    scale = np.float32(255.0 / np.float64(cmax - cmin))
    expected = (((data - cmin) * scale).clip(0, 255) + np.float32(0.5)).astype(np.uint8)
    np.testing.assert_array_equal(bytescale(data), expected)
    # and within one level everywhere of the float64 computation
    assert np.abs(bytescale(data).astype(int) - scipy_bytescale(data.astype(np.float64))).max() <= 1


def test_bytescale_of_a_constant_image_is_zero_and_uint8_is_unchanged():
    np.testing.assert_array_equal(bytescale(np.full((4, 5, 3), 0.7)), np.zeros((4, 5, 3), np.uint8))
    np.testing.assert_array_equal(bytescale(np.full((4, 5, 3), 0.7, np.float32)), scipy_bytescale(np.full((4, 5, 3), 0.7)))
    image = np.random.default_rng(2).integers(10, 200, (4, 5, 3), dtype=np.uint8)
    assert bytescale(image) is image


def test_original_jpeg_is_quality_75_with_pils_default_subsampling(tmp_path):
    data = np.random.default_rng(3).random((48, 64, 3), dtype=np.float32) * 0.5 + 0.25
    path = write_image_original(tmp_path / "out.jpg", data)
    reference = pil_jpeg(bytescale(data), quality=75)
    with Image.open(path) as written:
        assert written.format == "JPEG" and written.size == (64, 48)
        assert written.quantization == reference.quantization
        assert written.quantization != pil_jpeg(bytescale(data), quality=95).quantization
        assert written.layer == reference.layer  # 4:2:0 chroma, as PIL's default
        decoded = np.asarray(written)
    np.testing.assert_array_equal(decoded, np.asarray(reference))
    np.testing.assert_array_equal(decode_image_raw(encode_image_original(data)), read_image_raw(path))


def test_original_writer_keeps_another_extensions_format_and_is_lossless_for_png(tmp_path):
    data = np.random.default_rng(4).random((16, 24, 3)) * 0.3 + 0.5
    path = write_image_original(tmp_path / "out.png", data)
    with Image.open(path) as written:
        assert written.format == "PNG"
    np.testing.assert_array_equal(read_image_raw(path), scipy_bytescale(data))
    with pytest.raises(CommandError, match="unknown image extension"):
        write_image_original(tmp_path / "out.xyz", data)


def test_original_reader_ignores_exif_orientation(tmp_path):
    image = np.zeros((16, 24, 3), np.uint8)
    image[:4, :4] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(image).save(tmp_path / "rotated.png", exif=exif.tobytes())
    original = read_image_original_raw(tmp_path / "rotated.png")
    assert original.shape == (16, 24, 3) and original.dtype == np.uint8
    np.testing.assert_array_equal(original, image)
    assert read_image_raw(tmp_path / "rotated.png").shape == (24, 16, 3)  # ours applies it


def test_original_reader_gives_rgb_and_one_line_errors(tmp_path):
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_image_original_raw(tmp_path / "grey.png"), np.full((8, 8, 3), 77, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CommandError, match="not a readable image"):
        read_image_original_raw(tmp_path / "broken.jpg")
    with pytest.raises(CommandError, match="cannot read"):
        read_image_original_raw(tmp_path / "nowhere.jpg")


def many_images(kind: str, count: int) -> bytes:
    """A file of ``kind`` holding ``count`` 16x16 images (pages of a TIFF, frames of a GIF or PNG)."""
    frames = [Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=kind, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["TIFF", "GIF", "PNG"])
def test_files_holding_several_images_are_counted_and_the_first_is_used_with_a_note(kind, tmp_path):
    from mefgan_tf.images import InputNote, frame_count, read_image_raw

    assert frame_count(np.frombuffer(many_images(kind, 3), np.uint8)) == 3
    assert frame_count(np.frombuffer(many_images(kind, 1), np.uint8)) == 1
    path = tmp_path / f"pages.{kind.lower()}"
    path.write_bytes(many_images(kind, 3))
    if kind != "GIF":  # OpenCV may not read GIF at all: then it is an unreadable image, as before
        with pytest.warns(InputNote, match=r"pages\.\w+: holds 3 images \(pages or frames\); the first is used"):
            image = read_image_raw(path)
        assert image.shape == (16, 16, 3) and image.max() == 0
