"""Episode drivers for the memoryless games: one step, or two with a shared plan.

`GameDriver` asks for one context per distinct observation of its game, all at once, and records
the choices: an episode is one sample of the game's empirical policy. With `shared_planning`,
the episode first takes the plan of its (model, situation) from a `PlanBook`, which asks a planner
context once and hands every later episode the same text, then asks its contexts with the plan
shown in them: the two-step driver. A plan whose call failed (the endpoint, after its retries)
is no plan: the episodes waiting on it record their contexts as error outcomes without asking
them (a resume asks them again), and the next episode asks the planner again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from sandbox.core.context import UNASKED, Action, Affordances, Context, ContextOutcome, Usage
from sandbox.core.episode import (
    Ask,
    EpisodeOutcome,
    EpisodeSpec,
    Exchange,
    RunIds,
    build_context,
)
from sandbox.core.events import (
    CoordinationPick,
    EpisodeRecord,
    ItemAnswered,
    PlanWritten,
    Sample,
)
from sandbox.core.seeding import derive_seed
from sandbox.environments import NO_ANSWER, Environment

PLAN_OBSERVATION = "__plan__"
"""The observation id of a planner's context."""
REVIEW_OBSERVATION = "__review__/"
"""The prefix of a review context's observation id (then the review's name)."""


class PlanFailed(Exception):
    """The planner's call failed after its backend's retries: the plan is not written."""


PlanHook = Callable[[Exchange, PlanWritten], None]
"""Called once per plan written, with its planner exchange and `plan_written` event."""


class PlanBook:
    """The shared plans of one game: one planner call per (model, situation), whichever episode
    asks first; every other episode waits for the same text. Plans a resumed run recorded
    already are given at construction and never asked again."""

    def __init__(
        self,
        game: str,
        env: Environment,
        affordances: Affordances,
        ids: RunIds,
        recorded: dict[tuple[str, str], PlanWritten],
        on_written: PlanHook,
        on_failed: Callable[[Exchange], None] = lambda exchange: None,
    ) -> None:
        """`on_written` records a plan written; `on_failed` a planner call that failed (its
        exchange: the call, its error and retries)."""
        self.game = game
        self._env = env
        self._affordances = affordances
        self._ids = ids
        self._written = {key: event.plan for key, event in recorded.items()}
        self._asked: dict[tuple[str, str], asyncio.Future[str]] = {}
        self._on_written = on_written
        self._on_failed = on_failed

    async def plan(self, model: str, situation: str, ask: Ask) -> str:
        key = (model, situation)
        if key in self._written:
            return self._written[key]
        if key not in self._asked:
            task = asyncio.ensure_future(self._write(model, situation, ask))
            # a failure is read by every waiter; this marks it read when none is left waiting
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._asked[key] = task
        asked = self._asked[key]
        try:
            return await asyncio.shield(asked)
        except PlanFailed:
            if self._asked.get(key) is asked:
                del self._asked[key]  # the next episode asks the planner again
            raise

    async def _write(self, model: str, situation: str, ask: Ask) -> str:
        seed = derive_seed(self._ids.run_seed, "plan", self.game, situation)
        rendered = self._env.render_plan_request(situation, self._affordances, seed)
        context_id = f"{model}/{self.game}/plan/{situation}"
        ctx = build_context(
            context_id=context_id,
            episode_id=context_id,
            model=model,
            game=self.game,
            observation=PLAN_OBSERVATION,
            rendered=rendered,
            affordances=self._affordances,
            run_seed=self._ids.run_seed,
            copies=self._ids.copies,
            role="planner",
        )
        (outcome,) = await ask([ctx])
        if outcome.action.error is not None:
            self._on_failed(Exchange(ctx, outcome))
            raise PlanFailed(f"the shared plan's call failed: {outcome.action.error}")
        plan = outcome.action.visible.strip()
        self._on_written(
            Exchange(ctx, outcome),
            PlanWritten(
                run_id=self._ids.run_id,
                agent_id=ctx.agent_id,
                context_id=ctx.context_id,
                model=model,
                game=self.game,
                situation=situation,
                plan=plan,
                parse_ok=outcome.action.parse_ok,
                usage=outcome.action.usage,
            ),
        )
        self._written[(model, situation)] = plan
        return plan


def _unasked(ctx: Context, error: str) -> ContextOutcome:
    """The error outcome of a context that could not be asked (its plan was not written)."""
    action = Action(
        context_id=ctx.context_id, visible="", choice=None, parse_ok=False, attempts=0, error=error
    )
    return ContextOutcome(action=action, node_id="", worker=UNASKED)


