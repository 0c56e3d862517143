"""The runner: episodes of every (model, game) through an engine, recorded in a run directory.

An episode is one sample of every distinct observation of one game for one model; a game gets
`sampling.k` episodes. Episodes are dispatched in batches (several batches in flight) and
committed strictly in order, so `results.jsonl` is identical for the same config and seed however
the engine schedules the work, and an interrupted run resumes after its last committed episode.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sandbox.config import Config
from sandbox.context import Context, Usage
from sandbox.engines import ENGINES, ContextOutcome, Engine, EngineDeps
from sandbox.environments import ENVIRONMENTS, Environment, Rendered
from sandbox.events import (
    ActionTaken,
    ContextStarted,
    EpisodeFinished,
    EpisodeRecord,
    EventWriter,
    PlanWritten,
    PromptShown,
    RunFinished,
    RunStarted,
    Sample,
    plans_from_events,
    prompts_from_events,
    read_events,
)
from sandbox.prompts import PromptLibrary
from sandbox.runstore import EVENTS, RunStore
from sandbox.scoring import summarize
from sandbox.seeding import derive_seed


class RunError(RuntimeError):
    """A run stopped early; what it had committed is intact and `--resume` finishes it."""


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    model: str
    game: str
    index: int

    @property
    def episode_id(self) -> str:
        return f"{self.model}/{self.game}/{self.index:05d}"


ProgressHook = Callable[[int, int], None]
EpisodeHook = Callable[[EpisodeRecord], None]


def build_environments(config: Config) -> dict[str, Environment]:
    return {
        game.game_id: ENVIRONMENTS.build(
            game.name, game.params, prompts=PromptLibrary(game.templates)
        )
        for game in config.games
    }


def episode_plan(config: Config) -> list[EpisodeSpec]:
    return [
        EpisodeSpec(model, game.game_id, index)
        for model in config.models
        for game in config.games
        for index in range(config.sampling.k)
    ]


def build_engine(config: Config, run_id: str) -> Engine:
    deps = EngineDeps(
        backend=config.backend.name,
        backend_params=config.backend.params,
        max_reasks=config.agents.max_reasks,
        actors=config.agents.actors,
        run_id=run_id,
    )
    params: BaseModel | None = config.ray if config.engine == "ray" else None
    return ENGINES.build(config.engine, params, deps=deps)


def prompt_hash(ctx: Context) -> str:
    """SHA-256 of everything a context shows (its messages and the loop's scratchpad, after-
    scratchpad and re-ask prompts), as recorded on its `context_started` and `prompt` events."""
    h = hashlib.sha256()
    for m in ctx.messages:
        h.update(f"{m.role}\x1f{m.content}\x1e".encode())
    for text in (ctx.think_prompt, ctx.after_think_prompt, ctx.reask_prompt):
        h.update(f"\x1d{'' if text is None else text}".encode())
    h.update(b"\x1d" if ctx.think_prompt is None else b"\x1c")
    return h.hexdigest()


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
    ) -> None:
        self.config = config
        self.store = store
        self.envs = build_environments(config)
        self.games = {g.game_id: g for g in config.games}
        self.engine = engine or build_engine(config, store.run_id)
        self.on_progress = on_progress or (lambda done, total: None)
        self.on_episode = on_episode or (lambda record: None)
        self.plans: dict[tuple[str, str, str], str] = {}
        self.plan_usage = Usage()
        self._writer: EventWriter | None = None
        self._prompts_written: set[str] = set()

    # --- contexts ---------------------------------------------------------------------------
    def _agent_for(self, context_id: str) -> str:
        return f"copy-{derive_seed('agent', context_id) % self.config.agents.copies}"

    def _context(
        self,
        spec: EpisodeSpec,
        context_id: str,
        obs_id: str,
        rendered: Rendered,
        choices: tuple[str, ...],
    ) -> Context:
        return Context(
            context_id=context_id,
            episode_id=spec.episode_id,
            agent_id=self._agent_for(context_id),
            model=spec.model,
            game=spec.game,
            observation=obs_id,
            messages=rendered.messages,
            choices=choices,
            affordances=self.config.affordances_for(self.games[spec.game]),
            seed=derive_seed(self.config.run.seed, "sample", context_id),
            think_prompt=rendered.think_prompt,
            after_think_prompt=rendered.after_think_prompt,
            reask_prompt=rendered.reask_prompt,
        )

    def episode_contexts(self, spec: EpisodeSpec) -> list[Context]:
        """The contexts of one episode. The rendered text depends on the game, episode index and
        observation, not on the model, so every model sees the same contexts (but for the
        shared plan, which each model writes itself)."""
        env = self.envs[spec.game]
        affordances = self.config.affordances_for(self.games[spec.game])
        out = []
        for obs in env.observations():
            plan = self.plans.get((spec.model, spec.game, obs.situation))
            seed = derive_seed(self.config.run.seed, "render", spec.game, spec.index, obs.id)
            rendered = env.render(obs.id, affordances, seed, plan)
            context_id = f"{spec.episode_id}/{obs.id}"
            out.append(self._context(spec, context_id, obs.id, rendered, obs.choices))
        return out

    # --- shared plans -----------------------------------------------------------------------
    async def _write_plans(self) -> None:
        """One planning call per (model, game, situation) with `shared_planning`, unless a
        resumed run already recorded it."""
        recorded = plans_from_events(self.store.path / EVENTS)
        pending: list[tuple[tuple[str, str, str], Context]] = []
        for model in self.config.models:
            for game in self.config.games:
                affordances = self.config.affordances_for(game)
                if not affordances.shared_planning:
                    continue
                env = self.envs[game.game_id]
                for situation in env.situations():
                    key = (model, game.game_id, situation)
                    if key in recorded:
                        self.plans[key] = recorded[key].plan
                        self.plan_usage = self.plan_usage + recorded[key].usage
                        continue
                    seed = derive_seed(self.config.run.seed, "plan", game.game_id, situation)
                    rendered = env.render_plan_request(situation, affordances, seed)
                    spec = EpisodeSpec(model, game.game_id, -1)
                    cid = f"{model}/{game.game_id}/plan/{situation}"
                    ctx = self._context(spec, cid, "__plan__", rendered, ())
                    pending.append((key, ctx.model_copy(update={"episode_id": cid})))
        if not pending:
            return
        outcomes = await self.engine.run([ctx for _, ctx in pending])
        assert self._writer is not None
        for (key, ctx), outcome in zip(pending, outcomes, strict=True):
            self._emit_context(ctx, outcome, episode_id=None)
            plan = outcome.action.visible.strip()
            self.plans[key] = plan
            self.plan_usage = self.plan_usage + outcome.action.usage
            self._writer.emit(
                PlanWritten(
                    run_id=self.store.run_id,
                    agent_id=ctx.agent_id,
                    context_id=ctx.context_id,
                    model=key[0],
                    game=key[1],
                    situation=key[2],
                    plan=plan,
                    parse_ok=outcome.action.parse_ok,
                    usage=outcome.action.usage,
                )
            )

    # --- events -----------------------------------------------------------------------------
    def _emit_context(self, ctx: Context, outcome: ContextOutcome, episode_id: str | None) -> None:
        assert self._writer is not None
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
                game=ctx.game,
                observation=ctx.observation,
                affordances=ctx.affordances,
                prompt_sha256=digest,
            )
        )
        self._writer.emit(
            ActionTaken(
                **ids,
                model=ctx.model,
                game=ctx.game,
                observation=ctx.observation,
                choice=action.choice,
                parse_ok=action.parse_ok,
                attempts=action.attempts,
                visible=action.visible,
                scratchpad=action.scratchpad,
                usage=action.usage,
                node_id=outcome.node_id,
                worker=outcome.worker,
            )
        )

    def _commit(
        self,
        spec: EpisodeSpec,
        contexts: Sequence[Context],
        outcomes: Sequence[ContextOutcome],
    ) -> EpisodeRecord:
        assert self._writer is not None
        usage = Usage()
        samples = []
        for ctx, outcome in zip(contexts, outcomes, strict=True):
            self._emit_context(ctx, outcome, spec.episode_id)
            a = outcome.action
            usage = usage + a.usage
            samples.append(
                Sample(
                    observation=ctx.observation,
                    context_id=ctx.context_id,
                    agent_id=ctx.agent_id,
                    choice=a.choice,
                    parse_ok=a.parse_ok,
                    attempts=a.attempts,
                )
            )
        record = EpisodeRecord(
            episode_id=spec.episode_id,
            index=spec.index,
            model=spec.model,
            game=spec.game,
            samples=samples,
            usage=usage,
        )
        self._writer.emit(
            EpisodeFinished(run_id=self.store.run_id, episode_id=spec.episode_id, record=record)
        )
        self.store.append_result(record)
        return record

    # --- the run ----------------------------------------------------------------------------
    async def _run_batch(
        self, specs: Sequence[EpisodeSpec]
    ) -> list[tuple[EpisodeSpec, list[Context], list[ContextOutcome]]]:
        built = [(spec, self.episode_contexts(spec)) for spec in specs]
        outcomes = await self.engine.run([ctx for _, contexts in built for ctx in contexts])
        out = []
        pos = 0
        for spec, contexts in built:
            out.append((spec, contexts, outcomes[pos : pos + len(contexts)]))
            pos += len(contexts)
        return out

    async def run(self) -> dict[str, Any]:
        """Run every episode not yet in `results.jsonl`, then write and return the summary."""
        started = time.perf_counter()
        plan = episode_plan(self.config)
        done_records = self.store.records()
        done = {r.episode_id for r in done_records}
        todo = [spec for spec in plan if spec.episode_id not in done]
        if done:
            self._check_templates_unchanged()
        if (self.store.path / EVENTS).exists():
            self._prompts_written = set(prompts_from_events(self.store.path / EVENTS))
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
                    episodes_total=len(plan),
                    episodes_done=len(done),
                    resumed=bool(done),
                    templates=self._template_hashes(),
                )
            )
            self.on_progress(len(done), len(plan))
            try:
                await self.engine.start()
                await self._write_plans()
            except Exception as exc:
                await self.engine.close()
                raise self._failure("before its first episode", exc) from exc
            try:
                await self._run_episodes(todo, len(done), len(plan))
            finally:
                await self.engine.close()
            records = self.store.records()
            summary = {"run_id": self.store.run_id, **summarize(self.config, records, self.envs)}
            summary["plan_usage"] = self.plan_usage.model_dump()
            summary["templates"] = self._template_hashes()
            self.store.write_summary(summary)
            self._writer.emit(
                RunFinished(
                    run_id=self.store.run_id,
                    episodes=len(records),
                    seconds=round(time.perf_counter() - started, 3),
                )
            )
            return summary
        finally:
            self.store.close()

    async def _run_episodes(self, todo: list[EpisodeSpec], done: int, total: int) -> None:
        size = self.config.sampling.batch_episodes
        batches = deque(todo[i : i + size] for i in range(0, len(todo), size))
        in_flight: deque[asyncio.Task[Any]] = deque()
        try:
            while batches or in_flight:
                while batches and len(in_flight) < self.config.sampling.in_flight_batches:
                    in_flight.append(asyncio.ensure_future(self._run_batch(batches.popleft())))
                results = await in_flight.popleft()
                for spec, contexts, outcomes in results:
                    record = self._commit(spec, contexts, outcomes)
                    done += 1
                    self.on_episode(record)
                    self.on_progress(done, total)
        except Exception as exc:
            for task in in_flight:
                task.cancel()
            raise self._failure(f"after {done} of {total} episodes", exc) from exc

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
        return hashes


def run_config(config: Config, **hooks: Any) -> tuple[Path, dict[str, Any]]:
    """Create a run directory for `config` and run it to the end."""
    store = RunStore.create(config)
    summary = asyncio.run(Runner(config, store, **hooks).run())
    return store.path, summary


def resume_run(path: Path, **hooks: Any) -> tuple[Path, dict[str, Any]]:
    store, config = RunStore.open_for_resume(path)
    summary = asyncio.run(Runner(config, store, **hooks).run())
    return store.path, summary
