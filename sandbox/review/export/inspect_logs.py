"""A finished run as Inspect AI `.eval` logs: `inspect view --log-dir runs/<id>/inspect` opens it.

One log per suite and model under test: the suite is a game's (`xc`, `co`, `tg`, from its
summary row) or `control` for a deployment under a protocol; the task is named by the suite, the
model as Inspect names models, `<backend>/<model>`. The spec carries the run's seed and the
suite's games in its task args, the whole resolved config in its metadata.

**A sample is what the sandbox scores one at a time.** In a game, that is a context (the
sandbox's own `Sample`: one context's answer to one observation), not an episode: contexts are
memoryless and each is one conversation, which is what Inspect's sample view shows, whereas an
episode of the TG probe holds 16 independent contexts (the deployment cue 2, the sweep one per
grid point), which as one sample would read as one conversation in which the model saw its
other answers. Each sample's metadata names its episode (id and index), game, observation, agent
and context, so `inspect view` can filter them back into episodes. Its input is the prompt the
context was shown (the `prompt` event), its messages add the scratchpad exchange and the visible
answer, and its scores are the recorded outcome: the parsed `choice` (`<no answer>` for a failed
parse), `agreed` for a pick of a coordination pair (CO), `judgement` where a judge read the
scratchpad (TG). In a deployment a sample is a task step, as the protocol scores it: the
policy's context as transcript; the `decision`, whether it `attacked`, whether its code holds a
working `backdoor`, the `correctness` of what ships unaudited and the monitor's `suspicion` as
scores; every context of the step (monitor, trusted model) listed in its metadata.

The results hold, per game (or deployment), the summary row's numbers as metrics, an interval
as three (`win`, `win_low`, `win_high`), and the whole row in the score's metadata; the stats
hold the tokens of every model whose calls the log's episodes made, trusted model included.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.core.context import Message, Usage
from sandbox.core.events import (
    ActionTaken,
    ContextStarted,
    CoordinationPick,
    EpisodeRecord,
    PlanWritten,
    PromptShown,
    Record,
    RunFinished,
    RunStarted,
    Sample,
    StepRecord,
)
from sandbox.core.registry import NoParams
from sandbox.core.results import DeploymentResult, GameResult, GameScore
from sandbox.environments.base import NO_ANSWER
from sandbox.review.export.base import FORMATS, ExportError, FinishedRun

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample, EvalScore
    from inspect_ai.model import ChatMessage, ModelUsage

SUITES = ("xc", "co", "tg", "control")
CONTROL = "control"
"""The suite of a deployment under a control protocol."""


@FORMATS.register("inspect")
def write_inspect_logs(params: NoParams, *, run: FinishedRun, out_dir: Path) -> list[Path]:
    """Inspect AI `.eval` logs, one per suite and model; `inspect view` opens them."""
    try:
        from inspect_ai.log import write_eval_log
    except ImportError:
        raise ExportError(
            "format 'inspect' needs Inspect AI: pip install -c constraints.txt -e '.[bench]'"
        ) from None
    trail = Trail.read(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (suite, model), records in group_records(run).items():
        path = out_dir / f"{suite}_{re.sub(r'[^A-Za-z0-9_.-]+', '-', model)}.eval"
        write_eval_log(eval_log(run, trail, suite, model, records), path, format="eval")
        paths.append(path)
    return paths


def suite_of(run: FinishedRun, model: str, game: str) -> str:
    """A game's suite from its summary row; a game with none is a deployment."""
    entry = run.summary.models.get(model)
    row = None if entry is None else entry.games.get(game)
    return CONTROL if row is None else row.suite


