"""The user documents hold together: every relative link and anchor resolves, and the model card
stays a card."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "mefgan_tf" / "shipped_generator" / "README.md"
DOCUMENTS = [REPO / "README.md", CARD, *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    slugs = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(document):
    broken = []
    for target in links(document):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (document.parent / file).resolve() if file else document
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{document.relative_to(REPO)}: " + "; ".join(broken)


def test_the_model_card_is_a_card():
    text = CARD.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    for section in ("## Measured quality", "## Where it is worse", "## Data and recipe", "## Reproduce",
                    "## Limitations"):
        assert section in text
    assert (REPO / "checkpoints" / "reference" / "README.md").read_text(encoding="utf-8") == text


PACKAGE_ROOTS = {"": REPO / "mefgan_tf", "data_prep/": REPO / "data_prep"}  # data_prep installs as mefgan_tf.data_prep


def layout_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Layout\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, "README.md has no '## Layout' section"
    return match.group(1)


def package_modules() -> list[str]:
    """Every module of the package, as its path under mefgan_tf/ (``fusion/tiles.py``)."""
    modules = []
    for prefix, root in PACKAGE_ROOTS.items():
        if root.is_dir():
            modules += [prefix + p.relative_to(root).as_posix() for p in root.rglob("*.py")
                        if "__pycache__" not in p.parts]
    return sorted(modules)


def test_the_readme_layout_names_every_module_and_no_other():
    section = layout_section()
    named = set(re.findall(r"(?<![\w/.])((?:\w+/)*\w+\.py)\b", section))
    modules = set(package_modules())
    assert not modules - named, f"modules missing from README's layout: {sorted(modules - named)}"
    assert not named - modules, f"README's layout names modules that do not exist: {sorted(named - modules)}"
