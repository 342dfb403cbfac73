"""The demo of `mefgan demo` (run by `make demo`): fuse a generated sample pair with the shipped generator.

``write_demo`` writes ``under.png``, ``over.png``, ``fused.png`` and ``compare.png`` (under | over |
fused, side by side, labelled). The pair is made from a photo scikit-image ships (no network).
"""
from __future__ import annotations

from pathlib import Path

from mefgan_tf.files import check_folder_target, check_new_files
from mefgan_tf.images import to_float, to_uint8, write_image
from mefgan_tf.models import load_fuser
from mefgan_tf.samples import DEFAULT_EV, SAMPLE_IMAGES, sample_pair
from mefgan_tf.sheets import Style, side_by_side

DEFAULT_MAX_SIDE = 512  # the photo is shrunk to this longer side
GAP = 8  # white pixels between the panels of compare.png
FILES = ("under.png", "over.png", "fused.png", "compare.png")
LABEL_HEIGHT = 28
STYLE = Style(strip=LABEL_HEIGHT, gap=GAP, font_scale=0.6, left=6, above=9)  # compare.png's labels


def write_demo(
    out: Path, model: str | Path | None = None, image: str = SAMPLE_IMAGES[0], ev: float = DEFAULT_EV,
    max_side: int | None = DEFAULT_MAX_SIDE, overwrite: bool = False,
) -> list[Path]:
    """Fuse the sample pair of ``image`` (``ev`` stops each way, shrunk to ``max_side``) with ``model``
    (default: the shipped generator) and write ``FILES`` into ``out``; returns their paths."""
    out = Path(out)
    paths = [out / name for name in FILES]
    check_folder_target(out)
    check_new_files(paths, overwrite)
    fuser = load_fuser(model, once=True)  # first: a missing model must not leave half a demo behind
    under, over = sample_pair(image, ev, max_side)
    fused = to_uint8(fuser([to_float(under), to_float(over)]))
    for name, picture in (("under", under), ("over", over), ("fused", fused)):
        write_image(out / f"{name}.png", picture)
    compare = side_by_side([("under-exposed", under), ("over-exposed", over), ("MEF-GAN fused", fused)], STYLE)
    write_image(out / "compare.png", compare)
    return paths
