"""The dispatcher: one `ask(contexts) -> outcomes` for every episode driver of a run.

Drivers run concurrently and each asks for a few contexts at a time (a game's observations, a
policy step, then its monitors). Sent one by one, those asks would cost an engine round trip
each; the dispatcher instead merges the asks that arrive together into engine batches of up to
`max_asks` asks, with at most `max_in_flight` batches running, and hands each driver back its own
outcomes, in the order it asked. Which asks share a batch depends on timing, never on results: a
context carries its own seed, so its outcome is the same in any batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from sandbox.context import Context, ContextOutcome
from sandbox.engines.base import Engine


class Dispatcher:
    """Merges concurrent asks into engine batches. Use as an async context manager: it sends
    batches until it is closed, and a failed batch fails exactly the asks it carried."""

    def __init__(self, engine: Engine, max_asks: int, max_in_flight: int) -> None:
        if max_asks < 1 or max_in_flight < 1:
            raise ValueError("max_asks and max_in_flight must be >= 1")
        self._engine = engine
        self._max_asks = max_asks
        self._slots = asyncio.Semaphore(max_in_flight)
        self._pending: deque[tuple[Sequence[Context], asyncio.Future[list[ContextOutcome]]]] = (
            deque()
        )
        self._wake = asyncio.Event()
        self._batches: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Dispatcher:
        self._pump = asyncio.ensure_future(self._send_batches())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        for task in self._batches:
            task.cancel()
        await asyncio.gather(*self._batches, return_exceptions=True)
        while self._pending:
            _, future = self._pending.popleft()
            future.cancel()

    async def ask(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        """The outcomes of `contexts`, in order (an empty ask costs no engine call)."""
        if not contexts:
            return []
        if self._pump is None:
            raise RuntimeError("Dispatcher.ask outside `async with dispatcher`")
        future: asyncio.Future[list[ContextOutcome]] = asyncio.get_running_loop().create_future()
        self._pending.append((contexts, future))
        self._wake.set()
        return await future

    async def _send_batches(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # let every driver that is ready ask before the batch is cut
            await asyncio.sleep(0)
            while self._pending:
                await self._slots.acquire()
                batch = [
                    self._pending.popleft() for _ in range(min(self._max_asks, len(self._pending)))
                ]
                task = asyncio.ensure_future(self._run(batch))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)

    async def _run(
        self, batch: list[tuple[Sequence[Context], asyncio.Future[list[ContextOutcome]]]]
    ) -> None:
        try:
            outcomes = await self._engine.run([c for contexts, _ in batch for c in contexts])
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
        for contexts, future in batch:
            if not future.done():
                future.set_result(outcomes[start : start + len(contexts)])
            start += len(contexts)
