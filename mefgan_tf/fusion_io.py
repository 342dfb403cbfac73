"""The files of `mefgan fuse`: reading a scene's exposures, checking outputs, writing fused images.

Inputs may come in any order and any size (``fusion`` fuses them in the order of ``scenes``). Every
problem is a CommandError naming the file, raised before the fusion where it can be.

``original_io`` swaps the I/O for that of the authors' ``generate.py`` (see ``images``): inputs
cropped at the top-left to multiples of 8 instead of padded, no EXIF rotation, output min-max
stretched by ``bytescale`` and written by PIL (JPEG at quality 75).
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.files import check_file_target
from mefgan_tf.fusion import SIZE_MULTIPLE, check_exposures, crop_to_multiple
from mefgan_tf.images import (
    SIXTEEN_BIT_EXTENSIONS,
    InputNote,
    is_grey,
    output_extension_problem,
    pil_format,
    read_image_original_raw,
    read_image_raw,
    to_float,
    write_image,
    write_image_original,
)


def check_writable(path: Path, overwrite: bool = False) -> None:
    """CommandError unless the file ``path`` could be written (checked before minutes of fusion)."""
    if path.is_dir():
        raise CommandError(f"{path}: is a folder; give an image file name such as {path / 'fused.png'}")
    check_file_target(path, overwrite)


def output_depth(input_depth: int, bit_depth: str) -> int:
    """Bits per channel to write: the inputs' (``auto``) or the one asked for."""
    return input_depth if bit_depth == "auto" else int(bit_depth)


def extension_problem(ext: str, bit_depth: str = "auto") -> str | None:
    """Why fused images cannot be written with extension ``ext`` at ``bit_depth`` (None when they can)."""
    problem = output_extension_problem(ext)
    if problem is None and bit_depth == "16" and ext.lower() not in SIXTEEN_BIT_EXTENSIONS:
        problem = f"{ext} holds 8 bits per channel; --bit-depth 16 needs {', '.join(SIXTEEN_BIT_EXTENSIONS)}"
    return problem


def check_output_extension(path: Path, original_io: bool = False, bit_depth: str = "auto") -> None:
    if path.is_dir():
        raise CommandError(f"{path}: is a folder; -o names the fused image, e.g. {path / 'fused.png'} "
                           "(or use --pairs DIR to fuse a folder of scenes into it)")
    problem = extension_problem(path.suffix, bit_depth)
    if problem:
        raise CommandError(f"{path}: {problem}")
    if original_io:
        pil_format(path)


def same_file(a: Path, b: Path) -> bool:
    """True if ``a`` and ``b`` name one file (also through other paths or links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return resolved(a) == resolved(b)


def resolved(path: Path) -> Path:
    """``path`` made absolute with its links followed; CommandError for a link that loops."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "a symbolic link loop"
        raise CommandError(f"{path}: cannot follow this path ({reason})") from None


def check_inputs_and_output(paths: list[Path], out: Path) -> None:
    """CommandError if an exposure is given twice or the output is one of the exposures."""
    for i, path in enumerate(paths):
        if same_file(out, path):
            raise CommandError(f"{out}: is the input exposure {path}; choose another output file")
        for earlier in paths[:i]:
            if same_file(path, earlier):
                raise CommandError(f"{path}: the same file as {earlier}; give each exposure once")


def check_sides(images: list[np.ndarray], names: list) -> None:
    """CommandError naming the first image with a side under ``SIZE_MULTIPLE`` pixels (too small to fuse)."""
    for image, name in zip(images, names):
        height, width = image.shape[:2]
        if min(height, width) < SIZE_MULTIPLE:
            raise CommandError(f"{name}: image of {width}x{height} is too small: both sides must be at least "
                               f"{SIZE_MULTIPLE} pixels")


def read_exposures(paths: list[Path]) -> tuple[list[np.ndarray], int]:
    """(float images, bit depth 8/16) of a scene's files; CommandError on unreadable or mismatched files."""
    raw = [read_image_raw(path) for path in paths]
    check_sides(raw, paths)
    check_exposures(raw, [str(path) for path in paths])
    note_exposures(raw, paths)
    depth = 16 if any(image.dtype == np.uint16 for image in raw) else 8
    return [to_float(image) for image in raw], depth


def note_exposures(images: list[np.ndarray], paths: list[Path]) -> None:
    """Notes (``InputNote`` warnings) on exposures whose fusion may surprise: all identical, all grey."""
    if all(np.array_equal(images[0], image) for image in images[1:]):
        warnings.warn(f"{', '.join(map(str, paths))}: the exposures are identical; their fusion is that image, "
                      "nearly unchanged", InputNote, stacklevel=2)
    elif all(is_grey(image) for image in images):
        warnings.warn(f"{', '.join(map(str, paths))}: the exposures are grey; the fused image is made grey too",
                      InputNote, stacklevel=2)


def read_exposures_original(paths: list[Path]) -> tuple[list[np.ndarray], int]:
    """(float images, 8) of a scene's files, read and cropped as the original's ``generate.py`` does."""
    raw = [read_image_original_raw(path) for path in paths]
    check_sides(raw, paths)
    check_exposures(raw, [str(path) for path in paths])
    return [to_float(crop_to_multiple(image)) for image in raw], 8


def write_fused(out: Path, fused: np.ndarray, input_depth: int, bit_depth: str, original_io: bool) -> Path:
    """Write a fused float image: ours (``write_image``) or as the original does (``write_image_original``)."""
    if original_io:
        return write_image_original(out, fused)
    return write_image(out, fused, bit_depth=output_depth(input_depth, bit_depth))


def prepare_exposures(images: list[np.ndarray], paths: list[Path], align: bool = False, deghost: bool = False,
                      report=None) -> list[np.ndarray]:
    """The exposures aligned and/or deghosted (``align.prepare``); each note goes to ``report``
    (default: a ``note:`` line on stderr)."""
    if not (align or deghost):
        return images
    from mefgan_tf.align import prepare

    prepared, notes = prepare(images, align=align, deghost=deghost, names=[path.name for path in paths])
    for note in notes:
        (report or print_note)(note)
    return prepared


def print_note(note: str) -> None:
    print(f"note: {note}", file=sys.stderr)


def fuse_files(fuser, paths: list[Path], out: Path, bit_depth: str, original_io: bool = False,
               align: bool = False, deghost: bool = False, report=None) -> Path:
    """Read, fuse and write one scene (with ``original_io``, the way the original does), its exposures
    first aligned and/or deghosted (``prepare_exposures``)."""
    check_inputs_and_output(paths, out)
    images, depth = read_exposures_original(paths) if original_io else read_exposures(paths)
    images = prepare_exposures(images, paths, align, deghost, report)
    return write_fused(out, fuser(images), depth, bit_depth, original_io)
