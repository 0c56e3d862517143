"""A batcher: concurrent requests merged into calls of one batched function.

Callers run concurrently and each asks for a few items at a time; sent one by one, those asks
would cost a round trip each (an engine call, a subprocess). The batcher merges the asks that
arrive together into calls of `run_batch` with up to `max_asks` asks each, at most
`max_in_flight` calls at once, and hands each caller back its own results, in the order it
asked. Which asks share a call depends on timing, never on results, so results must not depend
on the batch an item lands in (a context carries its own seed; a code check is pure).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Use as an async context manager: it sends batches until it is closed, and a failed call
    fails exactly the asks it carried."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[list[R]]],
        max_asks: int,
        max_in_flight: int,
    ) -> None:
        if max_asks < 1 or max_in_flight < 1:
            raise ValueError("max_asks and max_in_flight must be >= 1")
        self._run_batch = run_batch
        self._max_asks = max_asks
        self._slots = asyncio.Semaphore(max_in_flight)
        self._pending: deque[tuple[Sequence[T], asyncio.Future[list[R]]]] = deque()
        self._wake = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Batcher[T, R]:
        self._pump = asyncio.ensure_future(self._send())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        for task in self._calls:
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        while self._pending:
            _, future = self._pending.popleft()
            future.cancel()

    async def drain(self, timeout_s: float) -> None:
        """Cut no more batches and give the calls in flight up to `timeout_s` to finish (a
        stopping run keeps what they answer); leaving `async with` cancels what is left."""
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=timeout_s)

    async def ask(self, items: Sequence[T]) -> list[R]:
        """The results of `items`, in order (an empty ask costs no call)."""
        if not items:
            return []
        if self._pump is None:
            raise RuntimeError("ask outside `async with` the batcher")
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, future))
        self._wake.set()
        return await future

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # let every caller that is ready ask before the batch is cut
            await asyncio.sleep(0)
            while self._pending:
                await self._slots.acquire()
                batch = [
                    self._pending.popleft() for _ in range(min(self._max_asks, len(self._pending)))
                ]
                task = asyncio.ensure_future(self._call(batch))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    async def _call(self, batch: list[tuple[Sequence[T], asyncio.Future[list[R]]]]) -> None:
        try:
            results = await self._run_batch([item for items, _ in batch for item in items])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        finally:
            self._slots.release()
        start = 0
        for items, future in batch:
            if not future.done():
                future.set_result(results[start : start + len(items)])
            start += len(items)
