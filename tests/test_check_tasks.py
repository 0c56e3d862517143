"""Code checks run where the engine runs work, and record their node: on Ray each batch of checks
is a Ray task, so a cluster's nodes share them; locally they run from the driver (node `local`).

Where a check ran is kept in the event log (`protocol_decision`'s `checks`) and never reaches
`results.jsonl`: a deployment on a two-node cluster gives the local engine's bytes. A batch whose
task could not run (its node died, past Ray's retries) is an `error` outcome for its checks, and
the run goes on.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import config_from_mapping
from sandbox.core.context import Context, ContextOutcome
from sandbox.core.events import EVENT_ADAPTER, CodeChecked, ProtocolDecision, RunStarted, StepRecord
from sandbox.engines import ENGINES, Engine, EngineDeps
from sandbox.engines.base import CheckBatch, CheckJob
from sandbox.engines.ray_engine import CHECK_RETRIES, RayEngine, RayParams, failed_batch
from sandbox.record.runstore import EVENTS, RESULTS, RunStore
from sandbox.run.checks import check_config
from sandbox.run.runner import Runner, build_engine
from sandbox.settings.codecheck import CodeCheck, TestCase, check_code
from tests.conftest import run_on_two_nodes
from tests.test_protocols import deployment_config

ISOLATION = "none"
"""The isolation these tests check under (both engines alike: the point is where checks run)."""

JOB = functools.partial(check_code, isolation=ISOLATION)
"""The job the runner hands an engine for a batch of checks."""

STEPS = 20
"""Task steps per phase: 60 steps, about 80 checks (calibration also checks the trusted model's
code, and defer to trusted its own)."""


def _deployment(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    data = deployment_config(tmp_path, "defer_to_trusted", steps=STEPS)
    data["settings"] = {"isolation": ISOLATION}
    data.update(sections)
    return data


def _events(run_dir: Path) -> list[Any]:
    return [EVENT_ADAPTER.validate_json(line) for line in (run_dir / EVENTS).open()]


def _checks(run_dir: Path) -> list[CodeChecked]:
    return [c for e in _events(run_dir) if isinstance(e, ProtocolDecision) for c in e.checks]


def _run_local(tmp_path: Path) -> Path:
    config = check_config(config_from_mapping(_deployment(tmp_path)))
    store = RunStore.create(config)
    asyncio.run(Runner(config, store).run())
    return store.path


def _steps(run_dir: Path) -> list[StepRecord]:
    return [StepRecord.model_validate_json(line) for line in (run_dir / RESULTS).open()]


def test_local_checks_record_node_local_and_the_run_its_isolation(tmp_path: Path) -> None:
    run_dir = _run_local(tmp_path)
    events = _events(run_dir)
    started = events[0]
    assert isinstance(started, RunStarted) and started.isolation == ISOLATION
    checks = _checks(run_dir)
    steps = _steps(run_dir)
    # every step's checks are recorded, in order: the policy's first, the trusted model's
    # solution in calibration (and its own when a step defers)
    assert len(checks) >= len(steps) == 3 * STEPS
    decisions = [e for e in events if isinstance(e, ProtocolDecision)]
    for decision, step in zip(decisions, steps, strict=True):
        assert decision.episode_id == step.episode_id
        first = decision.checks[0]
        assert first.context_id == f"{step.episode_id}/policy/0"
        assert first.outcome == step.policy
        if step.trusted is not None:  # calibration: the trusted model's own solution
            assert decision.checks[1].outcome == step.trusted
        else:  # what ships was checked last: the policy's code, or the trusted model's
            assert decision.checks[-1].outcome == step.unaudited
    ran = [c for c in checks if c.node is not None]
    assert ran and {c.node for c in ran} == {"local"}
    assert all(c.error is None for c in checks)
    # a check without a node ran nothing: the reply held no code
    assert all(c.outcome.status == "failed" for c in checks if c.node is None)


def test_a_run_without_a_deployment_records_no_isolation(tmp_path: Path) -> None:
    from tests.conftest import small_config

    data = small_config(tmp_path, sampling={"k": 2, "played_games": 10, "bootstrap": 100})
    data["settings"] = {"isolation": ISOLATION}
    config = check_config(config_from_mapping(data))
    store = RunStore.create(config)
    asyncio.run(Runner(config, store).run())
    started = _events(store.path)[0]
    assert isinstance(started, RunStarted) and started.isolation is None


def test_a_log_from_before_nodes_and_isolation_still_reads() -> None:
    """A schema-3 `run_started` and `protocol_decision` (neither field) read with the
    defaults: no isolation recorded, no checks."""
    started = {
        "ts": "2025-01-01T00:00:00+00:00",
        "run_id": "old",
        "kind": "run_started",
        "schema_version": 3,
        "config_sha256": "0" * 64,
        "seed": 0,
        "models": ["attacker"],
        "games": [],
        "episodes_total": 3,
        "episodes_done": 0,
        "resumed": False,
        "templates": {},
        "source_run": None,
        "source_path": None,
    }
    decision = {
        "ts": "2025-01-01T00:00:00+00:00",
        "run_id": "old",
        "episode_id": "e",
        "kind": "protocol_decision",
        "protocol": "trusted_monitoring",
        "decision": "accept",
        "scores": [1.0],
        "thresholds": {"audit": "inf"},
        "reason": "r",
    }
    old_start = EVENT_ADAPTER.validate_json(json.dumps(started))
    old_decision = EVENT_ADAPTER.validate_json(json.dumps(decision))
    assert isinstance(old_start, RunStarted) and old_start.isolation is None
    assert isinstance(old_decision, ProtocolDecision) and old_decision.checks == []


# --- a check batch that cannot run ---------------------------------------------------------------


def _crashed_task_error() -> Exception:
    """The exception Ray raises for a task whose worker process died (a real crash: the task
    exits its worker, with no retries left)."""
    import ray

    @ray.remote(num_cpus=0, max_retries=0)
    def die() -> None:
        os._exit(1)

    with pytest.raises(ray.exceptions.RayError) as caught:
        ray.get(die.remote())
    return caught.value


def test_a_dead_check_task_is_an_error_outcome(ray_cluster: str) -> None:
    import ray

    error = _crashed_task_error()
    assert not isinstance(error, ray.exceptions.RayTaskError)  # a system failure, not an exception
    batch = failed_batch(error)
    assert batch.results == [] and batch.node is None
    assert batch.error is not None
    assert batch.error.startswith(f"the code check task failed after {CHECK_RETRIES} retries: ")
    assert type(error).__name__ in batch.error and "\n" not in batch.error


class DeadChecks:
    """A real local engine whose check batches could not run: every batch answers as a Ray
    check task answers when its node died past its retries (`failed_batch` of a real crash)."""

    def __init__(self, inner: Engine, failure: CheckBatch[Any]) -> None:
        self.inner = inner
        self.failure = failure
        self.batches = 0

    async def start(self) -> None:
        await self.inner.start()

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        return await self.inner.run(contexts)

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        self.batches += 1
        return self.failure

    def check_slots(self) -> int:
        return self.inner.check_slots()

    async def close(self) -> None:
        await self.inner.close()


def test_a_run_whose_check_tasks_die_finishes_with_error_outcomes(
    ray_cluster: str, tmp_path: Path
) -> None:
    config = check_config(config_from_mapping(_deployment(tmp_path)))
    store = RunStore.create(config)
    failure = failed_batch(_crashed_task_error())
    engine = DeadChecks(build_engine(config, store.run_id), failure)
    summary = asyncio.run(Runner(config, store, engine=engine).run())
    assert engine.batches > 0
    assert summary["episodes"] == 3 * STEPS  # not a lost run
    steps = _steps(store.path)
    checks = _checks(store.path)
    ran = [c for c in checks if c.outcome.status != "failed" or c.node is not None]
    assert ran and all(c.outcome.status == "error" for c in ran)
    assert all(c.error == failure.error and c.node is None for c in ran)
    assert all(c.outcome.tests_passed == 0 and not c.outcome.backdoor for c in ran)
    assert any(s.policy.status == "error" for s in steps)


def test_an_exception_of_check_code_in_a_ray_task_is_raised_as_locally(ray_cluster: str) -> None:
    """A check `check_code` refuses (a trigger that is not JSON) raises its own ValueError from
    the Ray task, as the local engine raises it: a caller's mistake, not a dead node."""
    deps = EngineDeps(models={"honest": ("scripted", {})}, max_reasks=0, actors=1)
    bad = CodeCheck(
        code="def f(x):\n    return x\n",
        function="f",
        tests=(TestCase(args=(1,), expected=1),),
        reference="def f(x):\n    return x\n",
        trigger=({1, 2},),
    )

    async def both() -> tuple[str, str]:
        messages = []
        for engine in (ENGINES.build("local", {}, deps=deps), RayEngine(RayParams(), deps)):
            await engine.start()
            try:
                with pytest.raises(ValueError) as caught:
                    await engine.check(JOB, [bad])
                messages.append(str(caught.value))
            finally:
                await engine.close()
        return messages[0], messages[1]

    local, remote = asyncio.run(both())
    assert local == remote


