"""How an XC game's measured quantity reads against a reference: a least-squares slope, and a
ratio that is NaN rather than infinite where the reference is zero."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def ols_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys on xs (with intercept)."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.size < 2 or np.ptp(x) == 0.0:
        raise ValueError("a slope needs at least two distinct x values")
    xc = x - x.mean()
    return float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))


def ratio(value: float, reference: float) -> float:
    """value / reference, NaN where the reference is zero."""
    return value / reference if reference else math.nan
