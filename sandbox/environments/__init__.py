"""Games. Importing this package registers every environment in `ENVIRONMENTS`."""

from sandbox.environments import deployment_cue, plan_consistency, upfront_auditing
from sandbox.environments.base import Environment, Observation, Rendered, SampleDraw
from sandbox.environments.registry import ENVIRONMENTS

__all__ = [
    "ENVIRONMENTS",
    "Environment",
    "Observation",
    "Rendered",
    "SampleDraw",
    "deployment_cue",
    "plan_consistency",
    "upfront_auditing",
]
