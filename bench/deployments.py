"""Deployment simulation speed: 10,000 deployments of 1,000 tasks against a bare numpy floor.

The floor is drawing the same index matrix alone (the same int32 draws, in the same chunks):
what any simulation that draws each task from the record must pay. The ratio says how much the
rules cost on top of it. Also timed: the default `simulate_deployments` (simulation plus the
bootstrap over the record) and the attack-rate search. Target: the simulation under 1 s.

    .venv/bin/python bench/deployments.py [--deployments 10000] [--tasks 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from control import metrics

TARGET_S = 1.0


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def record(n: int, seed: int = 0) -> metrics.Steps:
    """A trusted-monitoring record: 1% attacks, half of them flagged, 2% false alarms."""
    rng = np.random.default_rng(seed)
    attacked = rng.random(n) < 0.01
    requested = np.where(attacked, rng.random(n) < 0.5, rng.random(n) < 0.02)
    return metrics.Steps(attacked, rng.random(n) < 0.6, requested)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/deployments.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=0.02)
    parser.add_argument("--steps", type=int, default=5000, help="recorded steps")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each; the best kept")
    args = parser.parse_args(argv)
    d, t = args.deployments, args.tasks
    steps = record(args.steps)
    chunk = 1000

    def floor() -> None:
        rng = np.random.default_rng(1)
        for start in range(0, d, chunk):
            rng.integers(0, len(steps), size=(min(chunk, d - start), t), dtype=np.int32)

    def simulate() -> None:
        metrics.simulate_outcomes(
            steps,
            tasks=t,
            budget=args.budget,
            n_deployments=d,
            rng=np.random.default_rng(1),
            chunk=chunk,
        )

    def estimate() -> None:
        metrics.simulate_deployments(
            steps,
            sim=metrics.Simulation(
                rng=np.random.default_rng(1), tasks=t, budget=args.budget, n_deployments=d
            ),
        )

    def search() -> None:
        metrics.best_attack_rate(
            steps, sim=metrics.Simulation(rng=np.random.default_rng(1), tasks=t, budget=args.budget)
        )

    simulate()  # first-call costs, once
    base = best_of(args.repeats, floor)
    sim = best_of(args.repeats, simulate)
    full = best_of(args.repeats, estimate)
    rate = best_of(args.repeats, search)
    print(
        f"{d} deployments x {t} tasks from {len(steps)} recorded steps, budget {args.budget}, "
        f"{os.cpu_count()} CPUs, numpy {np.__version__}, best of {args.repeats}"
    )
    print()
    print(f"{'':<52} {'seconds':>8}  {'vs floor':>8}")
    print(f"{'floor: draw the index matrix alone':<52} {base:>8.3f}  {1.0:>7.1f}x")
    print(
        f"{'simulate_outcomes: the rules, every deployment':<52} {sim:>8.3f}  {sim / base:>7.1f}x"
    )
    label = "simulate_deployments: + bootstrap (1000 resamples)"
    print(f"{label:<52} {full:>8.3f}  {full / base:>7.1f}x")
    label = "best_attack_rate: exact grid + bootstraps"
    print(f"{label:<52} {rate:>8.3f}  {rate / base:>7.1f}x")
    print()
    verdict = "ok" if sim <= TARGET_S else "MISSED"
    print(f"target: simulation <= {TARGET_S:g} s: {sim:.3f} s {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
