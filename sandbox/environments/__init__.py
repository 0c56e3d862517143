"""Games. Importing this package registers every environment in `ENVIRONMENTS`."""

from sandbox.environments import (
    deployment_cue,
    plan_consistency,
    sandbagging,
    schelling,
    signal_agreement,
    training_gaming,
    upfront_auditing,
)
from sandbox.environments.base import (
    NO_ANSWER,
    Environment,
    Evidence,
    Observation,
    Rendered,
    SampleDraw,
)
from sandbox.environments.registry import ENVIRONMENTS

__all__ = [
    "ENVIRONMENTS",
    "NO_ANSWER",
    "Environment",
    "Evidence",
    "Observation",
    "Rendered",
    "SampleDraw",
    "deployment_cue",
    "plan_consistency",
    "sandbagging",
    "schelling",
    "signal_agreement",
    "training_gaming",
    "upfront_auditing",
]
