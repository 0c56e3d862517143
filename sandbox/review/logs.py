"""`sandbox logs`: review a run from its `events.jsonl`, streamed.

Pure functions over the lines of an events file: no Ray, no model stack. The lines are read and
filtered by `sandbox.review.eventlines` (re-exported here), which needs no event models: a filter
is served by it alone. Here, the tables: only the lines that can matter are looked at (a regex
over each block finds them, derived from the event models, and a line is parsed only where it is
in another layout). The default view (`coordination_tables`) keeps the coordination
tally (`sandbox.review.attempts`); with `--summary` (`summary_tables`) also one row per (model,
game) and the episodes still open (those whose result has not been read yet). Both read a large
file in parts, one process per core, merged in log order (`_read_tables`): the time is Python's
per line (a few microseconds for each line a table counts), so cores are what shortens it.
`query` (`--sql`) hands the file to DuckDB as a table of events.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import pickle
import re
import tempfile
import types
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol, Union, get_args, get_origin

from pydantic import BaseModel

from sandbox.core.events import (
    EVENT_TYPES,
    ActionTaken,
    AuditPerformed,
    ContextStarted,
    CoordinationPick,
    EpisodeFinished,
    HoneypotVerdict,
    MonitorScored,
    ProtocolDecision,
    SignalJammed,
    SignalRecognition,
    kind_of,
)
from sandbox.review import attempts, eventlines
from sandbox.review.eventlines import (
    BLOCK,
    EVENTS,
    event_game,
    event_model,
    file_blocks,
    lines_with,
    needle,
)

SUMMARY_KINDS = frozenset(
    kind_of(t)
    for t in (
        ContextStarted,
        ActionTaken,
        MonitorScored,
        ProtocolDecision,
        AuditPerformed,
        EpisodeFinished,
    )
)
"""The kinds `--summary` counts."""


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

    def add(self, other: Row) -> None:
        """Another part's counts of the same model and game."""
        self.episodes += other.episodes
        self.contexts += other.contexts
        self.parse_failures += other.parse_failures
        self.monitor_scores += other.monitor_scores
        self.monitor_missing += other.monitor_missing
        for decision, n in other.decisions.items():
            self.decisions[decision] = self.decisions.get(decision, 0) + n
        self.audits_caught += other.audits_caught
        self.audits_clean += other.audits_clean

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


# The default view finds the lines it counts with one regex over a block, anchored at their kind
# (`"kind": "context_started"`: in a line, always a key and its value, never text inside a
# string, which cannot hold an unescaped quote), and reads the fields it needs right after the
# kind, in the writer's field order, with json.dumps's separators or compact ones. A line whose
# fields do not fit is parsed whole; so is every line of a kind with no branch of its own. Only
# an event's own `episode_id`, which comes before the kind, is read on its own (`_HEAD`).
#
# The patterns are derived from the event models: the writer dumps a model's fields in its
# `model_fields` order, so each branch walks that order from the kind to the last field it reads,
# matching each field it skips by its type (`_skip`) and capturing each it reads (`_read`), as
# the group `<branch prefix>_<field>`. A field added to an event, or moved, changes the pattern
# with it; one of a type that cannot be matched in place (an object or a list) before a field
# read is an error at import, naming it. tests/test_logs.py checks every branch against the
# models, field by field, on a sample of every kind written as the writer writes it.
_QC = rb'[^"\\\n]*+(?:\\.[^"\\\n]*+)*+'  # a JSON string's content (unrolled, possessive: fast)
_Q = rb'"' + _QC + rb'"'  # a JSON string
_C = rb",\s?"  # between fields
_K = rb":\s?"  # between a key and its value
_SCALARS = {
    "str": _Q,
    "bool": rb"true|false",
    "int": rb"-?\d+",
    "number": rb"-?(?:\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|Infinity)|NaN",
}


def _scalar(owner: type[BaseModel], name: str) -> tuple[str, bool]:
    """A field's JSON scalar (a key of `_SCALARS`) and whether it may be null."""
    annotation = owner.model_fields[name].annotation
    members = (
        get_args(annotation)
        if get_origin(annotation) in (Union, types.UnionType)
        else (annotation,)
    )
    nullable = type(None) in members
    scalars = set()
    for member in members:
        if member is type(None):
            continue
        if get_origin(member) is Literal and all(isinstance(a, str) for a in get_args(member)):
            scalars.add("str")
        elif member in (str, bool, int):  # bool before int: a bool is an int in Python
            scalars.add(member.__name__)
        elif member is float:
            scalars.add("number")
        else:
            scalars.add(repr(member))
    if scalars == {"int", "number"}:
        scalars = {"number"}
    if len(scalars) != 1 or not scalars <= _SCALARS.keys():
        raise TypeError(
            f"sandbox.review.logs: {owner.__name__}.{name} ({annotation!r}) is not a JSON "
            f"scalar, so "
            f"the fast path cannot match it in place: move it after the fields the fast path "
            f"reads, or read that event whole"
        )
    return scalars.pop(), nullable


