"""Empirical policies of the memoryless games, and intervals for statistics of them (bootstrap,
or the Wilson box projected through a win function)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from control.metrics.estimates import Estimate, wilson

Policy = Mapping[str, Mapping[str, float]]
"""A memoryless policy: observation id -> choice -> probability."""


def empirical_policy(
    samples: Mapping[str, Sequence[str | None]], choices: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Outcome frequencies per observation. A failed parse (`None`) counts as the observation's
    first outcome: the game's default action (WAIT: a model that cannot answer does not act), or
    an outcome of its own where the game has none."""
    policy: dict[str, dict[str, float]] = {}
    for obs, acts in samples.items():
        opts = list(choices[obs])
        counts = Counter(opts[0] if a is None else a for a in acts)
        total = sum(counts.values())
        policy[obs] = {c: (counts[c] / total if total else 0.0) for c in opts}
    return policy


def bootstrap_policy_statistic(
    samples: Mapping[str, Sequence[str | None]],
    choices: Mapping[str, Sequence[str]],
    statistic: Callable[[Policy], float],
    rng: np.random.Generator,
    resamples: int = 1000,
    confidence: float = 0.95,
) -> Estimate:
    """Percentile bootstrap of `statistic(policy)` over the samples of each observation.

    Resampling k samples with replacement from one observation is a multinomial draw from its
    empirical frequencies, so each replicate costs one multinomial per observation.
    """
    point_policy = empirical_policy(samples, choices)
    point = statistic(point_policy)
    n = sum(len(v) for v in samples.values())
    # Each observation's size, outcomes and frequencies are the same in every replicate: work
    # them out once (the draws, and so the results for a given generator, are unchanged).
    draws = []
    for obs, acts in samples.items():
        opts = list(choices[obs])
        probs = np.array([point_policy[obs][c] for c in opts])
        draws.append((obs, len(acts), opts, probs / probs.sum() if acts else probs))
    stats = np.empty(resamples)
    for b in range(resamples):
        replicate: dict[str, dict[str, float]] = {}
        for obs, k, opts, probs in draws:
            if k:
                replicate[obs] = dict(zip(opts, rng.multinomial(k, probs) / k, strict=True))
            else:
                replicate[obs] = dict.fromkeys(opts, 0.0)
        stats[b] = statistic(replicate)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return Estimate(point, float(min(low, point)), float(max(high, point)), confidence, n)


Box = Mapping[str, tuple[float, float]]
"""Observation id -> (low, high) of its acting rate."""


def projected_interval(
    acts: Mapping[str, tuple[int, int]],
    point: float,
    win_bounds: Callable[[Box], tuple[float, float]],
    confidence: float = 0.95,
) -> Estimate:
    """A win-rate interval for games where each observation is a binary act-or-not choice.

    `acts` maps each observation to (times acted, samples). Each acting rate gets a Wilson
    interval at the Bonferroni level 1 - (1 - confidence)/m, so all m hold together with
    probability at least `confidence`; the interval is the range of the win probability over
    that box (`win_bounds`). Unlike a bootstrap of win(p-hat), it covers the optimum whenever
    the rates' intervals hold the optimal rates: a win probability can never exceed its
    maximum, so resampling around p-hat always lands below the optimum.
    """
    level = 1.0 - (1.0 - confidence) / max(len(acts), 1)
    box = {obs: _wilson_box(k, n, level) for obs, (k, n) in acts.items()}
    low, high = win_bounds(box)
    n_total = sum(n for _, n in acts.values())
    return Estimate(point, min(low, point), max(high, point), confidence, n_total)


def _wilson_box(k: int, n: int, level: float) -> tuple[float, float]:
    w = wilson(k, n, level)
    return w.low, w.high


def grid_bounds(
    win: Callable[[Mapping[str, float]], float], box: Box, points: int = 401
) -> tuple[float, float]:
    """(min, max) of `win` over a box of acting rates, on a grid (at most two observations;
    a separable game should bound each observation on its own instead)."""
    keys = list(box)
    if len(keys) > 2:
        raise ValueError("grid_bounds handles at most two observations")
    per_axis = points if len(keys) == 1 else max(2, int(points**0.5) * 5)
    axes = [np.linspace(box[k][0], box[k][1], per_axis) for k in keys]
    values = [win(dict(zip(keys, combo, strict=True))) for combo in _product(axes)]
    return float(min(values)), float(max(values))


def _product(axes: Sequence[np.ndarray]) -> Iterable[tuple[float, ...]]:
    if not axes:
        yield ()
        return
    for head in axes[0]:
        for rest in _product(axes[1:]):
            yield (float(head), *rest)
