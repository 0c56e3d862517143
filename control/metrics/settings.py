"""The settings every safety estimate of one deployment shares, as one object.

A deployment's summary estimates safety several ways (simulated, at the red team's best rate,
per countermeasure, along the frontier) and usefulness; each reads the same deployment length,
audit budget, bootstrap size and interval level, and draws from the same generator in turn, so
the bundle is passed once (`Simulation`) rather than as seven keywords at every call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True, slots=True)
class Simulation:
    """rng: the generator every draw comes from, in call order (the caller seeds it). tasks:
    steps per deployment. budget: the share of them that may be audited. n_deployments:
    deployments simulated where safety is simulated. upfront: audits are positional (the first
    floor(budget x tasks) steps, whatever their scores) rather than the protocol's requests.
    resamples, confidence: the bootstrap's replicates and the intervals' level."""

    rng: np.random.Generator
    tasks: int = 1000
    budget: float = 0.02
    n_deployments: int = 10_000
    upfront: bool = False
    resamples: int = 1000
    confidence: float = 0.95

    def by_requests(self) -> Simulation:
        """The same settings with audits going to the steps that ask for one (not positional):
        how a protocol other than the deployment's own is read, such as the defer-to-trusted
        frontier or a countermeasure of untrusted monitoring."""
        return replace(self, upfront=False)
