"""Synthetic hand-held brackets from aligned ones: known camera motion per frame, and moving objects.

A camera in the hand sees a little more or less of the scene in each frame. ``handheld`` renders
each frame of an aligned bracket (RGB float32 [0, 1], one size) through its own homography, a
shift, a turn about the centre, a small zoom and a perspective tilt, and crops the central
``1 - 2 * MARGIN`` of every frame, so each moved frame has real data everywhere, as a camera's
frame would. The reference frame (``align.best_exposed``) stays still. The answer is the crop of
the aligned bracket, and each frame's true matrix (reference pixels -> frame pixels) is returned.

``paste_object`` pastes a textured patch into a frame at another place than in the reference:
a thing that moved between the shots.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MARGIN = 0.1  # share of each side cropped away, so that motions of up to 5% + 3 degrees stay inside


@dataclass
class Handheld:
    """A moved bracket: ``frames`` (cropped, moved), ``aligned`` (cropped, the answer) and the true
    ``matrices`` (reference pixels -> frame pixels, in the crop's coordinates; identity for the
    reference ``reference``)."""

    frames: list[np.ndarray]
    aligned: list[np.ndarray]
    matrices: list[np.ndarray]
    reference: int


def motion_matrix(height: int, width: int, shift: tuple[float, float], turn: float, zoom: float = 1.0,
                  tilt: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Reference pixels -> frame pixels: a turn (degrees) and zoom about the centre, a perspective
    ``tilt`` (corner displacement as a share of the side), then a ``shift`` in pixels."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    centre, back = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]]), np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    angle = math.radians(turn)
    rotate = np.array([[zoom * math.cos(angle), -zoom * math.sin(angle), 0],
                       [zoom * math.sin(angle), zoom * math.cos(angle), 0], [0, 0, 1]])
    perspective = np.array([[1, 0, 0], [0, 1, 0], [2 * tilt[0] / width, 2 * tilt[1] / height, 1]])
    move = np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]])
    return move @ back @ rotate @ perspective @ centre


def random_motion(height: int, width: int, rng: np.random.Generator, largest: float = 0.05,
                  turn: float = 3.0) -> np.ndarray:
    """A hand-held motion: a shift of up to ``largest`` of the long side, a turn of up to ``turn``
    degrees, a zoom within 1%, a perspective tilt within 0.5% of the side."""
    side = max(height, width)
    shift = rng.uniform(-1, 1, 2) * largest * side / math.sqrt(2)
    return motion_matrix(height, width, tuple(shift), rng.uniform(-turn, turn), rng.uniform(0.99, 1.01),
                         tuple(rng.uniform(-0.005, 0.005, 2)))


def crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, rows, cols) of the central crop that every frame keeps."""
    top, left = round(MARGIN * height), round(MARGIN * width)
    return top, left, height - 2 * top, width - 2 * left


def render(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The crop of ``image`` as a camera moved by ``matrix`` (crop pixels -> frame pixels) sees it."""
    height, width = image.shape[:2]
    top, left, rows, cols = crop_box(height, width)
    offset = np.array([[1, 0, left], [0, 1, top], [0, 0, 1]], np.float64)
    full = offset @ np.linalg.inv(matrix)  # frame pixels -> reference (crop) pixels -> source pixels
    return cv2.warpPerspective(np.asarray(image, np.float32), full, (cols, rows),
                               flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def handheld(bracket: Sequence[np.ndarray], reference: int, motions: Sequence[np.ndarray | None]) -> Handheld:
    """``bracket`` rendered through ``motions`` (one per frame, in crop pixels; None or the
    reference's entry: still)."""
    height, width = bracket[0].shape[:2]
    top, left, rows, cols = crop_box(height, width)
    matrices = [np.eye(3) if m is None or i == reference else np.asarray(m, np.float64) for i, m in enumerate(motions)]
    aligned = [np.asarray(f, np.float32)[top : top + rows, left : left + cols].copy() for f in bracket]
    frames = [aligned[i].copy() if i == reference else np.clip(render(f, matrices[i]), 0, 1)
              for i, f in enumerate(bracket)]
    return Handheld(frames, aligned, matrices, reference)


def random_handheld(bracket: Sequence[np.ndarray], reference: int, seed: int = 0, largest: float = 0.05,
                    turn: float = 3.0) -> Handheld:
    """``handheld`` with a random motion of every frame but the reference."""
    rng = np.random.default_rng(seed)
    height, width = bracket[0].shape[:2]
    _, _, rows, cols = crop_box(height, width)
    return handheld(bracket, reference, [random_motion(rows, cols, rng, largest, turn) for _ in bracket])


def paste_object(frame: np.ndarray, patch: np.ndarray, top: int, left: int) -> np.ndarray:
    """``frame`` with ``patch`` (RGB, smaller) pasted at (top, left)."""
    result = np.array(frame, np.float32)
    rows, cols = patch.shape[:2]
    result[top : top + rows, left : left + cols] = patch
    return result


def corner_error(found: np.ndarray, true: np.ndarray, height: int, width: int) -> float:
    """Largest distance, over the image's corners, between where two matrices send them (pixels)."""
    points = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], np.float64)
    a, b = points @ np.asarray(found).T, points @ np.asarray(true).T
    return float(np.linalg.norm(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:], axis=1).max())
