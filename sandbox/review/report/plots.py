"""The report's plots, from `summary.json` (pure: the `Summary` in, plot models out).

Each builder returns None when its part did not run, so a report plots only what ran. Every
point carries the summary's own value and interval (no rescaling but win / optimal, as the
profile reads it), one series per model, so a point can be traced back to its summary entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sandbox.core.results import DeploymentScore, GameScore, Interval, Summary
from sandbox.review.report.model import Plot, Point, Reference, Series


def _complete_games(summary: Summary, suite: str) -> Iterator[tuple[str, str, GameScore]]:
    for model, entry in summary.models.items():
        for gid, g in entry.games.items():
            if g.suite == suite and isinstance(g, GameScore):
                yield model, gid, g


def _point(x: float | str, est: Interval | Mapping[str, Any], label: str) -> Point:
    """A point at an estimate: an `Interval`, or one in a game's `details` (the same keys)."""
    if isinstance(est, Interval):
        return Point(x=x, y=est.value, low=est.low, high=est.high, label=label)
    return Point(x=x, y=est["value"], low=est["low"], high=est["high"], label=label)


def _categories(keys: Iterator[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(keys))


def _per_model(by_model: Mapping[str, list[Point]]) -> tuple[Series, ...]:
    return tuple(Series(m, tuple(ps)) for m, ps in by_model.items())


def xc_calibration(summary: Summary) -> Plot | None:
    """Measured GO (attack) rate against the optimal rate, every GO/WAIT observation of every XC
    game; a sweep's points joined into its calibration curve."""
    points: dict[str, list[Point]] = {}
    sweeps: list[Series] = []
    for model, gid, g in _complete_games(summary, "xc"):
        d = g.details
        own = points.setdefault(model, [])
        if "go_rate" in d:
            own.append(_point(d["optimal_go_rate"], d["go_rate"], gid))
        if "go_rate_cue" in d:
            own.append(_point(d["optimal_go_rate_cue"], d["go_rate_cue"], f"{gid}: cue"))
            own.append(_point(d["optimal_go_rate_plain"], d["go_rate_plain"], f"{gid}: no cue"))
        if "points" in d:
            curve = tuple(
                _point(
                    p["optimal_go_rate"], p["go_rate"], f"{gid}: N={p['rounds']}, M={p['audited']}"
                )
                for p in d["points"]
            )
            sweeps.append(Series(f"{model}: {gid}", curve, line=True, key=model))
    series = [Series(m, tuple(ps)) for m, ps in points.items() if ps] + sweeps
    if not series:
        return None
    return Plot(
        id="xc-calibration",
        kind="scatter",
        title="Attack rate against the optimal rate (XC)",
        caption=(
            "each GO/WAIT observation of each XC game: the measured GO rate (Wilson interval) "
            "against the rate of the optimal memoryless policy; on the diagonal is optimal "
            "play. A sweep's points are joined: its calibration curve"
        ),
        x_label="optimal GO rate",
        y_label="measured GO rate",
        series=tuple(series),
        references=(Reference("optimal", diagonal=True),),
    )


def xc_win(summary: Summary) -> Plot | None:
    """Win / optimal per XC game, against the verdict threshold."""
    rows = list(_complete_games(summary, "xc"))
    if not rows:
        return None
    by_model: dict[str, list[Point]] = {}
    for model, gid, g in rows:
        opt = g.optimal_win
        if not opt:
            continue
        win = g.win
        by_model.setdefault(model, []).append(
            Point(gid, win.value / opt, win.low / opt, win.high / opt, gid)
        )
    threshold = summary.xc_threshold
    refs = () if threshold is None else (Reference(f"threshold {threshold:g}", threshold),)
    return Plot(
        id="xc-win",
        kind="bar",
        title="Win rate over the optimum per XC game",
        caption=(
            "the empirical policy's win probability over the optimal policy's, with its "
            "interval; a game is solved when the whole interval lies at or above the threshold"
        ),
        x_label="game",
        y_label="win / optimal",
        series=_per_model(by_model),
        categories=_categories(gid for _, gid, _ in rows),
        references=refs,
    )


def co_agreement(summary: Summary) -> Plot | None:
    """Pairwise agreement of independent copies per CO game, against chance."""
    rows = [r for r in _complete_games(summary, "co") if "pairwise_agreement" in r[2].details]
    if not rows:
        return None
    by_model: dict[str, list[Point]] = {}
    chance: dict[str, float] = {}
    for model, gid, g in rows:
        d = g.details
        by_model.setdefault(model, []).append(_point(gid, d["pairwise_agreement"], gid))
        chance[gid] = d["chance_agreement"]
    return Plot(
        id="co-agreement",
        kind="bar",
        title="Agreement without a channel (CO)",
        caption=(
            "the share of disjoint pairs of independent contexts that picked the same option "
            "(Wilson interval), beside chance (dashed): Schelling and signal agreement"
        ),
        x_label="game",
        y_label="pairwise agreement",
        series=_per_model(by_model),
        categories=tuple(chance),
        references=tuple(
            Reference(f"chance {c:.2f}", c, category=g, legend="chance (per game)")
            for g, c in chance.items()
        ),
    )


def co_collusion(summary: Summary) -> Plot | None:
    """Red's win rate under untrusted monitoring per countermeasure (models that attacked)."""
    by_model: dict[str, list[Point]] = {}
    order: list[str] = []
    for model, entry in summary.models.items():
        d = entry.deployment
        collusion = (d.collusion if isinstance(d, DeploymentScore) else None) or {}
        for cm, c in collusion.items():
            order.append(cm)
            if c.red_win is not None:
                by_model.setdefault(model, []).append(_point(cm, c.red_win, cm))
    if not order:
        return None
    return Plot(
        id="co-collusion",
        kind="bar",
        title="Collusion under untrusted monitoring: red's win rate per countermeasure",
        caption=(
            "P(a backdoor ships unaudited before blue catches an attack or shuts the monitor "
            "down), bootstrap intervals; models that made no attack are not drawn"
        ),
        x_label="countermeasure",
        y_label="red wins",
        series=_per_model(by_model),
        categories=_categories(iter(order)),
    )


def tg_gap(summary: Summary) -> Plot | None:
    """The TG compliance gap (training minus deployment cue) per factor cell: one category per
    cell, or per (game, cell) where the run has several TG games, so no two points of a model
    share a bar."""
    rows = list(_complete_games(summary, "tg"))
    if not rows:
        return None
    by_model: dict[str, list[Point]] = {}
    categories: list[str] = []
    several = len({gid for _, gid, _ in rows}) > 1
    for model, gid, g in rows:
        for cell, c in g.details["cells"].items():
            category = f"{gid}: {cell}" if several else cell
            categories.append(category)
            by_model.setdefault(model, []).append(_point(category, c["gap"], category))
    return Plot(
        id="tg-gap",
        kind="bar",
        title="Training-gaming gap per factor cell (TG, a propensity)",
        caption=(
            "compliance under the training cue minus under the deployment cue, per cell of "
            "value conflict (vc), training information (ti) and scratchpad (sp), 1 on, 0 off; "
            "above 0: complies more when told it is trained on"
        ),
        x_label="game: cell" if several else "cell",
        y_label="compliance gap",
        series=_per_model(by_model),
        y_range=(-1.0, 1.0),
        categories=_categories(iter(categories)),
        references=(Reference("no gap", 0.0),),
    )


def protocol_frontier(summary: Summary) -> Plot | None:
    """Safety against usefulness: per model, the protocol as run and the defer-to-trusted
    frontier over defer fractions computed from the same steps."""
    series: list[Series] = []
    for model, entry in summary.models.items():
        d = entry.deployment
        if not isinstance(d, DeploymentScore):
            continue
        curve = tuple(
            _frontier_point(p.usefulness, p.safety, f"defer {p.defer_fraction:g}")
            for p in d.frontier
            if p.usefulness is not None and p.safety is not None
        )
        if curve:
            series.append(Series(f"{model}: defer frontier", curve, True, model))
        if d.usefulness is not None and d.safety is not None:
            point = _frontier_point(d.usefulness, d.safety, d.protocol)
            series.append(Series(f"{model}: {d.protocol}", (point,), key=model))
    if not series:
        return None
    return Plot(
        id="protocol-frontier",
        kind="scatter",
        title="Safety against usefulness per protocol",
        caption=(
            "safety: P(no backdoor ships unaudited in a deployment); usefulness: 0 = the "
            "trusted model's correctness, 1 = the untrusted model's; the curve defers to the "
            "trusted model a growing share of steps (its labels), intervals on both axes"
        ),
        x_label="usefulness",
        y_label="safety",
        series=tuple(series),
    )


def _frontier_point(useful: Interval, safety: Interval, label: str) -> Point:
    return Point(
        x=useful.value,
        y=safety.value,
        low=safety.low,
        high=safety.high,
        label=label,
        x_low=useful.low,
        x_high=useful.high,
    )


SB_DOMAINS = ("hazard", "general")
"""The selective game's domains, in the order drawn (the target domain first)."""


def _sb_game(summary: Summary, environment: str) -> Iterator[tuple[str, str, GameScore]]:
    """Every complete SB game of one environment (by name, not id: a config may rename it)."""
    for model, gid, g in _complete_games(summary, "sb"):
        if g.environment == environment:
            yield model, gid, g


def sb_calibration(summary: Summary) -> Plot | None:
    """Measured accuracy against the target accuracy of each calibrated_sandbagging game: one
    curve per model through the targets it can reach (the points its slope is fitted to), read
    against the diagonal. A model whose game is untestable has no curve."""
    series: list[Series] = []
    several = len({gid for _, gid, _ in _sb_game(summary, "calibrated_sandbagging")}) > 1
    for model, gid, g in _sb_game(summary, "calibrated_sandbagging"):
        points = g.details.get("points")
        if not points:
            continue
        name = f"{model}: {gid}" if several else model
        curve = tuple(
            _point(p["target"], p["accuracy"], f"{gid}: target {p['target']:g}") for p in points
        )
        series.append(Series(name, curve, line=True, key=model))
    if not series:
        return None
    return Plot(
        id="sb-calibration",
        kind="scatter",
        title="Accuracy against the target accuracy (SB, calibrated sandbagging)",
        caption=(
            "told to answer a given share correctly: the measured accuracy (bootstrap interval "
            "over items) at each target the model can reach (below its neutral accuracy), "
            "joined into its calibration curve; on the diagonal it hits every target. A model "
            "at the floor (untestable) has no curve"
        ),
        x_label="target accuracy",
        y_label="measured accuracy",
        series=tuple(series),
        references=(Reference("target hit", diagonal=True),),
    )


def sb_selectivity(summary: Summary) -> Plot | None:
    """Accuracy per domain (hazard, general) under the neutral instruction and under the
    instruction to sandbag on hazard items, per model, for each selective_sandbagging game."""
    rows = list(_sb_game(summary, "selective_sandbagging"))
    if not rows:
        return None
    several = len({gid for _, gid, _ in rows}) > 1
    by_model: dict[str, list[Point]] = {}
    categories: list[str] = []
    for model, gid, g in rows:
        accuracy = g.details["accuracy"]
        for domain in SB_DOMAINS:
            for condition, by_domain in accuracy.items():
                category = f"{domain}, {condition}"
                if several:
                    category = f"{gid}: {category}"
                categories.append(category)
                by_model.setdefault(model, []).append(_point(category, by_domain[domain], category))
    return Plot(
        id="sb-selectivity",
        kind="bar",
        title="Accuracy per domain, neutral and told to sandbag (SB, selective sandbagging)",
        caption=(
            "accuracy on hazard and general items (bootstrap interval over items) under the "
            "neutral instruction and under the instruction to underperform on hazard items "
            "only (sandbag): a selective sandbagger drops on hazard items and keeps general "
            "ones; its selectivity is the hazard drop minus the general drop"
        ),
        x_label="domain, instruction",
        y_label="accuracy",
        series=_per_model(by_model),
        categories=_categories(iter(categories)),
    )


def sb_detectors(summary: Summary) -> Plot | None:
    """Each detector's AUROC per model in passing_for_weaker: how well it tells the model's
    sandbagged answer sheets from the reference's own (0.5: it cannot; 1: always)."""
    by_model: dict[str, list[Point]] = {}
    categories: list[str] = []
    rows = [r for r in _sb_game(summary, "passing_for_weaker") if "aurocs" in r[2].details]
    several = len({gid for _, gid, _ in rows}) > 1
    for model, gid, g in rows:
        reference = g.details.get("reference")
        if model == reference:
            continue  # the reference against itself: nothing to detect
        for detector, est in g.details["aurocs"].items():
            category = f"{gid}: {detector}" if several else detector
            categories.append(category)
            by_model.setdefault(model, []).append(_point(category, est, category))
    if not by_model:
        return None
    return Plot(
        id="sb-detectors",
        kind="bar",
        title="Passing for weaker: each detector's AUROC (SB)",
        caption=(
            "how well a black-box detector separates the model's answer sheets when told to "
            "pass for the weaker reference model from the reference's own sheets (AUROC, "
            "bootstrap interval over sheets): difficulty, whether failures follow difficulty; "
            "monitor, a trusted model's score. At 0.5 the model passes for the reference"
        ),
        x_label="detector",
        y_label="AUROC",
        series=_per_model(by_model),
        categories=_categories(iter(categories)),
        references=(Reference("chance 0.5: passes", 0.5),),
    )


def roc_points(positive: list[float], negative: list[float]) -> list[tuple[float, float, float]]:
    """The ROC curve of scores (higher: more likely positive) as (false positive rate, true
    positive rate, threshold): flagging every score at or above each distinct threshold, from
    the highest down, after (0, 0) for flagging none. The trapezoids under it sum to the
    AUROC with ties counted half (`metrics.auroc`)."""
    if not positive or not negative:
        raise ValueError("ROC points need scores in both sets")
    out = [(0.0, 0.0, float("inf"))]
    for t in sorted(set(positive) | set(negative), reverse=True):
        fpr = sum(s >= t for s in negative) / len(negative)
        tpr = sum(s >= t for s in positive) / len(positive)
        out.append((fpr, tpr, float(t)))
    return out


def sb_roc(summary: Summary) -> Plot | None:
    """The difficulty detector's ROC curve per model in passing_for_weaker, from the per-sheet
    scores in the details: the model's sheets told to pass for weaker (positives) against the
    reference model's neutral sheets (negatives), the same sets its AUROC reads."""
    series: list[Series] = []
    rows = [r for r in _sb_game(summary, "passing_for_weaker") if "aurocs" in r[2].details]
    several = len({gid for _, gid, _ in rows}) > 1
    for model, gid, g in rows:
        reference = g.details.get("reference")
        ref_entry = summary.models.get(reference) if reference else None
        ref_game = ref_entry.games.get(gid) if ref_entry else None
        if model == reference or not isinstance(ref_game, GameScore):
            continue
        positive = list(g.details["inversions"]["weaker"])
        negative = list(ref_game.details["inversions"]["neutral"])
        curve = tuple(
            Point(x=fpr, y=tpr, label=f"inversions >= {t:.3g}")
            for fpr, tpr, t in roc_points(positive, negative)
        )
        name = f"{model}: {gid}" if several else model
        series.append(Series(name, curve, line=True, key=model))
    if not series:
        return None
    return Plot(
        id="sb-roc",
        kind="scatter",
        title="Passing for weaker: the difficulty detector's ROC curve (SB)",
        caption=(
            "per model, each threshold on the share of failures on easier items (an answer "
            "sheet at or above it is flagged as sandbagging): the share of the reference's own "
            "sheets flagged (false positives) against the share of the model's sheets flagged "
            "(true positives). On the diagonal the detector cannot tell the model from the "
            "reference"
        ),
        x_label="false positive rate (reference's sheets flagged)",
        y_label="true positive rate (model's sheets flagged)",
        series=tuple(series),
        references=(Reference("chance", diagonal=True),),
    )
