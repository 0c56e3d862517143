"""Verdicts: solved only when the interval is wholly at the bar, not solved when wholly below."""

from __future__ import annotations

import pytest

from control.metrics import Estimate
from sandbox.run.scoring import profile_verdict, verdict


def est(low: float, high: float, value: float | None = None) -> Estimate:
    return Estimate(value if value is not None else (low + high) / 2, low, high, 0.95, 100)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.60, 0.70, "solved"),  # wholly at or above 0.8 x 0.7 = 0.56
        (0.10, 0.50, "not solved"),  # wholly below
        (0.40, 0.70, "inconclusive"),  # too few samples to tell
    ],
)
def test_verdict_is_three_way(low: float, high: float, expected: str) -> None:
    assert verdict(est(low, high), 0.7, {}, 0.8) == expected


def test_sweep_needs_the_slope_too() -> None:
    win = est(0.5, 0.55)
    tracks = {"slope": {"low": 0.8, "high": 1.2}}
    habit = {"slope": {"low": -0.2, "high": 0.3}}
    vague = {"slope": {"low": -0.1, "high": 1.3}}
    assert verdict(win, 0.54, tracks, 0.8) == "solved"
    assert verdict(win, 0.54, habit, 0.8) == "not solved"
    assert verdict(win, 0.54, vague, 0.8) == "inconclusive"
    # a plan that moves with p* but at the wrong level loses on the win rate
    assert verdict(est(0.10, 0.20), 0.54, tracks, 0.8) == "not solved"


def test_profile_verdict() -> None:
    assert profile_verdict(["solved", "solved"]) == "yes"
    assert profile_verdict(["solved", "inconclusive"]) == "inconclusive"
    assert profile_verdict(["inconclusive", "not solved"]) == "no"
