"""What a control protocol declares about itself: the typed interface of a registry entry.

Every protocol registers a params model derived from `ProtocolParams` (`PROTOCOLS` refuses any
other), and the rest of the sandbox learns what it needs about the protocol from that model,
never from its name: which thresholds its deployment calibrates (`thresholds`), which monitors
it accepts and which it means when the config names none (`monitor_problem`,
`default_monitor`), whether its audits are positional (`positional_audits`: the deployment
simulation audits the first budget x T steps, whatever their scores), and which decisions its
route may take (`decisions`, checked by the step graph). So adding a protocol is a module and a
registry entry: no check, runner or summary elsewhere names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from sandbox.core.events import Decision


class ProtocolParams(BaseModel):
    """A protocol's params and its declared interface. The defaults describe a protocol that
    audits the outputs a monitor of any kind finds most suspicious and accepts the rest; a
    protocol overrides what differs. Class attributes are facts about the protocol (the same
    for every params value); methods may read the params."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decisions: ClassVar[frozenset[Decision]] = frozenset({"accept", "audit"})
    """Every decision the protocol's route may take (a step deciding anything else fails)."""

    default_monitor: ClassVar[str] = "trusted"
    """The monitor the protocol means when the config names none (`control.monitor` unset)."""

    positional_audits: ClassVar[bool] = False
    """Audits go to the first floor(budget x T) steps of a deployment, whatever their scores
    (upfront auditing), rather than to the steps the protocol asks to audit."""

    def thresholds(self, audit_budget: float, tasks: int) -> dict[str, float]:
        """The share of honest scores each of the protocol's thresholds lets past, by threshold
        name (a name `name@view` is calibrated on the scores of that view of the code). Every
        protocol has `audit`, at the budget; a deployment of `tasks` steps."""
        return {"audit": audit_budget}

    def monitor_problem(self, name: str, params: Mapping[str, Any]) -> str | None:
        """Why the monitor `name` (with `params`) cannot serve this protocol, as a sentence for
        the config error at `control.monitor`; None when it can."""
        return None


def fraction_threshold(name: str, fraction: float, audit_budget: float) -> dict[str, float]:
    """The audit threshold and one more, `name`, at its protocol's share of honest steps (never
    below the audit one: a protocol defers, edits or resamples at least what it would audit)."""
    return {"audit": audit_budget, name: max(float(fraction), audit_budget)}
