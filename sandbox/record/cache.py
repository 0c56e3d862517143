"""The request cache: what a context's answer depends on, hashed, and the answers a run
recorded, so a replay asks no model twice.

A context's answer is fixed by its request: the model and the backend (name and params) serving
it, its role and answer format, everything it
shows (messages and the loop's scratchpad, after-scratchpad and re-ask prompts), its granted
affordances, the seed of every sampled call in it (derived from the run seed and the context id)
and how many re-asks the loop allows. `request_hash` hashes exactly that, and each
`context_started` event records it, so a run's own event log is the cache of every answer it
got: `RequestCache.from_events` reads it back, and a replay's dispatcher sends the engine only
the contexts the source run never asked (a resample, a new monitor), which its own log then
records in turn.

A run also keeps every answer as it arrives, before its episode is committed, in `answers.jsonl`
(one `AnsweredContext` a line; removed when the run finishes): a run that stops (a dead
endpoint, a crash) keeps the answers of its unfinished episodes there, and its resume answers
them from it (`worker: resumed`: paid for by this run, so counted in its usage), asking no
endpoint twice for one context.

Code checks are part of the record too: each `protocol_decision` keeps every check's outcome
with the hash of what it depends on (`check_sha256`: the task, code and trigger), so a replay
(or a resumed replay) takes a check its source already made from the log instead of running
the code again, and runs only the checks it never made (new code: an edit, a resample). A
recorded check is reused only under the isolation it ran under (`run_started.isolation`): a
sample may behave differently outside the sandbox, so a change of isolation checks anew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sandbox.core.context import CACHED, RESUMED, Action, Context, ContextOutcome
from sandbox.core.events import (
    ActionTaken,
    CodeOutcome,
    ContextStarted,
    ProtocolDecision,
    RunStarted,
    complete_lines,
    dump_json,
    read_events,
)

ANSWERS = "answers.jsonl"


class AnsweredContext(BaseModel):
    """A line of `answers.jsonl`: a context's answer under its request hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_sha256: str
    outcome: ContextOutcome

    def line(self) -> str:
        return dump_json(self.model_dump(mode="json"))


def outcome_of(event: ActionTaken, worker: str) -> ContextOutcome:
    """The outcome an `action` event recorded, as answered by `worker`."""
    assert event.context_id is not None
    return ContextOutcome(
        action=Action(
            context_id=event.context_id,
            visible=event.visible,
            scratchpad=event.scratchpad,
            choice=event.choice,
            score=event.score,
            parse_ok=event.parse_ok,
            attempts=event.attempts,
            usage=event.usage,
            structured=event.structured,
            retries=event.retries,
        ),
        node_id=event.node_id,
        worker=worker,
    )