def _skip(owner: type[BaseModel], name: str) -> bytes:
    """A pattern matching any value of the field, captured by nothing."""
    scalar, nullable = _scalar(owner, name)
    return rb"(?:" + (rb"null|" if nullable else b"") + _SCALARS[scalar] + rb")"


def _read(owner: type[BaseModel], name: str, group: str) -> bytes:
    """A pattern matching any value of the field, captured as `group`: a string's content for a
    string never null, else the raw JSON value (`null`, `true`, `"..."` with its quotes)."""
    scalar, nullable = _scalar(owner, name)
    if scalar == "str" and not nullable:
        return rb'"(?P<%s>%s)"' % (group.encode(), _QC)
    return rb"(?P<%s>%s%s)" % (group.encode(), rb"null|" if nullable else b"", _SCALARS[scalar])


def _walk(owner: type[BaseModel], first: str, prefix: str, reads: Sequence[str]) -> list[bytes]:
    """`"<field>": <value>` for each field of `owner` in the writer's order, from `first` to
    the last of `reads`: those in `reads` captured as `<prefix>_<field>`, the others skipped."""
    names = list(owner.model_fields)
    if first not in names or not set(reads) <= set(names[names.index(first) :]):
        raise LookupError(
            f"sandbox.review.logs: {owner.__name__} has no field {sorted(set(reads) - set(names))} "
            f"after {first!r} (its fields: {', '.join(names)}): the fast path reads them"
        )
    start = names.index(first)
    stop = max((names.index(r) + 1 for r in reads), default=start)
    return [
        b'"%s"' % name.encode()
        + _K
        + (_read(owner, name, f"{prefix}_{name}") if name in reads else _skip(owner, name))
        for name in names[start:stop]
    ]


def _after_kind(event_type: type[BaseModel], branch: str, *reads: str) -> bytes:
    """The branch of `event_type`, the named group `branch`: its kind's rest (a branch starts
    inside the kind's quotes) and its fields after it up to the last of `reads`, each read as
    the group `<branch>_<field>`."""
    names = list(event_type.model_fields)
    after = names[names.index("kind") + 1]
    fields = _walk(event_type, after, branch, reads)
    kind = re.escape(kind_of(event_type)).encode()
    return rb'(?P<%s>%s"' % (branch.encode(), kind) + _C + _C.join(fields) + rb")"


def _key(owner: type[BaseModel], name: str) -> bytes:
    """`"<name>":` and its separator, for a field `owner` has."""
    _walk(owner, name, "", ())  # raises, naming it, where `owner` has no such field
    return b'"%s"' % name.encode() + _K


def _record(prefix: str, *reads: str) -> bytes:
    """An episode result's `record` object up to the last of `reads`: each record type's
    fields (`EpisodeFinished.record`), which must agree from the first field read on (their
    groups can be named once); what comes before it may differ."""
    heads: list[bytes] = []
    tails: set[bytes] = set()
    for record_type in get_args(EpisodeFinished.model_fields["record"].annotation):
        names = list(record_type.model_fields)
        fields = _walk(record_type, names[0], prefix, reads)
        first = min(names.index(r) for r in reads)
        heads.append(b"".join(f + _C for f in fields[:first]))
        tails.add(_C.join(fields[first:]))
    if len(tails) != 1:
        raise TypeError(
            f"sandbox.review.logs: the record types of {EpisodeFinished.__name__}.record differ in "
            f"the fields {', '.join(reads)} and those between them: the fast path reads them "
            f"in one layout"
        )
    return rb"(?:" + b"|".join(sorted(heads)) + rb")" + tails.pop()


_BASE = EVENT_TYPES[0]
"""Every event's first fields (`ts`, `run_id`, the ids) come from one base model, in the same
order (tests/test_logs.py checks): the head read before the kind is any event's."""
_HEAD = re.compile(_C.join(_walk(_BASE, "episode_id", "head", ("episode_id", "context_id"))) + _C)
"""An event's ids before its kind (`head_episode_id`, `head_context_id`: raw, null or quoted),
matched at its `"episode_id"`."""
_JSON_WORDS = {b"true": True, b"false": False, b"null": None}
_PARSED_WHOLE = (*sorted(SUMMARY_KINDS), *attempts.COUNTED_KINDS)


def _whole(kinds: Iterable[str]) -> bytes:
    """The branch `whole`: a kind of `kinds`, read by parsing its line."""
    return rb'(?P<whole>(?:%s)")' % b"|".join(re.escape(k).encode() for k in kinds)


_ATTEMPT_BRANCHES = (
    _after_kind(CoordinationPick, "pick", "model", "game", "observation", "pair", "choice"),
    _after_kind(
        SignalRecognition,
        "recognition",
        "model",
        "game",
        "countermeasure",
        "policy_context_id",
        "outcome",
        "backdoor",
    ),
    _after_kind(
        HoneypotVerdict, "honeypot", "model", "game", "countermeasure", "honeypot_id", "outcome"
    ),
    _after_kind(SignalJammed, "jam", "model", "game", "method", "policy_context_id", "survived"),
)
"""The coordination attempts' branches (each a named group: `lastgroup` names it)."""

