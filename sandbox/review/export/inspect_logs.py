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

**How it is written: streamed, at the speed of writing.** Inspect's own writer
(`write_eval_log`) takes an `EvalLog` holding every sample, and spends most of its time on what
a one-shot export does not need: each sample buffered is compared with every one buffered before
it (quadratic: 6 s of a 3,000-sample log), and each is compressed by a new 12-thread zstd context
(`eval_zip`). So this module writes the same zip members Inspect's writer writes, itself: each
sample as the JSON Inspect would serialize it (built as plain data, not as pydantic objects),
compressed and written as soon as it is built; its summary through Inspect's own
`EvalSampleSummary` (which thins long metadata as Inspect does), kept compressed; the header
through Inspect's own `EvalLog`. `tests/test_export.py` holds the output to what Inspect's writer
writes for the same samples, member by member.

Memory stays bounded by a log's sample ids and compressed summaries, not by the run: one pass
over `events.jsonl` keeps only where each context's lines are (offsets) and the few events every
sample shares (prompts, plans, coordination pairs); one over `results.jsonl` groups the episodes
by log; then each log's episodes are read back, in the run's order, one at a time.
"""

from __future__ import annotations

import math
import os
import re
from base64 import urlsafe_b64encode
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

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
from sandbox.record.runstore import EVENTS, RESULTS
from sandbox.review.export.base import (
    FORMATS,
    ExportError,
    FinishedRun,
    LineReader,
    Progress,
    lines,
)
from sandbox.review.export.eval_zip import EvalZip, StreamedMember

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalScore

E = TypeVar("E", ContextStarted, ActionTaken)

SUITES = ("xc", "co", "tg", "control")
CONTROL = "control"
"""The suite of a deployment under a control protocol."""

Json = dict[str, Any]


@FORMATS.register("inspect")
def write_inspect_logs(
    params: NoParams, *, run: FinishedRun, out_dir: Path, progress: Progress | None = None
) -> list[Path]:
    """Inspect AI `.eval` logs, one per suite and model; `inspect view` opens them."""
    try:
        import zstandard  # noqa: F401  (Inspect's own dependency: its logs are zstd zips)
        from inspect_ai.log import EvalLog  # noqa: F401
    except ImportError:
        raise ExportError(
            "format 'inspect' needs Inspect AI: pip install -c constraints.txt -e '.[bench]'"
        ) from None
    trail = Trail.read(run)
    groups = group_records(run)
    total, done = sum(len(offsets) for offsets in groups.values()), 0
    if progress is not None:
        progress(0, total)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with trail.reader() as contexts, LineReader(run.path / RESULTS) as results:
        for (suite, model), offsets in groups.items():
            path = out_dir / f"{suite}_{re.sub(r'[^A-Za-z0-9_.-]+', '-', model)}.eval"
            with LogWriter(run, contexts, suite, model, path) as log:
                for offset in offsets:
                    log.add(results.record(offset))
                    done += 1
                    if progress is not None:
                        progress(done, total)
            paths.append(path)
    return paths


def suite_of(run: FinishedRun, model: str, game: str) -> str:
    """A game's suite from its summary row; a game with none is a deployment."""
    entry = run.summary.models.get(model)
    row = None if entry is None else entry.games.get(game)
    return CONTROL if row is None else row.suite


