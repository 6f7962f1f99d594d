"""Inline SVG bar charts for the HTML report (no scripts, no external fonts or styles)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

ROW_HEIGHT = 22
LABEL_WIDTH = 260
BAR_WIDTH = 420
COUNT_WIDTH = 70
MAX_LABEL_CHARS = 38


def _fit(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def horizontal_bars(title: str, rows: Sequence[tuple[str, int]], chart_id: str, color: str = "#3b7dd8") -> str:
    """One bar per (label, count) row, scaled to the largest count; an empty chart says so."""
    if not rows:
        return f'<figure class="chart" id="{chart_id}"><figcaption>{escape(title)}</figcaption><p>(none)</p></figure>'
    top = max(count for _, count in rows) or 1
    height = ROW_HEIGHT * len(rows) + 8
    width = LABEL_WIDTH + BAR_WIDTH + COUNT_WIDTH
    parts = [f'<svg role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">']
    for i, (label, count) in enumerate(rows):
        y = 4 + i * ROW_HEIGHT
        bar = max(1.0, count / top * BAR_WIDTH) if count else 0.0
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-count="{count}">'
            f'<title>{escape(label)}: {count}</title>'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(_fit(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{bar:.1f}" height="{ROW_HEIGHT - 6}" fill="{color}"/>'
            f'<text x="{LABEL_WIDTH + bar + 6:.1f}" y="{y + 15}">{count}</text></g>'
        )
    parts.append("</svg>")
    return (f'<figure class="chart" id="{chart_id}"><figcaption>{escape(title)}</figcaption>'
            + "".join(parts) + "</figure>")


def histogram(title: str, bins: Sequence[tuple[str, int]], chart_id: str, color: str = "#c2410c") -> str:
    """Vertical bars for ordered bins (label under each bar, count above it)."""
    if not bins:
        return f'<figure class="chart" id="{chart_id}"><figcaption>{escape(title)}</figcaption><p>(none)</p></figure>'
    top = max(count for _, count in bins) or 1
    col, plot_h, pad = 74, 160, 34
    width, height = col * len(bins) + 20, plot_h + 2 * pad
    parts = [f'<svg role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
             f'<line x1="10" y1="{pad + plot_h}" x2="{width - 10}" y2="{pad + plot_h}" stroke="#888"/>']
    for i, (label, count) in enumerate(bins):
        x = 10 + i * col
        h = count / top * plot_h if count else 0.0
        y = pad + plot_h - h
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-count="{count}">'
            f'<title>{escape(label)}: {count}</title>'
            f'<rect x="{x + 6}" y="{y:.1f}" width="{col - 12}" height="{h:.1f}" fill="{color}"/>'
            f'<text x="{x + col / 2}" y="{y - 4:.1f}" text-anchor="middle">{count}</text>'
            f'<text x="{x + col / 2}" y="{pad + plot_h + 16}" text-anchor="middle" class="tick">'
            f'{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return (f'<figure class="chart" id="{chart_id}"><figcaption>{escape(title)}</figcaption>'
            + "".join(parts) + "</figure>")
