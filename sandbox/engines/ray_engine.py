"""The Ray engine: a pool of `AgentCopy` actors, on the local machine or a cluster, and code
checks as Ray tasks.

Copies are identities and actors are throughput: each context's `agent_id` maps to one actor of
the pool, and an actor serves all its copies' contexts concurrently. Actors use `num_cpus=0` (an
agent waits on a model, it does not compute), are spread over the cluster's nodes, and restart
when they die; a batch in flight on a dead actor is retried on its restarted incarnation, which
gives the same actions because a context carries its own seed.

A batch of code checks is one Ray task (`num_cpus=1`: it forks and runs code), spread over the
nodes, so a cluster's nodes share the checks; it records the node it ran on. A check is pure, so
a task whose worker or node dies is retried (`CHECK_RETRIES`), on another node if need be; past
the retries the batch is an error outcome for its checks (`CheckBatch.error`), not a lost run.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sandbox.core.context import Context, ContextOutcome
from sandbox.core.seeding import derive_seed
from sandbox.engines.base import CheckBatch, CheckJob, Engine
from sandbox.engines.registry import ENGINES, EngineDeps

NAMESPACE = "coordination-sandbox"

CHECK_RETRIES = 3
"""Retries of a check task whose worker or node died (Ray's own retries of a task on a system
failure; an exception of `check_code` itself is never retried)."""


class RayParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(
        None,
        description="Ray cluster address ('auto', 'ray://host:10001', host:port); None = local",
    )
    max_restarts: int = Field(3, ge=-1, description="restarts per actor after a crash (-1: always)")
    spread: bool = Field(True, description="deal actors over the cluster's nodes in turn")


@functools.cache
def _actor_class() -> type:
    """AgentCopy that learns its node once placed, and configures logging in its own process.

    Defined on first use, so that importing the engine registry loads neither Ray nor the agent
    stack (config validation and scoring import it)."""
    import ray

    from agents.copy import AgentCopy, configure_worker_logging

    class RayAgentCopy(AgentCopy):
        def __init__(
            self,
            env: dict[str, str],
            models: Mapping[str, tuple[str, Mapping[str, Any]]],
            max_reasks: int,
            worker: str,
        ) -> None:
            os.environ.update(env)  # this process is the actor's alone
            configure_worker_logging()
            node = ray.get_runtime_context().get_node_id()
            super().__init__(models, max_reasks, node_id=node, worker=worker)
            # The process is this actor's alone and what it holds now (Ray, LangGraph, the
            # compiled graph) lives as long as it does; leaving that out of the collector's full
            # passes keeps them from rescanning it, about a tenth of what a context costs.
            gc.collect()
            gc.freeze()

    return RayAgentCopy


def _run_checks(job: CheckJob, checks: list[Any]) -> tuple[list[Any], str]:
    """The body of a check task: the job on the task's node, and that node's id."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return asyncio.run(job(checks)), node


def failed_batch(exc: Exception) -> CheckBatch[Any]:
    """The batch of a check task that Ray could not run (its worker or node died, past its
    retries): an error outcome for its checks, naming the failure in one line."""
    why = str(exc).strip().splitlines()
    return CheckBatch(
        [],
        None,
        error=f"the code check task failed after {CHECK_RETRIES} retries: "
        f"{type(exc).__name__}: {why[0] if why else 'no message'}",
    )


@functools.cache
def _check_task() -> Any:
    """`_run_checks` as a Ray task: made on first use, so importing the engine loads no Ray."""
    import ray

    return ray.remote(_run_checks)


