"""Charts as SVG drawn on the server and inlined in the page.

The board's Content-Security-Policy allows no inline style and no script without a
nonce, so the SVG uses presentation attributes (fill, stroke) and classes only: it
renders the same with or without the stylesheet, with JavaScript off, and when saved.
Every text in it (series names come from campaign and AS names) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from board.survival import Step

# Okabe–Ito: told apart by people with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
MARGIN = {"left": 56, "right": 16, "top": 30, "bottom": 44}
LEGEND_WIDTH = 140  # beside the plot, so it never covers a bar or a curve


@dataclass(frozen=True)
class Series:
    """One line of (x, y) points (sorted by x; ties keep their order), with tick marks."""

    name: str
    points: list[tuple[float, float]]
    censored: list[tuple[float, float]] = field(default_factory=list)


def km_series(name: str, steps: list[Step]) -> Series:
    """A Kaplan–Meier curve as a series: its steps, and a mark at each censoring."""
    return Series(
        name,
        [(s.t, s.survival) for s in steps],
        [(s.t, s.survival) for s in steps if s.censored],
    )


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering lo..hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"ticks need finite bounds, not {lo}..{hi}")  # else: endless loop
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


class _Frame:
    """The plot area and the mapping from data to pixels."""

    def __init__(
        self, width: int, height: int, x_max: float, y_max: float, legend: bool = False
    ) -> None:
        self.left, self.top = MARGIN["left"], MARGIN["top"]
        self.right = width - MARGIN["right"] - (LEGEND_WIDTH if legend else 0)
        self.bottom = height - MARGIN["bottom"]
        self.x_max, self.y_max = x_max or 1.0, y_max or 1.0

    def x(self, value: float) -> float:
        return self.left + (self.right - self.left) * value / self.x_max

    def y(self, value: float) -> float:
        return self.bottom - (self.bottom - self.top) * value / self.y_max


def _open(width: int, height: int, title: str, chart_id: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<text class="chart-title" x="{MARGIN["left"]}" y="18" font-size="13" '
        f'font-weight="600" fill="#1d2330">{escape(title)}</text>',
    ]


def _axes(
    parts: list[str],
    frame: _Frame,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_label: str,
    y_label: str,
    height: int,
) -> None:
    parts.append('<g class="grid" stroke="#e5e8ee" stroke-width="1">')
    for value, _ in y_ticks:
        y = _n(frame.y(value))
        parts.append(f'<line x1="{frame.left}" y1="{y}" x2="{frame.right}" y2="{y}"/>')
    parts.append("</g>")
    parts.append('<g class="axis" fill="#5d6677" font-size="11">')
    parts.append(
        f'<line x1="{frame.left}" y1="{frame.bottom}" x2="{frame.right}" y2="{frame.bottom}" '
        'stroke="#5d6677"/>'
    )
    parts.append(
        f'<line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" y2="{frame.bottom}" '
        'stroke="#5d6677"/>'
    )
    for value, label in x_ticks:
        x = _n(frame.x(value))
        parts.append(
            f'<text x="{x}" y="{frame.bottom + 15}" text-anchor="middle">{escape(label)}</text>'
        )
    for value, label in y_ticks:
        y = _n(frame.y(value) + 4)
        parts.append(f'<text x="{frame.left - 6}" y="{y}" text-anchor="end">{escape(label)}</text>')
    middle = _n((frame.left + frame.right) / 2)
    parts.append(
        f'<text x="{middle}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    centre = _n((frame.top + frame.bottom) / 2)
    parts.append(
        f'<text x="14" y="{centre}" text-anchor="middle" '
        f'transform="rotate(-90 14 {centre})">{escape(y_label)}</text>'
    )
    parts.append("</g>")


def _legend(parts: list[str], names: Sequence[str], width: int) -> None:
    parts.append('<g class="legend" font-size="11" fill="#1d2330">')
    x = width - MARGIN["right"] - LEGEND_WIDTH + 10
    for i, name in enumerate(names):
        y = MARGIN["top"] + 4 + i * 15
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 15}" y="{y + 1}">{escape(name[:22])}</text>')
    parts.append("</g>")


def _empty(parts: list[str], frame: _Frame) -> None:
    parts.append(
        f'<text class="empty" x="{_n((frame.left + frame.right) / 2)}" '
        f'y="{_n((frame.top + frame.bottom) / 2)}" text-anchor="middle" font-size="13" '
        'fill="#5d6677">no data yet</text>'
    )


def step_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 320,
    y_max: float = 1.0,
    y_format: Callable[[float], str] | None = None,
    chart_id: str = "chart",
    legend: bool | None = None,
) -> Markup:
    """Step lines (the value holds until the next point), as a survival curve is drawn;
    censored points get a short vertical tick."""
    drawn = [s for s in series if s.points]
    x_top = max((p[0] for s in drawn for p in [*s.points, *s.censored]), default=0.0)
    x_ticks_values = nice_ticks(0, max(x_top, 1.0))
    legend = len(series) > 1 if legend is None else legend
    frame = _Frame(width, height, x_ticks_values[-1], y_max, legend=legend)
    y_format = y_format or (_percent if y_max == 1.0 else _n)
    parts = _open(width, height, title, chart_id)
    y_ticks = [(v, y_format(v)) for v in nice_ticks(0, y_max, 4) if v <= y_max + 1e-9]
    _axes(
        parts,
        frame,
        [(v, _n(v)) for v in x_ticks_values],
        y_ticks,
        x_label,
        y_label,
        height,
    )
    if not drawn:
        _empty(parts, frame)
    for i, s in enumerate(series):
        if not s.points:
            continue
        colour = PALETTE[i % len(PALETTE)]
        # By time only, and stable: a Kaplan–Meier curve has two points at t=0 when
        # sites were cleaned on day 0 (1.0, then the drop), and they must stay in order.
        points = sorted(s.points, key=lambda p: p[0])
        # Drawn at the resolution of the picture: steps that land on the same tenth of a
        # pixel are one (a campaign of 5,000 sites must not become a 200 kB path).
        x, y = _n(frame.x(points[0][0])), _n(frame.y(points[0][1]))
        path = [f"M{x},{y}"]
        for x1, y1 in points[1:]:
            nx, ny = _n(frame.x(x1)), _n(frame.y(y1))
            if nx != x:
                path.append(f"H{nx}")
                x = nx
            if ny != y:
                if path[-1].startswith("V"):
                    path.pop()
                path.append(f"V{ny}")
                y = ny
        tip = f"{s.name}: {y_format(points[-1][1])} at {_n(points[-1][0])}"
        parts.append(
            f'<path class="series series-{i}" d="{"".join(path)}" fill="none" '
            f'stroke="{colour}" stroke-width="2" data-points="{len(points)}">'
            f"<title>{escape(tip)}</title></path>"
        )
        if s.censored:
            parts.append(f'<g class="censor" stroke="{colour}" stroke-width="1.5">')
            marks = dict.fromkeys(
                (round(frame.x(cx)), round(frame.y(cy), 1)) for cx, cy in s.censored
            )
            for px, py in marks:  # one mark per pixel column and height
                parts.append(f'<line x1="{px}" y1="{_n(py - 4)}" x2="{px}" y2="{_n(py + 4)}"/>')
            parts.append("</g>")
    if legend:
        _legend(parts, [s.name for s in series], width)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def bar_chart(
    categories: Sequence[str],
    stacks: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 240,
    chart_id: str = "chart",
) -> Markup:
    """Stacked bars, one per category (a day), at most ~8 category labels shown."""
    for name, values in stacks:
        if len(values) != len(categories):
            raise ValueError(f"{name!r}: {len(values)} values for {len(categories)} categories")
    totals = [sum(values[i] for _, values in stacks) for i in range(len(categories))]
    y_ticks_values = nice_ticks(0, max(totals, default=0) or 1, 4)
    frame = _Frame(width, height, 1.0, y_ticks_values[-1], legend=len(stacks) > 1)
    parts = _open(width, height, title, chart_id)
    n = len(categories)
    # A date label is ~60px wide at font-size 11: no more labels than fit, and at most 8.
    every = max(1, math.ceil(n / max(1, min(8, int((frame.right - frame.left) // 70)))))
    slot = (frame.right - frame.left) / max(n, 1)
    x_ticks = [((i + 0.5) / max(n, 1), categories[i]) for i in range(0, n, every)]
    _axes(
        parts,
        frame,
        x_ticks,
        [(v, _n(v)) for v in y_ticks_values],
        x_label,
        y_label,
        height,
    )
    if not n:
        _empty(parts, frame)
    bar = max(1.0, slot * 0.7)
    for i, category in enumerate(categories):
        base = 0.0
        x = frame.left + slot * i + (slot - bar) / 2
        for j, (name, values) in enumerate(stacks):
            value = values[i]
            if not value:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            parts.append(
                f'<rect class="bar series-{j}" x="{_n(x)}" y="{_n(top)}" width="{_n(bar)}" '
                f'height="{_n(bottom - top)}" fill="{PALETTE[j % len(PALETTE)]}" '
                f'data-value="{_n(value)}"><title>{escape(f"{category} · {name}: {_n(value)}")}'
                "</title></rect>"
            )
            base += value
    if len(stacks) > 1:
        _legend(parts, [name for name, _ in stacks], width)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()
