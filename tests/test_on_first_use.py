"""`OnFirstUse`: an engine a replay starts only when its record cannot answer, once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from sandbox.core.context import Context, ContextOutcome
from sandbox.engines.base import CheckBatch, CheckJob
from sandbox.engines.on_first_use import OnFirstUse


class Counting:
    """An engine that counts what it is asked (its start takes a moment, so concurrent first
    uses overlap it), and whose start fails on request."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.starts = self.runs = self.checks = self.closes = 0

    async def start(self) -> None:
        self.starts += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("no cluster at 127.0.0.1:1")

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        assert self.starts == 1, "asked before it started"
        self.runs += 1
        return []

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        assert self.starts == 1, "asked before it started"
        self.checks += 1
        return CheckBatch([], "local")

    def check_slots(self) -> int:
        return 7

    async def close(self) -> None:
        self.closes += 1


def test_an_engine_never_used_is_never_started_nor_closed() -> None:
    inner = Counting()
    engine = OnFirstUse(inner)

    async def unused() -> None:
        await engine.start()
        assert engine.check_slots() >= 1
        await engine.close()

    asyncio.run(unused())
    assert (inner.starts, inner.closes) == (0, 0)


def test_concurrent_first_uses_start_it_once() -> None:
    inner = Counting()
    engine = OnFirstUse(inner)

    async def busy() -> None:
        await engine.start()
        await asyncio.gather(engine.run([]), engine.check(_job, []), engine.run([]))
        assert engine.check_slots() == 7  # the engine's own, once started
        await engine.close()

    asyncio.run(busy())
    assert (inner.starts, inner.runs, inner.checks, inner.closes) == (1, 2, 1, 1)


def test_a_failed_start_fails_every_waiting_use() -> None:
    inner = Counting(fail=True)
    engine = OnFirstUse(inner)

    async def failing() -> list[Any]:
        results = await asyncio.gather(engine.run([]), engine.run([]), return_exceptions=True)
        await engine.close()
        return results

    results = asyncio.run(failing())
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert (inner.starts, inner.runs) == (1, 0)
    with pytest.raises(ConnectionError):  # and it is not retried behind the caller's back
        asyncio.run(engine.run([]))
    assert inner.starts == 1


async def _job(checks: list[Any]) -> list[Any]:
    return []