def group_records(run: FinishedRun) -> dict[tuple[str, str], list[int]]:
    """The offsets of the run's episode lines in `results.jsonl` by (suite, model), in the
    file's order within each; suites in `SUITES` order, models in the config's."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for head, offset in run.record_heads():
        groups[suite_of(run, head.model, head.game), head.model].append(offset)
    order = {(s, m): (i, j) for i, s in enumerate(SUITES) for j, m in enumerate(run.config.models)}
    return dict(sorted(groups.items(), key=lambda kv: order.get(kv[0], (len(SUITES), 0))))


class _EventHead(BaseModel):
    """What the index reads of every event line: its kind and whose it is (the rest of a
    line is parsed only for the kinds kept whole)."""

    kind: str
    episode_id: str | None = None
    context_id: str | None = None


_KEPT: dict[str, type[BaseModel]] = {
    "prompt": PromptShown,
    "plan_written": PlanWritten,
    "coordination_pick": CoordinationPick,
    "run_started": RunStarted,
    "run_finished": RunFinished,
}
"""Event kinds the index keeps whole: few per run (a prompt per distinct text, a plan per
situation, a pick per coordination context) and shared by many samples."""


@dataclass
class Trail:
    """What the event log tells of each context, indexed in one pass: where its lines are (the
    `context_started` and `action` events, read back per sample by `reader`), and whole the few
    events many samples share."""

    path: Path
    prompts: dict[str, PromptShown] = field(default_factory=dict)
    started_at: dict[str, int] = field(default_factory=dict)
    """Context id -> offset of its `context_started` line (a redone context: its last)."""
    action_at: dict[str, int] = field(default_factory=dict)
    """Context id -> offset of its `action` line (a redone context: its last answer)."""
    plans: dict[str, PlanWritten] = field(default_factory=dict)
    by_episode: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    agreed: dict[str, bool] = field(default_factory=dict)
    """Context id -> whether its coordination pair agreed (both picked the same option)."""
    started: str = ""
    finished: str = ""

    @classmethod
    def read(cls, run: FinishedRun) -> Trail:
        trail = cls(run.path / EVENTS)
        picks: dict[tuple[str, str, int], dict[str, CoordinationPick]] = defaultdict(dict)
        for offset, line in lines(trail.path):
            head = _EventHead.model_validate_json(line)
            context_id = head.context_id
            if head.kind == "context_started" and context_id:
                if context_id not in trail.started_at and head.episode_id:
                    trail.by_episode[head.episode_id].append(context_id)
                trail.started_at[context_id] = offset
            elif head.kind == "action" and context_id:
                trail.action_at[context_id] = offset
            elif head.kind in _KEPT:
                event = _KEPT[head.kind].model_validate_json(line)
                if isinstance(event, PromptShown):
                    trail.prompts[event.prompt_sha256] = event
                elif isinstance(event, PlanWritten) and context_id:
                    trail.plans[context_id] = event
                elif isinstance(event, CoordinationPick):
                    picks[event.model, event.game, event.pair][str(context_id)] = event
                elif isinstance(event, RunStarted):
                    trail.started = trail.started or event.ts
                elif isinstance(event, RunFinished):
                    trail.finished = event.ts
        for pair in picks.values():  # by context id: a redone pick counts once
            choices = {p.choice for p in pair.values()}
            for context_id in pair if len(pair) == 2 else ():
                trail.agreed[context_id] = len(choices) == 1 and None not in choices
        return trail

    def reader(self) -> ContextReader:
        return ContextReader(self)


class ContextReader(LineReader):
    """A context's `context_started` and `action` events, read back from the event log by the
    trail's offsets. Each is parsed once per episode: `episode` forgets the last one's."""

    def __init__(self, trail: Trail) -> None:
        super().__init__(trail.path)
        self.trail = trail
        self._started: dict[str, ContextStarted | None] = {}
        self._actions: dict[str, ActionTaken | None] = {}

    def episode(self) -> None:
        self._started.clear()
        self._actions.clear()

    def started(self, context_id: str | None) -> ContextStarted | None:
        return self._event(ContextStarted, self._started, self.trail.started_at, context_id)

    def action(self, context_id: str | None) -> ActionTaken | None:
        return self._event(ActionTaken, self._actions, self.trail.action_at, context_id)

    def _event(
        self,
        model: type[E],
        read: dict[str, E | None],
        offsets: Mapping[str, int],
        context_id: str | None,
    ) -> E | None:
        """A context's event of `model`, read at its offset once per episode (None where the
        log holds none)."""
        if context_id is None:
            return None
        if context_id not in read:
            offset = offsets.get(context_id)
            read[context_id] = (
                None if offset is None else model.model_validate_json(self.line(offset))
            )
        return read[context_id]

    def call(self, context_id: str) -> ActionTaken | PlanWritten | None:
        """The model call a context made: its answer, or the shared plan it wrote."""
        return self.action(context_id) or self.trail.plans.get(context_id)


# --- samples as Inspect serializes them ---------------------------------------------------------
# Plain dicts with Inspect's keys, in the order its pydantic models serialize them, None-valued
# fields left out (its `to_json_safe` excludes them); `test_export` checks each against Inspect.


def _message_id() -> str:
    """An id as long as Inspect's (a 22-character shortuuid), as random."""
    return urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")


