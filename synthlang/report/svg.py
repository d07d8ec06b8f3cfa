"""Self-contained SVG plots: bars (with targets), histograms and lines."""

from __future__ import annotations

import html


def esc(x) -> str:
    return html.escape(str(x))


def svg_bars(name: str, items: list[tuple[str, float]], targets: list[float] | None = None,
             fmt: str = "{:g}", errors: list[tuple[float, float]] | None = None) -> str:
    if not items:
        return ""
    top = max([v for _, v in items] + (targets or []) + ([e[1] for e in errors] if errors else []) + [1e-9])
    row, left, width = 22, 170, 360
    h = row * len(items) + 10
    parts = [f'<svg class="chart" data-plot="{esc(name)}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{left + width + 90}" height="{h}" role="img" aria-label="{esc(name)}">']
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = max(1.0, width * value / top)
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{esc(label[:28])}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" class="bar"/>')
        if targets:
            tx = left + width * targets[i] / top
            parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y}" y2="{y + row - 2}" class="target"/>')
        if errors:
            lo, hi = errors[i]
            parts.append(f'<line x1="{left + width * lo / top:.1f}" x2="{left + width * hi / top:.1f}" '
                         f'y1="{y + row / 2:.1f}" y2="{y + row / 2:.1f}" class="err"/>')
        parts.append(f'<text x="{left + width + 6}" y="{y + 14}">{esc(fmt.format(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(name: str, hist: dict) -> str:
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts:
        return ""
    w, h, pad = 420, 140, 24
    top = max(counts) or 1
    bw = (w - 2 * pad) / len(counts)
    parts = [f'<svg class="chart" data-plot="{esc(name)}" xmlns="http://www.w3.org/2000/svg" width="{w}" '
             f'height="{h + 20}" role="img" aria-label="{esc(name)}">']
    for i, c in enumerate(counts):
        bh = (h - pad) * c / top
        parts.append(f'<rect x="{pad + i * bw:.1f}" y="{h - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                     f'class="bar"><title>{edges[i]}-{edges[i + 1]}: {c}</title></rect>')
    parts.append(f'<text x="{pad}" y="{h + 14}">{edges[0]}</text>')
    parts.append(f'<text x="{w - pad}" y="{h + 14}" text-anchor="end">{edges[-1]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_line(name: str, points: list[tuple[float, float]], xlabel: str) -> str:
    if not points:
        return ""
    w, h, pad = 420, 160, 30
    xs = [p[0] for p in points]
    x0, x1 = min(xs), max(xs) or 1
    path = " ".join(f"{'M' if i == 0 else 'L'}{pad + (w - 2 * pad) * (x - x0) / ((x1 - x0) or 1):.1f},"
                    f"{h - pad - (h - 2 * pad) * y:.1f}" for i, (x, y) in enumerate(points))
    dots = "".join(f'<circle cx="{pad + (w - 2 * pad) * (x - x0) / ((x1 - x0) or 1):.1f}" '
                   f'cy="{h - pad - (h - 2 * pad) * y:.1f}" r="3"><title>{x}: {y:.3f}</title></circle>'
                   for x, y in points)
    return (f'<svg class="chart" data-plot="{esc(name)}" xmlns="http://www.w3.org/2000/svg" width="{w}" '
            f'height="{h}" role="img" aria-label="{esc(name)}"><path d="{path}" class="line"/>{dots}'
            f'<text x="4" y="{pad + 4}">1.0</text><text x="4" y="{h - pad + 4}">0.0</text>'
            f'<text x="{pad}" y="{h - 8}">{x0:g}</text><text x="{w - pad}" y="{h - 8}" text-anchor="end">'
            f'{x1:g}</text><text x="{w / 2}" y="{h - 8}" text-anchor="middle">{esc(xlabel)}</text></svg>')