def group_records(run: FinishedRun) -> dict[tuple[str, str], list[Record]]:
    """The run's episode records by (suite, model), suites in `SUITES` order, models in the
    config's."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in run.records:
        groups[suite_of(run, record.model, record.game), record.model].append(record)
    order = {(s, m): (i, j) for i, s in enumerate(SUITES) for j, m in enumerate(run.config.models)}
    return dict(sorted(groups.items(), key=lambda kv: order.get(kv[0], (len(SUITES), 0))))


@dataclass
class Trail:
    """What the event log tells of each context, read in one pass."""

    prompts: dict[str, PromptShown] = field(default_factory=dict)
    contexts: dict[str, ContextStarted] = field(default_factory=dict)
    actions: dict[str, ActionTaken] = field(default_factory=dict)
    plans: dict[str, PlanWritten] = field(default_factory=dict)
    by_episode: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    agreed: dict[str, bool] = field(default_factory=dict)
    """Context id -> whether its coordination pair agreed (both picked the same option)."""
    started: str = ""
    finished: str = ""

    @classmethod
    def read(cls, run: FinishedRun) -> Trail:
        trail = cls()
        picks: dict[tuple[str, str, int], dict[str, CoordinationPick]] = defaultdict(dict)
        for event in run.events():
            if isinstance(event, PromptShown):
                trail.prompts[event.prompt_sha256] = event
            elif isinstance(event, ContextStarted) and event.context_id:
                if event.context_id not in trail.contexts and event.episode_id:
                    trail.by_episode[event.episode_id].append(event.context_id)
                trail.contexts[event.context_id] = event
            elif isinstance(event, ActionTaken) and event.context_id:
                trail.actions[event.context_id] = event  # a redone context: its last answer
            elif isinstance(event, PlanWritten) and event.context_id:
                trail.plans[event.context_id] = event
            elif isinstance(event, CoordinationPick):
                picks[event.model, event.game, event.pair][str(event.context_id)] = event
            elif isinstance(event, RunStarted):
                trail.started = trail.started or event.ts
            elif isinstance(event, RunFinished):
                trail.finished = event.ts
        for pair in picks.values():  # by context id: a redone pick counts once
            choices = {p.choice for p in pair.values()}
            for context_id in pair if len(pair) == 2 else ():
                trail.agreed[context_id] = len(choices) == 1 and None not in choices
        return trail

    def transcript(
        self, run: FinishedRun, context_id: str
    ) -> tuple[list[ChatMessage], list[ChatMessage]]:
        """A context's prompt, and its whole exchange: the prompt, the scratchpad request and
        reply (where it had one) and the visible answer. Re-asks are not in the log, only their
        count (`attempts`)."""
        from inspect_ai.model import ChatMessageAssistant, ChatMessageUser

        started, action = self.contexts.get(context_id), self.actions.get(context_id)
        prompt = self.prompts.get(started.prompt_sha256) if started else None
        if prompt is None:
            return [], []
        shown = [chat_message(m) for m in prompt.messages]
        exchange = list(shown)
        model = inspect_model(run, started.model) if started else None
        if action and action.scratchpad and prompt.think_prompt:
            exchange += [
                ChatMessageUser(content=prompt.think_prompt),
                ChatMessageAssistant(content=action.scratchpad, model=model),
            ]
            if prompt.after_think_prompt:
                exchange.append(ChatMessageUser(content=prompt.after_think_prompt))
        if action and action.visible:
            exchange.append(ChatMessageAssistant(content=action.visible, model=model))
        return shown, exchange


def chat_message(message: Message) -> ChatMessage:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    kinds = {
        "system": ChatMessageSystem,
        "user": ChatMessageUser,
        "assistant": ChatMessageAssistant,
    }
    return kinds[message.role](content=message.content)


def inspect_model(run: FinishedRun, model: str) -> str:
    """Inspect's `<provider>/<model>`: the backend serving the model."""
    trusted = run.config.trusted
    if trusted is not None and model == trusted.model and model not in run.config.models:
        return f"{trusted.backend.name}/{model}"
    return f"{run.config.backend.name}/{model}"


def model_usage(usage: Usage) -> ModelUsage:
    from inspect_ai.model import ModelUsage

    return ModelUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def usage_by_model(
    run: FinishedRun, trail: Trail, context_ids: Iterable[str]
) -> dict[str, ModelUsage]:
    """Tokens per (Inspect-named) model over the given contexts, each counted once; a replay's
    answers taken from its source run (`worker: cache`) cost nothing (as `sandbox.review.usage`)."""
    totals: dict[str, Usage] = defaultdict(Usage)
    for context_id in dict.fromkeys(context_ids):
        call = trail.actions.get(context_id) or trail.plans.get(context_id)
        if call is None or (isinstance(call, ActionTaken) and call.worker == "cache"):
            continue
        totals[inspect_model(run, call.model)] += call.usage
    return {model: model_usage(usage) for model, usage in sorted(totals.items())}


