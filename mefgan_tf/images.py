"""Reading and writing photos the way users have them.

Every reader returns RGB float32 in [0, 1] (H, W, 3): grey images are expanded, alpha is dropped,
EXIF orientation is applied, and 8- and 16-bit files keep their precision. Writers pick the format
from the extension and never leave a half-written file.

The ``*_original`` functions are the I/O of the authors' test scripts (``generate.py``), for
like-for-like comparisons: ``scipy.misc.imread`` (PIL, no EXIF rotation) and ``scipy.misc.imsave``
(``bytescale``, then PIL at its defaults: JPEG quality 75).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mefgan_tf.config import BT601_LUMA
from mefgan_tf.errors import CommandError, FileProblem
from mefgan_tf.files import check_regular, write_bytes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm")
# PGM holds grey images only: read, never written (outputs are colour).
OUTPUT_EXTENSIONS = tuple(ext for ext in IMAGE_EXTENSIONS if ext != ".pgm")
SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff")
LUMA_WEIGHTS = np.array(BT601_LUMA, np.float32)  # mean luminance orders exposures (``scenes``)
ORIGINAL_JPEG_QUALITY = 75  # PIL's default, which scipy.misc.imsave used


def is_image(path: str | Path) -> bool:
    """True for files whose extension (any case) is a readable image format."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image_raw(path: str | Path) -> np.ndarray:
    """RGB uint8 or uint16 array (H, W, 3), orientation applied; CommandError if unreadable."""
    path = Path(path)
    check_regular(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        raise FileProblem(f"{path}: cannot read ({err.strerror or err})") from None
    image = decode_image_raw(data, path)
    frames = frame_count(data)
    if frames > 1:
        warnings.warn(f"{path}: holds {frames} images (pages or frames); the first is used", InputNote, stacklevel=2)
    return image


def frame_count(data: np.ndarray) -> int:
    """How many images an encoded file holds: pages of a TIFF, frames of an animated GIF, WebP or PNG
    (1 for the other formats, which hold one; read from the file's structure, not decoded)."""
    start = data[:4].tobytes()
    animated_png = start == b"\x89PNG" and b"acTL" in data[:4096].tobytes()
    if start not in (b"II*\x00", b"MM\x00*", b"GIF8", b"RIFF") and not animated_png:
        return 1
    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:
            return int(getattr(image, "n_frames", 1))
    except Exception:  # noqa: BLE001 - a structure PIL cannot read: the decoder has read the first image
        return 1


def decode_image_raw(data: bytes | np.ndarray, name: str | Path = "image") -> np.ndarray:
    """RGB uint8 or uint16 array (H, W, 3) of an encoded image, orientation applied; CommandError
    naming ``name`` if it cannot be decoded."""
    data = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if image is None:
        raise CommandError(f"{name}: not a readable image")
    if image.dtype not in (np.uint8, np.uint16):
        high = float(np.nanmax(image)) if image.size else 0.0
        if high > 1.0 or float(np.nanmin(image)) < 0.0 or np.isnan(image).any():
            warnings.warn(f"{name}: floating-point values outside [0, 1] (up to {high:g}) are clipped to [0, 1]",
                          InputNote, stacklevel=2)
        image = np.nan_to_num(np.clip(image.astype(np.float32), 0.0, 1.0), nan=0.0)
        image = np.round(image * 65535.0).astype(np.uint16)
    return np.ascontiguousarray(image[..., ::-1])


class InputNote(UserWarning):
    """Something about an input that makes the result other than the user may expect (shown as a note)."""


GREY_TOLERANCE = 1.5 / 255  # channels this close count as grey (JPEG rounding)


def is_grey(image: np.ndarray) -> bool:
    """True when every pixel's three channels are equal (within ``GREY_TOLERANCE`` of float [0, 1]).
    One row in 64 is looked at first: a colour photo is told apart at once, without a pass over it."""
    scale = 65535.0 if image.dtype == np.uint16 else 255.0 if image.dtype == np.uint8 else 1.0

    def spread(pixels: np.ndarray) -> float:
        return float(np.ptp(pixels[..., :3].astype(np.float32), axis=-1).max()) / scale if pixels.size else 0.0

    return spread(image[::64]) <= GREY_TOLERANCE and spread(image) <= GREY_TOLERANCE


def to_grey(image: np.ndarray) -> np.ndarray:
    """The BT.601 luma of a float RGB image, in all three channels."""
    luma = image[..., :3] @ np.asarray(LUMA_WEIGHTS, image.dtype)
    return np.repeat(luma[..., None], 3, axis=-1)


def output_extension_problem(ext: str) -> str | None:
    """Why a colour image cannot be written with extension ``ext`` (None when it can)."""
    if ext.lower() == ".pgm":
        return f"PGM holds grey images only (use one of {', '.join(OUTPUT_EXTENSIONS)})"
    if ext.lower() not in OUTPUT_EXTENSIONS:
        return f"unknown image extension {ext!r} (use one of {', '.join(OUTPUT_EXTENSIONS)})"
    return None


def check_output_path(path: str | Path) -> None:
    """CommandError naming ``path`` unless a colour image can be written with its extension."""
    problem = output_extension_problem(Path(path).suffix)
    if problem:
        raise CommandError(f"{path}: {problem}")


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 RGB to float32 in [0, 1]."""
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / np.float32(scale)


def read_image(path: str | Path) -> np.ndarray:
    """RGB float32 in [0, 1], (H, W, 3)."""
    return to_float(read_image_raw(path))


def read_image_uint8(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); 16-bit files are rounded to 8 bits."""
    return to_uint8(read_image(path))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] to uint8 with rounding and clipping (NaN becomes 0, infinities 0 and 255)."""
    clipped = np.clip(image, 0.0, 1.0)
    np.nan_to_num(clipped, copy=False, nan=0.0)
    return np.round(clipped * 255.0).astype(np.uint8)


def to_uint16(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)


def luminance(image: np.ndarray) -> float:
    """Mean BT.601 luma of an RGB image (any dtype, scaled to [0, 1])."""
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        image = to_float(image)
    return float(np.mean(image[..., :3] @ LUMA_WEIGHTS))


def shrunk_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(rows, columns) after ``shrink``."""
    if not max_side or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """``image`` downscaled (area interpolation) so that its longer side is at most ``max_side``
    (unchanged when it already is, or when ``max_side`` is None)."""
    rows, cols = shrunk_size(*image.shape[:2], max_side)
    if (rows, cols) == image.shape[:2]:
        return image
    return cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA)


