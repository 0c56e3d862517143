"""A plot model as an inline SVG string: scatters and curves, bar charts, error bars, axes, a
legend. Dependency-free, so a report is one self-contained file with no plotting library.

The drawing is checkable from the markup alone: each plotted value is a `<g class="point">`
with its numbers as data attributes (`data-series`, `data-x`, `data-y`, `data-low`,
`data-high`, `data-label`, exact Python reprs), and the plot area states its mapping
(`data-x-domain`, `data-y-domain` in data units onto `data-x-px`, `data-y-px` in pixels), so a
test can tell that a point is drawn where its value says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from sandbox.review.report.model import Plot, Point, Reference, Series

WIDTH = 900
LEGEND_WIDTH = 300
HEIGHT = 340
MARGIN = {"left": 64, "top": 18, "right": 16, "bottom": 52}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
FONT_SIZE = 12
CHAR_WIDTH = 0.58
"""An average glyph's width in ems, to lay labels out without measuring text."""
ROW = 18
"""A legend entry's height."""

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#999933")
"""Okabe and Ito's colour-blind-safe colours (yellow left out: unreadable on white)."""

REFERENCE_COLOUR = "#555555"


@dataclass(frozen=True, slots=True)
class Scale:
    """A linear map from a data interval onto a pixel interval."""

    lo: float
    hi: float
    px_lo: float
    px_hi: float

    def __call__(self, value: float) -> float:
        share = (value - self.lo) / (self.hi - self.lo)
        return self.px_lo + share * (self.px_hi - self.px_lo)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _number(value: float) -> str:
    return f"{value:.12g}"


def _data(value: float | str | None) -> str:
    """A value for a data attribute: exact floats (Python's shortest repr), names as given."""
    if value is None:
        return ""
    return value if isinstance(value, str) else repr(float(value))


def _span(plot: Plot, axis: str) -> tuple[float, float]:
    """The plot's range on one axis, widened to hold every value and interval, then to ticks."""
    lo, hi = plot.x_range if axis == "x" else plot.y_range
    values: list[float] = []
    for s in plot.series:
        for p in s.points:
            if axis == "y":
                values += [v for v in (p.y, p.low, p.high) if v is not None]
            elif not isinstance(p.x, str):
                values += [v for v in (p.x, p.x_low, p.x_high) if v is not None]
    if axis == "y":
        values += [r.value for r in plot.references if not r.diagonal]
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = min([lo, *finite]), max([hi, *finite])
    ticks = nice_ticks(lo, hi)
    return ticks[0], ticks[-1]


def _text_width(chars: int) -> float:
    return chars * FONT_SIZE * CHAR_WIDTH


def render(plot: Plot) -> str:
    """The plot as an `<svg>` element (its own XML namespace, no external reference).

    Category names too long for their band are slanted (the plot grows by their drop), and a
    long legend makes the plot taller rather than run off it."""
    left, top = MARGIN["left"], MARGIN["top"]
    right = WIDTH - LEGEND_WIDTH - MARGIN["right"]
    longest = _text_width(max((len(c) for c in plot.categories), default=0))
    rotate = plot.kind == "bar" and longest > 0.95 * (right - left) / max(len(plot.categories), 1)
    drop = int(longest * 0.5) if rotate else 0  # sin 30 degrees
    legend_rows = len(plot.series) + len(_distinct_references(plot.references))
    height = max(HEIGHT + drop, int(top + ROW * legend_rows + 12))
    bottom = height - MARGIN["bottom"] - drop
    y_lo, y_hi = _span(plot, "y")
    y = Scale(y_lo, y_hi, bottom, top)
    if plot.kind == "bar":
        x_lo, x_hi = 0.0, float(max(len(plot.categories), 1))
    else:
        x_lo, x_hi = _span(plot, "x")
    x = Scale(x_lo, x_hi, left, right)
    colours = _colours(plot)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" font-family="{escape(FONT)}" '
        f'font-size="{FONT_SIZE}" data-plot="{escape(plot.id)}">',
        f"<title>{escape(plot.title)}</title>",
        _axes(plot, x, y, rotate),
        f'<g class="plot-area" data-kind="{plot.kind}" '
        f'data-x-domain="{_number(x_lo)} {_number(x_hi)}" '
        f'data-y-domain="{_number(y_lo)} {_number(y_hi)}" '
        f'data-x-px="{_number(left)} {_number(right)}" '
        f'data-y-px="{_number(bottom)} {_number(top)}">',
    ]
    for index, s in enumerate(plot.series):
        if plot.kind == "bar":
            parts.append(_bars(plot, s, index, colours[s.colour_key], x, y))
        else:
            parts.append(_scatter(plot, s, index, colours[s.colour_key], x, y))
    parts.append("</g>")
    parts.append(_references(plot, x, y))
    parts.append(_legend(plot, colours, top))
    parts.append("</svg>")
    return "\n".join(parts)


