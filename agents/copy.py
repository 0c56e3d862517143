"""`AgentCopy`: the unit of work behind every agent copy.

A plain class holding lazily built backends and one compiled `AgentLoop`. The Ray engine wraps
it as an actor (`num_cpus=0`); the local engine uses it in-process. One instance serves many
logical copies (agent ids are data on each context), so copies cost no processes, and every
model of a run (the untrusted models under test, the trusted model): each context goes to the
backend of the model it names.

A model whose backend bounds its calls in flight (`max_concurrency`) has at most twice that many
of its contexts in the agent loop at once, the rest waiting to start: one context in each call
slot and one ready to take a slot the moment it frees. A batch gathered all at once would
otherwise start every context's graph before the first answer is read (a burst of loop work
that holds up the answers) and keep every graph's state alive to be rescanned by the garbage
collector; bounded, a batch runs at the backend's pace (bench/throughput.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from pydantic import BaseModel

from agents.backends import BACKENDS, Backend
from agents.loop import AgentLoop
from sandbox.core.context import Context, ContextOutcome

ModelBackends = Mapping[str, tuple[str, Mapping[str, Any]]]
"""model name -> (registered backend name, its params): which backend answers each model."""

ADMITTED_PER_CALL_SLOT = 2
"""Contexts of a model in the agent loop at once, per call its backend has in flight."""


def configure_worker_logging() -> None:
    """Workers log only warnings, as JSON to stderr; the driver alone writes a run's files."""
    import logging

    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )


class AgentCopy:
    def __init__(
        self,
        models: ModelBackends,
        max_reasks: int,
        node_id: str = "local",
        worker: str = "local",
    ) -> None:
        self._specs: dict[str, tuple[str, BaseModel]] = {
            model: (name, BACKENDS.validate_params(name, params))
            for model, (name, params) in models.items()
        }
        self._backends: dict[str, Backend] = {}
        self._admitted: dict[str, asyncio.Semaphore | None] = {}
        self._loop = AgentLoop(self._backend_for, max_reasks)
        self.node_id = node_id
        self.worker = worker

    def _backend_for(self, model: str) -> Backend:
        if model not in self._backends:
            if model not in self._specs:
                known = ", ".join(sorted(self._specs))
                raise KeyError(f"no backend serves model {model!r} (this run's models: {known})")
            name, params = self._specs[model]
            self._backends[model] = BACKENDS.build(name, params, model=model)
        return self._backends[model]

    def _admission(self, model: str) -> asyncio.Semaphore | None:
        """The bound on `model`'s contexts in the loop at once; None where its backend sets no
        bound on its calls (or no backend serves it: the loop reports that)."""
        if model not in self._admitted:
            params = self._specs[model][1] if model in self._specs else None
            calls = getattr(params, "max_concurrency", None)
            self._admitted[model] = (
                asyncio.Semaphore(ADMITTED_PER_CALL_SLOT * calls)
                if isinstance(calls, int)
                else None
            )
        return self._admitted[model]

    async def run_one(self, context: Context) -> ContextOutcome:
        admission = self._admission(context.model)
        if admission is None:
            action = await self._loop.run(context)
        else:
            async with admission:
                action = await self._loop.run(context)
        return ContextOutcome(action=action, node_id=self.node_id, worker=self.worker)

    async def run_batch(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        """Contexts run concurrently; each is independent, so order of completion is irrelevant."""
        return list(await asyncio.gather(*(self.run_one(c) for c in contexts)))

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
