"""`mefgan evaluate --save-fused`: each method's fused image, and a contact sheet per scene."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mefgan_tf.images import write_image
from mefgan_tf.sheets import Style, side_by_side, to_height

SHEET_HEIGHT = 240  # pixels: the height of each image in a contact sheet
STYLE = Style(strip=22, gap=4, font_scale=0.5, left=4, above=6)


class FusedSaver:
    """Writes each method's fused image as ``<folder>/<method>/<scene>.png`` and, per scene, a contact
    sheet ``<folder>/<scene>.jpg``: the inputs, then each method's result, side by side."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.panels: dict[str, list[tuple[str, np.ndarray]]] = {}

    def add(self, scene: str, method: str, fused: np.ndarray, inputs: list[np.ndarray]) -> None:
        write_image(self.folder / method / f"{scene}.png", fused)
        if scene not in self.panels:
            self.panels[scene] = [(f"input {i + 1}", to_height(im, SHEET_HEIGHT)) for i, im in enumerate(inputs)]
        self.panels[scene].append((method, to_height(fused, SHEET_HEIGHT)))

    def finish(self, scene: str) -> None:
        panels = self.panels.pop(scene, [])
        if panels:
            write_image(self.folder / f"{scene}.jpg", side_by_side(panels, STYLE))