def _colours(plot: Plot) -> dict[str, str]:
    keys = dict.fromkeys([*plot.colour_keys, *(s.colour_key for s in plot.series)])
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}


def _text(x: float, y: float, text: str, anchor: str = "middle", rotate: float = 0.0) -> str:
    turn = f' transform="rotate({rotate:g} {x:.1f} {y:.1f})"' if rotate else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="#333"{turn}>'
        f"{escape(text)}</text>"
    )


def _gridline(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="#e6e6e6"/>'


def _axes(plot: Plot, x: Scale, y: Scale, rotate: bool) -> str:
    out = ['<g class="axes" stroke-width="1">']
    for tick in nice_ticks(y.lo, y.hi):
        out.append(_gridline(x.px_lo, y(tick), x.px_hi, y(tick)))
        out.append(_text(x.px_lo - 6, y(tick) + 4, _number(tick), anchor="end"))
    if plot.kind == "bar":
        band = (x.px_hi - x.px_lo) / max(len(plot.categories), 1)
        for i, category in enumerate(plot.categories):
            cx, ty = x.px_lo + band * (i + 0.5), y.px_lo + 16
            if rotate:
                out.append(_text(cx, ty, category, anchor="end", rotate=-30))
            else:
                out.append(_text(cx, ty, category))
    else:
        for tick in nice_ticks(x.lo, x.hi):
            out.append(_gridline(x(tick), y.px_hi, x(tick), y.px_lo))
            out.append(_text(x(tick), y.px_lo + 16, _number(tick)))
    out.append(
        f'<path d="M{x.px_lo:.1f},{y.px_hi:.1f} V{y.px_lo:.1f} H{x.px_hi:.1f}" '
        'fill="none" stroke="#333"/>'
    )
    if not rotate:  # slanted category names speak for themselves
        out.append(
            f'<text class="x-label" x="{(x.px_lo + x.px_hi) / 2:.1f}" y="{y.px_lo + 40:.1f}" '
            f'text-anchor="middle" fill="#111">{escape(plot.x_label)}</text>'
        )
    mid = (y.px_lo + y.px_hi) / 2
    out.append(
        f'<text class="y-label" x="16" y="{mid:.1f}" text-anchor="middle" fill="#111" '
        f'transform="rotate(-90 16 {mid:.1f})">{escape(plot.y_label)}</text>'
    )
    out.append("</g>")
    return "\n".join(out)


def _references(plot: Plot, x: Scale, y: Scale) -> str:
    out = ['<g class="references">']
    band = (x.px_hi - x.px_lo) / max(len(plot.categories), 1)
    for ref in plot.references:
        if ref.diagonal:
            lo, hi = max(x.lo, y.lo), min(x.hi, y.hi)
            x1, y1, x2, y2 = x(lo), y(lo), x(hi), y(hi)
        elif ref.category is not None and ref.category in plot.categories:
            i = plot.categories.index(ref.category)
            x1, x2 = x.px_lo + band * (i + 0.05), x.px_lo + band * (i + 0.95)
            y1 = y2 = y(ref.value)
        else:
            x1, x2, y1 = x.px_lo, x.px_hi, y(ref.value)
            y2 = y1
        out.append(
            f'<line class="reference" data-label="{escape(ref.label)}" '
            f'data-value="{_data(None if ref.diagonal else ref.value)}" '
            f'x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{REFERENCE_COLOUR}" stroke-dasharray="5 4" stroke-width="1.2"/>'
        )
        if ref.category is not None:
            out.append(
                f'<text x="{(x1 + x2) / 2:.1f}" y="{y1 - 4:.1f}" text-anchor="middle" '
                f'font-size="10" fill="{REFERENCE_COLOUR}">{escape(ref.label)}</text>'
            )
    out.append("</g>")
    return "\n".join(out)


def _point_group(s: Series, p: Point) -> str:
    return (
        f'<g class="point" data-series="{escape(s.name)}" data-x="{escape(_data(p.x))}" '
        f'data-y="{_data(p.y)}" data-low="{_data(p.low)}" data-high="{_data(p.high)}" '
        f'data-x-low="{_data(p.x_low)}" data-x-high="{_data(p.x_high)}" '
        f'data-label="{escape(p.label)}">'
    )


def _tooltip(s: Series, p: Point) -> str:
    interval = "" if p.low is None or p.high is None else f" [{p.low:.3f}, {p.high:.3f}]"
    return f"<title>{escape(s.name)}, {escape(p.label)}: {p.y:.3f}{interval}</title>"


def _whisker(px: float, low: float | None, high: float | None, y: Scale, colour: str) -> str:
    if low is None or high is None:
        return ""
    y1, y2 = y(low), y(high)
    return (
        f'<line class="interval" x1="{px:.2f}" x2="{px:.2f}" y1="{y1:.2f}" y2="{y2:.2f}" '
        f'stroke="{colour}" stroke-width="1.4"/>'
        f'<path class="caps" d="M{px - 3:.2f},{y1:.2f} H{px + 3:.2f} M{px - 3:.2f},{y2:.2f} '
        f'H{px + 3:.2f}" stroke="{colour}" stroke-width="1.4"/>'
    )


def _scatter(plot: Plot, s: Series, index: int, colour: str, x: Scale, y: Scale) -> str:
    """Points (and, for a curve, the line through them) nudged sideways per series, so points
    of several models at one x stay apart; the data attributes keep the exact values."""
    nudge = (index - (len(plot.series) - 1) / 2) * 3.0 if len(plot.series) > 1 else 0.0
    points = [p for p in s.points if not isinstance(p.x, str)]
    out = [f'<g class="series" data-series="{escape(s.name)}" data-colour="{colour}">']
    if s.line and len(points) > 1:
        ordered = sorted(points, key=lambda p: float(p.x))
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{x(float(p.x)) + nudge:.2f},{y(p.y):.2f}"
            for i, p in enumerate(ordered)
        )
        out.append(
            f'<path class="curve" d="{d}" fill="none" stroke="{colour}" stroke-width="1.6" '
            'stroke-opacity="0.8"/>'
        )
    for p in points:
        px, py = x(float(p.x)) + nudge, y(p.y)
        out.append(_point_group(s, p))
        if p.x_low is not None and p.x_high is not None:
            out.append(
                f'<line class="x-interval" x1="{x(p.x_low) + nudge:.2f}" '
                f'x2="{x(p.x_high) + nudge:.2f}" y1="{py:.2f}" y2="{py:.2f}" '
                f'stroke="{colour}" stroke-width="1" stroke-opacity="0.6"/>'
            )
        out.append(_whisker(px, p.low, p.high, y, colour))
        out.append(
            f'<circle class="marker" cx="{px:.2f}" cy="{py:.2f}" r="{3.5 if s.line else 4.5}" '
            f'fill="{colour if s.line else "white"}" stroke="{colour}" stroke-width="1.8"/>'
        )
        out.append(_tooltip(s, p))
        out.append("</g>")
    out.append("</g>")
    return "\n".join(out)