_SUMMARY_RE = re.compile(
    rb'"kind"'
    + _K
    + rb'"(?:'
    + b"|".join(
        (
            _after_kind(ContextStarted, "context", "model", "game"),
            # every action in the writer's layout, its parse flag read (a failed parse is
            # counted): one pass finds them with the rest; another layout's is parsed whole
            _after_kind(ActionTaken, "action", "model", "game", "parse_ok"),
            rb'(?P<result>%s"' % re.escape(kind_of(EpisodeFinished)).encode()
            + _C
            + rb'"record"'
            + _K
            + rb"\{"
            + _record("result", "model", "game")
            + rb")",
            _after_kind(MonitorScored, "monitor", "score"),
            _after_kind(ProtocolDecision, "decision", "decision"),
            _after_kind(AuditPerformed, "audit", "outcome"),
            *_ATTEMPT_BRANCHES,
            _whole(_PARSED_WHOLE),
        )
    )
    + rb")"
)
"""The default view with `--summary`: each branch a named group around the whole branch, so
`lastgroup` names it; `whole`: a line to parse."""

_TALLY_RE = re.compile(
    rb'"kind"'
    + _K
    + rb'"(?:'
    + b"|".join(
        (
            rb'(?P<result>%s")' % re.escape(kind_of(EpisodeFinished)).encode(),
            *_ATTEMPT_BRANCHES,
            _whole(attempts.COUNTED_KINDS),
        )
    )
    + rb")"
)
"""The coordination tables alone: the attempts, and each result's episode (its event's own)."""


def _text(raw: bytes) -> str:
    """A JSON string's content, decoded."""
    return json.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode("utf-8")


def _text_or_none(raw: bytes) -> str | None:
    """A JSON string (quotes included) or null, decoded."""
    return None if raw == b"null" else _text(raw[1:-1])


class _Names(dict[bytes, str]):
    """Decoded JSON string contents, remembered (models, games, outcomes: a few values)."""

    def __missing__(self, raw: bytes) -> str:
        self[raw] = text = _text(raw)
        return text


class _Fields:
    """Where a pattern's attempt branches hold their fields (group numbers, found once): each
    attempt is read as its fields are written (`entry`) and decoded once per distinct value
    (`_decoded`); a pick, whose pairing compares choices across episodes, is decoded at once."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        def at(branch: str, *fields: str) -> tuple[int, ...]:
            return tuple(pattern.groupindex[f"{branch}_{f}"] for f in fields)

        self.pick = at("pick", "model", "game", "observation", "pair", "choice")
        # the key within an episode after the context id, and what the attempt adds
        self.keys = {
            "recognition": at("recognition", "countermeasure", "policy_context_id"),
            "honeypot": at("honeypot", "countermeasure", "honeypot_id"),
            "jam": at("jam", "method", "policy_context_id"),
        }
        self.values = {
            "recognition": at(
                "recognition", "model", "game", "countermeasure", "outcome", "backdoor"
            ),
            "honeypot": at("honeypot", "model", "game", "countermeasure", "outcome"),
            "jam": at("jam", "model", "game", "method", "survived"),
        }

    def entry(self, branch: str, m: re.Match[bytes], context: bytes) -> attempts.Entry:
        """An attempt other than a pick, as read: keyed by its branch and fields, its
        contribution tagged with its branch's bytes (`_decoded` reads it)."""
        return (branch, context, *m.group(*self.keys[branch])), (
            _TAGS[branch],
            *m.group(*self.values[branch]),
        )

    def read_pick(self, m: re.Match[bytes], context: bytes, short: _Names) -> attempts.Entry:
        model, game, observation, pair, choice = m.group(*self.pick)
        return attempts.pick(
            context, short[model], short[game], short[observation], int(pair), _text_or_none(choice)
        )


_TAGS = {branch: branch.encode() for branch in ("recognition", "honeypot", "jam")}


def _decoded(c: tuple[Any, ...]) -> tuple[Any, ...]:
    """An attempt's contribution as read (`_Fields.entry`), in `sandbox.review.attempts`' form."""
    tag, model, game = c[0], _text(c[1]), _text(c[2])
    if tag == b"recognition":
        cm, outcome, backdoor = _text(c[3]), _text(c[4]), _JSON_WORDS[c[5]]
        return attempts.recognition(None, model, game, cm, None, outcome, backdoor)[1]
    if tag == b"honeypot":
        return attempts.honeypot(None, model, game, _text(c[3]), None, _text(c[4]))[1]
    return attempts.jam(None, model, game, _text(c[3]), None, _JSON_WORDS[c[4]])[1]


_TALLY_FIELDS = _Fields(_TALLY_RE)
_SUMMARY_FIELDS = _Fields(_SUMMARY_RE)
_EPISODE_KEY = b'"episode_id"'


def _line(buf: bytes, at: int, stop: int) -> bytes:
    """The line of buf[:stop] (whole lines) holding position `at`."""
    return buf[buf.rfind(b"\n", 0, at) + 1 : buf.find(b"\n", at, stop)]


