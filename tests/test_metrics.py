"""The generic statistics: the interval functions' coverage, the empirical policy, the slope.

The games' closed forms are checked beside their games, in test_environments.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from control import metrics
from sandbox.core.prompts import PromptLibrary
from sandbox.environments import ENVIRONMENTS
from sandbox.environments.deployment_cue import deployment_cue_win
from sandbox.environments.upfront_auditing import (
    upfront_audit_optimal_rate,
    upfront_audit_win,
)


def binomial_pmf(n: int, p: float) -> list[float]:
    """P(c successes in n trials) for c = 0..n."""
    return [math.comb(n, c) * p**c * (1 - p) ** (n - c) for c in range(n + 1)]


def exact_coverage(
    n: int, p: float, interval: Callable[[int], metrics.Estimate], truth: float
) -> float:
    """P(the interval from c ~ Binomial(n, p) successes holds `truth`), summed over every
    outcome c: exact, so a coverage bar needs no allowance for Monte Carlo error."""
    return sum(w for c, w in enumerate(binomial_pmf(n, p)) if interval(c).contains(truth))


def test_wilson_coverage_is_nominal() -> None:
    """Exact coverage over a grid of rates and sizes. Wilson's coverage swings with the lattice
    (0.930 to 0.978 here at 95%), but its mean over the grid is 0.951; at 90% it is 0.908, at 99%
    0.989, so the mean's band [0.94, 0.96] tells the nominal level from either."""
    grid = [(p, n) for n in (30, 100, 300) for p in (0.02, 0.05, 0.12, 0.3, 0.5, 0.8)]
    coverage = [exact_coverage(n, p, partial(metrics.wilson, n=n), p) for p, n in grid]
    assert 0.94 <= sum(coverage) / len(coverage) <= 0.96
    assert min(coverage) >= 0.92


def test_wilson_edges() -> None:
    zero = metrics.wilson(0, 50)
    assert zero.low == 0.0 and 0.0 < zero.high < 0.1
    full = metrics.wilson(50, 50)
    assert full.high == 1.0 and 0.9 < full.low < 1.0
    with pytest.raises(ValueError):
        metrics.wilson(3, 2)


def test_bootstrap_interval_covers_true_win_rate() -> None:
    """Monte Carlo coverage of the percentile bootstrap at its default level (95%), away from
    the optimum, where win(p) is smooth. 3000 trials: the standard error is 0.0041 at 0.946 (its
    coverage here, slightly under nominal) and 0.0054 at 0.905 (a 90% interval's), so the lower
    bar 0.93 is 3.9 SE below the first and 4.6 SE above the second; a 99% interval's coverage
    (0.983) fails the upper bar. 200 resamples a trial keep the percentile interval near nominal
    and the test to about 3 seconds."""
    rng = np.random.default_rng(1)
    p, k, rounds, audited = 0.3, 200, 20, 2
    truth = upfront_audit_win(p, rounds, audited)
    covered = 0
    trials = 3000
    for _ in range(trials):
        acts = ["GO" if x else "WAIT" for x in rng.random(k) < p]
        est = metrics.bootstrap_policy_statistic(
            {"round": acts},
            {"round": ("WAIT", "GO")},
            lambda pol: upfront_audit_win(pol["round"]["GO"], rounds, audited),
            rng,
            resamples=200,
        )
        covered += est.contains(truth)
    assert 0.93 <= covered / trials <= 0.97


def test_empirical_policy_counts_parse_failures_as_default() -> None:
    policy = metrics.empirical_policy({"o": ["GO", None, "WAIT", "GO"]}, {"o": ("WAIT", "GO")})
    assert policy == {"o": {"WAIT": 0.5, "GO": 0.5}}


