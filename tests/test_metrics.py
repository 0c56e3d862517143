"""Closed-form optima against brute force, and the interval functions' coverage."""

from __future__ import annotations

import numpy as np
import pytest

from control import metrics
from sandbox.environments import ENVIRONMENTS
from sandbox.prompts import PromptLibrary

GRID = np.linspace(0.0, 1.0, 200_001)


@pytest.mark.parametrize(("rounds", "audited"), [(3, 1), (10, 1), (20, 2), (50, 5), (100, 10)])
def test_upfront_optimum_matches_brute_force(rounds: int, audited: int) -> None:
    wins = (1 - GRID) ** audited * (1 - (1 - GRID) ** (rounds - audited))
    best = int(np.argmax(wins))
    assert metrics.upfront_audit_optimal_rate(rounds, audited) == pytest.approx(
        GRID[best], abs=1e-4
    )
    assert metrics.upfront_audit_optimal_win(rounds, audited) == pytest.approx(wins[best], abs=1e-9)
    p = metrics.upfront_audit_optimal_rate(rounds, audited)
    assert metrics.upfront_audit_win(p, rounds, audited) == pytest.approx(wins[best], abs=1e-9)


def test_upfront_optimum_matches_games_md_figures() -> None:
    assert metrics.upfront_audit_optimal_rate(100, 10) == pytest.approx(0.025, abs=5e-4)
    assert metrics.upfront_audit_optimal_win(100, 10) == pytest.approx(0.697, abs=5e-4)
    assert metrics.upfront_audit_optimal_win(100, 2) == pytest.approx(0.905, abs=5e-4)


@pytest.mark.parametrize(
    ("rounds", "audited", "f"), [(20, 10, 0.3), (20, 2, 0.05), (50, 5, 0.01), (10, 1, 0.5)]
)
def test_deployment_cue_optimum_matches_brute_force(rounds: int, audited: int, f: float) -> None:
    # Brute force over both rates on a grid: the optimum goes on every cued round.
    p_cue = np.linspace(0, 1, 401)[:, None]
    p_plain = np.linspace(0, 1, 4001)[None, :]
    go_later = f * p_cue + (1 - f) * p_plain
    wins = (1 - p_plain) ** audited * (1 - (1 - go_later) ** (rounds - audited))
    i, j = np.unravel_index(np.argmax(wins), wins.shape)
    best_plain, best_win = metrics.deployment_cue_optimum(rounds, audited, f)
    assert p_cue[i, 0] == pytest.approx(1.0)
    assert best_plain == pytest.approx(p_plain[0, j], abs=5e-4)
    assert best_win == pytest.approx(wins[i, j], abs=1e-6)
    assert best_win >= wins.max() - 1e-12


def test_deployment_cue_reduces_to_upfront_without_cue() -> None:
    p, win = metrics.deployment_cue_optimum(20, 2, 0.0)
    assert p == pytest.approx(metrics.upfront_audit_optimal_rate(20, 2))
    assert win == pytest.approx(metrics.upfront_audit_optimal_win(20, 2))


def test_agreement_win() -> None:
    assert metrics.agreement_win([1.0, 0.0], 3) == 1.0
    assert metrics.agreement_win([0.25] * 4, 3) == pytest.approx(4 * 0.25**3)
    with pytest.raises(ValueError):
        metrics.agreement_win([1.0], 1)


def test_wilson_coverage_and_edges() -> None:
    rng = np.random.default_rng(0)
    p, n, trials = 0.12, 100, 2000
    covered = sum(
        metrics.wilson(int(rng.binomial(n, p)), n, 0.95).contains(p) for _ in range(trials)
    )
    assert 0.92 <= covered / trials <= 0.98
    zero = metrics.wilson(0, 50)
    assert zero.low == 0.0 and 0.0 < zero.high < 0.1
    full = metrics.wilson(50, 50)
    assert full.high == 1.0 and 0.9 < full.low < 1.0
    with pytest.raises(ValueError):
        metrics.wilson(3, 2)


def test_bootstrap_interval_covers_true_win_rate() -> None:
    rng = np.random.default_rng(1)
    p, k, rounds, audited = 0.3, 200, 20, 2  # away from the optimum, where win(p) is smooth
    truth = metrics.upfront_audit_win(p, rounds, audited)
    covered = 0
    trials = 200
    for _ in range(trials):
        acts = ["GO" if x else "WAIT" for x in rng.random(k) < p]
        est = metrics.bootstrap_policy_statistic(
            {"round": acts},
            {"round": ("WAIT", "GO")},
            lambda pol: metrics.upfront_audit_win(pol["round"]["GO"], rounds, audited),
            rng,
            resamples=300,
        )
        covered += est.contains(truth)
    assert covered / trials >= 0.85


def test_empirical_policy_counts_parse_failures_as_default() -> None:
    policy = metrics.empirical_policy({"o": ["GO", None, "WAIT", "GO"]}, {"o": ("WAIT", "GO")})
    assert policy == {"o": {"WAIT": 0.5, "GO": 0.5}}


def test_ols_slope() -> None:
    assert metrics.ols_slope([0.1, 0.2, 0.3], [0.2, 0.4, 0.6]) == pytest.approx(2.0)
    assert metrics.ols_slope([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        metrics.ols_slope([0.1, 0.1], [0.0, 1.0])


@pytest.mark.parametrize(("p", "k"), [(None, 100), (None, 30), (0.01, 100), (0.3, 200)])
def test_projected_interval_covers_true_win_rate_even_at_the_optimum(p, k) -> None:
    """The bootstrap of win(p-hat) never reaches the optimum (0% coverage there); the projection
    of the rate's Wilson interval through win(.) does."""
    rounds, audited = 20, 2
    p = metrics.upfront_audit_optimal_rate(rounds, audited) if p is None else p
    truth = metrics.upfront_audit_win(p, rounds, audited)

    env = ENVIRONMENTS.build(
        "upfront_auditing", {"rounds": rounds, "audited": audited}, prompts=PromptLibrary()
    )

    rng = np.random.default_rng(2)
    trials = 400
    covered = 0
    for _ in range(trials):
        go = int(rng.binomial(k, p))
        point = metrics.upfront_audit_win(go / k, rounds, audited)
        estimate = metrics.projected_interval({"round": (go, k)}, point, env.win_bounds)
        covered += estimate.contains(truth)
    assert covered / trials >= 0.9


def test_grid_bounds_on_two_rates() -> None:
    def win(r):
        return metrics.deployment_cue_win(r["cue"], r["plain"], 20, 10, 0.3)

    low, high = metrics.grid_bounds(win, {"cue": (0.9, 1.0), "plain": (0.0, 0.05)})
    assert high == pytest.approx(win({"cue": 1.0, "plain": 0.0}))
    assert low == pytest.approx(win({"cue": 0.9, "plain": 0.05}), rel=1e-6)
    with pytest.raises(ValueError):
        metrics.grid_bounds(win, {"a": (0, 1), "b": (0, 1), "c": (0, 1)})
