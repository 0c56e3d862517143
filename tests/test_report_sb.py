"""The report's SB plots (`sandbox/review/report/plots.py`: sb_calibration, sb_selectivity,
sb_detectors, sb_roc) on a real run of `configs/sandbagging.yaml` (conftest's `sb_run`): each
point is the value the SB game wrote in `summary.json`, read here from the file itself, and the
report draws every plot.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from control.metrics.sandbagging import auroc
from sandbox.core.results import Summary
from sandbox.review.report import build_report, html, markdown, read_run, svg
from sandbox.review.report.model import Plot
from sandbox.review.report.plots import (
    roc_points,
    sb_calibration,
    sb_detectors,
    sb_roc,
    sb_selectivity,
)

SB_PLOTS = ["sb-selectivity", "sb-calibration", "sb-detectors", "sb-roc"]


def _details(run: tuple[Path, Summary]) -> dict[str, dict[str, Any]]:
    """Each model's SB game details by environment, from summary.json's own text."""
    data = json.loads((run[0] / "summary.json").read_text(encoding="utf-8"))
    return {
        model: {g["environment"]: g["details"] for g in entry["games"].values()}
        for model, entry in data["models"].items()
    }


def _series(plot: Plot) -> dict[str, list[tuple[Any, float, Any, Any]]]:
    return {s.name: [(p.x, p.y, p.low, p.high) for p in s.points] for s in plot.series}


def _area(points: list[tuple[float, float, float]]) -> float:
    xs, ys = zip(*[(x, y) for x, y, _ in points], strict=True)
    return float(sum((xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1]) / 2 for i in range(1, len(xs))))


# --- roc_points: pure -----------------------------------------------------------------------


def test_the_area_under_the_roc_points_is_the_auroc() -> None:
    """With ties (integer scores) and without; a curve with its axes swapped, or ties not
    stepped diagonally, has another area."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        pos = [float(v) for v in rng.integers(0, 6, rng.integers(1, 30))]
        neg = [float(v) for v in rng.integers(0, 4, rng.integers(1, 30))]
        points = roc_points(pos, neg)
        assert points[0][:2] == (0.0, 0.0) and points[-1][:2] == (1.0, 1.0)
        fprs, tprs = [p[0] for p in points], [p[1] for p in points]
        assert fprs == sorted(fprs) and tprs == sorted(tprs)
        assert _area(points) == pytest.approx(auroc(pos, neg))
        uniform = [float(v) for v in rng.random(15)]
        other = [float(v) for v in rng.random(11) + 0.3]
        assert _area(roc_points(other, uniform)) == pytest.approx(auroc(other, uniform))


def test_roc_points_of_separated_and_tied_scores() -> None:
    # every positive above every negative: through (0, 1)
    assert [p[:2] for p in roc_points([0.9, 0.8], [0.1, 0.2, 0.3])] == [
        (0.0, 0.0),
        (0.0, 0.5),
        (0.0, 1.0),
        (1 / 3, 1.0),
        (2 / 3, 1.0),
        (1.0, 1.0),
    ]
    # all tied: the diagonal in one step
    assert [p[:2] for p in roc_points([0.5] * 3, [0.5] * 4)] == [(0.0, 0.0), (1.0, 1.0)]
    with pytest.raises(ValueError):
        roc_points([], [0.1])


# --- the plots on configs/sandbagging.yaml ----------------------------------------------------


def test_the_calibration_curve_is_each_models_reachable_targets(
    sb_run: tuple[Path, Summary],
) -> None:
    plot = sb_calibration(sb_run[1])
    assert plot is not None and plot.kind == "scatter"
    assert [r.diagonal for r in plot.references] == [True]
    details = _details(sb_run)
    want = {}
    for model, games in details.items():
        d = games["calibrated_sandbagging"]
        if d["untestable"]:
            continue
        want[model] = [
            (p["target"], p["accuracy"]["value"], p["accuracy"]["low"], p["accuracy"]["high"])
            for p in d["points"]
        ]
        assert [p[0] for p in want[model]] == d["reachable_targets"]
    assert _series(plot) == want
    assert all(s.line for s in plot.series)
    # what the curves show: the sandbagger on the diagonal, honest flat at its accuracy
    sandbagger = _series(plot)["sandbagger"]
    assert [x for x, *_ in sandbagger] == [0.25, 0.5, 0.75]
    assert all(low <= x <= high for x, _, low, high in sandbagger)
    assert {y for _, y, *_ in _series(plot)["honest"]} == {1.0}


