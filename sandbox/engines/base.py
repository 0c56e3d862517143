"""The engine interface: how contexts reach agent copies.

Games, protocols and metrics never import Ray; the runner hands an engine a batch of contexts and
gets actions back in the same order. Engines differ only in where the agent loop runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from sandbox.context import Action, Context


class ContextOutcome(BaseModel):
    """An action plus where it was produced (for the event log, never for scoring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    node_id: str
    worker: str


class Engine(Protocol):
    async def start(self) -> None:
        """Acquire workers (start actors, connect to a cluster)."""

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        """Run every context; the result is in the order of `contexts`."""

    async def close(self) -> None:
        """Release workers; the engine is unusable afterwards."""
