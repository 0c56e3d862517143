"""The dispatcher: one `ask(contexts) -> outcomes` for every episode driver of a run.

Drivers run concurrently and each asks for a few contexts at a time (a game's observations, a
policy step, then its monitors). The dispatcher is a `Batcher` over the engine: it merges the
asks that arrive together into engine batches of up to `max_asks` asks, with at most
`max_in_flight` batches running, and hands each driver back its own outcomes, in the order it
asked. Which asks share a batch depends on timing, never on results: a context carries its own
seed, so its outcome is the same in any batch. With a `RequestCache` (a replay, a resume),
contexts whose request was already answered never reach the engine; `on_answered` sees every
answer the engine gives, as it arrives (a run keeps them in its `answers.jsonl`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sandbox.core.context import Context, ContextOutcome
from sandbox.engines.base import Engine
from sandbox.record.cache import RequestCache, prompt_hash, request_hash
from sandbox.run.batching import Batcher

AnswerHook = Callable[[Sequence[str], Sequence[ContextOutcome]], None]
"""Called with the request hashes and outcomes of each engine batch's answers, as they arrive
(before any episode they belong to is committed); never with answers taken from the cache."""


class Dispatcher(Batcher[Context, ContextOutcome]):
    def __init__(
        self,
        engine: Engine,
        max_asks: int,
        max_in_flight: int,
        cache: RequestCache | None = None,
        max_reasks: int = 0,
        backends: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
        on_answered: AnswerHook | None = None,
    ) -> None:
        self._engine = engine
        self._cache = cache
        self._max_reasks = max_reasks
        self._backends = dict(backends or {})
        self._on_answered = on_answered
        plain = cache is None and on_answered is None
        super().__init__(engine.run if plain else self._keyed, max_asks, max_in_flight)

    async def _keyed(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        """The batch by request hash: cached answers from the cache, the rest from the engine,
        whose answers go to `on_answered`."""
        keys = [
            request_hash(c, prompt_hash(c), self._max_reasks, self._backends[c.model])
            for c in contexts
        ]
        if self._cache is not None:
            found, missing = self._cache.split(contexts, keys)
        else:
            found, missing = {}, list(range(len(contexts)))
        answered = await self._engine.run([contexts[i] for i in missing]) if missing else []
        if self._on_answered is not None and answered:
            self._on_answered([keys[i] for i in missing], answered)
        fresh = iter(answered)
        return [found[i] if i in found else next(fresh) for i in range(len(contexts))]