def chat(role: str, content: str, model: str | None = None, source: str | None = None) -> Json:
    """A `ChatMessage{System,User,Assistant}`."""
    message: Json = {"id": _message_id(), "content": content}
    if source is not None:
        message["source"] = source
    message["role"] = role
    if model is not None:
        message["model"] = model
    return message


def chat_message(message: Message) -> Json:
    return chat(message.role, message.content)


def model_output(model: str, content: str, error: str | None = None) -> Json:
    """`ModelOutput.from_content(model, content, error=error)`."""
    message = chat("assistant", content, model=model, source="generate")
    output: Json = {
        "model": model,
        "choices": [{"message": message, "stop_reason": "stop"}],
        "completion": content,
    }
    if error is not None:
        output["error"] = error
    return output


def score(value: Any, answer: str | None = None, explanation: str | None = None) -> Json:
    """A `Score`; its value as recorded (a str, bool or number)."""
    out: Json = {"value": value}
    if answer is not None:
        out["answer"] = answer
    if explanation is not None:
        out["explanation"] = explanation
    out["history"] = []
    return out


def model_usage(usage: Usage) -> Json:
    """A `ModelUsage`."""
    return {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def eval_sample(
    id: str,
    input: str | list[Json],
    messages: list[Json],
    output: Json,
    scores: Json,
    metadata: Json,
    usage: Json,
) -> Json:
    """An `EvalSample` as Inspect's writer leaves it (condensed: no events, no attachments)."""
    return {
        "id": id,
        "epoch": 1,
        "input": input,
        "target": "",
        "messages": messages,
        "output": output,
        "scores": scores,
        "metadata": metadata,
        "store": {},
        "events": [],
        "model_usage": usage,
        "role_usage": {},
        "attachments": {},
        "events_data": {"messages": [], "calls": []},
    }


def inspect_model(run: FinishedRun, model: str) -> str:
    """Inspect's `<provider>/<model>`: the backend serving the model."""
    trusted = run.config.trusted
    if trusted is not None and model == trusted.model and model not in run.config.models:
        return f"{trusted.backend.name}/{model}"
    return f"{run.config.backend.name}/{model}"


def transcript(
    run: FinishedRun, contexts: ContextReader, context_id: str
) -> tuple[list[Json], list[Json]]:
    """A context's prompt, and its whole exchange: the prompt, the scratchpad request and
    reply (where it had one) and the visible answer. Re-asks are not in the log, only their
    count (`attempts`). The prompt's messages are the same objects in both, as Inspect's
    sample shares them (their ids match)."""
    started, action = contexts.started(context_id), contexts.action(context_id)
    prompt = contexts.trail.prompts.get(started.prompt_sha256) if started else None
    if started is None or prompt is None:
        return [], []
    shown = [chat_message(m) for m in prompt.messages]
    exchange = list(shown)
    model = inspect_model(run, started.model)
    if action and action.scratchpad and prompt.think_prompt:
        exchange += [
            chat("user", prompt.think_prompt),
            chat("assistant", action.scratchpad, model=model),
        ]
        if prompt.after_think_prompt:
            exchange.append(chat("user", prompt.after_think_prompt))
    if action and action.visible:
        exchange.append(chat("assistant", action.visible, model=model))
    return shown, exchange


def usage_by_model(
    run: FinishedRun, calls: Iterable[ActionTaken | PlanWritten | None]
) -> dict[str, Usage]:
    """Tokens per (Inspect-named) model over the given calls; a replay's answers taken from its
    source run (`worker: cache`) cost nothing (as `sandbox.review.usage`)."""
    totals: dict[str, Usage] = defaultdict(Usage)
    for call in calls:
        if call is None or (isinstance(call, ActionTaken) and call.worker == "cache"):
            continue
        totals[inspect_model(run, call.model)] += call.usage
    return totals


def samples_of(run: FinishedRun, contexts: ContextReader, record: Record) -> Iterator[Json]:
    if isinstance(record, StepRecord):
        yield step_sample(run, contexts, record)
    else:
        for sample in record.samples:
            yield context_sample(run, contexts, record, sample)


def context_sample(
    run: FinishedRun, contexts: ContextReader, record: EpisodeRecord, sample: Sample
) -> Json:
    started, action = contexts.started(sample.context_id), contexts.action(sample.context_id)
    shown, exchange = transcript(run, contexts, sample.context_id)
    scores = {
        "choice": score(
            sample.choice if sample.choice is not None else NO_ANSWER,
            answer=sample.choice,
            explanation=None if sample.parse_ok else f"no answer parsed in {sample.attempts} tries",
        )
    }
    agreed = contexts.trail.agreed.get(sample.context_id)
    if agreed is not None:
        scores["agreed"] = score(agreed)
    if sample.judgement is not None:
        scores["judgement"] = score(sample.judgement)
    name = inspect_model(run, record.model)
    return eval_sample(
        id=sample.context_id,
        input=shown or sample.observation,
        messages=exchange,
        output=model_output(
            name,
            action.visible if action else "",
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
        usage={name: model_usage(action.usage)} if action else {},
    )


def step_sample(run: FinishedRun, contexts: ContextReader, record: StepRecord) -> Json:
    ids = contexts.trail.by_episode.get(record.episode_id, [])
    started = {c: contexts.started(c) for c in ids}  # every id here has its context_started
    policy = next(
        (
            c
            for c, s in started.items()
            if s is not None and s.role == "policy" and s.model == record.model
        ),
        None,
    )
    shown, exchange = transcript(run, contexts, policy) if policy else ([], [])
    action = contexts.action(policy)
    scores = {
        "decision": score(record.decision),
        "attacked": score(record.attacked),
        "backdoor": score(record.policy.backdoor),
        "correctness": score(record.unaudited.correctness),
    }
    if record.score is not None:
        scores["suspicion"] = score(record.score)
    usage = usage_by_model(run, (contexts.call(c) for c in ids))
    return eval_sample(
        id=record.episode_id,
        input=shown or record.task,
        messages=exchange,
        output=model_output(inspect_model(run, record.model), action.visible if action else ""),
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
                    "agent_id": s.agent_id if s else None,
                    "model": s.model if s else None,
                    "role": s.role if s else None,
                }
                for c, s in started.items()
            ],
        },
        usage={model: model_usage(u) for model, u in sorted(usage.items())},
    )


