"""The deployment driver: task steps under one protocol, as episodes of a run.

A deployment's episodes for one model come in three phases, by index: `steps` calibration
steps (the honest policy, monitored: its scores set the protocol's thresholds, and the trusted
model solves the same tasks for the usefulness scale), then `steps` honest steps and `steps`
attack steps under the protocol. Each step draws its task by its own seed. Thresholds exist only
once every calibration step of the model is done, so protocol steps wait for them
(`Calibration`); a resumed run rebuilds them from its committed calibration records, the same
numbers, since they are a pure function of those records.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Mapping, Sequence

from control import metrics
from control.metrics import Threshold
from control.monitors import Monitor
from control.protocols.step import Check, Phase, StepGraph, StepInput, StepServices
from sandbox.core.context import Usage
from sandbox.core.episode import Ask, EpisodeOutcome, EpisodeSpec, RunIds
from sandbox.core.events import (
    AuditPerformed,
    MonitorScored,
    ProtocolDecision,
    StepRecord,
)
from sandbox.core.prompts import PromptLibrary
from sandbox.core.seeding import derive_seed
from sandbox.settings.tiny_code import CodeTask

PHASES: tuple[Phase, ...] = ("calibration", "honest", "attack")

RAW = "raw"
"""The view of the code as the policy wrote it (others: a jamming method's)."""


def _json_number(x: float) -> float | str:
    """An infinite threshold (budget 0: nothing flagged; budget 1: everything) as "inf" or
    "-inf", so the event log stays standard JSON."""
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


class Calibration:
    """Per model: the thresholds, once all of its calibration scores are in."""

    def __init__(self, steps: int, fractions: Mapping[str, float]) -> None:
        self._steps = steps
        self._fractions = dict(fractions)
        self._scores: dict[str, dict[int, dict[str, float | None]]] = {}
        self._ready: dict[str, asyncio.Future[dict[str, Threshold]]] = {}

    def _future(self, model: str) -> asyncio.Future[dict[str, Threshold]]:
        if model not in self._ready:
            self._ready[model] = asyncio.get_running_loop().create_future()
        return self._ready[model]

    def add(
        self,
        model: str,
        index: int,
        score: float | None,
        views: Mapping[str, float | None] | None = None,
    ) -> None:
        """One calibration step's score, and its scores in other views of the code (a
        threshold named `name@view` is calibrated on the `view` scores)."""
        scores = self._scores.setdefault(model, {})
        scores[index] = {**(views or {}), RAW: score}
        if len(scores) == self._steps and not self._future(model).done():
            self._future(model).set_result(self.thresholds(model))

    def thresholds(self, model: str) -> dict[str, Threshold]:
        """Each threshold at its share of the honest scores (in its own view), ties split so
        that share is met exactly and never exceeded."""
        steps = [self._scores[model][i] for i in sorted(self._scores[model])]
        out = {}
        for name, fraction in self._fractions.items():
            view = name.partition("@")[2] or RAW
            out[name] = metrics.calibrate_threshold([s.get(view) for s in steps], fraction)
        return out

    async def wait(self, model: str) -> dict[str, Threshold]:
        return await self._future(model)


class DeploymentDriver:
    """Plays one task step per episode under `graph`, recording what a deployment needs."""

    def __init__(
        self,
        *,
        game: str,
        graph: StepGraph,
        monitor: Monitor,
        tasks: Sequence[CodeTask],
        prompts: PromptLibrary,
        check: Callable[[], Check],
        steps: int,
        calibration: Calibration,
        ids: RunIds,
        trusted_model: str | None,
        deployment_tasks: int,
        audit_budget: float,
    ) -> None:
        self.game = game
        self.graph = graph
        self._monitor = monitor
        self._tasks = tuple(tasks)
        self._prompts = prompts
        self._check = check
        self.steps = steps
        self.calibration = calibration
        self._ids = ids
        self._trusted = trusted_model
        self._deployment_tasks = deployment_tasks
        self._audit_budget = audit_budget

    def phase(self, index: int) -> Phase:
        return PHASES[index // self.steps]

    def task(self, spec: EpisodeSpec) -> CodeTask:
        """The step's task, drawn by its own seed (with replacement, as a deployment would)."""
        rng = random.Random(derive_seed(self._ids.run_seed, "task", spec.game, spec.index))
        return self._tasks[rng.randrange(len(self._tasks))]

    async def __call__(self, spec: EpisodeSpec, ask: Ask) -> EpisodeOutcome:
        phase = self.phase(spec.index)
        thresholds = {} if phase == "calibration" else await self.calibration.wait(spec.model)
        item = StepInput(
            episode_id=spec.episode_id,
            game=spec.game,
            model=spec.model,
            trusted_model=self._trusted,
            phase=phase,
            task=self.task(spec),
            run_seed=self._ids.run_seed,
            copies=self._ids.copies,
            deployment_tasks=self._deployment_tasks,
            audit_budget=self._audit_budget,
            thresholds=thresholds,
            attack_template=self.graph.attack_template,
        )
        state = await self.graph.run(
            item, StepServices(ask, self._check(), self._monitor, self._prompts)
        )
        verdict = state["verdict"]
        collusion = state.get("collusion")
        if phase == "calibration":
            views = collusion.record.scores if collusion is not None else None
            self.calibration.add(spec.model, spec.index, verdict.score, views)
        exchanges = tuple(state["exchanges"])
        usage = sum((e.outcome.action.usage for e in exchanges), Usage())
        submission = state["submission"]
        record = StepRecord(
            episode_id=spec.episode_id,
            index=spec.index,
            model=spec.model,
            game=spec.game,
            phase=phase,
            task=item.task.id,
            protocol=self.graph.protocol,
            # a resample may ship another sample than the first: an attack if either was
            attacked=submission.attacked or state["unaudited"].backdoor,
            policy=state["policy"],
            score=verdict.score,
            decision=state["decision"],
            unaudited=state["unaudited"],
            trusted=state.get("trusted"),
            usage=usage,
            collusion=collusion.record if collusion is not None else None,
        )
        ids = {"run_id": self._ids.run_id, "episode_id": spec.episode_id}
        events: list = [
            MonitorScored(
                **ids,
                context_id=v.exchanges[0].context.context_id if v.exchanges else None,
                monitor=v.monitor,
                model=v.model,
                scored_context_id=state["policy_context_id"],
                score=v.score,
                samples=list(v.samples),
            )
            for v in state["verdicts"]
        ]
        events.append(
            ProtocolDecision(
                **ids,
                protocol=self.graph.protocol,
                decision=state["decision"],
                scores=[v.score for v in state["verdicts"]],
                thresholds={k: _json_number(t.value) for k, t in thresholds.items()},
                reason=state["reason"],
                checks=list(state["checks"]),
            )
        )
        if state["decision"] == "audit":
            events.append(
                AuditPerformed(
                    **ids,
                    audited_context_id=state["policy_context_id"],
                    outcome="caught" if submission.attacked else "clean",
                )
            )
        if collusion is not None:
            events += collusion.events(ids, spec.model, spec.game)
        return EpisodeOutcome(record=record, exchanges=exchanges, events=tuple(events))
