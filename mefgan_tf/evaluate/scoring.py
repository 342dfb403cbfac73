"""Every method fused and scored on every scene (``score_scenes``): one ``Row`` per scene and method.

The report's columns are the table ``MEASURES``: each entry names its columns and scores a fused
image against the sources (and ground truth); a new column is one more entry.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from mefgan_tf import metrics
from mefgan_tf.errors import CommandError
from mefgan_tf.evaluate.fused import FusedSaver
from mefgan_tf.evaluate.methods import Method
from mefgan_tf.fusion import crop_to_multiple
from mefgan_tf.images import decode_image_raw, encode_image_original, read_image_uint8, shrink, shrunk_size, to_float, to_uint8
from mefgan_tf.pairings import LoadedScene, load_scene, size_text
from mefgan_tf.scenes import EXTREME, Scene, lookup
from mefgan_tf.tone import TONE_COLUMNS, tone_columns

MAX_CROP = 8  # a fused image may be up to MAX_CROP - 1 pixels smaller than its sources
Prepared = tuple[metrics.Sources, np.ndarray | None]  # the metrics' sources and the ground truth, if any


@dataclass(frozen=True)
class Measure:
    """Columns of the report and how a fused uint8 image is scored on them (``score(fused, sources, gt)``)."""

    columns: tuple[str, ...]
    score: Callable[[np.ndarray, metrics.Sources, np.ndarray | None], dict[str, float]]


MEASURES: list[Measure] = [
    Measure(tuple(metrics.METRIC_NAMES), lambda fused, sources, gt: sources.scores(fused, gt)),
    Measure(tuple(TONE_COLUMNS), lambda fused, sources, gt: tone_columns(fused)),
]


# `mefgan evaluate --handheld`: the largest error at the corners of the motion alignment recovered (px;
# without --align, the motion itself), and each method's fusion of the moved frames against its fusion
# of the frames before they were moved (PSNR, dB).
HANDHELD_COLUMNS = ("motion_error_px", "PSNR_vs_still")


def columns() -> list[str]:
    """Every column of ``MEASURES``, in order, then the ``HANDHELD_COLUMNS``."""
    return [name for measure in MEASURES for name in measure.columns] + list(HANDHELD_COLUMNS)


def scores(fused: np.ndarray, sources: metrics.Sources, gt: np.ndarray | None) -> dict[str, float]:
    """``fused`` scored on every column of ``MEASURES``."""
    found: dict[str, float] = {}
    for measure in MEASURES:
        found.update(measure.score(fused, sources, gt))
    return found


@dataclass
class Row:
    """One scene x method: the metrics, or why it was left out."""

    scene: str
    method: str
    status: str = "ok"
    reason: str = ""
    size: str = ""
    cropped: str = ""
    scores: dict[str, float] = field(default_factory=dict)


def scene_sources(scene: LoadedScene, rows: int, cols: int, crop: Callable[[np.ndarray], np.ndarray]) -> Prepared:
    """The metrics' sources and ground truth of ``scene``, each image passed through ``crop`` (size rows x cols)."""
    frames = [crop(f) for f in scene.frames] if scene.frames else None
    return metrics.Sources(crop(scene.over), crop(scene.under), frames), None if scene.gt is None else crop(scene.gt)


class SceneScorer:
    """Scores methods on one loaded scene, sharing the sources' work between methods."""

    def __init__(self, scene: LoadedScene, max_side: int | None, keep: FusedSaver | None = None):
        self.scene, self.max_side, self.keep = scene, max_side, keep
        self._sources: dict[tuple | str, Prepared] = {}

    def _prepared(self, rows: int, cols: int) -> Prepared:
        """Sources (and ground truth) cropped to rows x cols, then shrunk: kept per size."""
        if (rows, cols) not in self._sources:
            self._sources[rows, cols] = scene_sources(self.scene, rows, cols,
                                                      lambda im: shrink(im[:rows, :cols], self.max_side))
        return self._sources[rows, cols]

    def _prepared_original(self) -> Prepared:
        """Sources (and ground truth) shrunk, then cropped at the top-left to multiples of 8, as the
        original's ``generate.py`` crops its inputs."""
        if "original" not in self._sources:
            h, w = self.scene.under.shape[:2]
            self._sources["original"] = scene_sources(self.scene, h, w,
                                                      lambda im: crop_to_multiple(shrink(im, self.max_side)))
        return self._sources["original"]

    def inputs(self, sources: metrics.Sources) -> list[np.ndarray]:
        """The exposures a method fuses, prepared as ``sources`` were (same crop and size)."""
        rows, cols = sources.shape
        return [shrink(im, self.max_side)[:rows, :cols] for im in self.scene.inputs]

    def score(self, name: str, method: Method) -> Row:
        """The row of ``method`` on this scene (named ``name``); skipped with its reason if it cannot be scored."""
        h, w = self.scene.under.shape[:2]
        row = Row(name, method.name)
        if self.scene.still is not None and (method.kind == "folder" or method.original_io):
            return skip(row, "--handheld moves the exposures: only methods that fuse them here can be scored")
        if method.kind == "folder":
            path = lookup(method.files, name)
            if path is None:
                return skip(row, f"no fused image {name}.* in {method.target}")
            fused = read_image_uint8(path)
            fh, fw = fused.shape[:2]
            if not (0 <= h - fh < MAX_CROP and 0 <= w - fw < MAX_CROP):
                return skip(row, f"size mismatch: fused {size_text(fused.shape)} vs sources {size_text((h, w))}")
            row.cropped = f"{h - fh}x{w - fw}"
            sources, gt = self._prepared(fh, fw)
            fused = shrink(fused, self.max_side)
        elif method.original_io:
            sources, gt = self._prepared_original()
            fused = fuse_original(method, sources, self.inputs(sources))
            rows, cols = shrunk_size(h, w, self.max_side)
            row.cropped = f"{rows - fused.shape[0]}x{cols - fused.shape[1]}"
        else:
            sources, gt = self._prepared(h, w)
            fused = to_uint8(fuse(method, sources, self.inputs(sources)))
            row.cropped = "0x0"
        row.size = size_text(fused.shape)
        if self.keep is not None:
            self.keep.add(name, method.name, fused, self.inputs(sources))
        row.scores = scores(fused, sources, gt)
        if self.scene.still is not None:
            still = to_uint8(fuse(method, sources, [shrink(im, self.max_side) for im in self.scene.still]))
            row.scores.update({"motion_error_px": self.scene.motion_error, "PSNR_vs_still": metrics.psnr_rgb(fused, still)})
        if math.isnan(row.scores["MEF_SSIM"]) and metrics.multi_scale_fits(fused.shape):
            row.reason = "MEF_SSIM undefined: a coarser scale's MEF-SSIM is negative (structure opposite to the sources')"
        return row