def _bars(plot: Plot, s: Series, index: int, colour: str, x: Scale, y: Scale) -> str:
    """One bar per category this series has a value in, from the baseline (0, or the axis's
    low end when 0 is off the axis) to the value."""
    n = max(len(plot.series), 1)
    band = (x.px_hi - x.px_lo) / max(len(plot.categories), 1)
    group = band * 0.8
    width = group / n
    base = y(min(max(0.0, y.lo), y.hi))
    out = [f'<g class="series" data-series="{escape(s.name)}" data-colour="{colour}">']
    for p in s.points:
        if not isinstance(p.x, str) or p.x not in plot.categories:
            continue
        i = plot.categories.index(p.x)
        x0 = x.px_lo + band * i + (band - group) / 2 + width * index
        top = y(p.y)
        out.append(_point_group(s, p))
        out.append(
            f'<rect class="bar" x="{x0 + 1:.2f}" y="{min(top, base):.2f}" '
            f'width="{max(width - 2, 1):.2f}" height="{abs(base - top):.2f}" fill="{colour}" '
            f'fill-opacity="0.85" data-value-edge="{"top" if top <= base else "bottom"}"/>'
        )
        if abs(base - top) < 1.5:  # a zero: a sliver of the series' colour on the baseline
            out.append(
                f'<rect class="zero" x="{x0 + 1:.2f}" y="{base - 1:.2f}" '
                f'width="{max(width - 2, 1):.2f}" height="2" fill="{colour}"/>'
            )
        out.append(_whisker(x0 + width / 2, p.low, p.high, y, "#222"))
        out.append(_tooltip(s, p))
        out.append("</g>")
    out.append("</g>")
    return "\n".join(out)


