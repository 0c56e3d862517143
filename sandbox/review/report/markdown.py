"""A report model as Markdown: every table, and each plot as the table of its points.

Markdown cannot hold the plots themselves (renderers drop inline SVG), so each plot is given as
its numbers, with a pointer to `report.html` where it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.review.report.model import Plot, Report, Table


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _caption(text: str) -> str:
    """A caption in italics (an asterisk in it, as in p*, escaped)."""
    return "*" + _cell(text).replace("*", "\\*") + "*"


def _rows(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    out.append("|" + "---|" * len(columns))
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def table(t: Table) -> list[str]:
    out = [f"### {t.title}", "", *_rows(t.columns, t.rows), ""]
    if t.caption:
        out += [_caption(t.caption), ""]
    return out


def _number(value: float | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:.3f}"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def plot(p: Plot) -> list[str]:
    x_intervals = any(pt.x_low is not None for s in p.series for pt in s.points)
    rows = []
    for s in p.series:
        for point in s.points:
            row = [s.name, point.label, _number(point.x)]
            if x_intervals:
                row.append(_interval(point.x_low, point.x_high))
            rows.append((*row, _number(point.y), _interval(point.low, point.high)))
    columns = ("series", "point", p.x_label, *([f"{p.x_label} interval"] if x_intervals else []))
    columns += (p.y_label, "interval")
    out = [f"### {p.title}", "", _caption(f"Plotted in report.html: {p.caption}"), ""]
    out += [*_rows(columns, rows), ""]
    refs = [r.label for r in p.references if not r.diagonal]
    if refs:
        out += ["References: " + ", ".join(dict.fromkeys(refs)) + ".", ""]
    return out


def render(report: Report) -> str:
    out = [f"# Report: {report.run_id}", ""]
    for section in report.sections:
        out += [f"## {section.title}", ""]
        if section.text:
            out += [section.text, ""]
        for t in section.tables:
            out += table(t)
        for p in section.plots:
            out += plot(p)
    if report.config_yaml:
        out += ["## config.yaml", "", "```yaml", report.config_yaml.rstrip("\n"), "```", ""]
    return "\n".join(out)
