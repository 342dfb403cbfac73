"""The report of `mefgan evaluate`: statistics over scenes and the files (``REPORT_FILES``).

``per_image.csv`` has one row per scene and method; ``summary.csv``, ``summary.json`` and
``summary.md`` the mean, standard deviation and count of each column per method, and what was
skipped; ``metrics.png`` the same as bars (``chart``).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.evaluate.chart import write_chart
from mefgan_tf.evaluate.methods import Method
from mefgan_tf.evaluate.scoring import Row, columns
from mefgan_tf.files import atomic_path, check_folder_target, check_new_files
from mefgan_tf.tone import LIMITS, TONE_COLUMNS, tone_problems

TONE_REFERENCE = "mertens"  # the method every other one's tone is compared with, when it is scored
WORST_LISTED = 3  # scenes named per tone measure in summary.md


def summarise(rows: list[Row], methods: list[Method]) -> dict:
    """Mean, standard deviation (N-1, as MATLAB's ``std``; 0 for one value) and count of the
    finite values of each metric per method, plus the skipped scene/method pairs."""
    names = [n for n in columns() if any(n in r.scores for r in rows)]
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
    return {"metrics": names, "methods": table, "skipped": skipped, "notes": notes, "original_io": original_io,
            "tone": tone_against(rows, methods)}


def tone_against(rows: list[Row], methods: list[Method], reference: str = TONE_REFERENCE) -> dict:
    """Per method and scene, its tone minus ``reference``'s (black level, saturation, mean level:
    ``tone.TONE_COLUMNS``) and what is visibly wrong (``tone.tone_problems``); empty without the reference."""
    ok = {(r.scene, r.method): r.scores for r in rows if r.status == "ok" and "BLACK" in r.scores}
    found: dict[str, list[dict]] = {}
    for method in (m.name for m in methods if m.name != reference):
        scenes = []
        for (scene, name), scores in ok.items():
            base = ok.get((scene, reference))
            if name == method and base is not None:
                deltas = {column: scores[column] - base[column] for column in TONE_COLUMNS}
                scenes.append({"scene": scene, **deltas, "problems": tone_problems(scores, base)})
        if scenes:
            found[method] = sorted(scenes, key=lambda s: -s["BLACK"])
    return {"reference": reference, "methods": found} if found else {}


def veil_order(rows: list[Row], methods: list[Method]) -> list[str]:
    """The scenes, the most lifted blacks against ``TONE_REFERENCE`` first (of the first other method)."""
    tone = tone_against(rows, methods)
    return [s["scene"] for s in next(iter(tone["methods"].values()))] if tone else []


def tone_markdown(tone: dict) -> list[str]:
    """summary.md's tone section: per method, the scenes past the visible limits and the worst ones."""
    if not tone:
        return []
    reference = tone["reference"]
    lines = [f"Tone against {reference} (8-bit levels; limits: blacks lifted by {LIMITS.black:g}, saturation "
             f"lower by {LIMITS.saturation:g}, mean level darker by {LIMITS.darker:g} with no more contrast):", ""]
    for method, scenes in tone["methods"].items():
        flagged = [f"{s['scene']} ({', '.join(s['problems'])})" for s in scenes if s["problems"]]
        worst = {
            "black level": sorted(scenes, key=lambda s: -s["BLACK"])[:WORST_LISTED],
            "saturation": sorted(scenes, key=lambda s: s["SATURATION"])[:WORST_LISTED],
            "mean level": sorted(scenes, key=lambda s: s["LEVEL"])[:WORST_LISTED],
        }
        column = {"black level": "BLACK", "saturation": "SATURATION", "mean level": "LEVEL"}
        lines.append(f"- {method}: {len(flagged)} of {len(scenes)} scene(s) past a limit"
                     + (f": {'; '.join(flagged)}" if flagged else ""))
        for label, listed in worst.items():
            cells = ", ".join(f"{s['scene']} {s[column[label]]:+.1f}" for s in listed)
            lines.append(f"  - {label}, worst: {cells}")
    return lines + [""]


def write_tone_csv(path: Path, tone: dict) -> None:
    """tone.csv: per method and scene, the tone minus the reference's and the problems found."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["method", "reference", "scene", *(f"{c}_minus_reference" for c in TONE_COLUMNS), "problems"])
        for method, scenes in tone.get("methods", {}).items():
            for s in scenes:
                out.writerow([method, tone["reference"], s["scene"], *(_fmt(s[c]) for c in TONE_COLUMNS),
                              " ".join(s["problems"])])


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
    "best near the middle of the range); BLACK, SATURATION, LEVEL, CONTRAST: the 1st percentile of luma, the mean "
    "HSV saturation, the mean of luma and its tonal range (99th minus 1st percentile), in 8-bit levels (the tone; "
    "see below)."
)


HANDHELD_NOTE = (
    "motion_error_px (lower is better), PSNR_vs_still: each scene's exposures were moved by a known hand-held "
    "motion (--handheld); the largest error at the corners of the motion alignment recovered (without --align, "
    "the motion itself), and each method's fusion of the moved frames against its fusion of the frames before "
    "they moved (RGB PSNR, dB). MEF-SSIM and the other metrics score the fusion of the moved frames."
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
    if "motion_error_px" in names:
        lines += [HANDHELD_NOTE, ""]
    lines += tone_markdown(summary["tone"])
    if summary["original_io"]:
        lines += [f"With the original's test-time I/O ({ORIGINAL_IO_NOTE}): {', '.join(summary['original_io'])}.", ""]
    skipped = summary["skipped"]
    listed = "; ".join(f"scene {s['scene']} / {s['method']}: {s['reason']}" for s in skipped)
    lines.append(f"Skipped ({len(skipped)}): {listed}" if skipped else "Skipped: none.")
    lines += [f"Note: {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


REPORT_FILES = ("per_image.csv", "summary.csv", "summary.json", "summary.md", "metrics.png", "tone.csv")


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
    write_per_image(out / "per_image.csv", rows, summary["metrics"] or columns())
    write_summary_csv(out / "summary.csv", summary)
    write_tone_csv(out / "tone.csv", summary["tone"])
    write_summary_json(out / "summary.json", summary, options)
    markdown = summary_markdown(summary)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(markdown)
    write_chart(out / "metrics.png", summary)
    return markdown
