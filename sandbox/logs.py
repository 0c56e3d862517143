"""`sandbox logs`: review a run from its `events.jsonl`, streamed.

Pure functions over the lines of an events file: no Ray, no model stack. A file is read line by
line (never whole), a torn last line (a run still being written) is skipped, and a line is
parsed only when a cheap substring test says it can match. The summary keeps one row per (model,
game) and the episodes still open (those whose result has not been read yet).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from sandbox.events import Event


def _kinds() -> tuple[str, ...]:
    union = get_args(Event)[0]
    return tuple(member.model_fields["kind"].default for member in get_args(union))


KINDS: tuple[str, ...] = _kinds()
"""Every event kind, from the event union."""

SUMMARY_KINDS = frozenset(
    {"context_started", "action", "monitor_score", "protocol_decision", "audit", "episode_result"}
)


def complete_lines(path: Path) -> Iterator[bytes]:
    """The complete lines of a file, as bytes, one at a time; a torn last line is skipped."""
    with path.open("rb") as fh:
        for line in fh:
            if line.endswith(b"\n"):
                yield line


def _needle(value: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def event_model(event: dict[str, Any]) -> str | None:
    """An event's model: its own `model` field, or its episode record's."""
    record = event.get("record")
    return event.get("model") or (record.get("model") if isinstance(record, dict) else None)


def event_game(event: dict[str, Any]) -> str | None:
    record = event.get("record")
    return event.get("game") or (record.get("game") if isinstance(record, dict) else None)


@dataclass(frozen=True)
class Filter:
    """Events to keep; all given conditions must hold (any one of `kinds`)."""

    kinds: frozenset[str] = frozenset()
    agent: str | None = None
    model: str | None = None
    game: str | None = None
    episode: str | None = None
    _needles: tuple[tuple[bytes, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        needles: list[tuple[bytes, ...]] = []
        if self.kinds:
            needles.append(tuple(_needle(k) for k in sorted(self.kinds)))
        for value in (self.agent, self.model, self.game, self.episode):
            if value is not None:
                needles.append((_needle(value),))
        object.__setattr__(self, "_needles", tuple(needles))

    def active(self) -> bool:
        return bool(self._needles)

    def may_match(self, line: bytes) -> bool:
        """False when the line cannot match (each condition's value is absent from it)."""
        return all(any(n in line for n in alternatives) for alternatives in self._needles)

    def matches(self, event: dict[str, Any]) -> bool:
        return (
            (not self.kinds or event.get("kind") in self.kinds)
            and (self.agent is None or event.get("agent_id") == self.agent)
            and (self.model is None or event_model(event) == self.model)
            and (self.game is None or event_game(event) == self.game)
            and (self.episode is None or event.get("episode_id") == self.episode)
        )


def select(lines: Iterable[bytes], flt: Filter) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The lines that match, each with its parsed event, in order; unreadable lines skipped."""
    for line in lines:
        if not flt.may_match(line):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and flt.matches(event):
            yield line, event


def shorten(text: str | None, width: int = 80) -> str:
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _num(value: Any) -> str:
    return "missing" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _details(event: dict[str, Any], prompts: dict[str, str]) -> str:
    kind = event.get("kind")
    if kind == "run_started":
        return (
            f"models={','.join(event.get('models', []))} games={','.join(event.get('games', []))} "
            f"episodes={event.get('episodes_done')}/{event.get('episodes_total')} "
            f"resumed={event.get('resumed')}"
        )
    if kind == "prompt":
        return (
            f"sha={str(event.get('prompt_sha256'))[:12]} messages={len(event.get('messages', []))}"
        )
    if kind == "context_started":
        sha = str(event.get("prompt_sha256"))
        text = f" prompt={shorten(prompts[sha])!r}" if sha in prompts else f" prompt={sha[:12]}"
        return (
            f"role={event.get('role')} game={event.get('game')} "
            f"obs={event.get('observation')}{text}"
        )
    if kind == "action":
        parsed = (
            f"choice={event.get('choice')}"
            if event.get("score") is None
            else f"score={_num(event.get('score'))}"
        )
        return (
            f"{parsed} parse_ok={event.get('parse_ok')} attempts={event.get('attempts')} "
            f"visible={shorten(event.get('visible'), 60)!r}"
        )
    if kind == "plan_written":
        return f"parse_ok={event.get('parse_ok')} plan={shorten(event.get('plan'), 60)!r}"
    if kind == "monitor_score":
        return (
            f"monitor={event.get('monitor')} score={_num(event.get('score'))} "
            f"of={event.get('scored_context_id')}"
        )
    if kind == "protocol_decision":
        return (
            f"{event.get('protocol')} -> {event.get('decision')}: {event.get('reason')} "
            f"(scores {[_num(s) for s in event.get('scores', [])]})"
        )
    if kind == "audit":
        return f"{event.get('outcome')}: {event.get('audited_context_id')}"
    if kind == "episode_result":
        record = event.get("record") or {}
        if record.get("kind") == "protocol_step":
            return (
                f"{record.get('phase')} task={record.get('task')} "
                f"attacked={record.get('attacked')} "
                f"score={_num(record.get('score'))} decision={record.get('decision')} "
                f"unaudited={(record.get('unaudited') or {}).get('status')}"
            )
        choices = [s.get("choice") for s in record.get("samples", [])]
        return f"game={record.get('game')} choices={choices}"
    if kind == "run_finished":
        return f"episodes={event.get('episodes')} seconds={event.get('seconds')}"
    return ""


def describe(event: dict[str, Any], prompts: dict[str, str] | None = None) -> str:
    """One compact human line for an event."""
    return (
        f"{event.get('kind', '?'):<17} {event.get('episode_id') or '-'} "
        f"{event.get('agent_id') or '-'} {event_model(event) or '-'}  "
        f"{_details(event, prompts or {})}"
    )


def prompt_texts(lines: Iterable[bytes], shas: set[str]) -> dict[str, str]:
    """The last message of each named prompt (for a timeline)."""
    needles = [_needle(s) for s in shas]
    found: dict[str, str] = {}
    for line in lines:
        if b'"prompt"' not in line or not any(n in line for n in needles):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("kind") == "prompt" and event.get("prompt_sha256") in shas:
            messages = event.get("messages") or [{}]
            found[event["prompt_sha256"]] = str(messages[-1].get("content", ""))
    return found


def episode_ids(lines: Iterable[bytes]) -> set[str]:
    ids: set[str] = set()
    for line in lines:
        if b'"episode_result"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("kind") == "episode_result" and event.get("episode_id"):
            ids.add(event["episode_id"])
    return ids


@dataclass
class Row:
    model: str
    game: str
    episodes: int = 0
    contexts: int = 0
    parse_failures: int = 0
    monitor_scores: int = 0
    monitor_missing: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    audits_caught: int = 0
    audits_clean: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "game": self.game,
            "episodes": self.episodes,
            "contexts": self.contexts,
            "parse_failures": self.parse_failures,
            "monitor_scores": self.monitor_scores,
            "monitor_missing": self.monitor_missing,
            "decisions": dict(sorted(self.decisions.items())),
            "audits_caught": self.audits_caught,
            "audits_clean": self.audits_clean,
        }


UNKNOWN = "?"
# the writer's separators (json.dumps's defaults), and compact ones; a string value cannot hold
# these unescaped, so they are only ever a line's own fields
_ACTION = (b'"kind": "action"', b'"kind":"action"')
_PARSE_FAILED = (b'"parse_ok": false', b'"parse_ok":false')


def summarize(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    """Per (model, game): episodes, contexts and parse failures (under each context's own model,
    so a trusted model's contexts have their row), and the monitor scores, protocol decisions and
    audits of an episode under its policy model (its first policy context's model and game)."""
    needles = tuple(_needle(k) for k in SUMMARY_KINDS)
    rows: dict[tuple[str, str], Row] = {}
    open_episodes: dict[str, tuple[str, str]] = {}

    def row(key: tuple[str, str]) -> Row:
        if key not in rows:
            rows[key] = Row(*key)
        return rows[key]

    for line in lines:
        if not any(n in line for n in needles):
            continue
        if any(n in line for n in _ACTION) and not any(n in line for n in _PARSE_FAILED):
            continue  # an action that parsed: nothing to count
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("kind")
        episode = event.get("episode_id")
        if kind == "context_started":
            key = (event.get("model") or UNKNOWN, event.get("game") or UNKNOWN)
            row(key).contexts += 1
            if episode and event.get("role", "policy") == "policy":
                open_episodes.setdefault(episode, key)
        elif kind == "action":
            if not event.get("parse_ok", True):
                key = (event.get("model") or UNKNOWN, event.get("game") or UNKNOWN)
                row(key).parse_failures += 1
        elif kind == "episode_result":
            key = (event_model(event) or UNKNOWN, event_game(event) or UNKNOWN)
            row(key).episodes += 1
            open_episodes.pop(episode, None)
        elif kind in ("monitor_score", "protocol_decision", "audit"):
            r = row(open_episodes.get(episode or "", (UNKNOWN, UNKNOWN)))
            if kind == "monitor_score":
                r.monitor_scores += 1
                r.monitor_missing += event.get("score") is None
            elif kind == "protocol_decision":
                decision = str(event.get("decision"))
                r.decisions[decision] = r.decisions.get(decision, 0) + 1
            elif event.get("outcome") == "caught":
                r.audits_caught += 1
            else:
                r.audits_clean += 1
    return [rows[k].as_dict() for k in sorted(rows)]
