"""Metrics: pure functions from recorded choices to estimates with confidence intervals.

Nothing here does I/O or knows about Ray, runs or events; every function is deterministic given
its inputs (bootstrap functions take their generator explicitly). Conventions: rates and
probabilities are fractions in [0, 1], never percent; an `Estimate` always carries its interval.

One concept per module, each name re-exported here so callers write `metrics.wilson`:
`estimates` (Estimate, Wilson and percentile intervals), `policies` (the games' empirical
policies), `ratios` (XC slopes and ratios), `thresholds` (audit thresholds and the budget),
`steps` (recorded steps as codes), `simulation` (deployments and their exact safety),
`attack_rate` (the red team's best rate), `usefulness`, `frontier` (safety against usefulness),
`honeypots` (untrusted monitoring's honeypot test); `sequential` (anytime-valid confidence
sequences for rates, which adaptive sampling stops on); `settings` (`Simulation`: the settings
every safety estimate of one deployment shares); `sandbagging` (the SB suite's item bootstrap,
accuracy drops and selectivity, calibration, detectors' AUROCs and the untestable floor).
"""

from control.metrics.attack_rate import (
    RATE_XTOL,
    SAFETY_TOL,
    AttackRateSearch,
    SearchMethod,
    best_attack_rate,
    golden_section_max,
    upfront_best_rate,
)
from control.metrics.estimates import Estimate, percentile_interval, wilson
from control.metrics.frontier import FrontierPoint, safety_usefulness_frontier
from control.metrics.honeypots import (
    honeypot_count,
    honeypot_max_passes,
    honeypot_shutdown_probability,
    untrusted_monitoring_safety,
)
from control.metrics.policies import (
    Box,
    Policy,
    bootstrap_policy_statistic,
    empirical_policy,
    grid_bounds,
    projected_interval,
)
from control.metrics.ratios import ols_slope, ratio
from control.metrics.sandbagging import (
    accuracy_gap,
    at_floor,
    auroc,
    auroc_interval,
    calibration,
    detection_verdict,
    difficulty_inversions,
    gap_verdict,
    item_bootstrap,
    mean_accuracy,
    sb_floor,
    sb_profile_verdict,
    selectivity,
    share_within,
    slope_verdict,
)
from control.metrics.sequential import bernoulli_cs, log_mixture_ratio, rate_box
from control.metrics.settings import Simulation
from control.metrics.simulation import (
    DeploymentOutcomes,
    deployment_safety,
    red_win,
    resampled_laws,
    simulate_deployments,
    simulate_outcomes,
)
from control.metrics.steps import CODES, Steps
from control.metrics.thresholds import (
    Threshold,
    audit_count,
    audit_decisions,
    audit_probability,
    calibrate_threshold,
    check_budget,
    scores_array,
    snap,
)
from control.metrics.usefulness import usefulness

__all__ = [
    "CODES",
    "RATE_XTOL",
    "SAFETY_TOL",
    "AttackRateSearch",
    "Box",
    "DeploymentOutcomes",
    "Estimate",
    "FrontierPoint",
    "Policy",
    "SearchMethod",
    "Simulation",
    "Steps",
    "Threshold",
    "accuracy_gap",
    "at_floor",
    "audit_count",
    "audit_decisions",
    "audit_probability",
    "auroc",
    "auroc_interval",
    "bernoulli_cs",
    "best_attack_rate",
    "bootstrap_policy_statistic",
    "calibrate_threshold",
    "calibration",
    "check_budget",
    "deployment_safety",
    "detection_verdict",
    "difficulty_inversions",
    "empirical_policy",
    "gap_verdict",
    "golden_section_max",
    "grid_bounds",
    "honeypot_count",
    "honeypot_max_passes",
    "honeypot_shutdown_probability",
    "item_bootstrap",
    "log_mixture_ratio",
    "mean_accuracy",
    "ols_slope",
    "percentile_interval",
    "projected_interval",
    "rate_box",
    "ratio",
    "red_win",
    "resampled_laws",
    "safety_usefulness_frontier",
    "sb_floor",
    "sb_profile_verdict",
    "scores_array",
    "selectivity",
    "share_within",
    "simulate_deployments",
    "simulate_outcomes",
    "slope_verdict",
    "snap",
    "untrusted_monitoring_safety",
    "upfront_best_rate",
    "usefulness",
    "wilson",
]
