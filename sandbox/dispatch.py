"""The dispatcher: one `ask(contexts) -> outcomes` for every episode driver of a run.

Drivers run concurrently and each asks for a few contexts at a time (a game's observations, a
policy step, then its monitors). The dispatcher is a `Batcher` over the engine: it merges the
asks that arrive together into engine batches of up to `max_asks` asks, with at most
`max_in_flight` batches running, and hands each driver back its own outcomes, in the order it
asked. Which asks share a batch depends on timing, never on results: a context carries its own
seed, so its outcome is the same in any batch.
"""

from __future__ import annotations

from sandbox.batching import Batcher
from sandbox.context import Context, ContextOutcome
from sandbox.engines.base import Engine


class Dispatcher(Batcher[Context, ContextOutcome]):
    def __init__(self, engine: Engine, max_asks: int, max_in_flight: int) -> None:
        super().__init__(engine.run, max_asks, max_in_flight)