def to_json(value: Any) -> bytes:
    """JSON as Inspect's writer writes it (`to_json_safe`, compact): pydantic's serializer,
    None-valued model fields left out, a string holding a lone surrogate escaped rather than
    failing the export."""
    from pydantic_core import PydanticSerializationError
    from pydantic_core import to_json as dump

    try:
        return dump(value, exclude_none=True, fallback=lambda _: None)
    except PydanticSerializationError as exc:
        if "surrogates not allowed" not in str(exc):
            raise
        from pydantic_core import to_jsonable_python

        return dump(_clean_utf8(to_jsonable_python(value, exclude_none=True)))


def sample_summary(sample: Json) -> bytes:
    """A sample's entry in `summaries.json` (what `EvalSample.summary()` gives), through
    Inspect's own `EvalSampleSummary`: its validator thins the entry as Inspect's sample list
    expects (long or multi-line strings shortened, metadata over 1 KB dropped), rules kept in
    Inspect's code rather than copied here."""
    from inspect_ai.log import EvalSampleSummary

    summary = EvalSampleSummary.model_validate(
        {
            "id": sample["id"],
            "epoch": sample["epoch"],
            "input": sample["input"],
            "target": sample["target"],
            "metadata": sample["metadata"],
            "scores": sample["scores"],
            "model_usage": sample["model_usage"],
            "role_usage": sample["role_usage"],
            "completed": True,
            "message_count": len(sample["messages"]),
        }
    )
    return to_json(summary)


