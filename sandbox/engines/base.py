"""The engine interface: how contexts reach agent copies, and where code checks run.

Games, protocols and metrics never import Ray; the runner hands an engine a batch of contexts and
gets actions back in the same order, and a batch of code checks and gets their results back with
the node that ran them. Engines differ only in where the agent loop and the checks run.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sandbox.core.context import Context, ContextOutcome

R = TypeVar("R")

CheckJob = Callable[[list[Any]], Coroutine[Any, Any, list[Any]]]
"""What checks a batch of code: the runner's `check_code` under the run's isolation
(`sandbox.settings.codecheck`), one result per check, in order. An engine does not know what a
check is (engines sit beside the settings, below the runner); it decides where the job runs. On
Ray the job must pickle: a module-level function, or a `functools.partial` of one."""


@dataclass(frozen=True, slots=True)
class CheckBatch(Generic[R]):
    """A batch of code checks as an engine ran it, on one node: `results` in the order of the
    checks; or, when the batch could not run at all (its node died, its worker crashed, past the
    engine's retries), no results and `error` saying why. `node` is the node that ran it (a Ray
    node id, or `local`), None when that is unknown (a failed batch)."""

    results: list[R]
    node: str | None
    error: str | None = None


class Engine(Protocol):
    async def start(self) -> None:
        """Acquire workers (start actors, connect to a cluster)."""

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        """Run every context; the result is in the order of `contexts`."""

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        """Run `job` on a batch of code checks where this engine runs CPU work (in-process, or
        a Ray task on some node). A check's result never depends on where it ran; an exception
        of the job itself (a check that is not JSON, a checker that cannot start) is raised as
        the job raises it."""

    def check_slots(self) -> int:
        """How many check batches to keep in flight: as many as the engine can run at once."""

    async def close(self) -> None:
        """Release workers; the engine is unusable afterwards."""
