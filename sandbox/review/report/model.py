"""The report model: what a report says, as plain frozen values, before any rendering.

One model feeds both renderers (`markdown.py`, `html.py`), so the Markdown and the HTML can
never disagree, and tests check the numbers here without a browser. Tables hold formatted text
(what a reader sees); plots hold numbers (what is drawn), each point with its interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Table:
    """A table as shown: `id` is stable (`data-table` in the HTML), cells are text."""

    id: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Point:
    """One plotted value. `x` is a number on a numeric axis or a category's name on a bar
    chart; `low`/`high` (and `x_low`/`x_high`) are its interval, None where the summary has
    none; `label` says what it is (a game, an observation, a defer fraction)."""

    x: float | str
    y: float
    low: float | None = None
    high: float | None = None
    label: str = ""
    x_low: float | None = None
    x_high: float | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """Points of one name in the legend. `line` joins them in x order (a curve); points of the
    same `key` share a colour (a model's sweep curve and its other points)."""

    name: str
    points: tuple[Point, ...]
    line: bool = False
    key: str = ""

    @property
    def colour_key(self) -> str:
        return self.key or self.name


@dataclass(frozen=True, slots=True)
class Reference:
    """A line to read the points against: `y = value` (across the plot, or over one
    `category` of a bar chart), or the diagonal `y = x` when `diagonal`. `legend` names it in
    the legend where several references share one entry (chance over each game)."""

    label: str
    value: float = 0.0
    category: str | None = None
    diagonal: bool = False
    legend: str = ""


@dataclass(frozen=True, slots=True)
class Plot:
    """A scatter (numeric x; `line` series drawn as curves) or a bar chart (one group of bars
    per category, one bar per series). `id` is stable (`data-plot` in the HTML); the ranges are
    widened to hold every value."""

    id: str
    kind: Literal["scatter", "bar"]
    title: str
    caption: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    categories: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    colour_keys: tuple[str, ...] = ()
    """Colour keys in palette order (the run's models), so a model keeps its colour in every
    plot, present or not; keys not listed come after."""


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    text: str = ""
    tables: tuple[Table, ...] = ()
    plots: tuple[Plot, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """A whole report: sections in reading order, and the run's config verbatim."""

    run_id: str
    sections: tuple[Section, ...]
    config_yaml: str = ""

    def plots(self) -> dict[str, Plot]:
        return {p.id: p for s in self.sections for p in s.plots}

    def tables(self) -> dict[str, Table]:
        return {t.id: t for s in self.sections for t in s.tables}