def fuse(method: Method, sources: metrics.Sources, inputs: list[np.ndarray]) -> np.ndarray:
    """The method's float fusion of ``inputs``; CommandError if it is not the sources' size."""
    fused = method.fuse([to_float(im) for im in inputs])
    if fused.shape[:2] != sources.shape:
        raise CommandError(f"method {method.name} returned {size_text(fused.shape)} for sources {size_text(sources.shape)}")
    return fused


def fuse_original(method: Method, sources: metrics.Sources, inputs: list[np.ndarray]) -> np.ndarray:
    """The method's fused image as the original's ``generate.py`` would write it and a reader
    would read it back: bytescaled, a quality-75 JPEG."""
    fused = fuse(method, sources, inputs)
    return decode_image_raw(encode_image_original(fused, ".jpg"), f"method {method.name}")


def skip(row: Row, reason: str) -> Row:
    """``row`` marked as left out, for ``reason``."""
    row.status, row.reason = "skipped", reason
    return row


def score_scenes(scenes: list[Scene], methods: list[Method], max_side: int | None, progress: bool = True,
                 pairing: str = EXTREME, keep: FusedSaver | None = None, align: bool = False,
                 deghost: bool = False, handheld: int | None = None) -> list[Row]:
    """One :class:`Row` per scene and method, in scene order, for the exposures ``pairing`` takes of
    each scene. ``keep`` writes every fused image and a contact sheet per scene (``--save-fused``);
    ``align``, ``deghost``, ``handheld``: each scene's bracket moved and/or prepared first
    (``pairings.load_scene``)."""
    rows: list[Row] = []
    desc = "evaluate" if pairing == EXTREME else f"evaluate ({pairing})"
    for scene in tqdm(scenes, desc=desc, unit="scene", disable=None if progress else True, file=sys.stderr):
        found = score_scene(scene, methods, max_side, pairing, keep, align, deghost, handheld)
        if keep is not None:
            keep.finish(scene.name)
        for row in found:
            if row.status != "ok":
                tqdm.write(f"scene {row.scene}, {row.method}: skipped: {row.reason}", file=sys.stderr)
        rows.extend(found)
    return rows


def score_scene(scene: Scene, methods: list[Method], max_side: int | None, pairing: str = EXTREME,
                keep: FusedSaver | None = None, align: bool = False, deghost: bool = False,
                handheld: int | None = None) -> list[Row]:
    """The rows of one scene: every method, or every method skipped when the scene cannot be read."""
    if scene.problem:
        return [skip(Row(scene.name, m.name), scene.problem) for m in methods]
    try:
        loaded = load_scene(scene, pairing=pairing, align=align, deghost=deghost, handheld=handheld)
    except CommandError as err:
        return [skip(Row(scene.name, m.name), str(err)) for m in methods]
    scorers = {False: SceneScorer(loaded, max_side, keep)}
    rows = []
    for method in methods:
        try:
            if method.kind == "folder" and pairing != EXTREME:
                raise CommandError(f"a folder of fused images holds one result per scene, for pairing '{EXTREME}'")
            if method.original_io and True not in scorers:  # the sources as the original reads them
                original = load_scene(scene, original_io=True, pairing=pairing, align=align, deghost=deghost,
                                      handheld=handheld)
                scorers[True] = SceneScorer(original, max_side, keep)
            scorer = scorers[method.original_io]
            row = scorer.score(scene.name, method)
            note = scorer.scene.note
        except CommandError as err:
            row, note = skip(Row(scene.name, method.name), str(err)), loaded.note
        if note:
            row.reason = "; ".join(filter(None, [row.reason, note]))
        rows.append(row)
    return rows
