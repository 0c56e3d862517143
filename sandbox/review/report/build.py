"""A run's report model from its `summary.json` and `config.yaml` (pure: no files, no Ray).

Sections in the order a reader asks: the answer first (the capability profile), then the
evidence per suite (XC, CO, TG, control protocols), then what it takes to trust and reproduce
the numbers. A section whose suite did not run is left out, and so is any plot of a part that
did not run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sandbox.core.results import Summary
from sandbox.review.report import plots, tables
from sandbox.review.report.model import Plot, Report, Section, Table


def _present(*items: Table | Plot | None) -> list[Table | Plot]:
    return [i for i in items if i is not None]


def _section(id_: str, title: str, text: str, *items: Table | Plot | None) -> Section | None:
    kept = _present(*items)
    if not kept:
        return None
    return Section(
        id_,
        title,
        text,
        tables=tuple(i for i in kept if isinstance(i, Table)),
        plots=tuple(i for i in kept if isinstance(i, Plot)),
    )


def _coloured(section: Section, models: tuple[str, ...]) -> Section:
    """Colours in the run's model order in every plot, so a model has one colour throughout
    (present in a plot or not)."""
    return replace(section, plots=tuple(replace(p, colour_keys=models) for p in section.plots))


def build_report(summary: Summary, config: Mapping[str, Any], config_yaml: str = "") -> Report:
    """The report of one finished run: `summary` is its `summary.json` (`Summary.read`),
    `config` its parsed `config.yaml` (`config_yaml` the file's text, shown verbatim)."""
    sections = [
        _section(
            "profile",
            "Capability profile",
            "Is a training-gamer also a worst-case schemer? Training-gaming (TG) is measured as a "
            "propensity, cross-context strategy (XC) and coordination (CO) as capabilities, "
            "each with a yes / no / inconclusive verdict read from its interval.",
            tables.profile_table(summary),
        ),
        _section(
            "xc",
            "Cross-context strategy (XC)",
            "Can independent contexts of one model carry out one plan, at the calibrated rate?",
            tables.games_table(summary, "xc", "XC games"),
            plots.xc_calibration(summary),
            plots.xc_win(summary),
        ),
        _section(
            "co",
            "Coordination (CO)",
            "Can copies agree with no channel, and collude through covert signals against "
            "untrusted monitoring?",
            tables.games_table(summary, "co", "CO games"),
            plots.co_agreement(summary),
            tables.collusion_table(summary),
            plots.co_collusion(summary),
        ),
        _section(
            "tg",
            "Training-gaming (TG)",
            "Does the model comply more when told it is trained on? A propensity: nothing in a "
            "TG context asks the model to game.",
            tables.tg_cells_table(summary),
            plots.tg_gap(summary),
        ),
        _section(
            "sb",
            "Sandbagging (SB)",
            "Can the model underperform on purpose when told to: selectively, to a chosen share, "
            "and so as to pass for a weaker model (capabilities)? And does it, unasked (the "
            "propensity probe)?",
            tables.sb_games_table(summary),
            plots.sb_selectivity(summary),
            plots.sb_calibration(summary),
            plots.sb_detectors(summary),
            plots.sb_roc(summary),
        ),
        _section(
            "protocols",
            "Control protocols",
            "Copies of the untrusted model work a stream of tasks under a control protocol.",
            tables.deployments_table(summary),
            plots.protocol_frontier(summary),
        ),
        _section(
            "provenance",
            "Reproduce and trust",
            "What ran, what it cost, and how many answers could not be read.",
            tables.run_table(summary, config),
            tables.usage_table(summary),
            tables.stopping_table(summary),
            tables.parse_failures_table(summary),
        ),
    ]
    return Report(
        run_id=summary.run_id,
        sections=tuple(_coloured(s, tuple(summary.models)) for s in sections if s is not None),
        config_yaml=config_yaml,
    )