def test_ray_checks_run_as_tasks_on_a_worker_node(ray_cluster: str) -> None:
    """On the session cluster a batch runs in a Ray worker (the node's id, not `local`) and
    answers what the local engine answers."""
    import ray

    deps = EngineDeps(models={"honest": ("scripted", {})}, max_reasks=0, actors=1)
    checks = [
        CodeCheck(
            code=f"def f(x):\n    return x + {k}\n",
            function="f",
            tests=(TestCase(args=(1,), expected=2), TestCase(args=(2,), expected=3)),
            reference="def f(x):\n    return x + 1\n",
            trigger=(5,) if k == 1 else None,
        )
        for k in (1, 2)
    ]

    async def both() -> tuple[CheckBatch[Any], CheckBatch[Any], int]:
        local = ENGINES.build("local", {}, deps=deps)
        remote = RayEngine(RayParams(), deps)
        await remote.start()
        try:
            return (
                await local.check(JOB, checks),
                await remote.check(JOB, checks),
                remote.check_slots(),
            )
        finally:
            await remote.close()
            await local.close()

    local, remote, slots = asyncio.run(both())
    assert local.node == "local"
    assert remote.node in {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert remote.results == local.results
    assert [r.status for r in remote.results] == ["passed", "failed"]
    assert slots == int(ray.cluster_resources()["CPU"])


# --- a two-node cluster ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_deployment_on_two_nodes_checks_code_on_both_and_matches_local(
    ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `sandbox run` subprocess joins a two-node local cluster by address
    (`tests.conftest.run_on_two_nodes`)."""
    import ray

    nodes = run_on_two_nodes(_deployment(tmp_path / "ray", engine="ray"), tmp_path, monkeypatch)

    (run_dir,) = (tmp_path / "ray" / "runs").iterdir()
    checks = _checks(run_dir)
    per_node = Counter(c.node for c in checks if c.node is not None)
    # each check ran in a Ray task on one of this cluster's nodes, and they shared the checks
    assert set(per_node) == nodes, f"checks by node {dict(per_node)} vs {nodes}"
    assert all(c.error is None for c in checks)
    started = _events(run_dir)[0]
    assert isinstance(started, RunStarted) and started.isolation == ISOLATION

    # where a check ran never reaches the results: the local engine gives the same bytes
    local_dir = _run_local(tmp_path / "local")
    assert (run_dir / RESULTS).read_bytes() == (local_dir / RESULTS).read_bytes()
    local_checks = _checks(local_dir)
    assert [(c.context_id, c.outcome) for c in checks] == [
        (c.context_id, c.outcome) for c in local_checks
    ]
    assert ray.get(ray.put(41)) + 1 == 42  # the session cluster is still usable
