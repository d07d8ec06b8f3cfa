"""`synthc report OUTPUT_DIR`: what a generated dataset holds, as a dataset card (README.md with
Hugging Face metadata) and a self-contained HTML page with SVG plots. The CLI writes it after
every run, and again after `synthc eval`.

    collect (collect.py, diversity.py) -> render_card (card.py) and render_html (page.py, svg.py)
"""

from __future__ import annotations

from pathlib import Path

from ..files import write_text_atomic
from .card import render_card
from .collect import collect
from .page import render_html

__all__ = ["collect", "render_card", "render_html", "write_report"]


def write_report(out_dir: Path) -> tuple[Path, Path]:
    data = collect(out_dir)
    card = write_text_atomic(out_dir / "README.md", render_card(data))
    page = write_text_atomic(out_dir / "report.html", render_html(data))
    return card, page
