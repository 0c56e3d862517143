"""The local engine: one in-process `AgentCopy`, contexts run one at a time.

For debugging (breakpoints, tracebacks) and for tests of game logic. Same results as Ray.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.context import Context, ContextOutcome
from sandbox.engines.base import Engine
from sandbox.engines.registry import ENGINES, EngineDeps
from sandbox.registry import NoParams


class LocalEngine:
    def __init__(self, deps: EngineDeps) -> None:
        from agents.copy import AgentCopy  # the agent stack loads when an engine is built

        self._copy = AgentCopy(deps.models, deps.max_reasks)

    async def start(self) -> None:
        return None

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        return [await self._copy.run_one(c) for c in contexts]

    async def close(self) -> None:
        await self._copy.aclose()


@ENGINES.register("local", NoParams)
def local(params: NoParams, deps: EngineDeps) -> Engine:
    """In-process and sequential: for debugging and game-logic tests."""
    return LocalEngine(deps)
