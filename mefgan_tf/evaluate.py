"""Scoring fusion methods on a folder of scenes with the paper's and MEFB's metrics (`mefgan evaluate`).

Scenes are read by ``scenes.find_scenes``, as every command reads them: one subfolder of
exposures per scene, or the flat ``uN.<ext>`` / ``oN.<ext>`` pairs of the original release's
``test_imgs`` (scene ``N``). The brightest exposure by mean luminance is the over-, the darkest
the under-exposed source, as for `mefgan fuse`. Ground truth is optional, ``<gt dir>/<scene>.<ext>``
(``--gt``; by default SICE's ``Label/`` folder beside the scenes, if there is one).

Methods are built-in baselines (``mertens``, ``average``), folders of already-fused images
(``NAME=folder:PATH``, ``PATH/<scene>.<ext>``) or trained models (``NAME=model:PATH``). Every
method fuses (or is scored on) the same under/over pair.

A model can also be run with the authors' test-time I/O (``NAME=model-original-io:PATH``, or
``--original-io`` for every ``model:`` method), so that it is scored like their published results:
sources read by PIL without EXIF rotation and cropped at the top-left to multiples of 8, the fused
image stretched by ``bytescale`` and passed through a quality-75 JPEG, as ``generate.py`` writes
it; the sources and ground truth it is scored against are cropped the same way.

A fused image up to 7 rows/columns smaller than its sources is scored against the sources'
top-left crop of its size: the original MEF-GAN code crops its inputs to multiples of 8, so its
results are that much smaller. Any other size difference, a missing image or an unreadable file
leaves that scene out for that method, and it is listed in the outputs, never silently dropped.
"""
from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mefgan_tf import metrics
from mefgan_tf.baselines import BASELINES
from mefgan_tf.errors import CommandError
from mefgan_tf.files import atomic_path, check_folder_target, check_new_files
from mefgan_tf.fusion import crop_to_multiple, resolve_detail
from mefgan_tf.images import (
    decode_image_raw,
    encode_image_original,
    read_image_original_raw,
    read_image_uint8,
    shrink,
    shrunk_size,
    to_float,
    to_uint8,
    write_image,
)
from mefgan_tf.resolution import WORK_SIZE
from mefgan_tf.scenes import ADJACENT, ALL, DEFAULT_MULTI, EXTREME, SAME, Scene, exposure_order, images_by_stem, lookup, middle

MAX_CROP = 8  # a fused image may be up to MAX_CROP - 1 pixels smaller than its sources
FuseFunction = Callable[[list[np.ndarray]], np.ndarray]
SHEET_HEIGHT = 240  # pixels: the height of each image in a contact sheet


# ---------------------------------------------------------------------------------------- scenes
PAIRING_HELP = {
    EXTREME: "the darkest and the brightest exposure (SICE's pairs); ground truth: the scene's label, where it has one",
    ADJACENT: "the middle exposure and the next brighter one (a close pair, as phones shoot)",
    SAME: "the middle exposure twice: a fusion of x with x should be x (its ground truth)",
    ALL: "every exposure of scenes with three or more; MEF-SSIM against all of them; ground truth: the label, where there is one",
}


@dataclass
class LoadedScene:
    """Full-resolution uint8 RGB sources of a scene as one pairing sees them: the exposures a method
    fuses (``inputs``), the pair the pair metrics use (``under``, ``over``), the exposures MEF-SSIM is
    scored against (``frames``: all of them with ``ALL``, else the pair) and the ground truth if any."""

    under: np.ndarray
    over: np.ndarray
    gt: np.ndarray | None
    note: str = ""
    inputs: list[np.ndarray] = field(default_factory=list)
    frames: list[np.ndarray] | None = None

    def sources(self, rows: int, cols: int, crop: Callable[[np.ndarray], np.ndarray]) -> tuple[metrics.Sources, np.ndarray | None]:
        """The metrics' sources and ground truth, each image passed through ``crop`` (size rows x cols)."""
        frames = [crop(f) for f in self.frames] if self.frames else None
        return metrics.Sources(crop(self.over), crop(self.under), frames), None if self.gt is None else crop(self.gt)


def pairing_heading(pairing: str) -> str:
    """The Markdown heading of a pairing's section in a report of several."""
    return f"## Pairing '{pairing}': {PAIRING_HELP[pairing]}\n\n"