def prompt_hash(ctx: Context) -> str:
    """SHA-256 of everything a context shows (its messages and the loop's scratchpad, after-
    scratchpad and re-ask prompts), as recorded on its `context_started` and `prompt` events.
    Hashed as JSON, so no text can pass for a message boundary."""
    shown = [
        [[m.role, m.content] for m in ctx.messages],
        ctx.think_prompt,
        ctx.after_think_prompt,
        ctx.reask_prompt,
    ]
    text = json.dumps(shown, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def request_hash(
    ctx: Context, prompt_sha256: str, max_reasks: int, backend: tuple[str, Mapping[str, Any]]
) -> str:
    """SHA-256 of what the context's answer depends on: `backend` is the (name, params) that
    serves its model (another endpoint, another organism setting: another answer). The seed is
    the context's own (a context id in a run with a given seed always carries the same one)."""
    request = {
        "model": ctx.model,
        "backend": [backend[0], dict(backend[1])],
        "role": ctx.role,
        "answer": ctx.answer.model_dump(mode="json"),
        "affordances": ctx.affordances.model_dump(mode="json"),
        "prompt": prompt_sha256,
        "seed": ctx.seed,
        "max_reasks": max_reasks,
    }
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class RequestCache:
    """Recorded answers by request hash, and what a run took from them."""

    def __init__(
        self,
        answers: dict[str, ContextOutcome] | None = None,
        checks: dict[tuple[str | None, str], CodeOutcome] | None = None,
    ) -> None:
        """`checks`: recorded code check outcomes by (isolation, `check_sha256`)."""
        self._answers = dict(answers or {})
        self._checks = dict(checks or {})
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}
        self.checks_reused = 0
        self.checks_run = 0

    def __len__(self) -> int:
        return len(self._answers)

    @classmethod
    def from_events(cls, *paths: Path) -> RequestCache:
        """Every answered context of the runs' logs (their `context_started` and `action`
        pairs)."""
        answers: dict[str, ContextOutcome] = {}
        checks: dict[tuple[str | None, str], CodeOutcome] = {}
        for path in paths:
            more_answers, more_checks = cls._answers_in(path)
            answers.update(more_answers)
            checks.update(more_checks)
        return cls(answers, checks)

    @staticmethod
    def _answers_in(
        path: Path,
    ) -> tuple[dict[str, ContextOutcome], dict[tuple[str | None, str], CodeOutcome]]:
        started: dict[str, str] = {}
        answers: dict[str, ContextOutcome] = {}
        checks: dict[tuple[str | None, str], CodeOutcome] = {}
        isolation: str | None = None
        for event in read_events(path):
            if isinstance(event, RunStarted):
                isolation = event.isolation
            elif isinstance(event, ProtocolDecision):
                for check in event.checks:
                    # a check that ran and answered (not one whose batch failed, nor a reply
                    # without code, which no check read)
                    sha = check.check_sha256
                    if sha is not None and check.node is not None and check.error is None:
                        checks[(isolation, sha)] = check.outcome
            elif isinstance(event, ContextStarted) and event.request_sha256 is not None:
                assert event.context_id is not None
                started[event.context_id] = event.request_sha256
            elif (
                isinstance(event, ActionTaken)
                and event.context_id in started
                and event.error is None  # a failed call is no answer: ask it again
            ):
                answers[started[event.context_id]] = outcome_of(event, CACHED)
        return answers, checks

    @classmethod
    def from_answers(cls, path: Path) -> RequestCache:
        """The answers a run kept in its `answers.jsonl` (a torn last line skipped), as
        answered by `RESUMED`. A line that does not read as an answer (a damaged file) is
        skipped: the file only spares calls, so its context is asked again."""
        answers: dict[str, ContextOutcome] = {}
        for line in complete_lines(path):
            try:
                kept = AnsweredContext.model_validate_json(line)
            except ValidationError:
                continue
            answers[kept.request_sha256] = kept.outcome.model_copy(update={"worker": RESUMED})
        return cls(answers)

    def get(self, request_sha256: str) -> ContextOutcome | None:
        """The recorded answer to a request, if any (no hit or miss counted)."""
        return self._answers.get(request_sha256)

    def merged(self, other: RequestCache) -> RequestCache:
        """This cache's answers and checks and `other`'s (`other`'s where both have one)."""
        return RequestCache({**self._answers, **other._answers}, {**self._checks, **other._checks})

    def check(self, isolation: str | None, check_sha256: str) -> CodeOutcome | None:
        """The recorded outcome of the same check under the same isolation, if any; counted as
        reused or to run."""
        outcome = self._checks.get((isolation, check_sha256))
        if outcome is None:
            self.checks_run += 1
        else:
            self.checks_reused += 1
        return outcome

    def split(
        self, contexts: Sequence[Context], keys: Sequence[str]
    ) -> tuple[dict[int, ContextOutcome], list[int]]:
        """(cached outcomes by position, positions to ask), counting hits and misses by role."""
        found: dict[int, ContextOutcome] = {}
        missing: list[int] = []
        for i, (ctx, key) in enumerate(zip(contexts, keys, strict=True)):
            outcome = self._answers.get(key)
            if outcome is None:
                missing.append(i)
                self.misses[ctx.role] = self.misses.get(ctx.role, 0) + 1
            else:
                found[i] = outcome.model_copy(
                    update={
                        "action": outcome.action.model_copy(update={"context_id": ctx.context_id})
                    }
                )
                self.hits[ctx.role] = self.hits.get(ctx.role, 0) + 1
        return found, missing
