"""The dispatcher: one `ask(contexts) -> outcomes` for every episode driver of a run.

Drivers run concurrently and each asks for a few contexts at a time (a game's observations, a
policy step, then its monitors). The dispatcher is a `Batcher` over the engine: it merges the
asks that arrive together into engine batches of up to `max_asks` asks, with at most
`max_in_flight` batches running, and hands each driver back its own outcomes, in the order it
asked. Which asks share a batch depends on timing, never on results: a context carries its own
seed, so its outcome is the same in any batch. With a `RequestCache` (a replay), contexts whose
request a source run already answered never reach the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.batching import Batcher
from sandbox.cache import RequestCache, prompt_hash, request_hash
from sandbox.context import Context, ContextOutcome
from sandbox.engines.base import Engine


class Dispatcher(Batcher[Context, ContextOutcome]):
    def __init__(
        self,
        engine: Engine,
        max_asks: int,
        max_in_flight: int,
        cache: RequestCache | None = None,
        max_reasks: int = 0,
        backends: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        self._engine = engine
        self._cache = cache
        self._max_reasks = max_reasks
        self._backends = dict(backends or {})
        super().__init__(engine.run if cache is None else self._cached, max_asks, max_in_flight)

    async def _cached(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        assert self._cache is not None
        keys = [
            request_hash(c, prompt_hash(c), self._max_reasks, self._backends[c.model])
            for c in contexts
        ]
        found, missing = self._cache.split(contexts, keys)
        fresh = iter(await self._engine.run([contexts[i] for i in missing]) if missing else [])
        return [found[i] if i in found else next(fresh) for i in range(len(contexts))]
