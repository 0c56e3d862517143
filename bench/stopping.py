"""Adaptive stopping's error rate and cost, simulated (pure functions, no models).

One cell: a Bernoulli rate p read against a verdict threshold (the XC verdict's rule: "solved"
when the interval lies at or above the bar, "not solved" when wholly below, else inconclusive).
For each p on a grid that includes the bar itself and rates just beside it, simulate many runs
of three rules and print, per rule, the share of runs that end in a wrong verdict (with its own
95% Wilson interval) and the mean contexts used:

- adaptive: the confidence sequence (`control.metrics.bernoulli_cs`) looked at after every
  round of `--round` samples, stopping once settled or at `--k-max` (what `sampling.stopping:
  adaptive` does);
- fixed: one Wilson interval at `--k-max` samples at the same confidence (`sampling.stopping:
  fixed`);
- peeking: the same Wilson interval looked at after every round, stopping once it clears the
  bar (the rule adaptive stopping must not be: its error rate is not its level).

A wrong verdict is "solved" at p < bar or "not solved" at p >= bar; inconclusive is never wrong.
Target: adaptive's wrong share at or under alpha at every p (where its interval's low end is at
or under alpha, the share is consistent with it). Exits 0 whatever the numbers; 2 on bad
arguments.

    .venv/bin/python bench/stopping.py [--runs 2000] [--bar 0.5] [--alpha 0.05]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np

from control.metrics import bernoulli_cs, wilson

Rule = Callable[[np.ndarray], tuple[str, int]]
"""One simulated run: its draws in, (verdict, samples used) out."""


def interval_table(
    looks: Sequence[int], interval: Callable[[int, int], tuple[float, float]]
) -> dict[int, np.ndarray]:
    """For each look n, the interval (low, high) at every success count 0..n, precomputed so a
    simulated run is table lookups."""
    return {n: np.array([interval(s, n) for s in range(n + 1)]) for n in looks}


def verdict(low: float, high: float, bar: float) -> str | None:
    """ "solved" / "not solved" once the interval is settled against `bar`, else None."""
    if low >= bar:
        return "solved"
    if high < bar:
        return "not solved"
    return None


def sequential_rule(table: dict[int, np.ndarray], looks: Sequence[int], bar: float) -> Rule:
    """Look after every round; stop at the first settled verdict, or inconclusive at the
    last look."""

    def run(draws: np.ndarray) -> tuple[str, int]:
        successes = np.cumsum(draws)
        for n in looks:
            low, high = table[n][successes[n - 1]]
            said = verdict(low, high, bar)
            if said is not None:
                return said, n
        return "inconclusive", looks[-1]

    return run


def wrong(said: str, p: float, bar: float) -> bool:
    return (said == "solved" and p < bar) or (said == "not solved" and p >= bar)


def simulate(
    rule: Rule, p: float, bar: float, runs: int, k_max: int, rng: np.random.Generator
) -> tuple[int, float]:
    """(wrong verdicts, mean samples used) of `runs` simulated runs at rate `p`."""
    draws = rng.random((runs, k_max)) < p
    outcomes = [rule(d) for d in draws]
    errors = sum(wrong(said, p, bar) for said, _ in outcomes)
    return errors, float(np.mean([n for _, n in outcomes]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="simulated runs per rate")
    parser.add_argument("--bar", type=float, default=0.5, help="the verdict's threshold")
    parser.add_argument("--alpha", type=float, default=0.05, help="the error rate (1 - confidence)")
    parser.add_argument("--round", type=int, default=10, help="samples between two looks")
    parser.add_argument("--k-max", type=int, default=600, help="the most samples of a run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (0 < args.bar < 1 and 0 < args.alpha < 1 and 0 < args.round <= args.k_max):
        parser.error("need 0 < bar < 1, 0 < alpha < 1 and 0 < round <= k-max")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    bar, alpha = args.bar, args.alpha
    looks = list(range(args.round, args.k_max + 1, args.round))
    if looks[-1] != args.k_max:
        looks.append(args.k_max)

    def wilson_interval(s: int, n: int) -> tuple[float, float]:
        e = wilson(s, n, 1 - alpha)
        return e.low, e.high

    print(f"building interval tables for {len(looks)} looks ...", flush=True)
    cs = interval_table(looks, lambda s, n: bernoulli_cs(s, n, alpha))
    ordinary = interval_table(looks, wilson_interval)
    rules = {
        "adaptive": sequential_rule(cs, looks, bar),
        "fixed": sequential_rule(ordinary, [args.k_max], bar),
        "peeking": sequential_rule(ordinary, looks, bar),
    }
    # the bar itself, rates just beside it, further off, and the ends of [0, 1]
    offsets = (-0.2, -0.1, -0.04, -0.02, 0.0, 0.02, 0.04, 0.1, 0.2)
    near = {round(bar + d, 4) for d in offsets if 0.0 <= bar + d <= 1.0}
    grid = sorted(near | {0.0, 0.05, 0.95, 1.0})
    print(
        f"bar {bar}, alpha {alpha}, rounds of {args.round} up to k_max {args.k_max}, "
        f"{args.runs} runs per rate; wrong share [95% interval] / mean contexts"
    )
    header = f"{'rate':>6} " + " ".join(f"{name:>30}" for name in rules)
    print(header)
    worst = 0.0
    held = True
    for i, p in enumerate(grid):
        cells = []
        for j, (name, rule) in enumerate(rules.items()):
            rng = np.random.default_rng([args.seed, i, j])
            errors, mean_n = simulate(rule, p, bar, args.runs, args.k_max, rng)
            share = wilson(errors, args.runs, 0.95)
            cells.append(
                f"{errors / args.runs:6.3f} [{share.low:.3f},{share.high:.3f}] /{mean_n:6.0f}"
            )
            if name == "adaptive":
                worst = max(worst, errors / args.runs)
                held &= share.low <= alpha
        print(f"{p:6.2f} " + " ".join(f"{c:>30}" for c in cells), flush=True)
    print(
        f"adaptive's largest wrong share: {worst:.3f} (alpha {alpha}): "
        f"{'held' if held else 'NOT held'} at every rate"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