class RayEngine:
    def __init__(self, params: RayParams, deps: EngineDeps) -> None:
        self.params = params
        self.deps = deps
        self._actors: list[Any] = []
        self._owns_ray = False
        self._cpus = 0

    async def start(self) -> None:
        import ray

        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(
                # "local" always starts a fresh instance; None would join whatever cluster
                # /tmp/ray/ray_current_cluster names, even a dead one
                address=self.params.address or "local",
                namespace=NAMESPACE,
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=True,
            )
            self._owns_ray = True
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote_cls: Any = ray.remote(_actor_class())
        nodes = self._alive_nodes() if self.params.spread else []
        env_vars = self._forwarded_env()
        for index in range(self.deps.actors):
            options: dict[str, Any] = {
                "num_cpus": 0,
                "max_restarts": self.params.max_restarts,
                "max_task_retries": -1,
                "name": f"{self.deps.run_id}/actor-{index}",
                "namespace": NAMESPACE,
            }
            if nodes:
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                    node_id=nodes[index % len(nodes)], soft=True
                )
            actor = remote_cls.options(**options).remote(
                env_vars,
                {model: (name, dict(params)) for model, (name, params) in self.deps.models.items()},
                self.deps.max_reasks,
                worker=f"actor-{index}",
            )
            self._actors.append(actor)
        self._cpus = int(ray.cluster_resources().get("CPU", 0))

    @staticmethod
    def _alive_nodes() -> list[str]:
        """Node ids to deal actors over, round robin.

        Ray's "SPREAD" strategy does not spread zero-resource actors (each creation goes to a
        random node's scheduler), so actors are pinned, softly, to the alive nodes in turn; a
        restarted actor may land elsewhere if its node is gone.
        """
        import ray

        return sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))

    def _forwarded_env(self) -> dict[str, str]:
        """The backends' API-key variables, so actors on other nodes can read them too.

        Handed to each actor as a constructor argument, which lives only in memory: a
        `runtime_env` would write the value into Ray's log files.
        """
        from agents.backends import BACKENDS

        env = {}
        for name, params in self.deps.models.values():
            key_env = getattr(BACKENDS.validate_params(name, params), "api_key_env", None)
            if isinstance(key_env, str) and key_env in os.environ:
                env[key_env] = os.environ[key_env]
        return env

    def actor_for(self, agent_id: str) -> int:
        """Copies `copy-<i>` go to actor i mod actors, so every actor serves as many copies."""
        _, _, number = agent_id.rpartition("-")
        if number.isdigit():
            return int(number) % len(self._actors)
        return derive_seed("actor", agent_id) % len(self._actors)

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        import ray

        if not self._actors:
            raise RuntimeError("RayEngine.run before start()")
        batches: dict[int, list[int]] = {}
        for position, ctx in enumerate(contexts):
            batches.setdefault(self.actor_for(ctx.agent_id), []).append(position)
        refs = {
            actor: self._actors[actor].run_batch.remote([contexts[i] for i in positions])
            for actor, positions in batches.items()
        }
        results: list[ContextOutcome | None] = [None] * len(contexts)
        try:
            outcomes = await asyncio.gather(*refs.values())
        except ray.exceptions.RayTaskError as exc:
            # the actor's own exception (say, a BackendError naming the endpoint), without
            # the remote traceback Ray wraps around it
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise
        for (_actor, positions), batch in zip(batches.items(), outcomes, strict=True):
            for position, outcome in zip(positions, batch, strict=True):
                results[position] = outcome
        missing = [i for i, r in enumerate(results) if r is None]
        assert not missing, f"no outcome for contexts at {missing}"
        return [r for r in results if r is not None]

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        import ray

        if not self._actors:
            raise RuntimeError("RayEngine.check before start()")
        if self._cpus < 1:
            raise RuntimeError(
                "the Ray cluster has no CPU for code checks (a check task asks for num_cpus=1): "
                "give a node CPUs (ray start --num-cpus)"
            )
        task = _check_task().options(
            num_cpus=1,
            max_retries=CHECK_RETRIES,
            retry_exceptions=False,
            # CPU tasks, unlike zero-resource actors, are spread by Ray's own SPREAD policy
            scheduling_strategy="SPREAD" if self.params.spread else "DEFAULT",
        )
        try:
            results, node = await task.remote(job, list(checks))
        except ray.exceptions.RayTaskError as exc:
            # the job's own exception (a check that is not JSON, a checker that cannot start),
            # raised as the local engine raises it, without Ray's remote traceback
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise
        except ray.exceptions.RayError as exc:
            return failed_batch(exc)
        return CheckBatch(list(results), node)

    def check_slots(self) -> int:
        """One batch per CPU of the cluster (as started): each task takes one."""
        return max(1, self._cpus)

    async def close(self) -> None:
        """Kill the actors (and shut Ray down if this engine started it). A run stopped early
        (Ctrl-C, a failed batch) leaves batches in flight whose results nobody will read: their
        failures, once the actors are killed, are no news, so Ray is told not to print them
        ("Unhandled error ... ray::RayAgentCopy.run_batch()", once per batch in flight); a
        run's real failure reaches the user from the runner."""
        import ray

        quiet = "RAY_IGNORE_UNHANDLED_ERRORS"
        before = os.environ.get(quiet)
        os.environ[quiet] = "1"  # Ray reads it as each unhandled error is reported
        try:
            for actor in self._actors:
                ray.kill(actor, no_restart=True)
            self._actors.clear()
            if self._owns_ray:
                ray.shutdown()
        finally:  # Ray is shut down, or lives on (not ours): its later errors are news
            if before is None:
                os.environ.pop(quiet, None)
            else:
                os.environ[quiet] = before


@ENGINES.register("ray", RayParams)
def ray_engine(params: RayParams, deps: EngineDeps) -> Engine:
    """Copies as Ray actors (num_cpus=0), local by default or on a cluster by address."""
    return RayEngine(params, deps)
