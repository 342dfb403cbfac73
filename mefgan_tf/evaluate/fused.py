"""`mefgan evaluate --save-fused`: each method's fused image, a contact sheet per scene, and one sheet
of every scene sorted by the veil (``by_veil.jpg``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mefgan_tf.images import write_image
from mefgan_tf.sheets import Style, side_by_side, to_height

SHEET_HEIGHT = 240  # pixels: the height of each image in a contact sheet
VEIL_ROW_HEIGHT = 120  # pixels: the height of each scene's row in by_veil.jpg
STYLE = Style(strip=22, gap=4, font_scale=0.5, left=4, above=6)


class FusedSaver:
    """Writes each method's fused image as ``<folder>/<method>/<scene>.png`` and, per scene, a contact
    sheet ``<folder>/<scene>.jpg``: the inputs, then each method's result, side by side."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.panels: dict[str, list[tuple[str, np.ndarray]]] = {}
        self.rows: dict[str, np.ndarray] = {}

    def add(self, scene: str, method: str, fused: np.ndarray, inputs: list[np.ndarray]) -> None:
        write_image(self.folder / method / f"{scene}.png", fused)
        if scene not in self.panels:
            self.panels[scene] = [(f"input {i + 1}", to_height(im, SHEET_HEIGHT)) for i, im in enumerate(inputs)]
        self.panels[scene].append((method, to_height(fused, SHEET_HEIGHT)))

    def finish(self, scene: str) -> None:
        panels = self.panels.pop(scene, [])
        if panels:
            write_image(self.folder / f"{scene}.jpg", side_by_side(panels, STYLE))
            small = [(f"{scene}: {label}" if i == 0 else label, to_height(im, VEIL_ROW_HEIGHT))
                     for i, (label, im) in enumerate(panels)]
            self.rows[scene] = side_by_side(small, STYLE)

    def write_by_veil(self, scenes: list[str]) -> None:
        """``by_veil.jpg``: one row per scene (its inputs, then each method), in the order of ``scenes``
        (the most lifted blacks first, ``report.tone_against``), then any scene not listed."""
        order = [s for s in scenes if s in self.rows] + [s for s in self.rows if s not in scenes]
        if not order:
            return
        width = max(self.rows[s].shape[1] for s in order)
        rows = [np.pad(self.rows[s], ((0, STYLE.gap), (0, width - self.rows[s].shape[1]), (0, 0)), constant_values=255)
                for s in order]
        write_image(self.folder / "by_veil.jpg", np.concatenate(rows, axis=0))
