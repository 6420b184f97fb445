"""Charts as inline SVG, drawn on the server: no script, no external service, nothing the
Content-Security-Policy has to allow. Every chart is an `img` with a title for screen readers,
and the page puts the same numbers in a table beside it.

Colours are the Okabe–Ito palette, which readers with colour-vision deficiencies can tell apart;
each series is also named in a legend, so colour is never the only cue.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
TEXT = "#1f2933"
GRID = "#d9dee3"
FONT = "system-ui, 'Noto Sans', 'Noto Naskh Arabic', sans-serif"

_ids = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    chart_id = f"chart-{next(_ids)}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-labelledby="{chart_id}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{FONT}" font-size="12" '
        f'direction="ltr"><title id="{chart_id}">{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every piece is escaped


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _ticks(value: float, most: int = 5) -> list[float]:
    """Axis ticks from 0 past `value`, a round step apart (counts get whole-number ticks)."""
    if value <= 0:
        return [0.0, 1.0]
    step = 1.0
    while value / step > most - 1:
        for factor in (2, 2.5, 2):  # 1 → 2 → 5 → 10 → 20 …
            step *= factor
            if value / step <= most - 1:
                break
    top = step * math.ceil(value / step)
    return [step * i for i in range(round(top / step) + 1)]


def bar_chart(title: str, bars: Sequence[Bar], *, width: int = 560, empty: str = "—") -> Markup:
    """Horizontal bars, one per label, largest first as given, the value written at its end."""
    row, label_width, top = 26, 190, 8
    height = top * 2 + row * max(1, len(bars))
    body: list[str] = []
    if not bars:
        body.append(
            f'<text x="{width // 2}" y="{height // 2 + 4}" text-anchor="middle" '
            f'fill="{TEXT}">{escape(empty)}</text>'
        )
        return _svg(width, height, title, body)
    scale = _nice_max(max(b.value for b in bars))
    plot = width - label_width - 60
    for i, bar in enumerate(bars):
        y = top + i * row
        length = 0 if scale == 0 else plot * bar.value / scale
        colour = PALETTE[i % len(PALETTE)]
        body.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end" fill="{TEXT}">'
            f"{escape(bar.label)}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{colour}"><title>{escape(bar.label)}: {_fmt(bar.value)}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 17}" fill="{TEXT}">'
            f"{_fmt(bar.value)}</text>"
        )
    return _svg(width, height, title, body)


def stacked_columns(
    title: str,
    columns: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 1040,
    height: int = 260,
    label_room: int = 64,
    empty: str = "—",
) -> Markup:
    """One column per label (days), stacked by series (channels), with axis and legend."""
    left, right, top, bottom, legend = 44, 12, 12, 40, 22
    plot_w = width - left - right
    plot_h = height - top - bottom - legend
    totals = [sum(s.values[i] for s in series) for i in range(len(columns))]
    body: list[str] = []
    if not columns or not series or max(totals, default=0) == 0:
        body.append(
            f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="{TEXT}">'
            f"{escape(empty)}</text>"
        )
        return _svg(width, height, title, body)
    ticks = _ticks(max(totals))
    scale = ticks[-1]
    for value in ticks:
        y = top + plot_h - plot_h * value / scale
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT}">'
            f"{_fmt(value)}</text>"
        )
    slot = plot_w / len(columns)
    bar_w = max(2.0, slot * 0.7)
    every = max(1, math.ceil(label_room / slot))  # labels never overlap
    for i, column in enumerate(columns):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for j, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / scale
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(column)} · '
                f"{escape(s.name)}: {_fmt(value)}</title></rect>"
            )
        if i % every == 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'fill="{TEXT}">{escape(column)}</text>'
            )
    x = float(left)
    legend_y = height - 10
    for j, s in enumerate(series):
        body.append(
            f'<rect x="{x:.1f}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="{x + 16:.1f}" y="{legend_y}" fill="{TEXT}">{escape(s.name)}</text>'
        )
        x += 16 + 8 * len(s.name) + 18
    return _svg(width, height, title, body)


def share_bar(title: str, part: int, whole: int, *, caption: str, width: int = 560) -> Markup:
    """One bar showing `part` of `whole` (e.g. grievances past their SLA among open ones)."""
    height, bar_h = 56, 22
    share = part / whole if whole else 0.0
    filled = (width - 2) * share
    body = [
        f'<rect x="1" y="1" width="{width - 2}" height="{bar_h}" fill="{GRID}"/>',
        f'<rect x="1" y="1" width="{filled:.1f}" height="{bar_h}" fill="{PALETTE[5]}"/>',
        f'<text x="1" y="{bar_h + 22}" fill="{TEXT}">{escape(caption)}</text>',
    ]
    return _svg(width, height, title, body)