def write_image(path: str | Path, image: np.ndarray, bit_depth: int = 8) -> Path:
    """Write RGB ``image`` (float [0, 1], uint8 or uint16) atomically; format from the extension.

    ``bit_depth=16`` writes 16 bits where the format allows it (PNG, TIFF) and 8 elsewhere.
    """
    path = Path(path)
    ext = path.suffix.lower()
    check_output_path(path)
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        image = to_float(image)
    out = to_uint16(image) if bit_depth == 16 and ext in SIXTEEN_BIT_EXTENSIONS else to_uint8(image)
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(out[..., ::-1]))
    if not ok:
        raise CommandError(f"{path}: could not encode image")
    return write_bytes(path, encoded.tobytes())


def read_image_original_raw(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) as the original's ``scipy.misc.imread`` gives it: decoded by PIL, EXIF
    orientation not applied. (Other modes than RGB, which the original could not fuse, are
    converted to RGB by PIL.)"""
    path = Path(path)
    check_regular(path)
    try:
        with Image.open(path) as image:
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            return np.array(rgb, np.uint8)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:
        raise FileProblem(f"{path}: cannot read ({err.strerror or err})") from None
    except (OSError, ValueError):
        raise CommandError(f"{path}: not a readable image") from None


def bytescale(data: np.ndarray) -> np.ndarray:
    """scipy's ``bytescale`` at its defaults: uint8 is returned unchanged; anything else is stretched
    by its own minimum and maximum over all channels jointly to 0-255 (a constant image gives 0),
    then ``(x + 0.5)`` is truncated to uint8.

    Float arrays are computed in their own precision with the scale rounded to it first, as NumPy
    1.x (the original's) did for ``float32_array * (255.0 / float32_scalar)``.
    """
    data = np.asarray(data)
    if data.dtype == np.uint8:
        return data
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float64)
    dtype = data.dtype.type
    cmin, cmax = data.min(), data.max()
    cscale = cmax - cmin
    scale = dtype(255.0 / float(cscale if cscale != 0 else 1))
    scaled = (data - cmin) * scale
    return (scaled.clip(0, 255) + dtype(0.5)).astype(np.uint8)


def pil_format(path: str | Path) -> str:
    """PIL's format name for the extension of ``path`` (``JPEG`` for .jpg); CommandError if unknown."""
    ext = Path(path).suffix.lower()
    formats = Image.registered_extensions()
    if ext not in IMAGE_EXTENSIONS or ext not in formats:
        raise CommandError(f"{path}: unknown image extension {Path(path).suffix!r} (use one of {', '.join(IMAGE_EXTENSIONS)})")
    return formats[ext]


def encode_image_original(image: np.ndarray, ext: str = ".jpg") -> bytes:
    """``image`` (float or uint8 RGB) encoded as ``scipy.misc.imsave`` would write it to a file with
    extension ``ext``: ``bytescale``, then PIL at its defaults (JPEG: quality 75, 4:2:0)."""
    fmt = pil_format(Path("image").with_suffix(ext))
    buffer = io.BytesIO()
    options = {"quality": ORIGINAL_JPEG_QUALITY} if fmt == "JPEG" else {}
    Image.fromarray(np.ascontiguousarray(bytescale(image)), "RGB").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_image_original(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` atomically as the original's ``scipy.misc.imsave`` did (``encode_image_original``)."""
    path = Path(path)
    return write_bytes(path, encode_image_original(image, path.suffix))