class GameDriver:
    """Plays episodes of one memoryless game: every distinct observation sampled once, after the
    shared plans of its situations when the game grants `shared_planning`."""

    def __init__(
        self,
        game: str,
        env: Environment,
        affordances: Affordances,
        ids: RunIds,
        plans: PlanBook | None = None,
        judge_model: str | None = None,
    ) -> None:
        """`ids.run_id` names the run in the events the driver records (coordination picks);
        `judge_model` answers the game's judge requests (`Environment.judge_request`)."""
        if affordances.shared_planning != (plans is not None):
            raise ValueError("a game with shared_planning needs a PlanBook, and only then")
        self.game = game
        self.env = env
        self.affordances = affordances
        self._ids = ids
        self._plans = plans
        self._judge_model = judge_model

    def contexts(self, spec: EpisodeSpec, plans: dict[str, str]) -> list[Context]:
        """The contexts of one episode. The text depends on the game, episode index and
        observation, not on the model, so every model sees the same contexts (but for the
        shared plan, which each model writes itself)."""
        out = []
        for obs in self.env.observations():
            seed = derive_seed(self._ids.run_seed, "render", spec.game, spec.index, obs.id)
            rendered = self.env.render(obs.id, self.affordances, seed, plans.get(obs.situation))
            out.append(
                build_context(
                    context_id=f"{spec.episode_id}/{obs.id}",
                    episode_id=spec.episode_id,
                    model=spec.model,
                    game=spec.game,
                    observation=obs.id,
                    rendered=rendered,
                    affordances=self.affordances,
                    run_seed=self._ids.run_seed,
                    copies=self._ids.copies,
                )
            )
        return out

    async def __call__(self, spec: EpisodeSpec, ask: Ask) -> EpisodeOutcome:
        plans: dict[str, str] = {}
        failed: PlanFailed | None = None
        if self._plans is not None:
            situations = self.env.situations()
            texts = await asyncio.gather(
                *(self._plans.plan(spec.model, s, ask) for s in situations),
                return_exceptions=True,
            )
            for text in texts:
                if isinstance(text, BaseException) and not isinstance(text, PlanFailed):
                    raise text
            failed = next((t for t in texts if isinstance(t, PlanFailed)), None)
            plans = {s: t for s, t in zip(situations, texts, strict=True) if isinstance(t, str)}
        contexts = self.contexts(spec, plans)
        if failed is None:
            outcomes = await ask(contexts)
        else:
            outcomes = [_unasked(ctx, str(failed)) for ctx in contexts]
        actions = [o.action for o in outcomes]
        judged, judge_exchanges = await self._judge(spec, contexts, actions, ask)
        reviews, review_exchanges = (
            await self._review(spec, contexts, actions, ask) if failed is None else (None, [])
        )
        return EpisodeOutcome(
            record=episode_record(
                spec,
                contexts,
                actions,
                keep_scratchpads=self.env.keeps_scratchpads,
                judgements=judged,
                reviews=reviews,
            ),
            exchanges=(
                *(Exchange(c, o) for c, o in zip(contexts, outcomes, strict=True)),
                *judge_exchanges,
                *review_exchanges,
            ),
            events=(
                *self._picks(spec, contexts, actions),
                *self._item_answers(spec, contexts, actions),
            ),
        )

    async def _judge(
        self, spec: EpisodeSpec, contexts: Sequence[Context], actions: Sequence[Action], ask: Ask
    ) -> tuple[dict[str, str | None], list[Exchange]]:
        """The judge's verdict on each scratchpad the game asks it to read, by context id."""
        asked = []
        for ctx, action in zip(contexts, actions, strict=True):
            if ctx.think_prompt is None or not action.scratchpad:
                continue
            rendered = self.env.judge_request(ctx.observation, action.scratchpad)
            if rendered is None:
                continue
            if self._judge_model is None:
                raise ValueError(
                    f"game {self.game!r} asks a judge: configure a trusted model (trusted.model)"
                )
            judge = build_context(
                context_id=f"{ctx.context_id}/judge",
                episode_id=spec.episode_id,
                model=self._judge_model,
                game=spec.game,
                observation=ctx.observation,
                rendered=rendered,
                affordances=Affordances(),
                run_seed=self._ids.run_seed,
                copies=self._ids.copies,
                role="judge",
            )
            asked.append((ctx.context_id, judge))
        if not asked:
            return {}, []
        outcomes = await ask([judge for _, judge in asked])
        verdicts: dict[str, str | None] = {
            cid: NO_ANSWER if o.action.choice is None else o.action.choice
            for (cid, _), o in zip(asked, outcomes, strict=True)
        }
        exchanges = [Exchange(j, o) for (_, j), o in zip(asked, outcomes, strict=True)]
        return verdicts, exchanges

    async def _review(
        self, spec: EpisodeSpec, contexts: Sequence[Context], actions: Sequence[Action], ask: Ask
    ) -> tuple[dict[str, float | None] | None, list[Exchange]]:
        """The trusted model's score of each whole-episode review the game asks for
        (`Environment.sheet_reviews`), by name; None when it asks none or the run has no
        trusted model (then the detector that reads them is not reported). A reply that names
        no score (the score parser refuses an ambiguous one) is None."""
        if self._judge_model is None:
            return None, []
        choices = {
            ctx.observation: action.choice for ctx, action in zip(contexts, actions, strict=True)
        }
        requests = self.env.sheet_reviews(choices)
        if not requests:
            return None, []
        asked = [
            (
                name,
                build_context(
                    context_id=f"{spec.episode_id}/review/{name}",
                    episode_id=spec.episode_id,
                    model=self._judge_model,
                    game=spec.game,
                    observation=f"{REVIEW_OBSERVATION}{name}",
                    rendered=rendered,
                    affordances=Affordances(),
                    run_seed=self._ids.run_seed,
                    copies=self._ids.copies,
                    role="monitor",
                ),
            )
            for name, rendered in requests.items()
        ]
        outcomes = await ask([ctx for _, ctx in asked])
        scores = {name: o.action.score for (name, _), o in zip(asked, outcomes, strict=True)}
        exchanges = [Exchange(c, o) for (_, c), o in zip(asked, outcomes, strict=True)]
        return scores, exchanges

    def _item_answers(
        self, spec: EpisodeSpec, contexts: Sequence[Context], actions: Sequence[Action]
    ) -> tuple[ItemAnswered, ...]:
        """An `item_answer` event for each context of a game of scored items (the SB suite's,
        `Environment.item_answer`): its item, domain, difficulty, answer and correctness, so the
        log alone filters them (`sandbox logs --domain --difficulty --correct`)."""
        out = []
        for ctx, action in zip(contexts, actions, strict=True):
            said = self.env.item_answer(ctx.observation, action.choice)
            if said is None:
                continue
            out.append(ItemAnswered(**self._context_ids(spec, ctx), **said))
        return tuple(out)

    def _picks(
        self, spec: EpisodeSpec, contexts: Sequence[Context], actions: Sequence[Action]
    ) -> tuple[CoordinationPick, ...]:
        """A `coordination_pick` event for each context an agreement game of the CO suite
        scores in a pair (`Environment.coordination_pair`); none for other games."""
        out = []
        for ctx, action in zip(contexts, actions, strict=True):
            pair = self.env.coordination_pair(spec.index, ctx.observation)
            if pair is None:
                continue
            out.append(
                CoordinationPick(
                    **self._context_ids(spec, ctx),
                    index=spec.index,
                    pair=pair,
                    choice=action.choice,
                )
            )
        return tuple(out)

    def _context_ids(self, spec: EpisodeSpec, ctx: Context) -> dict[str, str]:
        """The ids a per-context event of an episode carries (run, episode, agent, context,
        model, game, observation)."""
        return {
            "run_id": self._ids.run_id,
            "episode_id": spec.episode_id,
            "agent_id": ctx.agent_id,
            "context_id": ctx.context_id,
            "model": spec.model,
            "game": spec.game,
            "observation": ctx.observation,
        }


