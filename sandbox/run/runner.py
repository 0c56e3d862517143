"""The runner: every episode of a run driven through one dispatcher, recorded in a run directory.

An episode is one play of one game for one model (for a memoryless game, one sample of every
distinct observation); a game gets `sampling.k` episodes (or its own `k`). Each episode is an
`async` driver
(`sandbox.core.episode`) asking for contexts through the run's dispatcher, which merges the asks of
concurrent episodes into engine batches. Episodes are committed strictly in plan order, so
`results.jsonl` is identical for the same config and seed however the engine schedules the
work, and an interrupted run resumes after its last committed episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.config import Config
from sandbox.core.context import CACHED, UNASKED, ContextOutcome, Usage
from sandbox.core.episode import EpisodeDriver, EpisodeOutcome, EpisodeSpec, Exchange, RunIds
from sandbox.core.events import (
    ActionTaken,
    ContextStarted,
    EpisodeFinished,
    EventWriter,
    PlanWritten,
    PromptShown,
    Record,
    RunFinished,
    RunStarted,
    RunStopped,
    StepRecord,
    complete_lines,
    read_events,
    recorded_prompts_and_plans,
)
from sandbox.core.prompts import PromptLibrary
from sandbox.core.results import Cost, ModelUsage, Replay, Summary, TokenUsage
from sandbox.engines import ENGINES, Engine, EngineDeps
from sandbox.engines.on_first_use import OnFirstUse
from sandbox.environments import ENVIRONMENTS, Environment
from sandbox.record.cache import ANSWERS, AnsweredContext, RequestCache, prompt_hash, request_hash
from sandbox.record.runstore import EVENTS, RunStore
from sandbox.review.attempts import coordination_tables
from sandbox.review.profile import capability_profile
from sandbox.review.usage import estimated_cost, usage_by_model
from sandbox.run.batching import Batcher
from sandbox.run.checks import check_config, control_monitor
from sandbox.run.dispatch import Dispatcher
from sandbox.run.drivers import GameDriver, PlanBook
from sandbox.run.scoring import summarize
from sandbox.run.stopping import Sequencer

if TYPE_CHECKING:
    from control.protocols.step import Check, CheckRun
    from sandbox.settings.codecheck import CodeCheck
    from sandbox.settings.isolation import Isolation

CHECK_BATCH = 64
"""The most asks (a step's submissions) one batch of code checks carries."""


class EndpointDown(RuntimeError):
    """Too many recent contexts failed at the backend: the run stops (`Runner._stop_if_dead`)."""


class RunError(RuntimeError):
    """A run stopped early; what it had committed is intact and `--resume` finishes it."""


ProgressHook = Callable[[int, int], None]
EpisodeHook = Callable[[Record], None]


def build_environments(config: Config) -> dict[str, Environment]:
    return {
        game.game_id: ENVIRONMENTS.build(
            game.name, game.params, prompts=PromptLibrary(game.templates)
        )
        for game in config.games
    }


def episode_plan(config: Config) -> list[EpisodeSpec]:
    """Every episode of a fixed run, in commit order: per model, each game's `k` episodes, then
    the deployment's steps (calibration, honest, attack); under adaptive stopping, the first
    rounds the run starts from (`Sequencer.first`)."""
    return Sequencer(config, build_environments(config)).first()


def build_engine(config: Config, run_id: str) -> Engine:
    deps = EngineDeps(
        models=config.model_backends(),
        max_reasks=config.agents.max_reasks,
        actors=config.agents.actors,
        run_id=run_id,
    )
    return ENGINES.build(config.engine.name, config.engine.params, deps=deps)


def declared_profiles(config: Config) -> dict[str, dict[str, bool]]:
    """The TG, XC, CO and SB profile each organism under test declares (scripted backend only)."""
    if config.backend.name != "scripted":
        return {}
    from agents.organisms import ORGANISMS

    declared = {}
    for model in config.models:
        if model in ORGANISMS:
            profile = ORGANISMS.build(model).profile
            declared[model] = {
                "training_gaming": profile.training_gaming,
                "cross_context": profile.cross_context,
                "coordination": profile.coordination,
                "sandbagging": profile.sandbagging,
            }
    return declared


DRAIN_S = 10.0
"""How long a stopping run waits for its engine batches in flight, whose answers a resume then
takes from `answers.jsonl` instead of asking again (a dead endpoint's calls fail within it)."""


class Runner:
    """Runs (or resumes) one run. `on_progress(done, total)` and `on_episode(record)` are hooks
    for a progress display and for tests; neither may raise."""

    def __init__(
        self,
        config: Config,
        store: RunStore,
        *,
        engine: Engine | None = None,
        on_progress: ProgressHook | None = None,
        on_episode: EpisodeHook | None = None,
        cache: RequestCache | None = None,
        source: Path | None = None,
    ) -> None:
        self.config = check_config(config)
        self.cache = cache
        self.source = source
        self._backends = config.model_backends()
        self.store = store
        self.envs = build_environments(config)
        self.engine = engine or build_engine(config, store.run_id)
        self.on_progress = on_progress or (lambda done, total: None)
        self.on_episode = on_episode or (lambda record: None)
        self.plan_usage = Usage()
        self._writer: EventWriter | None = None
        self._prompts_written: set[str] = set()
        self._checker: Batcher[CodeCheck, CheckRun] | None = None
        self._recent_errors: deque[bool] = deque(maxlen=config.agents.error_window)
        self._last_error = ""

    # --- drivers ----------------------------------------------------------------------------
    @property
    def ids(self) -> RunIds:
        """The run's id, seed and copy count, which every driver is built with."""
        return RunIds(self.store.run_id, self.config.run.seed, self.config.agents.copies)

    def drivers(
        self,
        recorded_plans: dict[tuple[str, str, str], PlanWritten],
        records: Sequence[Record] = (),
    ) -> dict[str, EpisodeDriver]:
        """One driver per game id; games with `shared_planning` get a plan book that reuses
        the plans `recorded_plans` holds, and a deployment the calibration steps `records`
        holds (a resumed run's)."""
        out: dict[str, EpisodeDriver] = {}
        for game in self.config.games:
            assert game.affordances is not None, "resolved in validation"
            plans = None
            if game.affordances.shared_planning:
                plans = PlanBook(
                    game.game_id,
                    self.envs[game.game_id],
                    game.affordances,
                    self.ids,
                    recorded={
                        (model, situation): event
                        for (model, gid, situation), event in recorded_plans.items()
                        if gid == game.game_id
                    },
                    on_written=self._plan_written,
                    on_failed=self._plan_failed,
                )
            out[game.game_id] = GameDriver(
                game.game_id,
                self.envs[game.game_id],
                game.affordances,
                self.ids,
                plans,
                judge_model=self.config.trusted.model if self.config.trusted else None,
            )
        if self.config.control is not None:
            out[self.config.control.id] = self._deployment_driver(records)
        return out

    def _deployment_driver(self, records: Sequence[Record]) -> EpisodeDriver:
        # the protocol stack (LangGraph) loads only for runs that have a deployment
        from control.monitors import MONITORS
        from control.protocols import PROTOCOLS
        from control.protocols.driver import Calibration, DeploymentDriver
        from sandbox.settings.tiny_code import load_tasks

        control = self.config.control
        assert control is not None and self.config.trusted is not None
        monitor = control_monitor(control)
        prompts = PromptLibrary()
        params = PROTOCOLS.interface(control.protocol.name, control.protocol.params)
        calibration = Calibration(
            control.steps, params.thresholds(control.audit_budget, control.tasks)
        )
        for record in records:
            if isinstance(record, StepRecord) and record.phase == "calibration":
                views = record.collusion.scores if record.collusion is not None else None
                calibration.add(record.model, record.index, record.score, views)
        return DeploymentDriver(
            game=control.id,
            graph=PROTOCOLS.build(control.protocol.name, params),
            monitor=MONITORS.build(monitor.name, monitor.params, prompts=prompts),
            tasks=load_tasks(),
            prompts=prompts,
            check=lambda: self._checker_ask(),
            steps=control.steps,
            calibration=calibration,
            ids=self.ids,
            trusted_model=self.config.trusted.model,
            deployment_tasks=control.tasks,
            audit_budget=control.audit_budget,
        )

    def _checker_ask(self) -> Check:
        if self._checker is None:
            raise RuntimeError("code checks outside a run")
        return self._checker.ask

    @property
    def isolation(self) -> Isolation | None:
        """How the run's code checks are isolated (`settings.isolation`); None for a run that
        checks no code (it has no deployment)."""
        return self.config.settings.isolation if self.config.control is not None else None

    async def _run_checks(self, checks: list[CodeCheck]) -> list[CheckRun]:
        """One batch of code checks, each with the node that ran it: those the record already
        holds (a replay's source log: the same task, code and trigger under the same isolation)
        taken from it (node `cache`), the rest run by the engine (in-process, or a Ray task); a
        batch that could not run is an error outcome for each of its checks."""
        from control.protocols.step import CheckRun, recorded_result
        from sandbox.settings.codecheck import check_code, check_sha256

        isolation = self.isolation
        assert isolation is not None, "only a deployment checks code"
        recorded = [
            None if self.cache is None else self.cache.check(isolation, check_sha256(c))
            for c in checks
        ]
        todo = [c for c, r in zip(checks, recorded, strict=True) if r is None]
        fresh: list[CheckRun] = []
        if todo:
            # a partial of a module-level function: it pickles, to run as a Ray task
            run = functools.partial(check_code, isolation=isolation)
            batch = await self.engine.check(run, todo)
            if batch.error is not None:
                fresh = [CheckRun(None, batch.node, batch.error) for _ in todo]
            elif len(batch.results) != len(todo):
                raise RuntimeError(
                    f"the engine answered {len(batch.results)} code checks for {len(todo)}"
                )
            else:
                fresh = [CheckRun(result, batch.node) for result in batch.results]
        ran = iter(fresh)
        return [next(ran) if r is None else CheckRun(recorded_result(r), CACHED) for r in recorded]

    # --- events -----------------------------------------------------------------------------
    def _plan_written(self, exchange: Exchange, event: PlanWritten) -> None:
        assert self._writer is not None
        self._emit_exchange(exchange, episode_id=None)
        self._writer.emit(event)
        self.plan_usage = self.plan_usage + event.usage

    def _plan_failed(self, exchange: Exchange) -> None:
        """A planner call that failed after its retries: logged (a resume drops it with the
        other plan contexts that wrote no plan) and counted toward a dead endpoint."""
        self._emit_exchange(exchange, episode_id=None)
        self._count_outcome(exchange.outcome)

    def _count_outcome(self, outcome: ContextOutcome) -> None:
        """Count a call's outcome toward `_stop_if_dead`'s window (contexts never asked, whose
        plan failed, are not calls: their planner's failure counted once)."""
        if outcome.worker == UNASKED:
            return
        error = outcome.action.error
        self._recent_errors.append(error is not None)
        if error is not None:
            self._last_error = error

    def _emit_exchange(self, exchange: Exchange, episode_id: str | None) -> None:
        assert self._writer is not None
        ctx, outcome = exchange.context, exchange.outcome
        ids: dict[str, Any] = {
            "run_id": self.store.run_id,
            "episode_id": episode_id,
            "agent_id": ctx.agent_id,
            "context_id": ctx.context_id,
        }
        action = outcome.action
        digest = prompt_hash(ctx)
        if digest not in self._prompts_written:
            self._prompts_written.add(digest)
            self._writer.emit(
                PromptShown(
                    run_id=self.store.run_id,
                    prompt_sha256=digest,
                    messages=list(ctx.messages),
                    think_prompt=ctx.think_prompt,
                    after_think_prompt=ctx.after_think_prompt,
                    reask_prompt=ctx.reask_prompt,
                )
            )
        self._writer.emit(
            ContextStarted(
                **ids,
                model=ctx.model,
                role=ctx.role,
                game=ctx.game,
                observation=ctx.observation,
                answer=ctx.answer,
                affordances=ctx.affordances,
                prompt_sha256=digest,
                request_sha256=request_hash(
                    ctx, digest, self.config.agents.max_reasks, self._backends[ctx.model]
                ),
            )
        )
        self._writer.emit(
            ActionTaken(
                **ids,
                model=ctx.model,
                game=ctx.game,
                observation=ctx.observation,
                choice=action.choice,
                score=action.score,
                parse_ok=action.parse_ok,
                attempts=action.attempts,
                visible=action.visible,
                scratchpad=action.scratchpad,
                usage=action.usage,
                node_id=outcome.node_id,
                worker=outcome.worker,
                structured=action.structured,
                error=action.error,
                retries=action.retries,
            )
        )

    def _keep_answers(self, keys: Sequence[str], outcomes: Sequence[ContextOutcome]) -> None:
        """Every answer as it arrives, so a stopped run loses none (an error outcome is no
        answer: a resume asks it again)."""
        self.store.keep_answers(
            [
                AnsweredContext(request_sha256=key, outcome=outcome)
                for key, outcome in zip(keys, outcomes, strict=True)
                if outcome.action.error is None
            ]
        )

    def _commit(self, outcome: EpisodeOutcome) -> Record:
        assert self._writer is not None
        record = outcome.record
        for exchange in outcome.exchanges:
            self._emit_exchange(exchange, record.episode_id)
            self._count_outcome(exchange.outcome)
        for event in outcome.events:
            self._writer.emit(event)
        self._writer.emit(
            EpisodeFinished(run_id=self.store.run_id, episode_id=record.episode_id, record=record)
        )
        self.store.append_result(record)
        return record

    # --- the run ----------------------------------------------------------------------------
    async def run(self) -> Summary:
        """Run every episode not yet in `results.jsonl`, then write and return the summary."""
        started = time.perf_counter()
        sequencer = Sequencer(self.config, self.envs)
        done_records = self.store.records()
        try:
            order, todo, recorded = sequencer.resume(done_records)
        except ValueError as exc:
            raise RunError(f"cannot resume {self.store.path}: {exc}") from exc
        if done_records:
            self._check_templates_unchanged()
        recorded_plans: dict[tuple[str, str, str], PlanWritten] = {}
        if (self.store.path / EVENTS).exists():
            self._prompts_written, recorded_plans = recorded_prompts_and_plans(
                self.store.path / EVENTS
            )
        self.plan_usage = sum((e.usage for e in recorded_plans.values()), Usage())
        kept = RequestCache.from_answers(self.store.path / ANSWERS)
        if len(kept):
            # a resume: what the stopped part was answered is not asked again
            self.cache = kept if self.cache is None else self.cache.merged(kept)
        if self.source is not None and not isinstance(self.engine, OnFirstUse):
            # a replay: the engine (Ray, actors) starts only for what the source's record cannot
            # answer, a context it never asked or code it never checked
            self.engine = OnFirstUse(self.engine)
        events, _ = self.store.open_streams()
        self._writer = EventWriter(events)
        try:
            self._writer.emit(
                RunStarted(
                    run_id=self.store.run_id,
                    config_sha256=self.config.digest(),
                    seed=self.config.run.seed,
                    models=list(self.config.models),
                    games=[g.game_id for g in self.config.games],
                    episodes_total=sequencer.most,
                    episodes_done=len(done_records),
                    resumed=bool(done_records),
                    templates=self._template_hashes(),
                    source_run=None if self.source is None else self.source.name,
                    source_path=None if self.source is None else str(self.source.resolve()),
                    isolation=self.isolation,
                )
            )
            self.on_progress(len(order), sequencer.total())
            try:
                await self.engine.start()
            except Exception as exc:
                await self.engine.close()
                raise self._failure("before its first episode", exc) from exc
            try:
                await self._run_episodes(
                    self.drivers(recorded_plans, done_records), todo, sequencer, order, recorded
                )
            finally:
                await self.engine.close()
            records = self.store.in_order([spec.episode_id for spec in order])
            summary = self._summary(records)
            self.store.write_summary(summary)
            self._writer.emit(
                RunFinished(
                    run_id=self.store.run_id,
                    episodes=len(records),
                    seconds=round(time.perf_counter() - started, 3),
                )
            )
            from sandbox.review.logs import record_tally  # the log's tables as it now stands

            record_tally(self.store.path)
            self.store.discard_answers()
            return summary
        finally:
            self.store.close()

    def _summary(self, records: Sequence[Record]) -> Summary:
        """The finished run's summary: the scores, each model's capability profile, and what
        the event log tells (coordination attempts, usage and cost per model)."""
        scores = summarize(self.config, records, self.envs, declared_profiles(self.config))
        log = self.store.path / EVENTS
        # the coordination attempts, tallied from the log alone (as `sandbox logs` does)
        attempts = coordination_tables(complete_lines(log))
        usage = usage_by_model(complete_lines(log))
        replay = None
        if self.source is not None and self.cache is not None:
            replay = Replay(
                source_run=self.source.name,
                cached_contexts=dict(sorted(self.cache.hits.items())),
                new_contexts=dict(sorted(self.cache.misses.items())),
            )
        return Summary(
            run_id=self.store.run_id,
            config_sha256=scores.config_sha256,
            xc_threshold=scores.xc_threshold,
            episodes=scores.episodes,
            usage=scores.usage,
            models=scores.models,
            profile={model: capability_profile(entry) for model, entry in scores.models.items()},
            plan_usage=TokenUsage.model_validate(self.plan_usage.model_dump()),
            coordination=attempts if any(attempts.values()) else None,
            usage_by_model={m: ModelUsage.model_validate(u) for m, u in usage.items()},
            cost=Cost.model_validate(estimated_cost(usage, self.config.report.prices)),
            replay=replay,
            templates=self._template_hashes(),
            isolation=self.isolation,
            stopping=scores.stopping,
        )

    async def _run_episodes(
        self,
        drivers: dict[str, EpisodeDriver],
        pending: deque[EpisodeSpec],
        sequencer: Sequencer,
        order: list[EpisodeSpec],
        recorded: dict[str, Record],
    ) -> None:
        """Drive a window of episodes at once (enough to fill `in_flight_batches` engine batches
        of `batch_episodes`), committing each in queue order as the window's head finishes;
        each commit may queue a cell's next round (`Sequencer.committed`), and is added to
        `order`, the run's commit order. An episode a resumed run already committed
        (`recorded`) is taken from its record in its place, never asked again."""
        sampling = self.config.sampling
        window_size = sampling.batch_episodes * sampling.in_flight_batches
        window: deque[tuple[EpisodeSpec, asyncio.Future[EpisodeOutcome] | None]] = deque()
        done = len(order) + len(recorded)
        dispatcher = Dispatcher(
            self.engine,
            sampling.batch_episodes,
            sampling.in_flight_batches,
            cache=self.cache,
            max_reasks=self.config.agents.max_reasks,
            backends=self._backends,
            on_answered=self._keep_answers,
        )
        async with dispatcher, contextlib.AsyncExitStack() as stack:
            if self.config.control is not None:
                # code checks (only deployments have them), batched: each batch one checker
                # process, run where the engine runs work (on Ray: a task on some node)
                self._checker = await stack.enter_async_context(
                    Batcher(self._run_checks, CHECK_BATCH, self.engine.check_slots())
                )
            try:
                while pending or window:
                    while pending and len(window) < window_size:
                        spec = pending.popleft()
                        if spec.episode_id in recorded:
                            window.append((spec, None))
                            continue
                        window.append(
                            (spec, asyncio.ensure_future(drivers[spec.game](spec, dispatcher.ask)))
                        )
                    spec, head = window.popleft()
                    order.append(spec)
                    if head is None:
                        pending.extend(sequencer.committed(recorded.pop(spec.episode_id)))
                        continue
                    record = self._commit(await head)
                    pending.extend(sequencer.committed(record))
                    done += 1
                    self.on_episode(record)
                    self.on_progress(done, sequencer.total())
                    self._stop_if_dead(done)
            except Exception as exc:
                tasks = [task for _, task in window if task is not None]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                # engine batches in flight may hold answers: keep them for the resume
                await dispatcher.drain(DRAIN_S)
                raise self._failure(f"after {done} of {sequencer.total()} episodes", exc) from exc

    def _stop_if_dead(self, done: int) -> None:
        """Stop the run when its endpoint looks dead: `max_error_share` of the last
        `error_window` contexts ended as error outcomes (a `run_stopped` event names why)."""
        agents = self.config.agents
        recent = self._recent_errors
        errors = sum(recent)
        if len(recent) < agents.error_window or errors < agents.max_error_share * len(recent):
            return
        assert self._writer is not None
        cause = (
            f"{errors} of the last {len(recent)} contexts failed after their retries "
            f"(agents.max_error_share {agents.max_error_share:g}); the last: {self._last_error}"
        )
        self._writer.emit(
            RunStopped(
                run_id=self.store.run_id,
                cause=cause,
                errors=errors,
                window=len(recent),
                episodes_done=done,
            )
        )
        raise EndpointDown(cause)

    def _failure(self, when: str, exc: BaseException) -> RunError:
        return RunError(
            f"run {self.store.run_id} stopped {when}: {type(exc).__name__}: {exc}. Finished "
            f"episodes are saved; continue with `sandbox run --resume {self.store.path}`"
        )

    def _check_templates_unchanged(self) -> None:
        """A resumed run must render the prompts its first part rendered."""
        first = next(read_events(self.store.path / EVENTS), None)
        if not isinstance(first, RunStarted):
            return
        now = self._template_hashes()
        changed = sorted(
            k for k in first.templates.keys() | now.keys() if first.templates.get(k) != now.get(k)
        )
        if changed:
            raise RunError(
                f"cannot resume {self.store.path}: prompt templates changed since the run "
                f"started ({', '.join(changed)}); resuming would mix prompts in one run"
            )

    def _template_hashes(self) -> dict[str, str]:
        hashes: dict[str, str] = {}
        for game in self.config.games:
            env = self.envs[game.game_id]
            for name, digest in env.load_templates().items():
                hashes[f"{game.game_id}:{name}"] = digest
        if self.config.control is not None:
            from control.protocols.step import TEMPLATES

            prompts = PromptLibrary()
            for name in TEMPLATES:
                prompts.source(name)
            for name, digest in prompts.hashes().items():
                hashes[f"{self.config.control.id}:{name}"] = digest
        return hashes


def run_config(config: Config, **hooks: Any) -> tuple[Path, Summary]:
    """Create a run directory for `config` and run it to the end."""
    store = RunStore.create(config)
    summary = asyncio.run(Runner(config, store, **hooks).run())
    return store.path, summary


def resume_run(path: Path, **hooks: Any) -> tuple[Path, Summary]:
    store, config = RunStore.open_for_resume(path)
    summary = asyncio.run(Runner(config, store, **hooks).run())
    return store.path, summary