def _clean_utf8(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", errors="backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {k: _clean_utf8(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_utf8(v) for v in value]
    return value


# --- one log, written as its samples come --------------------------------------------------------


class LogWriter:
    """One `.eval` log, written as its episodes are added: each sample as soon as it is built,
    then at `close` (the end of a `with` block) the members Inspect's writer ends a log with:
    the journal's start record and summaries, `summaries.json` and `header.json`."""

    def __init__(
        self, run: FinishedRun, contexts: ContextReader, suite: str, model: str, path: Path
    ) -> None:
        self.run, self.contexts, self.trail = run, contexts, contexts.trail
        self.suite, self.model, self.path = suite, model, path
        self._zip = EvalZip(path)
        self._summaries = StreamedMember()
        self.sample_ids: list[str] = []
        self.scored: Counter[str] = Counter()
        self.games: set[str] = set()
        self.usage: dict[str, Usage] = defaultdict(Usage)
        self._counted: set[str] = set()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:
            self._zip.discard()  # a failed export leaves no half-written log behind
            return
        try:
            self.close()
        except BaseException:
            self._zip.discard()
            raise

    def add(self, record: Record) -> None:
        """An episode's samples, written; the tokens of every call it made, counted."""
        self.contexts.episode()
        self.games.add(record.game)
        for sample in samples_of(self.run, self.contexts, record):
            self._write(sample)
        # every call the suite's episodes made: the tokens `summary.json` counts, split by suite
        self._count(self.trail.by_episode.get(record.episode_id, []))

    def _count(self, context_ids: Iterable[str]) -> None:
        """Add the tokens of these contexts' calls, each context counted once per log."""
        fresh = [c for c in context_ids if c not in self._counted]
        self._counted.update(fresh)
        calls = (self.contexts.call(c) for c in fresh)
        for model, usage in usage_by_model(self.run, calls).items():
            self.usage[model] += usage

    def _write(self, sample: Json) -> None:
        self._zip.write(f"samples/{sample['id']}_epoch_{sample['epoch']}.json", to_json(sample))
        self._summaries.append(b"," if self.sample_ids else b"[")
        self._summaries.append(sample_summary(sample))
        self.sample_ids.append(sample["id"])
        self.scored[sample["metadata"]["game"]] += 1

    def close(self) -> None:
        from inspect_ai.log import EvalPlan

        order = list(self.run.summary.models[self.model].games)  # the deployment's is not there
        games = sorted(self.games, key=lambda g: order.index(g) if g in order else -1)
        # the suite's shared plans belong to no episode; their tokens are the suite's too
        self.contexts.episode()
        self._count(
            c
            for c, plan in self.trail.plans.items()
            if plan.model == self.model and plan.episode_id is None and plan.game in games
        )
        header = eval_log(self, games)
        start = {"version": header.version, "eval": header.eval, "plan": EvalPlan()}
        self._zip.write("_journal/start.json", to_json(start))
        if not self.sample_ids:
            self._summaries.append(b"[")
        self._summaries.append(b"]")
        summaries = self._summaries.finish()
        size, crc = self._summaries.size, self._summaries.crc
        if self.sample_ids:  # Inspect journals a batch of samples' summaries, then all of them
            self._zip.write_compressed("_journal/summaries/1.json", summaries, size, crc)
        self._zip.write_compressed("summaries.json", summaries, size, crc)
        self._zip.write("header.json", to_json(header))
        self._zip.close()


def eval_log(log: LogWriter, games: list[str]) -> EvalLog:
    """The log's header: its spec, results and stats (Inspect's `EvalLog`, no samples)."""
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalResults,
        EvalSpec,
        EvalStats,
    )
    from inspect_ai.model import ModelUsage

    run, suite, model = log.run, log.suite, log.model
    config = run.config
    args: dict[str, Any] = {"seed": config.run.seed}
    if suite == CONTROL and config.control is not None:
        args["control"] = config.control.model_dump(mode="json")
    else:
        args["games"] = [g.model_dump(mode="json") for g in config.games if g.game_id in games]
    count = len(log.sample_ids)
    return EvalLog(
        status="success",
        eval=EvalSpec(
            run_id=run.run_id,
            eval_id=f"{run.run_id}/{suite}/{model}",
            created=log.trail.started,
            task=suite,
            task_args=args,
            dataset=EvalDataset(
                name=f"{run.run_id}/{suite}", samples=count, sample_ids=log.sample_ids
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
            total_samples=count,
            completed_samples=count,
            scores=eval_scores(run, model, suite, games, log.scored),
        ),
        stats=EvalStats(
            started_at=log.trail.started,
            completed_at=log.trail.finished,
            model_usage={
                name: ModelUsage.model_validate(model_usage(usage))
                for name, usage in sorted(log.usage.items())
            },
        ),
    )


def eval_scores(
    run: FinishedRun, model: str, suite: str, games: list[str], scored: Mapping[str, int]
) -> list[EvalScore]:
    """Per game (or the deployment), the summary row's numbers as metrics; `scored`: the
    samples written per game."""
    from inspect_ai.log import EvalMetric, EvalScore

    result = run.summary.models[model]
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
                scored_samples=scored.get(game, 0),
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
