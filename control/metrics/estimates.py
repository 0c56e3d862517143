"""Estimates with intervals: the `Estimate` every metric returns, the Wilson interval for a
binomial proportion, and the percentile interval of a bootstrap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with a two-sided interval at `confidence`, from `n` observations."""

    value: float
    low: float
    high: float
    confidence: float
    n: int

    def contains(self, x: float, tol: float = 0.0) -> bool:
        return self.low - tol <= x <= self.high + tol

    def overlaps(self, other: Estimate) -> bool:
        return self.low <= other.high and other.low <= self.high

    def as_dict(self) -> dict[str, float | int]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "n": self.n,
        }


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion; well behaved at 0 and n successes."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return Estimate(math.nan, 0.0, 1.0, confidence, 0)
    z = _z(confidence)
    phat = successes / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Estimate(phat, low, high, confidence, n)


def percentile_interval(stats: np.ndarray, point: float, confidence: float) -> tuple[float, float]:
    """The percentile interval of bootstrap `stats` at `confidence`, widened to hold `point`
    (a replicate set that misses its own point estimate still brackets it)."""
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(min(low, point)), float(max(high, point))
