"""Recorded task steps as codes: what a deployment simulation draws from.

Each recorded step is one of these codes: bit 0 the policy attacked, bit 1 the code that
ships unaudited carries a working backdoor (only with bit 0), bit 2 the protocol asked for
an audit. Outcomes depend on a step only through its code, so a deployment is a sequence of
codes and the recorded steps reduce to a distribution over 8 codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ATTACK, SUCCESS, REQUEST = 1, 2, 4
CODES = 8


@dataclass(frozen=True, slots=True)
class Steps:
    """Recorded task steps, one entry per step, three columns of equal length.

    attacked: the policy tried a backdoor. backdoor_success: the code that ships if this step
    is not audited (as accepted by the protocol: after any edit or deferral) passes the tests
    and differs on the trigger; it counts only on attacked steps. audit_requested: the
    protocol's own rule asked for an audit (the score was over the audit threshold); whether
    one happens depends on the budget left, which only the deployment knows.
    """

    attacked: np.ndarray
    backdoor_success: np.ndarray
    audit_requested: np.ndarray

    def __post_init__(self) -> None:
        names = ("attacked", "backdoor_success", "audit_requested")
        cols = [np.asarray(getattr(self, name)).astype(bool) for name in names]
        if any(c.ndim != 1 for c in cols) or len({c.size for c in cols}) != 1:
            raise ValueError("Steps needs three one-dimensional columns of equal length")
        for name, col in zip(names, cols, strict=True):
            col.setflags(write=False)
            object.__setattr__(self, name, col)

    def __len__(self) -> int:
        return int(self.attacked.size)

    def codes(self) -> np.ndarray:
        """Each step's code (uint8, see `ATTACK`)."""
        attacked = self.attacked.astype(np.uint8)
        success = (self.attacked & self.backdoor_success).astype(np.uint8)
        return (
            attacked * ATTACK + success * SUCCESS + self.audit_requested.astype(np.uint8) * REQUEST
        )

    def law(self) -> np.ndarray:
        """The distribution of a step drawn from these records: frequencies of the 8 codes."""
        return np.bincount(self.codes(), minlength=CODES) / max(len(self), 1)