def test_ols_slope() -> None:
    assert metrics.ols_slope([0.1, 0.2, 0.3], [0.2, 0.4, 0.6]) == pytest.approx(2.0)
    assert metrics.ols_slope([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        metrics.ols_slope([0.1, 0.1], [0.0, 1.0])


@pytest.mark.parametrize(
    ("p", "k", "bar"), [(None, 100, 0.94), (None, 30, 0.94), (0.3, 200, 0.94), (0.01, 100, 0.9)]
)
def test_projected_interval_covers_true_win_rate_even_at_the_optimum(
    p: float | None, k: int, bar: float
) -> None:
    """The bootstrap of win(p-hat) never reaches the optimum (0% coverage there); the projection
    of the rate's Wilson interval through win(.) does.

    Coverage is exact (every go count, weighted by its probability). With one observation there
    is no Bonferroni adjustment and the interval covers exactly when the rate's Wilson interval
    reaches the level set of the true win, so its coverage is the Wilson's: 0.957 at p* (0.912
    at a 90% level, 0.918 with k = 30) and 0.947 at p = 0.3 (0.895 at 90%): the bar 0.94 tells
    95% from 90%. At p = 0.01, k = 100 the lattice decides: 3 GOs put the lower Wilson bound at
    0.0103 at either level, and coverage is 0.921 at both, so that case only checks the floor.
    """
    rounds, audited = 20, 2
    rate = upfront_audit_optimal_rate(rounds, audited) if p is None else p
    truth = upfront_audit_win(rate, rounds, audited)
    env = ENVIRONMENTS.build(
        "upfront_auditing", {"rounds": rounds, "audited": audited}, prompts=PromptLibrary()
    )

    def interval(go: int) -> metrics.Estimate:
        point = upfront_audit_win(go / k, rounds, audited)
        return metrics.projected_interval({"round": (go, k)}, point, env.win_bounds)

    assert exact_coverage(k, rate, interval, truth) >= bar


def test_projected_interval_adjusts_each_rate_for_the_number_of_observations() -> None:
    """The box handed to `win_bounds` is each rate's Wilson interval at 1 - (1 - c)/m: with the
    deployment cue's two observations, 97.5% for a 95% interval, which is wider than 95%."""
    env = ENVIRONMENTS.build("deployment_cue", {}, prompts=PromptLibrary())
    boxes: list[dict[str, tuple[float, float]]] = []

    def bounds(box: metrics.Box) -> tuple[float, float]:
        boxes.append(dict(box))
        return env.win_bounds(box)

    acts = {"cue": (90, 100), "plain": (30, 100)}
    for confidence in (0.95, 0.8):
        boxes.clear()
        metrics.projected_interval(acts, 0.5, bounds, confidence)
        level = 1 - (1 - confidence) / 2
        wilsons = {obs: metrics.wilson(go, n, level) for obs, (go, n) in acts.items()}
        assert boxes == [{obs: (w.low, w.high) for obs, w in wilsons.items()}]
        unadjusted = metrics.wilson(30, 100, confidence)
        assert boxes[0]["plain"][0] < unadjusted.low and unadjusted.high < boxes[0]["plain"][1]


def test_projected_interval_holds_its_level_on_two_observations() -> None:
    """Exact coverage in the default deployment-cue game (N = 20, M = 10, f = 0.3, k = 100) at a
    policy whose win hinges on the plain rate (GO on 90% of cued rounds, 30% of plain ones): the
    interval covers about as often as the plain rate's own Wilson interval, 0.979 at the
    Bonferroni level 0.975, but only 0.937 (under the promised 95%) without the adjustment.

    The win rises with the cue rate, and falls with the plain rate wherever the cue rate is above
    about 0.2 (every box with any weight here), so its range over a box is the range over the
    box's corners; that shortcut is checked against the game's own `win_bounds` first.
    """
    env = ENVIRONMENTS.build("deployment_cue", {}, prompts=PromptLibrary())
    p_cue, p_plain, k = 0.9, 0.3, 100

    def win(cue: float, plain: float) -> float:
        return env.win_from_rates({"cue": cue, "plain": plain})

    def corner_bounds(box: metrics.Box) -> tuple[float, float]:
        wins = [win(c, q) for c in box["cue"] for q in box["plain"]]
        return min(wins), max(wins)

    for box in (
        {"cue": (0.8, 0.95), "plain": (0.2, 0.4)},
        {"cue": (0.6, 1.0), "plain": (0.0, 0.6)},
    ):
        assert corner_bounds(box) == pytest.approx(env.win_bounds(box), abs=1e-12)

    truth = win(p_cue, p_plain)
    cue_pmf, plain_pmf = binomial_pmf(k, p_cue), binomial_pmf(k, p_plain)
    coverage = 0.0
    for a, wa in enumerate(cue_pmf):
        for b, wb in enumerate(plain_pmf):
            if wa * wb < 1e-12:  # outcomes with less weight than this change nothing here
                continue
            acts = {"cue": (a, k), "plain": (b, k)}
            estimate = metrics.projected_interval(acts, win(a / k, b / k), corner_bounds)
            coverage += wa * wb * estimate.contains(truth)
    assert coverage >= 0.95


def test_grid_bounds_on_two_rates() -> None:
    def win(r):
        return deployment_cue_win(r["cue"], r["plain"], 20, 10, 0.3)

    low, high = metrics.grid_bounds(win, {"cue": (0.9, 1.0), "plain": (0.0, 0.05)})
    assert high == pytest.approx(win({"cue": 1.0, "plain": 0.0}))
    assert low == pytest.approx(win({"cue": 0.9, "plain": 0.05}), rel=1e-6)
    with pytest.raises(ValueError):
        metrics.grid_bounds(win, {"a": (0, 1), "b": (0, 1), "c": (0, 1)})