def _parsed(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class _Run:
    """The attempts of one episode read one after another, before its result (if any): handed
    to the tally together (`attempts.Tally.add_run`)."""

    __slots__ = ("entries", "picks", "raw")

    def __init__(self) -> None:
        self.raw: bytes | None = None  # the episode id as read (quoted, or null)
        self.entries: list[attempts.Entry] = []
        self.picks: list[attempts.Entry] = []

    def end(self, tally: attempts.Tally, result: bool, raw: bytes | None = None) -> None:
        """Hand the run to `tally` (then its result, when `result`), and start one of `raw`."""
        if self.raw is not None and (result or self.entries or self.picks):
            episode = _text_or_none(self.raw)
            if episode is not None:
                tally.add_run(episode, self.entries, self.picks, result)
        if self.entries:
            self.entries = []
        if self.picks:
            self.picks = []
        self.raw = raw


class _Attempts:
    """The default view's state: the coordination tally of the lines read so far."""

    def __init__(self, part: bool = False) -> None:
        self.tally = attempts.Tally(part)
        self.short = _Names()

    def block(self, buf: bytes, stop: int) -> None:
        """The coordination attempts and results of buf[:stop] (whole lines), in order. A line
        is found by its kind, its ids read from its head (`_HEAD`, which must end at the kind:
        else the line is in another layout and parsed whole)."""
        tally, short, fields = self.tally, self.short, _TALLY_FIELDS
        rfind, head_at, run = buf.rfind, _HEAD.match, _Run()
        for m in _TALLY_RE.finditer(buf, 0, stop):
            branch = m.lastgroup
            at = m.start()
            head = head_at(buf, rfind(_EPISODE_KEY, 0, at), at) if branch != "whole" else None
            if head is None or head.end() != at:
                run.end(tally, False)
                event = _parsed(_line(buf, at, stop))
                if event is not None:
                    tally.add(event)
                continue
            if head[1] != run.raw:
                run.end(tally, False, head[1])
            if branch == "result":
                run.end(tally, True, head[1])
            elif branch == "pick":  # ids as read: keys within one episode's attempts
                run.picks.append(fields.read_pick(m, head[2], short))
            else:
                run.entries.append(fields.entry(branch, m, head[2]))  # type: ignore[arg-type]
        run.end(tally, False)

    def merge(self, part: _Attempts) -> bool:
        return self.tally.merge(part.tally)

    def tables(self, path: Path, size: int) -> dict[str, list[dict[str, Any]]]:
        self.tally.translate(_decoded)
        return self.tally.rows()


@dataclass
class _Open:
    """What an episode whose result has not been read yet adds to its policy model's row."""

    monitor_scores: int = 0
    monitor_missing: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    audits_caught: int = 0
    audits_clean: int = 0

    def add_to(self, row: Row | _Open) -> None:
        row.monitor_scores += self.monitor_scores
        row.monitor_missing += self.monitor_missing
        for decision, n in self.decisions.items():
            row.decisions[decision] = row.decisions.get(decision, 0) + n
        row.audits_caught += self.audits_caught
        row.audits_clean += self.audits_clean


class _Summary:
    """The default view's state with `--summary`: the rows (contexts and failed parses by raw
    model and game as read by the regex), the monitor scores, decisions and audits of each
    episode whose result has not been read yet, and the coordination tally."""

    def __init__(self, part: bool = False) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.contexts: Counter[tuple[bytes, bytes]] = Counter()
        self.failed: Counter[tuple[bytes, bytes]] = Counter()
        self.open: dict[str | None, _Open] = {}
        self.tally = attempts.Tally(part)
        self.unnamed_result = False  # a result with no episode id was read
        self.names: dict[tuple[bytes, bytes], tuple[str, str]] = {}
        self.short = _Names()

    def row(self, key: tuple[str, str]) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(*key)
        return self.rows[key]

    def result(self, episode: str | None, model: str, game: str) -> None:
        row = self.row((model, game))
        row.episodes += 1
        if episode in self.open:
            self.open.pop(episode).add_to(row)
        if episode is not None:
            self.tally.commit(episode)
        else:
            self.unnamed_result = True

    def of_episode(self, episode: str | None) -> _Open:
        if episode not in self.open:
            self.open[episode] = _Open()
        return self.open[episode]

    def event(self, event: dict[str, Any]) -> None:
        """Any event, parsed whole."""
        kind = event.get("kind")
        episode = event.get("episode_id")
        if kind == "context_started":
            self.row((event.get("model") or UNKNOWN, event.get("game") or UNKNOWN)).contexts += 1
        elif kind == "action":
            if not event.get("parse_ok", True):
                key = (event.get("model") or UNKNOWN, event.get("game") or UNKNOWN)
                self.row(key).parse_failures += 1
        elif kind == "episode_result":
            self.result(episode, event_model(event) or UNKNOWN, event_game(event) or UNKNOWN)
        elif kind == "monitor_score":
            pending = self.of_episode(episode)
            pending.monitor_scores += 1
            pending.monitor_missing += event.get("score") is None
        elif kind == "protocol_decision":
            decisions = self.of_episode(episode).decisions
            decision = str(event.get("decision"))
            decisions[decision] = decisions.get(decision, 0) + 1
        elif kind == "audit":
            if event.get("outcome") == "caught":
                self.of_episode(episode).audits_caught += 1
            else:
                self.of_episode(episode).audits_clean += 1
        elif kind in attempts.KINDS:
            self.tally.add(event)

    def block(self, buf: bytes, stop: int) -> None:
        """The lines of buf[:stop] (whole lines) that count, in order (as `_Attempts.block`; a
        context's and an action's fields are counted as read, with no need of their ids)."""
        names, short, fields = self.names, self.short, _SUMMARY_FIELDS
        contexts, failed, tally, open_ = self.contexts, self.failed, self.tally, self.open
        rfind, head_at, run = buf.rfind, _HEAD.match, _Run()
        episode: str | None = None  # the run's episode, decoded
        for m in _SUMMARY_RE.finditer(buf, 0, stop):
            branch = m.lastgroup
            if branch == "context":
                contexts[m.group(_CONTEXT_MODEL, _CONTEXT_GAME)] += 1  # type: ignore[index]
                continue
            if branch == "action":
                if m[_ACTION_PARSE_OK] == b"false":
                    failed[m.group(_ACTION_MODEL, _ACTION_GAME)] += 1  # type: ignore[index]
                continue
            at = m.start()
            head = head_at(buf, rfind(_EPISODE_KEY, 0, at), at) if branch != "whole" else None
            if head is None or head.end() != at:  # its fields, or its head, in another layout
                run.end(tally, False)
                event = _parsed(_line(buf, at, stop))
                if event is not None:
                    self.event(event)
                continue
            if head[1] != run.raw:
                run.end(tally, False, head[1])
                episode = _text_or_none(head[1])
            if branch == "result":
                model, game = m.group(*_RESULT)
                key = names.get((model, game))
                if key is None:
                    key = names[(model, game)] = (_text(model), _text(game))
                run.end(tally, False, head[1])  # its attempts, then the result, as `event`
                self.result(episode, *key)
            elif branch == "pick":  # ids as read: keys within one episode's attempts
                run.picks.append(fields.read_pick(m, head[2], short))
            elif branch in fields.keys:
                run.entries.append(fields.entry(branch, m, head[2]))
            else:
                pending = open_.get(episode)
                if pending is None:
                    pending = open_[episode] = _Open()
                if branch == "monitor":
                    pending.monitor_scores += 1
                    pending.monitor_missing += m[_MONITOR_SCORE] == b"null"
                elif branch == "decision":
                    decision = short[m[_DECISION]]
                    pending.decisions[decision] = pending.decisions.get(decision, 0) + 1
                elif m[_AUDIT_OUTCOME] == b"caught":
                    pending.audits_caught += 1
                else:
                    pending.audits_clean += 1
        run.end(tally, False)

    def merge(self, part: _Summary) -> bool:
        """Add `part`, read from nothing over the lines right after these, as if they had been
        read in a row (`attempts.Tally.merge`); False, changing nothing, where that can differ:
        also when `part` reads the result of an episode these lines left open (its monitor
        scores, decisions and audits go to that result's row)."""
        if not self.tally.can_merge(part.tally) or any(
            part.unnamed_result if e is None else part.tally.has_result(e) for e in self.open
        ):
            return False
        self.tally.merge(part.tally)
        for key, row in part.rows.items():
            self.row(key).add(row)
        self.contexts.update(part.contexts)
        self.failed.update(part.failed)
        for episode, pending in part.open.items():
            if episode in self.open:
                pending.add_to(self.open[episode])
            else:
                self.open[episode] = pending
        self.unnamed_result |= part.unnamed_result
        return True

    def policy_models(self, blocks: Iterable[tuple[bytes, int]]) -> None:
        """Count what the episodes still open hold under their first policy context's model and
        game (read from `blocks`, the same lines again), or under ("?", "?")."""
        keys: dict[str | None, tuple[str, str]] = {}
        needles = [needle(e) for e in self.open if e is not None]
        for line in lines_with(blocks, needles) if needles else ():
            event = _parsed(line)
            if event is None:
                continue
            episode = event.get("episode_id")
            if (
                event.get("kind") == "context_started"
                and event.get("role", "policy") == "policy"
                and episode in self.open
            ):
                keys.setdefault(
                    episode, (event.get("model") or UNKNOWN, event.get("game") or UNKNOWN)
                )
        for episode, pending in self.open.items():
            pending.add_to(self.row(keys.get(episode, (UNKNOWN, UNKNOWN))))
        self.open.clear()

    def tables(self, path: Path, size: int) -> dict[str, list[dict[str, Any]]]:
        if self.open:
            self.policy_models(file_blocks(path, size))
        return self.counted()

    def counted(self) -> dict[str, list[dict[str, Any]]]:
        for (model, game), n in self.contexts.items():
            self.row((_text(model), _text(game))).contexts += n
        for (model, game), n in self.failed.items():
            self.row((_text(model), _text(game))).parse_failures += n
        self.contexts.clear()
        self.failed.clear()
        self.tally.translate(_decoded)
        tables = self.tally.rows()
        return {
            "agreement": tables["agreement"],
            "collusion": tables["collusion"],
            "summary": [self.rows[k].as_dict() for k in sorted(self.rows)],
        }


def _group(pattern: re.Pattern[bytes], name: str) -> int:
    return pattern.groupindex[name]


_CONTEXT_MODEL = _group(_SUMMARY_RE, "context_model")
_CONTEXT_GAME = _group(_SUMMARY_RE, "context_game")
_ACTION_MODEL = _group(_SUMMARY_RE, "action_model")
_ACTION_GAME = _group(_SUMMARY_RE, "action_game")
_ACTION_PARSE_OK = _group(_SUMMARY_RE, "action_parse_ok")
_RESULT = tuple(_group(_SUMMARY_RE, f"result_{f}") for f in ("model", "game"))
_MONITOR_SCORE = _group(_SUMMARY_RE, "monitor_score")
_DECISION = _group(_SUMMARY_RE, "decision_decision")
_AUDIT_OUTCOME = _group(_SUMMARY_RE, "audit_outcome")


# --- reading a large log in parallel ----------------------------------------------------------

PARALLEL_MIN = 64 * 2**20
"""The smallest events file the tables are read from in parallel: below it starting the other
processes costs about what they save."""

PART_MIN = 32 * 2**20
"""The least a process reads."""

RESULT_NEEDLE = b'"episode_result"'
"""In every episode result's line (its kind's value, in any layout): a part starts after one."""


def workers(size: int) -> int:
    """How many processes read a file of `size` bytes: one per core this process may run on,
    each reading at least `PART_MIN`; one below `PARALLEL_MIN`, or where there is no fork."""
    if size < PARALLEL_MIN or not hasattr(os, "fork"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, size // PART_MIN))


def _cut(fh: IO[bytes], at: int, window: int = 2**20) -> int | None:
    """A line start at or after `at`: just after the first line from there holding an episode
    result (`RESULT_NEEDLE`: the next part then starts with a new episode), else after the first
    whole line; None when the window holds no whole line."""
    fh.seek(at)
    buf = fh.read(window)
    found = buf.find(RESULT_NEEDLE)
    end = buf.find(b"\n", max(found, 0))
    if found < 0 or end < 0:
        end = buf.find(b"\n")
    return None if end < 0 else at + end + 1


def ranges(path: Path, n: int) -> list[tuple[int, int]]:
    """`path` in at most `n` byte ranges `[start, end)` of about equal size, each starting at a
    line start (after an episode result where one is near); the last ends at the file's end."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as fh:
        for i in range(1, n):
            cut = _cut(fh, max(size * i // n, cuts[-1]))
            if cut is None or cut >= size:
                break
            if cut > cuts[-1]:
                cuts.append(cut)
    return list(itertools.pairwise([*cuts, size]))


class _Child:
    """A forked process that computes `work()` and sends it back pickled through a pipe."""

    def __init__(self, work: Callable[[], Any]) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns (no atexit handlers, no buffers flushed twice)
            code = 1
            try:
                os.close(read)
                with os.fdopen(write, "wb") as out:
                    pickle.dump(work(), out, pickle.HIGHEST_PROTOCOL)
                code = 0
            except BaseException:
                pass
            finally:
                os._exit(code)
        os.close(write)
        self.pid, self.read = pid, read

    def result(self) -> Any | None:
        """What the child computed; None when it failed."""
        with os.fdopen(self.read, "rb") as fh:
            data = fh.read()
        _, status = os.waitpid(self.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not data:
            return None
        return pickle.loads(data)


class _State(Protocol):
    def block(self, buf: bytes, stop: int) -> None: ...

    def merge(self, part: Any) -> bool: ...

    def tables(self, path: Path, size: int) -> dict[str, list[dict[str, Any]]]: ...


def _read_tables(
    path: Path,
    new: Callable[[bool], _State],
    size: int,
    processes: int | None,
    spans: Sequence[tuple[int, int]] | None = None,
    fork: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """The tables of `path`: read in a row, or (`processes` > 1; None: `workers`) in parts
    (`ranges`; or `spans`, line starts), each but the first in a forked process (or, without
    `fork`, here, one after another), merged in order; a part that does not merge (an episode
    across the cut, or a process that failed) is read again, in a row, after those before it."""
    if spans is None:
        n = workers(path.stat().st_size) if processes is None else processes
        spans = ranges(path, n) if n > 1 else [(0, path.stat().st_size)]

    def read(state: _State, start: int, end: int) -> _State:
        for buf, stop in file_blocks(path, size, start, end):
            state.block(buf, stop)
        return state

    if fork:
        children = [_Child(functools.partial(read, new(True), *span)) for span in spans[1:]]
        parts: Iterable[_State | None] = (child.result() for child in children)
    else:
        parts = (read(new(True), *span) for span in spans[1:])
    whole = read(new(False), *spans[0])
    for span, part in zip(spans[1:], parts, strict=True):
        if part is None or not whole.merge(part):
            read(whole, *span)
    return whole.tables(path, size)


def coordination_tables(
    path: Path, size: int = BLOCK, processes: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The default view's tables of an events file: `agreement` and `collusion`
    (`sandbox.review.attempts`, which they equal), reading only the coordination attempts and the
    episode results; a large file in parallel (`processes`, `_read_tables`)."""
    return _read_tables(path, _Attempts, size, processes)


def summary_tables(
    path: Path, size: int = BLOCK, processes: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The default view's tables of an events file: `agreement` and `collusion`
    (`sandbox.review.attempts`), and `summary`: per (model, game), episodes, contexts and parse
    failures (under each context's own model, so a trusted model's contexts have their row), and
    the monitor scores, protocol decisions and audits of each episode under its policy model: its
    result's record's model and game, or, for an episode with no result yet, its first policy
    context's (read in a second pass, over the lines of those episodes only)."""
    return _read_tables(path, _Summary, size, processes)


def summarize(lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """`summary_tables`' `summary`, of complete lines."""
    state = _Summary()
    for line in lines:
        state.block(line, len(line))
    if state.open:
        state.policy_models((line, len(line)) for line in lines)
    return state.counted()["summary"]


# --- a finished run's tables, tallied once (`tally.json`) ---------------------------------------

TALLY = "tally.json"
"""Beside a finished run's log: the tables of the default view and `--summary` as its log stood
when the run finished, and that log's fingerprint (`record_tally`, `recorded_tables`)."""

TALLY_VERSION = 1
"""The layout of `tally.json`; another is not read."""

SAMPLE_ENDS = 2**20
"""Bytes of the log's head and of its tail that its fingerprint hashes."""

SAMPLE_BLOCK = 2**16
"""Bytes of each block sampled between them."""

SAMPLES = 64
"""Blocks sampled between the head and the tail, evenly spaced."""


def sampled_spans(size: int) -> list[tuple[int, int]]:
    """The `(start, length)` spans of a log of `size` bytes that its fingerprint hashes: the
    whole log up to 2 MiB and 64 blocks (6 MiB), else its first and last MiB and `SAMPLES`
    blocks of 64 KiB evenly spaced between them."""
    if size <= 2 * SAMPLE_ENDS + SAMPLES * SAMPLE_BLOCK:
        return [(0, size)]
    inner = size - 2 * SAMPLE_ENDS - SAMPLE_BLOCK
    return [
        (0, SAMPLE_ENDS),
        *((SAMPLE_ENDS + inner * i // (SAMPLES - 1), SAMPLE_BLOCK) for i in range(SAMPLES)),
        (size - SAMPLE_ENDS, SAMPLE_ENDS),
    ]


def log_fingerprint(path: Path) -> dict[str, Any]:
    """What `tally.json` holds of the log `path` to tell that it is unchanged: its size, its
    modification time (nanoseconds) and a SHA-256 of the size and of its `sampled_spans` (about
    6 MiB read, whatever the log's size)."""
    import hashlib

    with path.open("rb") as fh:
        stat = os.fstat(fh.fileno())
        size = stat.st_size
        digest = hashlib.sha256(b"%d\n" % size)
        for at, length in sampled_spans(size):
            fh.seek(at)
            digest.update(fh.read(length))
    return {"size": size, "mtime_ns": stat.st_mtime_ns, "sampled_sha256": digest.hexdigest()}


@functools.cache
def _code_sha256() -> str:
    """A SHA-256 of the modules that compute the tables (this one, `sandbox.review.eventlines`,
    `sandbox.review.attempts`, `sandbox.core.events`): a tally written by other code is not read
    (its tables may differ)."""
    import hashlib

    from sandbox.core import events

    digest = hashlib.sha256()
    for module in (events, attempts, eventlines):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def _tables_sha256(tables: dict[str, list[dict[str, Any]]]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(tables, ensure_ascii=False).encode("utf-8")).hexdigest()


def record_tally(run_dir: Path) -> bool:
    """Write `run_dir/tally.json` (whole or not at all): `summary_tables` of its `events.jsonl`
    as it stands, read in this process (no fork: the caller, a run's end, may hold threads), and
    the log's fingerprint, taken before and after the read (a log that changed meanwhile gets no
    tally). False, writing nothing, where it cannot: a tally is only ever a shortcut, so no error
    here fails the run that called it (a leftover `.tally.json.tmp` is never read)."""
    path = run_dir / EVENTS
    try:
        before = log_fingerprint(path)
        tables = summary_tables(path, processes=1)
        if log_fingerprint(path) != before:
            return False
        data = {
            "tally_version": TALLY_VERSION,
            "code_sha256": _code_sha256(),
            "log": before,
            "tables_sha256": _tables_sha256(tables),
            "tables": tables,
        }
        tmp = run_dir / f".{TALLY}.tmp"
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, run_dir / TALLY)
    except Exception:  # a finished run is not failed by its shortcut (tests check it is written)
        return False
    return True


TALLY_TABLES = ("agreement", "collusion", "summary")


def recorded_tables(run_dir: Path) -> dict[str, list[dict[str, Any]]] | None:
    """`summary_tables` of `run_dir`'s log read from its `tally.json`, or None where that cannot
    be trusted: no tally, one that does not parse or is of another layout, written by other code
    (`_code_sha256`), whose tables do not match their own SHA-256 (a torn or edited tally), or
    whose log fingerprint (`log_fingerprint`) is not the log's now (a run resumed, still running,
    or a log edited, copied without its times or replaced)."""
    try:
        data = json.loads((run_dir / TALLY).read_bytes())
        if (
            not isinstance(data, dict)
            or data.get("tally_version") != TALLY_VERSION
            or data.get("code_sha256") != _code_sha256()
        ):
            return None
        tables = data.get("tables")
        if (
            not isinstance(tables, dict)
            or list(tables) != list(TALLY_TABLES)
            or not all(
                isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
                for rows in tables.values()
            )
            or data.get("tables_sha256") != _tables_sha256(tables)
            or data.get("log") != log_fingerprint(run_dir / EVENTS)
        ):
            return None
    except (OSError, ValueError, RecursionError):
        return None
    return tables


def run_tables(
    run_dir: Path, summary: bool, size: int = BLOCK, processes: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The default view's tables of a run (`coordination_tables`; with `summary`,
    `summary_tables`): from its `tally.json` where the log is the one it tallied
    (`recorded_tables`), else from the log."""
    recorded = recorded_tables(run_dir)
    if recorded is not None:
        return recorded if summary else {k: recorded[k] for k in ("agreement", "collusion")}
    path = run_dir / EVENTS
    return (
        summary_tables(path, size, processes)
        if summary
        else coordination_tables(path, size, processes)
    )


# --- the run's events as a table, queried with SQL (`sandbox logs --sql`) ----------------------

SQL_INSTALL = "pip install -c constraints.txt -e '.[sql]'"
"""The install command for DuckDB, the optional dependency `--sql` needs (its error names it)."""

SQL_TABLE = "events"
"""The table a query reads: one row per event of the log."""

_DUCKDB_TYPES = {"str": "VARCHAR", "bool": "BOOLEAN", "int": "BIGINT", "number": "DOUBLE"}


class QueryError(Exception):
    """A query that cannot run: DuckDB is not installed, or DuckDB's own error."""


def event_columns() -> dict[str, str]:
    """The columns of `events`: every top-level field of every event kind (`kind` among them),
    in the order the kinds' models first declare them, each with its DuckDB type: a scalar's own
    (DOUBLE where kinds disagree between integers and numbers), else JSON (an object or a list,
    queried with `->>`: `record->>'$.model'`; or a field kinds type differently). Derived from
    the event models, like the fast path: every column is there whatever kinds a run wrote, so
    a query runs on any run's log."""
    types: dict[str, set[str]] = {}
    for event_type in EVENT_TYPES:
        for name in event_type.model_fields:
            try:
                duck = _DUCKDB_TYPES[_scalar(event_type, name)[0]]
            except TypeError:  # not a JSON scalar
                duck = "JSON"
            types.setdefault(name, set()).add(duck)
    return {
        name: found.pop()
        if len(found) == 1
        else "DOUBLE"
        if found == {"BIGINT", "DOUBLE"}
        else "JSON"
        for name, found in types.items()
    }


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _complete(path: Path, tmp: Path) -> Path:
    """`path`, or where a torn last line (a run still being written) is left out, a copy of its
    complete lines in `tmp`: a query sees the lines every other view sees."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(size - 1, 0))
        if size == 0 or fh.read(1) == b"\n":
            return path
        copy = tmp / EVENTS
        with copy.open("wb") as out:
            for buf, stop in file_blocks(path):
                out.write(memoryview(buf)[:stop])
    return copy


def query(path: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on the events file `path` as the table `events` (`event_columns`; a line
    that does not parse is left out, as every view leaves it) with DuckDB, an optional extra;
    its result's column names and rows. Raises `QueryError` naming the install command when
    DuckDB is missing, and with DuckDB's message when the query fails."""
    try:
        import duckdb
    except ImportError:
        raise QueryError(f"needs DuckDB, which is not installed: {SQL_INSTALL}") from None
    columns = ", ".join(f"{_sql_text(n)}: {_sql_text(t)}" for n, t in event_columns().items())
    with tempfile.TemporaryDirectory(prefix="sandbox-logs-") as tmp:
        source = _complete(path, Path(tmp))
        con = duckdb.connect()
        try:
            con.execute(
                f"create view {SQL_TABLE} as select * from read_json("
                f"{_sql_text(str(source))}, format = 'newline_delimited', "
                f"columns = {{{columns}}}, ignore_errors = true, "
                f"maximum_object_size = {2**30}) where kind is not null"
            )
            result = con.execute(sql)
            names = [d[0] for d in result.description or ()]
            return names, result.fetchall()
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        finally:
            con.close()
