"""The local engine: one in-process `AgentCopy`, contexts run one at a time; code checks run from
this process, on this machine (node `local`).

For debugging (breakpoints, tracebacks) and for tests of game logic. Same results as Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandbox.core.context import Context, ContextOutcome
from sandbox.core.registry import NoParams
from sandbox.engines.base import CheckBatch, CheckJob, Engine
from sandbox.engines.registry import ENGINES, EngineDeps

LOCAL_NODE = "local"
"""The node of everything the local engine runs (the agent copy's `node_id` says the same)."""

CHECK_SLOTS = 2
"""Check batches at once: each is one checker process of this machine's, and the checker itself
runs at most `os.cpu_count()` of them per event loop."""


class LocalEngine:
    def __init__(self, deps: EngineDeps) -> None:
        from agents.copy import AgentCopy  # the agent stack loads when an engine is built

        self._copy = AgentCopy(deps.models, deps.max_reasks)

    async def start(self) -> None:
        return None

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        return [await self._copy.run_one(c) for c in contexts]

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        return CheckBatch(await job(list(checks)), LOCAL_NODE)

    def check_slots(self) -> int:
        return CHECK_SLOTS

    async def close(self) -> None:
        await self._copy.aclose()


@ENGINES.register("local", NoParams)
def local(params: NoParams, deps: EngineDeps) -> Engine:
    """In-process and sequential: for debugging and game-logic tests."""
    return LocalEngine(deps)
