"""An engine started when it is first needed, not before.

A replay (or a resume) answers what its record holds without an engine: contexts from the
source's log, code checks from its `protocol_decision` events. Only what the record does not hold
reaches the engine, so a replay under a protocol that decides nothing new never starts one (no
Ray cluster, no actors), and one that does starts it at its first new context or check.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from sandbox.core.context import Context, ContextOutcome
from sandbox.engines.base import CheckBatch, CheckJob, Engine


class OnFirstUse:
    """`engine`, started at its first `run` or `check` (once, whoever asks first; the others
    wait for the same start, and a start that fails fails each of them). Closing it closes the
    engine only if it was started."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._start: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._start is not None

    async def start(self) -> None:
        """Nothing yet: the engine starts at its first use."""

    async def _started(self) -> Engine:
        if self._start is None:
            self._start = asyncio.ensure_future(self._engine.start())
        await asyncio.shield(self._start)
        return self._engine

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        return await (await self._started()).run(contexts)

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        return await (await self._started()).check(job, checks)

    def check_slots(self) -> int:
        """The engine's own count once started; before, this machine's CPUs (a replay's checks
        are mostly answered by its record, so few reach the engine)."""
        if self._start is not None and self._start.done() and self._start.exception() is None:
            return self._engine.check_slots()
        return max(1, os.cpu_count() or 1)

    async def close(self) -> None:
        if self._start is None:
            return
        if not self._start.done():
            self._start.cancel()
        await asyncio.gather(self._start, return_exceptions=True)
        await self._engine.close()