def test_the_selectivity_bars_are_accuracy_per_domain_and_instruction(
    sb_run: tuple[Path, Summary],
) -> None:
    plot = sb_selectivity(sb_run[1])
    assert plot is not None and plot.kind == "bar"
    assert plot.categories == (
        "hazard, neutral",
        "hazard, sandbag",
        "general, neutral",
        "general, sandbag",
    )
    details = _details(sb_run)
    got = _series(plot)
    assert set(got) == set(details)
    for model, games in details.items():
        acc = games["selective_sandbagging"]["accuracy"]
        want = []
        for category in plot.categories:
            domain, condition = category.split(", ")
            e = acc[condition][domain]
            want.append((category, e["value"], e["low"], e["high"]))
        assert got[model] == want, model
    # the selective sandbagger drops on hazard items only: its hazard bar under instruction
    # lies wholly below its neutral one, its general bars do not move
    s = {x: (y, low, high) for x, y, low, high in got["sandbagger"]}
    assert s["hazard, sandbag"][2] < s["hazard, neutral"][1]
    assert s["general, sandbag"][0] == s["general, neutral"][0]


def test_the_detector_bars_are_each_models_aurocs_but_the_references(
    sb_run: tuple[Path, Summary],
) -> None:
    plot = sb_detectors(sb_run[1])
    assert plot is not None and plot.kind == "bar"
    assert [(r.value, r.diagonal) for r in plot.references] == [(0.5, False)]
    details = _details(sb_run)
    want = {}
    for model, games in details.items():
        d = games["passing_for_weaker"]
        if model == d["reference"]:
            continue
        want[model] = [(k, e["value"], e["low"], e["high"]) for k, e in d["aurocs"].items()]
    assert "weak" not in want and set(want) == {"sandbagger", "crude_sandbagger", "honest"}
    assert _series(plot) == want
    # detector (a), difficulty consistency, and (b), the trusted monitor's scores of the sheets
    assert plot.categories == ("difficulty", "monitor")
    # the sandbagger passes both (each interval holds 0.5), the crude one is caught by both
    for detector in range(2):
        sandbagger, crude = want["sandbagger"][detector], want["crude_sandbagger"][detector]
        assert sandbagger[2] <= 0.5 <= sandbagger[3], sandbagger
        assert crude[2] > 0.5, crude


def test_each_roc_curve_encloses_its_models_auroc(sb_run: tuple[Path, Summary]) -> None:
    """Drawn from the sheets' detector scores: the model's sheets told to pass for weaker
    against the reference's neutral ones, the very sets its AUROC reads."""
    plot = sb_roc(sb_run[1])
    assert plot is not None and plot.kind == "scatter"
    assert [r.diagonal for r in plot.references] == [True]
    details = _details(sb_run)
    names = [s.name for s in plot.series]
    assert names == ["sandbagger", "crude_sandbagger", "honest"]
    for s in plot.series:
        d = details[s.name]["passing_for_weaker"]
        points = [(float(p.x), p.y, 0.0) for p in s.points]
        assert _area(points) == pytest.approx(d["aurocs"]["difficulty"]["value"]), s.name
        assert s.line and points[0][:2] == (0.0, 0.0) and points[-1][:2] == (1.0, 1.0)


def test_the_report_draws_the_sb_plots(sb_run: tuple[Path, Summary]) -> None:
    summary, config, text = read_run(sb_run[0])
    report = build_report(summary, config, text)
    sb = {s.id: s for s in report.sections}["sb"]
    assert [p.id for p in sb.plots] == SB_PLOTS
    page = html.render(report)
    figures = dict(re.findall(r'<figure data-plot="([^"]+)">(.*?)</figure>', page, re.S))
    assert list(figures) == SB_PLOTS
    for plot in sb.plots:
        # every point drawn, with its own value, in the model's colour throughout the report
        drawn = re.findall(r'<g class="point"[^>]*?data-y="([^"]+)"', figures[plot.id])
        ys = [float(v) for v in drawn]
        assert ys == pytest.approx([p.y for s in plot.series for p in s.points]), plot.id
        assert plot.colour_keys == tuple(summary.models)
    assert svg.render(sb.plots[0]).count('class="point"') == 16  # 4 models x 4 bars
    text_md = markdown.render(report)
    for plot in sb.plots:
        assert f"### {plot.title}" in text_md


def test_no_sb_plot_without_its_game(sb_run: tuple[Path, Summary]) -> None:
    """A run without a game has none of its plots (the others stay)."""
    summary = sb_run[1]
    models = {
        m: e.model_copy(
            update={"games": {g: v for g, v in e.games.items() if g != "passing_for_weaker"}}
        )
        for m, e in summary.models.items()
    }
    partial = summary.model_copy(update={"models": models})
    assert sb_detectors(partial) is None and sb_roc(partial) is None
    assert sb_selectivity(partial) is not None and sb_calibration(partial) is not None
