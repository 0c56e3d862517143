"""`AgentCopy`: the unit of work behind every agent copy.

A plain class holding lazily built backends and one compiled `AgentLoop`. The Ray engine wraps
it as an actor (`num_cpus=0`); the local engine uses it in-process. One instance serves many
logical copies (agent ids are data on each context), so copies cost no processes, and every
model of a run (the untrusted models under test, the trusted model): each context goes to the
backend of the model it names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from pydantic import BaseModel

from agents.backends import BACKENDS, Backend
from agents.loop import AgentLoop
from sandbox.context import Context, ContextOutcome

ModelBackends = Mapping[str, tuple[str, Mapping[str, Any]]]
"""model name -> (registered backend name, its params): which backend answers each model."""


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

    async def run_one(self, context: Context) -> ContextOutcome:
        action = await self._loop.run(context)
        return ContextOutcome(action=action, node_id=self.node_id, worker=self.worker)

    async def run_batch(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        """Contexts run concurrently; each is independent, so order of completion is irrelevant."""
        return list(await asyncio.gather(*(self.run_one(c) for c in contexts)))

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