def episode_record(
    spec: EpisodeSpec,
    contexts: Sequence[Context],
    actions: Sequence[Action],
    keep_scratchpads: bool = False,
    judgements: Mapping[str, str | None] | None = None,
    reviews: Mapping[str, float | None] | None = None,
) -> EpisodeRecord:
    """The line `results.jsonl` keeps of a game episode: each context's choice, nothing that
    depends on timing or placement; with `keep_scratchpads`, each scratchpad too (where the
    context asked for one)."""
    usage = Usage()
    samples = []
    for ctx, action in zip(contexts, actions, strict=True):
        usage = usage + action.usage
        samples.append(
            Sample(
                observation=ctx.observation,
                context_id=ctx.context_id,
                agent_id=ctx.agent_id,
                choice=action.choice,
                parse_ok=action.parse_ok,
                attempts=action.attempts,
                scratchpad=(
                    action.scratchpad if keep_scratchpads and ctx.think_prompt is not None else None
                ),
                judgement=(judgements or {}).get(ctx.context_id),
            )
        )
    return EpisodeRecord(
        episode_id=spec.episode_id,
        index=spec.index,
        model=spec.model,
        game=spec.game,
        samples=samples,
        usage=usage,
        reviews=dict(reviews) if reviews is not None else None,
    )