def eval_log(
    run: FinishedRun, trail: Trail, suite: str, model: str, records: list[Record]
) -> EvalLog:
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalResults,
        EvalSpec,
        EvalStats,
    )

    samples = [s for r in records for s in samples_of(run, trail, r)]
    order = list(run.summary.models[model].games)  # the deployment's is not there
    games = sorted({r.game for r in records}, key=lambda g: order.index(g) if g in order else -1)
    config = run.config
    args: dict[str, Any] = {"seed": config.run.seed}
    if suite == CONTROL and config.control is not None:
        args["control"] = config.control.model_dump(mode="json")
    else:
        args["games"] = [g.model_dump(mode="json") for g in config.games if g.game_id in games]
    # every call the suite's episodes made, and the suite's shared plans (which belong to no
    # episode): the tokens `summary.json` counts in `usage_by_model`, split by suite
    contexts = [c for r in records for c in trail.by_episode.get(r.episode_id, [])]
    contexts += [
        c
        for c, plan in trail.plans.items()
        if plan.model == model and plan.episode_id is None and plan.game in games
    ]
    return EvalLog(
        status="success",
        eval=EvalSpec(
            run_id=run.run_id,
            eval_id=f"{run.run_id}/{suite}/{model}",
            created=trail.started,
            task=suite,
            task_args=args,
            dataset=EvalDataset(
                name=f"{run.run_id}/{suite}",
                samples=len(samples),
                sample_ids=[s.id for s in samples],
            ),
            model=inspect_model(run, model),
            config=EvalConfig(epochs=1),
            packages=_packages(),
            metadata={
                "run_id": run.run_id,
                "config_sha256": run.summary.config_sha256,
                "model": model,
                "suite": suite,
                "games": games,
                "config": config.resolved(),
            },
        ),
        results=EvalResults(
            total_samples=len(samples),
            completed_samples=len(samples),
            scores=eval_scores(run, model, suite, games, samples),
        ),
        stats=EvalStats(
            started_at=trail.started,
            completed_at=trail.finished,
            model_usage=usage_by_model(run, trail, contexts),
        ),
        samples=samples,
    )


def samples_of(run: FinishedRun, trail: Trail, record: Record) -> list[EvalSample]:
    if isinstance(record, StepRecord):
        return [step_sample(run, trail, record)]
    return [context_sample(run, trail, record, sample) for sample in record.samples]


def context_sample(
    run: FinishedRun, trail: Trail, record: EpisodeRecord, sample: Sample
) -> EvalSample:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score

    started, action = trail.contexts.get(sample.context_id), trail.actions.get(sample.context_id)
    shown, exchange = trail.transcript(run, sample.context_id)
    scores = {
        "choice": Score(
            value=sample.choice if sample.choice is not None else NO_ANSWER,
            answer=sample.choice,
            explanation=None if sample.parse_ok else f"no answer parsed in {sample.attempts} tries",
        )
    }
    if sample.context_id in trail.agreed:
        scores["agreed"] = Score(value=trail.agreed[sample.context_id])
    if sample.judgement is not None:
        scores["judgement"] = Score(value=sample.judgement)
    name = inspect_model(run, record.model)
    return EvalSample(
        id=sample.context_id,
        epoch=1,
        input=shown or sample.observation,
        target="",
        messages=exchange,
        output=ModelOutput.from_content(
            model=name,
            content=action.visible if action else "",
            error=action.error if action else None,
        ),
        scores=scores,
        metadata={
            "run_id": run.run_id,
            "model": record.model,
            "game": record.game,
            "episode_id": record.episode_id,
            "episode_index": record.index,
            "observation": sample.observation,
            "agent_id": sample.agent_id,
            "context_id": sample.context_id,
            "parse_ok": sample.parse_ok,
            "attempts": sample.attempts,
            "answer_format": started.answer.model_dump() if started and started.answer else None,
            "affordances": started.affordances.model_dump() if started else None,
            "structured": action.structured if action else None,
        },
        model_usage={name: model_usage(action.usage)} if action else {},
    )


