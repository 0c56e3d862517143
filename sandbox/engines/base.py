"""The engine interface: how contexts reach agent copies.

Games, protocols and metrics never import Ray; the runner hands an engine a batch of contexts and
gets actions back in the same order. Engines differ only in where the agent loop runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sandbox.context import Context, ContextOutcome


class Engine(Protocol):
    async def start(self) -> None:
        """Acquire workers (start actors, connect to a cluster)."""

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        """Run every context; the result is in the order of `contexts`."""

    async def close(self) -> None:
        """Release workers; the engine is unusable afterwards."""