def _swatch(plot: Plot, series: Series | None, colour: str, x0: float, row: float) -> str:
    """A legend entry's mark: a bar's block, a curve's line, a point's ring, a dashed line
    for a reference (`series` None)."""
    mid = row - 4
    if series is None:
        return (
            f'<line x1="{x0}" x2="{x0 + 16}" y1="{mid}" y2="{mid}" stroke="{colour}" '
            'stroke-dasharray="5 4"/>'
        )
    if plot.kind == "bar":
        return f'<rect x="{x0}" y="{row - 9}" width="14" height="10" fill="{colour}"/>'
    if series.line:
        return (
            f'<line x1="{x0}" x2="{x0 + 16}" y1="{mid}" y2="{mid}" stroke="{colour}" '
            f'stroke-width="1.6"/><circle cx="{x0 + 8}" cy="{mid}" r="3" fill="{colour}"/>'
        )
    return (
        f'<circle cx="{x0 + 8}" cy="{mid}" r="4.5" fill="white" stroke="{colour}" '
        'stroke-width="1.8"/>'
    )


def _legend(plot: Plot, colours: dict[str, str], top: float) -> str:
    x0 = WIDTH - LEGEND_WIDTH + 8
    max_chars = int((LEGEND_WIDTH - 34) / (FONT_SIZE * CHAR_WIDTH))
    entries: list[tuple[str, Series | None, str]] = [
        (s.name, s, colours[s.colour_key]) for s in plot.series
    ]
    entries += [(r, None, REFERENCE_COLOUR) for r in _distinct_references(plot.references)]
    out = ['<g class="legend">']
    for i, (name, series, colour) in enumerate(entries):
        row = top + 6 + ROW * i
        shown = name if len(name) <= max_chars else name[: max_chars - 1] + "\u2026"
        out.append(
            f'<g class="legend-entry" data-name="{escape(name)}">'
            f"{_swatch(plot, series, colour, x0, row)}"
            f'<text x="{x0 + 22}" y="{row}" fill="#111">{escape(shown)}'
            f"<title>{escape(name)}</title></text></g>"
        )
    out.append("</g>")
    return "\n".join(out)


def _distinct_references(refs: tuple[Reference, ...]) -> list[str]:
    """One legend line per distinct legend name (per-category references share one)."""
    return list(dict.fromkeys(ref.legend or ref.label for ref in refs))
