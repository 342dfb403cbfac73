"""``metrics.png`` of `mefgan evaluate`: one panel per column, one bar per method, like the paper's Fig. 9."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mefgan_tf.files import atomic_path


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