def pairing_view(images: list[np.ndarray], gt: np.ndarray | None, pairing: str) -> LoadedScene:
    """What ``pairing`` takes of a scene's exposures (ordered darkest first). CommandError when the
    scene cannot give it (``ALL`` needs three exposures: with two it is ``EXTREME``)."""
    if pairing == EXTREME:
        return LoadedScene(images[0], images[-1], gt, inputs=[images[0], images[-1]])
    m = middle(len(images))
    if pairing == ADJACENT:
        return LoadedScene(images[m], images[m + 1], None, inputs=[images[m], images[m + 1]])
    if pairing == SAME:
        return LoadedScene(images[m], images[m], images[m], inputs=[images[m], images[m]])
    if len(images) < 3:
        raise CommandError(f"{len(images)} exposures: pairing '{ALL}' scores scenes of three or more")
    return LoadedScene(images[0], images[-1], gt, inputs=list(images), frames=list(images))


def load_scene(scene: Scene, original_io: bool = False, pairing: str = EXTREME, align: bool = False,
               deghost: bool = False) -> LoadedScene:
    """Read a scene as ``pairing`` sees it (``pairing_view``); with ``EXTREME`` the darkest exposure
    is ``under``, the brightest ``over``. CommandError if unusable.

    ``original_io``: read every file as the original's ``generate.py`` does (``read_image_original_raw``).
    ``align``, ``deghost``: the whole bracket aligned and/or deghosted first (``align.prepare``), its
    notes kept as the scene's note; every method fuses, and is scored against, those frames.
    """
    read = read_image_original_raw if original_io else read_image_uint8
    images = [read(p) for p in scene.exposures]
    sizes = {im.shape[:2] for im in images}
    if len(sizes) != 1:
        raise CommandError(f"exposures differ in size: {', '.join(_size(s) for s in sorted(sizes))}")
    order = exposure_order(images)
    images = [images[i] for i in order]
    images, notes = prepare_scene(images, align, deghost, [scene.exposures[i].name for i in order])
    gt, note = None, "; ".join(notes)
    if scene.gt is not None and pairing in (EXTREME, ALL):
        gt = read(scene.gt)
        if gt.shape[:2] != images[0].shape[:2]:
            note = "; ".join(filter(None, [note, f"ground truth {_size(gt.shape)} differs from the exposures' "
                                                 f"{_size(images[0].shape)}: not used"]))
            gt = None
    view = pairing_view(images, gt, pairing)
    view.note = note
    return view


