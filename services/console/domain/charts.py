"""Charts drawn on the server as SVG: no script, no library from the internet (government networks are
closed), readable with the stylesheet off and by a screen reader (each chart has a title and a table twin)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

W, H = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 38, 22, 14, 30


def _x(i: int, n: int) -> float:
    span = W - LEFT - RIGHT
    return LEFT + (span * i / (n - 1) if n > 1 else span / 2)


def _y(v: float) -> float:
    return TOP + (H - TOP - BOTTOM) * (1 - max(0.0, min(1.0, v)))


def share_chart(title: str, labels: Sequence[str], values: Sequence[float | None],
                target: float | None) -> str:
    """A line of shares (0–1) over periods, with the plan's target as a dashed line. Periods without an
    application are gaps, not zeros: no application is not a failed figure."""
    n = len(labels)
    if n != len(values):
        raise ValueError("one value per label")
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for tick in (0, 0.5, 1):
        y = _y(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#57606a">'
                     f'{int(tick * 100)}%</text>')
    if target is not None:
        y = _y(target)
        parts.append(f'<line class="target" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#cf222e" '
                     f'stroke-width="1.5" stroke-dasharray="5 3"/>')
        parts.append(f'<text x="{W - RIGHT}" y="{y - 3:.1f}" font-size="10" text-anchor="end" fill="#cf222e">'
                     f'目标 {target:.0%}</text>')
    step = max(1, (n + 5) // 6)
    for i, label in enumerate(labels):
        # Every step-th label and the last, never two close enough to overlap.
        if i == n - 1 or (i % step == 0 and n - 1 - i >= step):
            parts.append(f'<text x="{_x(i, n):.1f}" y="{H - 10}" font-size="10" text-anchor="middle" '
                         f'fill="#57606a">{escape(label)}</text>')
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, v in enumerate(values):
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{_x(i, n):.1f},{_y(v):.1f}")
    if segment:
        segments.append(segment)
    for seg in segments:
        if len(seg) > 1:
            parts.append(f'<polyline class="series" points="{" ".join(seg)}" fill="none" stroke="#0969da" '
                         'stroke-width="2"/>')
    for i, v in enumerate(values):
        if v is not None:
            met = target is None or v >= target
            parts.append(f'<circle cx="{_x(i, n):.1f}" cy="{_y(v):.1f}" r="3" fill="{"#0969da" if met else "#cf222e"}">'
                         f'<title>{escape(labels[i])}: {v:.0%}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, colour: str = "#cf222e") -> str:
    """Horizontal bars (counts per department): the league table at a glance."""
    n = max(1, len(labels))
    row, gutter = 22, 150
    height = TOP + n * row + 6
    top = max([1.0, *values])
    parts = [f'<svg class="chart bars" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * row
        width = (W - gutter - 30) * v / top
        short = label if len(label) <= 12 else label[:11] + "…"
        parts.append(f'<text x="{gutter - 4}" y="{y + 14}" font-size="11" text-anchor="end" fill="#24292f">'
                     f'{escape(short)}<title>{escape(label)}</title></text>')
        parts.append(f'<rect x="{gutter}" y="{y + 3}" width="{width:.1f}" height="14" fill="{colour}"/>')
        parts.append(f'<text x="{gutter + 4 + width:.1f}" y="{y + 14}" font-size="11" fill="#24292f">{v:g}</text>')
    parts.append("</svg>")
    return "".join(parts)