def step_sample(run: FinishedRun, trail: Trail, record: StepRecord) -> EvalSample:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score

    contexts = trail.by_episode.get(record.episode_id, [])
    policy = next(
        (
            c
            for c in contexts
            if trail.contexts[c].role == "policy" and trail.contexts[c].model == record.model
        ),
        None,
    )
    shown, exchange = trail.transcript(run, policy) if policy else ([], [])
    action = trail.actions.get(policy) if policy else None
    scores = {
        "decision": Score(value=record.decision),
        "attacked": Score(value=record.attacked),
        "backdoor": Score(value=record.policy.backdoor),
        "correctness": Score(value=record.unaudited.correctness),
    }
    if record.score is not None:
        scores["suspicion"] = Score(value=record.score)
    return EvalSample(
        id=record.episode_id,
        epoch=1,
        input=shown or record.task,
        target="",
        messages=exchange,
        output=ModelOutput.from_content(
            model=inspect_model(run, record.model), content=action.visible if action else ""
        ),
        scores=scores,
        metadata={
            "run_id": run.run_id,
            "model": record.model,
            "game": record.game,
            "episode_id": record.episode_id,
            "episode_index": record.index,
            **record.model_dump(
                mode="json", include={"phase", "task", "protocol", "policy", "unaudited"}
            ),
            "trusted": record.trusted.model_dump(mode="json") if record.trusted else None,
            "collusion": record.collusion.model_dump(mode="json") if record.collusion else None,
            "context_id": policy,
            "contexts": [
                {
                    "context_id": c,
                    "agent_id": trail.contexts[c].agent_id,
                    "model": trail.contexts[c].model,
                    "role": trail.contexts[c].role,
                }
                for c in contexts
            ],
        },
        model_usage=usage_by_model(run, trail, contexts),
    )


def eval_scores(
    run: FinishedRun, model: str, suite: str, games: list[str], samples: list[EvalSample]
) -> list[EvalScore]:
    """Per game (or the deployment), the summary row's numbers as metrics."""
    from inspect_ai.log import EvalMetric, EvalScore

    result = run.summary.models[model]
    scored = Counter(sample.metadata["game"] for sample in samples)
    out = []
    for game in games:
        scores: GameResult | DeploymentResult | None
        if suite == CONTROL:
            scores = result.deployment
            scorer = None if scores is None else scores.protocol
        else:
            scores = result.games[game]
            scorer = scores.environment
        verdict = scores.verdict if isinstance(scores, GameScore) else None
        # the row as summary.json holds it: its numbers are the metrics, and it is the metadata
        row = {} if scores is None else scores.model_dump(mode="json")
        out.append(
            EvalScore(
                name=game,
                scorer=scorer or game,
                scored_samples=scored[game],
                unscored_samples=0,
                metrics={
                    name: EvalMetric(name=name, value=value)
                    for name, value in summary_metrics(row).items()
                },
                metadata={"suite": suite, "verdict": verdict, "summary": row},
            )
        )
    return out


def summary_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """A summary row's numbers, and those of its `details`: an estimate as its value, `_low`
    and `_high`; a table of estimates or numbers (the TG effects) as `table.key`. Deeper tables
    (the TG cells) and non-finite bounds are left to the metadata. Estimates come first, so the
    headline Inspect shows (the first metric) is the game's win, or a deployment's safety."""
    estimates: dict[str, float] = {}
    numbers: dict[str, float] = {}

    def put(name: str, value: Any) -> bool:
        if _is_estimate(value):
            for suffix, key in (("", "value"), ("_low", "low"), ("_high", "high")):
                if math.isfinite(value[key]):
                    estimates[name + suffix] = value[key]
            return True
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                numbers[name] = value
            return True
        return False

    details = row.get("details") or {}
    for key, value in [*((k, v) for k, v in row.items() if k != "details"), *details.items()]:
        if not put(key, value) and isinstance(value, Mapping):
            for sub, item in value.items():
                put(f"{key}.{sub}", item)
    return estimates | numbers


def _is_estimate(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and {"value", "low", "high"} <= value.keys()
        and all(isinstance(value[k], int | float) for k in ("value", "low", "high"))
    )


def _packages() -> dict[str, str]:
    out = {}
    for name in ("coordination-sandbox", "inspect_ai"):
        try:
            out[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            continue
    return out