def prepare_scene(images: list[np.ndarray], align: bool, deghost: bool,
                  names: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """uint8 exposures (named ``names``) aligned and/or deghosted (``align.prepare``), and its notes."""
    if not (align or deghost):
        return images, []
    from mefgan_tf.align import prepare

    given = [to_float(im) for im in images]
    prepared, notes = prepare(given, align, deghost, names)
    return [im if p is g else to_uint8(p) for im, g, p in zip(images, given, prepared)], notes


def _size(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


# ---------------------------------------------------------------------------------------- methods
@dataclass
class Method:
    """A method to score: a built-in baseline, a folder of fused images, or a model."""

    name: str
    kind: str  # "builtin", "folder" or "model"
    target: str
    fuse: FuseFunction | None = None
    files: dict[str, Path] = field(default_factory=dict)
    original_io: bool = False  # a model run with the original's test-time I/O


MODEL_ORIGINAL_IO = "model-original-io"


def parse_method(spec: str, multi: str | None = None, detail: int | None = None, original_io: bool = False,
                 work_size: int | None = WORK_SIZE) -> Method:
    """``mertens``, ``average``, ``[NAME=]mertens``, ``NAME=folder:PATH``, ``NAME=model:PATH`` or
    ``NAME=model-original-io:PATH``; ``multi`` and ``detail`` as ``fusion.load_fuser`` (None: the
    defaults; ``detail`` 0 for the authors' I/O, ``fusion.resolve_detail``), ``work_size`` too;
    ``original_io``: a model is run with the authors' I/O whatever its kind."""
    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = "", spec
    kind, colon, target = rest.partition(":")
    if not colon:
        if rest not in BASELINES:
            known = ", ".join(BASELINES)
            raise CommandError(f"--method {spec!r}: unknown method (built-ins: {known}; or NAME=folder:PATH, NAME=model:PATH)")
        return Method(name or rest, "builtin", rest, fuse=BASELINES[rest])
    if kind not in ("folder", "model", MODEL_ORIGINAL_IO) or not target:
        raise CommandError(f"--method {spec!r}: expected NAME=folder:PATH, NAME=model:PATH or NAME={MODEL_ORIGINAL_IO}:PATH")
    path = Path(target)
    if kind == "folder":
        if not path.exists():
            raise CommandError(f"--method {spec!r}: {path} not found")
        if not path.is_dir():
            raise CommandError(f"--method {spec!r}: {path} is not a folder")
        return Method(name or path.name, kind, target, files=images_by_stem(path))
    original_io = original_io or kind == MODEL_ORIGINAL_IO
    fuse = _load_model(spec, path, multi, resolve_detail(detail, original_io), work_size)
    return Method(name or path.stem, "model", target, fuse=fuse, original_io=original_io)


def _load_model(spec: str, path: Path, multi: str | None, detail: int, work_size: int | None) -> FuseFunction:
    """The fusion of any model ``mefgan fuse --model`` takes (a checkpoint prefix too)."""
    try:
        from mefgan_tf.fusion import load_fuser
    except ImportError as err:
        raise CommandError(f"--method {spec!r}: model fusion is not available ({err})") from None
    try:
        return load_fuser(path, multi=multi or DEFAULT_MULTI, detail=detail, work_size=work_size)
    except CommandError as err:
        raise CommandError(f"--method {spec!r}: {err}") from None


def parse_methods(specs: Sequence[str], original_io: bool = False, multi: str | None = None,
                  detail: int | None = None, work_size: int | None = WORK_SIZE) -> list[Method]:
    """The methods of ``specs``; ``original_io`` gives every model the original's test-time I/O,
    ``multi`` their way to fuse three or more exposures (``fusion.MULTI``), ``detail`` the levels of
    detail they take from the exposures (``fusion.resolve_detail``), ``work_size`` the size their network
    fuses at (``resolution``)."""
    methods = [parse_method(s, multi, detail, original_io, work_size) for s in specs]
    if original_io and not any(m.kind == "model" for m in methods):
        raise CommandError("--original-io applies to model methods (NAME=model:PATH); none given")
    names = [m.name for m in methods]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CommandError(f"--method: name used twice: {', '.join(duplicates)} (give NAME=...)")
    return methods


# ---------------------------------------------------------------------------------------- fused images
class FusedSaver:
    """Writes each method's fused image as ``<folder>/<method>/<scene>.png`` and, per scene, a contact
    sheet ``<folder>/<scene>.jpg``: the inputs, then each method's result, side by side."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.row: dict[str, list[np.ndarray]] = {}
        self.labels: dict[str, list[str]] = {}

    def add(self, scene: str, method: str, fused: np.ndarray, inputs: list[np.ndarray]) -> None:
        write_image(self.folder / method / f"{scene}.png", fused)
        if scene not in self.row:
            self.row[scene] = [sheet_tile(im) for im in inputs]
            self.labels[scene] = [f"input {i + 1}" for i in range(len(inputs))]
        self.row[scene].append(sheet_tile(fused))
        self.labels[scene].append(method)

    def finish(self, scene: str) -> None:
        tiles, labels = self.row.pop(scene, []), self.labels.pop(scene, [])
        if tiles:
            write_image(self.folder / f"{scene}.jpg", contact_sheet(tiles, labels))


def sheet_tile(image: np.ndarray) -> np.ndarray:
    """``image`` scaled to ``SHEET_HEIGHT`` rows."""
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * SHEET_HEIGHT / h)), SHEET_HEIGHT), interpolation=cv2.INTER_AREA)


def contact_sheet(tiles: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Tiles side by side, 4 px apart, each with its label in a strip above it."""
    import cv2

    strip, gap = 22, 4
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    sheet = np.full((SHEET_HEIGHT + strip, width, 3), 255, np.uint8)
    x = 0
    for tile, label in zip(tiles, labels):
        sheet[strip:, x : x + tile.shape[1]] = tile
        cv2.putText(sheet, label, (x + 4, strip - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        x += tile.shape[1] + gap
    return sheet


# ---------------------------------------------------------------------------------------- scoring
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


class SceneScorer:
    """Scores methods on one loaded scene, sharing the sources' work between methods."""

    def __init__(self, scene: LoadedScene, max_side: int | None, keep: FusedSaver | None = None):
        self.scene, self.max_side, self.keep = scene, max_side, keep
        self._sources: dict[tuple | str, tuple[metrics.Sources, np.ndarray | None]] = {}

    def _prepared(self, rows: int, cols: int) -> tuple[metrics.Sources, np.ndarray | None]:
        """Sources (and ground truth) cropped to rows x cols, then shrunk: kept per size."""
        if (rows, cols) not in self._sources:
            self._sources[rows, cols] = self.scene.sources(rows, cols, lambda im: shrink(im[:rows, :cols], self.max_side))
        return self._sources[rows, cols]

    def _prepared_original(self) -> tuple[metrics.Sources, np.ndarray | None]:
        """Sources (and ground truth) shrunk, then cropped at the top-left to multiples of 8, as the
        original's ``generate.py`` crops its inputs."""
        if "original" not in self._sources:
            h, w = self.scene.under.shape[:2]
            self._sources["original"] = self.scene.sources(h, w, lambda im: crop_to_multiple(shrink(im, self.max_side)))
        return self._sources["original"]

    def inputs(self, sources: metrics.Sources) -> list[np.ndarray]:
        """The exposures a method fuses, prepared as ``sources`` were (same crop and size)."""
        rows, cols = sources.shape
        return [shrink(im, self.max_side)[:rows, :cols] for im in self.scene.inputs]

    def score(self, name: str, method: Method) -> Row:
        h, w = self.scene.under.shape[:2]
        row = Row(name, method.name)
        if method.kind == "folder":
            path = lookup(method.files, name)
            if path is None:
                return _skip(row, f"no fused image {name}.* in {method.target}")
            fused = read_image_uint8(path)
            fh, fw = fused.shape[:2]
            if not (0 <= h - fh < MAX_CROP and 0 <= w - fw < MAX_CROP):
                return _skip(row, f"size mismatch: fused {_size(fused.shape)} vs sources {_size((h, w))}")
            row.cropped = f"{h - fh}x{w - fw}"
            sources, gt = self._prepared(fh, fw)
            fused = shrink(fused, self.max_side)
        elif method.original_io:
            sources, gt = self._prepared_original()
            fused = self._fuse_original(method, sources, self.inputs(sources))
            rows, cols = shrunk_size(h, w, self.max_side)
            row.cropped = f"{rows - fused.shape[0]}x{cols - fused.shape[1]}"
        else:
            sources, gt = self._prepared(h, w)
            fused = self._fuse(method, sources, self.inputs(sources))
            row.cropped = "0x0"
        row.size = _size(fused.shape)
        if self.keep is not None:
            self.keep.add(name, method.name, fused, self.inputs(sources))
        row.scores = sources.scores(fused, gt)
        if math.isnan(row.scores["MEF_SSIM"]) and metrics.multi_scale_fits(fused.shape):
            row.reason = "MEF_SSIM undefined: a coarser scale's MEF-SSIM is negative (structure opposite to the sources')"
        return row

    @staticmethod
    def _fuse(method: Method, sources: metrics.Sources, inputs: list[np.ndarray]) -> np.ndarray:
        fused = method.fuse([to_float(im) for im in inputs])
        if fused.shape[:2] != sources.shape:
            raise CommandError(f"method {method.name} returned {_size(fused.shape)} for sources {_size(sources.shape)}")
        return to_uint8(fused)

    @staticmethod
    def _fuse_original(method: Method, sources: metrics.Sources, inputs: list[np.ndarray]) -> np.ndarray:
        """The method's fused image as the original's ``generate.py`` would write it and a reader
        would read it back: bytescaled, a quality-75 JPEG."""
        fused = method.fuse([to_float(im) for im in inputs])
        if fused.shape[:2] != sources.shape:
            raise CommandError(f"method {method.name} returned {_size(fused.shape)} for sources {_size(sources.shape)}")
        return decode_image_raw(encode_image_original(fused, ".jpg"), f"method {method.name}")


def _skip(row: Row, reason: str) -> Row:
    row.status, row.reason = "skipped", reason
    return row


def evaluate(scenes: list[Scene], methods: list[Method], max_side: int | None, progress: bool = True,
             pairing: str = EXTREME, keep: FusedSaver | None = None, align: bool = False,
             deghost: bool = False) -> list[Row]:
    """One :class:`Row` per scene and method, in scene order, for the exposures ``pairing`` takes of
    each scene. ``keep`` writes every fused image and a contact sheet per scene (``--save-fused``);
    ``align``, ``deghost``: each scene's bracket prepared first (``load_scene``)."""
    from tqdm import tqdm

    rows: list[Row] = []
    desc = "evaluate" if pairing == EXTREME else f"evaluate ({pairing})"
    for scene in tqdm(scenes, desc=desc, unit="scene", disable=None if progress else True, file=sys.stderr):
        found = _score_scene(scene, methods, max_side, pairing, keep, align, deghost)
        if keep is not None:
            keep.finish(scene.name)
        for row in found:
            if row.status != "ok":
                tqdm.write(f"scene {row.scene}, {row.method}: skipped: {row.reason}", file=sys.stderr)
        rows.extend(found)
    return rows


def _score_scene(scene: Scene, methods: list[Method], max_side: int | None, pairing: str = EXTREME,
                 keep: FusedSaver | None = None, align: bool = False, deghost: bool = False) -> list[Row]:
    if scene.problem:
        return [_skip(Row(scene.name, m.name), scene.problem) for m in methods]
    try:
        loaded = load_scene(scene, pairing=pairing, align=align, deghost=deghost)
    except CommandError as err:
        return [_skip(Row(scene.name, m.name), str(err)) for m in methods]
    scorers = {False: SceneScorer(loaded, max_side, keep)}
    rows = []
    for method in methods:
        try:
            if method.kind == "folder" and pairing != EXTREME:
                raise CommandError(f"a folder of fused images holds one result per scene, for pairing '{EXTREME}'")
            if method.original_io and True not in scorers:  # the sources as the original reads them
                original = load_scene(scene, original_io=True, pairing=pairing, align=align, deghost=deghost)
                scorers[True] = SceneScorer(original, max_side, keep)
            scorer = scorers[method.original_io]
            row = scorer.score(scene.name, method)
            note = scorer.scene.note
        except CommandError as err:
            row, note = _skip(Row(scene.name, method.name), str(err)), loaded.note
        if note:
            row.reason = "; ".join(filter(None, [row.reason, note]))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------- summary
def summarise(rows: list[Row], methods: list[Method]) -> dict:
    """Mean, standard deviation (N-1, as MATLAB's ``std``; 0 for one value) and count of the
    finite values of each metric per method, plus the skipped scene/method pairs."""
    names = [n for n in metrics.METRIC_NAMES if any(n in r.scores for r in rows)]
    table: dict[str, dict[str, dict]] = {}
    for method in methods:
        ok = [r for r in rows if r.method == method.name and r.status == "ok"]
        table[method.name] = {}
        for metric in names:
            values = np.array([r.scores[metric] for r in ok if metric in r.scores], np.float64)
            values = values[np.isfinite(values)]
            n = int(values.size)
            mean = float(values.mean()) if n else math.nan
            std = float(values.std(ddof=1)) if n > 1 else (0.0 if n else math.nan)
            table[method.name][metric] = {"mean": mean, "std": std, "n": n}
    skipped = [{"scene": r.scene, "method": r.method, "reason": r.reason} for r in rows if r.status != "ok"]
    notes = sorted({f"scene {r.scene}: {r.reason}" for r in rows if r.status == "ok" and r.reason})
    original_io = [m.name for m in methods if m.original_io]
    return {"metrics": names, "methods": table, "skipped": skipped, "notes": notes, "original_io": original_io}


def _fmt(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.6g}"


def write_per_image(path: Path, rows: list[Row], names: list[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["scene", "method", "status", "reason", "size", "cropped_rows_x_cols", *names])  # size: WxH
        for r in rows:
            scores = [_fmt(r.scores.get(n, math.nan)) for n in names]
            out.writerow([r.scene, r.method, r.status, r.reason, r.size, r.cropped, *scores])


def write_summary_csv(path: Path, summary: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["method", "metric", "mean", "std", "n"])
        for method, table in summary["methods"].items():
            for metric, s in table.items():
                out.writerow([method, metric, _fmt(s["mean"]), _fmt(s["std"]), s["n"]])


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_summary_json(path: Path, summary: dict, options: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_json_safe({**summary, "options": options}), indent=2) + "\n")


METRIC_NOTES = (
    "MEF_SSIM: multi-scale MEF-SSIM (Ma et al. 2015, 3 scales; MEFB's MEF_SSIM); MEF_SSIM_SS: single scale; "
    "QABF: Xydeas-Petrovic Q^AB/F; MSSIM: (SSIM(over, F) + SSIM(under, F)) / 2; SD, EN, SF, AG: standard deviation, "
    "entropy, spatial frequency, average gradient per colour channel, averaged (MEFB); PSNR_I/S (peak 256), CC_I/S: "
    "against ground truth on the paper's I and S channels. Higher is better for all but MEAN (the mean brightness, "
    "best near the middle of the range)."
)


ORIGINAL_IO_NOTE = "inputs cropped to multiples of 8, output min-max stretched and saved as JPEG quality 75"


def summary_markdown(summary: dict) -> str:
    names = summary["metrics"]
    lines = ["| Method | n | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for method, table in summary["methods"].items():
        n = max((s["n"] for s in table.values()), default=0)
        cells = [f"{_num(s['mean'])} ± {_num(s['std'])}" if s["n"] else "–" for s in table.values()]
        lines.append(f"| {method} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "Mean ± standard deviation over scenes. " + METRIC_NOTES, ""]
    if summary["original_io"]:
        lines += [f"With the original's test-time I/O ({ORIGINAL_IO_NOTE}): {', '.join(summary['original_io'])}.", ""]
    skipped = summary["skipped"]
    listed = "; ".join(f"scene {s['scene']} / {s['method']}: {s['reason']}" for s in skipped)
    lines.append(f"Skipped ({len(skipped)}): {listed}" if skipped else "Skipped: none.")
    lines += [f"Note: {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def chart_limits(means: Sequence[float], errs: Sequence[float]) -> tuple[float, float]:
    """The y range of a panel: the bars' tops with their error bars and a margin, so that methods
    that differ by 0.01 on a metric near 1 can be told apart (bars then start above zero)."""
    low = min(m - e for m, e in zip(means, errs))
    high = max(m + e for m, e in zip(means, errs))
    margin = 0.15 * (high - low) or 0.05 * abs(high) or 1.0
    return low - margin, high + margin


def write_chart(path: Path, summary: dict) -> None:
    """One panel per metric, one bar per method (mean, standard deviation as error bar), like the
    paper's Fig. 9. Uses the Agg canvas directly, leaving pyplot's global backend alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names, methods = summary["metrics"], list(summary["methods"])
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    colours = [f"C{i % 10}" for i in range(len(methods))]
    for i, metric in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        stats = [summary["methods"][m][metric] for m in methods]
        means = [0.0 if math.isnan(s["mean"]) else s["mean"] for s in stats]
        errs = [0.0 if math.isnan(s["std"]) else s["std"] for s in stats]
        ax.bar(range(len(methods)), means, yerr=errs, color=colours, capsize=3)
        ax.set_ylim(*chart_limits(means, errs))
        ax.set_title(metric)
        ax.set_xticks([])
    handles = [Patch(color=c) for c in colours]
    fig.legend(handles, methods, loc="outside lower center", ncols=min(len(methods), 6))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


# ---------------------------------------------------------------------------------------- report
REPORT_FILES = ("per_image.csv", "summary.csv", "summary.json", "summary.md", "metrics.png")


def check_out(out: Path, overwrite: bool) -> None:
    """CommandError unless the report can be written into ``out`` (checked before any scoring)."""
    check_folder_target(out)
    check_new_files([out / name for name in REPORT_FILES], overwrite)


def check_scored(rows: list[Row], root: Path) -> None:
    """CommandError when no scene could be scored by any method: an empty report helps nobody."""
    if rows and all(r.status != "ok" for r in rows):
        scenes = len({r.scene for r in rows})
        raise CommandError(f"{root}: no scene could be scored: all {scenes} scene(s) were skipped for every method "
                           "(reasons above); nothing written")


def write_report(out: Path, rows: list[Row], methods: list[Method], options: dict) -> str:
    """Write ``REPORT_FILES`` into ``out`` (``options``: the command's settings, kept in summary.json);
    returns the Markdown summary."""
    summary = summarise(rows, methods)
    write_per_image(out / "per_image.csv", rows, summary["metrics"] or metrics.METRIC_NAMES)
    write_summary_csv(out / "summary.csv", summary)
    write_summary_json(out / "summary.json", summary, options)
    markdown = summary_markdown(summary)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(markdown)
    write_chart(out / "metrics.png", summary)
    return markdown
