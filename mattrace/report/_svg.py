"""Small inline SVG charts for the HTML report, drawn by mattrace (no plotting service).

Four shapes cover what the report shows: rate bars with their Wilson intervals (one bar
per contract or group), stacked share bars (containment and governance outcomes), and a
histogram (steps per trace). Every label is escaped; sizes are fixed so the report lays
out before any script runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["histogram", "rate_bars", "stacked_bars"]

WIDTH = 640
ROW = 22
LABEL = 230
COLOURS = {"pass": "#2e7d32", "contained": "#2e7d32", "degraded": "#f9a825", "escaped": "#c62828",
           "allow": "#2e7d32", "rewrite": "#f9a825", "block": "#c62828", "bar": "#1565c0"}


def _label(text: str, limit: int = 30) -> str:   # about what 12px text fits in the label column
    return escape(text if len(text) <= limit else text[:limit - 1] + "…")


def rate_bars(rows: Sequence[tuple[str, float | None, float | None, float | None, str]], *,
              title: str) -> str:
    """One bar per row: (label, rate, low, high, caption), rates in [0, 1], with interval whiskers."""
    span = WIDTH - LABEL - 120
    height = ROW * len(rows) + 10
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}"><title>{escape(title)}</title>']
    for i, (label, rate, low, high, caption) in enumerate(rows):
        y = 5 + i * ROW
        parts.append(f'<text x="{LABEL - 6}" y="{y + 14}" text-anchor="end">{_label(label)}</text>')
        parts.append(f'<rect x="{LABEL}" y="{y + 3}" width="{span}" height="{ROW - 8}" class="track"/>')
        if rate is not None:
            colour = COLOURS["pass"] if rate >= 0.999 else COLOURS["bar"] if rate >= 0.8 else COLOURS["escaped"]
            parts.append(f'<rect x="{LABEL}" y="{y + 3}" width="{rate * span:.1f}" height="{ROW - 8}" '
                         f'fill="{colour}"/>')
        if low is not None and high is not None:
            x1, x2, mid = LABEL + low * span, LABEL + high * span, y + ROW / 2 - 1
            parts.append(f'<line x1="{x1:.1f}" y1="{mid}" x2="{x2:.1f}" y2="{mid}" class="whisker"/>')
        parts.append(f'<text x="{LABEL + span + 6}" y="{y + 14}">{escape(caption)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(rows: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, title: str) -> str:
    """One bar per row: (label, [(part, count) ...]) stacked as shares of the row's total."""
    span = WIDTH - LABEL - 80
    height = ROW * len(rows) + 34
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}"><title>{escape(title)}</title>']
    names: list[str] = []
    for i, (label, pieces) in enumerate(rows):
        y = 5 + i * ROW
        total = sum(count for _, count in pieces)
        parts.append(f'<text x="{LABEL - 6}" y="{y + 14}" text-anchor="end">{_label(label)}</text>')
        x = float(LABEL)
        for name, count in pieces:
            if name not in names:
                names.append(name)
            if total and count:
                width = count / total * span
                parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{ROW - 8}" '
                             f'fill="{COLOURS.get(name, COLOURS["bar"])}"><title>{escape(name)}: '
                             f'{count:g}</title></rect>')
                x += width
        parts.append(f'<text x="{LABEL + span + 6}" y="{y + 14}">{total:g}</text>')
    legend_y = 5 + len(rows) * ROW + 14
    for j, name in enumerate(names):
        x = LABEL + j * 110
        parts.append(f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" '
                     f'fill="{COLOURS.get(name, COLOURS["bar"])}"/><text x="{x + 14}" y="{legend_y}">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(values: Sequence[int], *, title: str, bins: int = 20) -> str:
    """Counts of ``values`` in up to ``bins`` equal-width bins, with the axis range."""
    height = 150
    if not values:
        return f'<p class="empty">{escape(title)}: no traces</p>'
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // bins))
    counts = [0] * (-(-(high - low + 1) // width))
    for v in values:
        counts[(v - low) // width] += 1
    top = max(counts)
    bar = (WIDTH - 60) / len(counts)
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{height + 30}" '
             f'viewBox="0 0 {WIDTH} {height + 30}"><title>{escape(title)}</title>']
    for i, count in enumerate(counts):
        h = count / top * (height - 10)
        start = low + i * width
        label = f"{start}" if width == 1 else f"{start}\u2013{start + width - 1}"
        parts.append(f'<rect x="{40 + i * bar:.1f}" y="{height - h:.1f}" width="{max(bar - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="{COLOURS["bar"]}"><title>{label} steps: {count} '
                     f'trace(s)</title></rect>')
    parts.append(f'<text x="40" y="{height + 16}">{low}</text>'
                 f'<text x="{WIDTH - 20}" y="{height + 16}" text-anchor="end">{high} steps</text>'
                 f'<text x="36" y="12" text-anchor="end">{top}</text>')
    parts.append("</svg>")
    return "".join(parts)
