"""`sandbox logs`: review a run from its `events.jsonl`, streamed.

Pure functions over the lines of an events file: no Ray, no model stack. A file is read in large
blocks of whole lines (never whole; `file_blocks`), a torn last line (a run still being written)
is skipped, and only the lines that can matter are looked at: a regex or substring search over
the block finds them, and a line is parsed only then. A filter's lines come from GNU grep where it
is on PATH (`needle_blocks`). The default view (`coordination_tables`) keeps the coordination
tally (`sandbox.attempts`); with `--summary` (`summary_tables`) also one row per (model, game)
and the episodes still open (those whose result has not been read yet).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import attempts

# not imported from sandbox.events or sandbox.runstore (pydantic: a sixth of a second at each
# start); tests/test_logs.py checks both against them
KINDS: tuple[str, ...] = (
    "run_started",
    "prompt",
    "context_started",
    "action",
    "plan_written",
    "monitor_score",
    "protocol_decision",
    "audit",
    "coordination_pick",
    "signal_inserted",
    "jam",
    "signal_recognition",
    "honeypot_verdict",
    "episode_result",
    "run_stopped",
    "run_finished",
)
"""Every event kind: the event union's, in its order."""

EVENTS = "events.jsonl"
"""A run's events file (`sandbox.runstore.EVENTS`)."""

SUMMARY_KINDS = frozenset(
    {"context_started", "action", "monitor_score", "protocol_decision", "audit", "episode_result"}
)


BLOCK = 8 * 2**20
"""Bytes read at a time."""


def file_blocks(path: Path, size: int = BLOCK) -> Iterator[tuple[bytes, int]]:
    """The file in blocks `(buf, stop)`: `buf[:stop]` is whole lines, and every complete line of
    the file is in exactly one block; a torn last line is in none. A line longer than `size` is
    read whole (the block grows)."""
    with path.open("rb") as fh:
        while True:
            buf = fh.read(size)
            if not buf:
                return
            stop = buf.rfind(b"\n") + 1
            if stop == 0:
                if len(buf) < size:
                    return  # a torn last line
                fh.seek(-len(buf), 1)
                size *= 2
                continue
            if stop < len(buf):
                fh.seek(stop - len(buf), 1)  # the next block starts at this line's end
            yield buf, stop


def complete_lines(path: Path, size: int = BLOCK) -> Iterator[bytes]:
    """The complete lines of a file, as bytes, one at a time; a torn last line is skipped."""
    for buf, stop in file_blocks(path, size):
        start = 0
        while start < stop:
            end = buf.find(b"\n", start, stop) + 1
            yield buf[start:end]
            start = end


GREP: str | None = shutil.which("grep")
"""GNU grep, where it is on PATH: it prefilters a file's lines for a filter (`needle_blocks`), in
another process; without it the file is read in Python (the same lines, the same output)."""


def grep_blocks(
    path: Path, needles: Sequence[bytes], size: int = BLOCK
) -> Iterator[tuple[bytes, int]]:
    """`file_blocks` of only the lines of the file holding one of `needles` (none holding a
    newline), read from `grep -F` (bytes as bytes: `LC_ALL=C`, `-a`); a torn last line, which grep
    prints without its newline, is dropped."""
    assert GREP is not None
    patterns = [a for n in needles for a in (b"-e", n)]
    argv = [os.fsencode(GREP), b"-a", b"-F", *patterns, b"--", os.fsencode(path)]
    env = {**os.environ, "LC_ALL": "C"}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, bufsize=0) as proc:
        assert proc.stdout is not None
        rest = b""
        try:
            while True:
                chunk = proc.stdout.read(size)
                if not chunk:
                    break
                buf = rest + chunk if rest else chunk
                stop = buf.rfind(b"\n") + 1
                rest = buf[stop:]
                if stop:
                    yield buf, stop
        finally:
            proc.stdout.close()
            if proc.wait() > 1 and proc.returncode >= 0:  # 1: no line matched; < 0: closed early
                raise OSError(f"grep exited {proc.returncode} on {path}")


def needle_blocks(
    path: Path, needles: Sequence[bytes], size: int = BLOCK
) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole lines holding every line of the file that holds one of `needles` (and
    maybe others): from grep where it is on PATH, else the whole file."""
    return grep_blocks(path, needles, size) if GREP is not None else file_blocks(path, size)


def lines_with(blocks: Iterable[tuple[bytes, int]], needles: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of `blocks` that hold any of `needles` (none holding a newline), each once, in
    order."""
    needles = tuple(needles)
    for buf, stop in blocks:
        spans: dict[int, int] = {}
        for needle in needles:
            at = buf.find(needle, 0, stop)
            while at >= 0:
                start = buf.rfind(b"\n", 0, at) + 1
                end = buf.find(b"\n", at, stop) + 1
                spans[start] = end
                at = buf.find(needle, end, stop)
        for start in sorted(spans):
            yield buf[start : spans[start]]


def _needle(value: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def field_needles(key: str, value: str) -> tuple[bytes, bytes]:
    """`"<key>": "<value>"` with the writer's separator and compact: one of them is in every line
    holding that field (at any depth: an episode result's record's model too)."""
    quoted = _needle(value)
    return b'"%s": %s' % (key.encode(), quoted), b'"%s":%s' % (key.encode(), quoted)


def kind_needles(kind: str) -> tuple[bytes, bytes]:
    """`field_needles` of an event kind."""
    return field_needles("kind", kind)


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
    _first: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        needles: list[tuple[bytes, ...]] = []
        first: tuple[bytes, ...] = ()
        if self.kinds:
            # `"kind": "audit"` (the writer's separators) or compact: `"audit"` alone is also a
            # decision's value; the first condition's value is searched for (one pass), each
            # condition's key and value checked after, and only then a line parsed
            needles.append(tuple(n for k in sorted(self.kinds) for n in kind_needles(k)))
            first = tuple(_needle(k) for k in sorted(self.kinds))
        keys = ("agent_id", "model", "game", "episode_id")
        for key, value in zip(keys, (self.agent, self.model, self.game, self.episode), strict=True):
            if value is not None:
                needles.append(field_needles(key, value))
                first = first or (_needle(value),)
        object.__setattr__(self, "_needles", tuple(needles))
        object.__setattr__(self, "_first", first)

    def active(self) -> bool:
        return bool(self._needles)

    def first_needles(self) -> tuple[bytes, ...]:
        """The values of one condition, one of which every matching line holds."""
        return self._first

    def may_match(self, line: bytes) -> bool:
        """False when the line cannot match (some condition's key and value are absent from it)."""
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


def select_file(
    path: Path, flt: Filter, size: int = BLOCK
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """`select` over a file's complete lines, looking only at the lines that hold the first
    condition's value (an active filter)."""
    needles = flt.first_needles()
    return select(lines_with(needle_blocks(path, needles, size), needles), flt)


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
    if kind == "coordination_pick":
        return (
            f"game={event.get('game')} index={event.get('index')} pair={event.get('pair')} "
            f"obs={event.get('observation')} choice={event.get('choice')}"
        )
    if kind == "signal_inserted":
        return (
            f"game={event.get('game')} signal={shorten(event.get('signal'), 40)!r} "
            f"declared={event.get('declared')} inserted={event.get('inserted')}"
        )
    if kind == "jam":
        return (
            f"{event.get('method')} of {event.get('policy_context_id')} "
            f"signal={shorten(event.get('signal'), 40)!r} survived={event.get('survived')}"
        )
    if kind == "signal_recognition":
        return (
            f"{event.get('countermeasure')}: {event.get('outcome')} "
            f"score={_num(event.get('score'))} backdoor={event.get('backdoor')} "
            f"of={event.get('policy_context_id')} signal={shorten(event.get('signal'), 40)!r}"
        )
    if kind == "honeypot_verdict":
        return (
            f"{event.get('countermeasure')}: {event.get('outcome')} "
            f"score={_num(event.get('score'))} honeypot={event.get('honeypot_id')}"
        )
    if kind == "run_stopped":
        return (
            f"{event.get('errors')}/{event.get('window')} failed: {shorten(event.get('cause'), 80)}"
        )
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

# The default view finds the lines it counts with one regex over a block, anchored at their kind
# (`"kind": "context_started"`: in a line, always a key and its value, never text inside a
# string, which cannot hold an unescaped quote), and reads the fields it needs right after the
# kind, in the writer's field order (`model_dump` keeps the models' order), with json.dumps's
# separators or compact ones. A line whose fields do not fit is parsed whole; so is every
# coordination attempt, for the tally. Only an event's own `episode_id`, which comes before the
# kind, is read on its own, and only for the events counted under their episode.
_Q = rb'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'  # a JSON string (unrolled: fast in `re`)
_STR = rb'"([^"\\\n]*(?:\\.[^"\\\n]*)*)"'  # the same, its content captured
_C = rb",\s?"  # between fields
_K = rb":\s?"  # between a key and its value
_PARSED_WHOLE = (*sorted(SUMMARY_KINDS - {"action"}), *attempts.COUNTED_KINDS)


def _field(branch: str, key: str) -> bytes:
    """`"key": "..."`, its content captured as the group `<branch>_<key>`."""
    return b'"%s"%s"(?P<%s_%s>%s)"' % (key.encode(), _K, branch.encode(), key.encode(), _STR[2:-2])


_ATTEMPT_BRANCHES = (
    rb'|(?P<pick>coordination_pick"' + _C + _field("p", "model") + _C + _field("p", "game")
    + _C + _field("p", "observation") + _C + rb'"index"' + _K + rb"-?\d+" + _C + rb'"pair"'
    + _K + rb"(?P<p_pair>-?\d+)" + _C + rb'"choice"' + _K + rb"(?P<p_choice>null|" + _Q + rb"))"
    + rb'|(?P<recognition>signal_recognition"' + _C + _field("r", "model") + _C
    + _field("r", "game") + _C + _field("r", "countermeasure") + _C
    + _field("r", "policy_context_id") + _C + rb'"policy_agent_id"' + _K + _Q + _C
    + rb'"signal"' + _K + _Q + _C + rb'"score"' + _K + rb"[^,\n]*" + _C + _field("r", "outcome")
    + _C + rb'"backdoor"' + _K + rb"(?P<r_backdoor>true|false))"
    + rb'|(?P<honeypot>honeypot_verdict"' + _C + _field("h", "model") + _C + _field("h", "game")
    + _C + _field("h", "countermeasure") + _C + _field("h", "honeypot_id") + _C + rb'"score"'
    + _K + rb"[^,\n]*" + _C + _field("h", "outcome") + rb")"
    + rb'|(?P<jam>jam"' + _C + _field("j", "model") + _C + _field("j", "game") + _C
    + _field("j", "method") + _C + _field("j", "policy_context_id") + _C + rb'"policy_agent_id"'
    + _K + _Q + _C + rb'"signal"' + _K + rb"(?:null|" + _Q + rb")" + _C + rb'"survived"' + _K
    + rb"(?P<j_survived>true|false|null))"
)  # fmt: skip
"""The coordination attempts' branches (each a named group: `lastgroup` names it)."""

# each branch is a named group around the whole branch, so `lastgroup` names the branch
_SUMMARY_RE = re.compile(
    rb'"kind"' + _K + rb'"(?:'
    + rb'(?P<context>context_started"' + _C + rb'"model"' + _K + _STR + _C
    + rb'"role"' + _K + rb'"\w+"' + _C + rb'"game"' + _K + _STR + rb")"
    + rb'|(?P<result>episode_result"' + _C + rb'"record"' + _K + rb"\{(?:"
    + rb'"kind"' + _K + rb'"protocol_step"' + _C + rb')?"episode_id"' + _K + _STR + _C
    + rb'"index"' + _K + rb"-?\d+" + _C + rb'"model"' + _K + _STR + _C + rb'"game"' + _K + _STR
    + rb")"
    + rb'|(?P<monitor>monitor_score"' + _C + rb'"monitor"' + _K + _Q + _C + rb'"model"' + _K
    + _Q + _C + rb'"scored_context_id"' + _K + _Q + _C + rb'"score"' + _K + rb"(null)?)"
    + rb'|(?P<decision>protocol_decision"' + _C + rb'"protocol"' + _K + _Q + _C
    + rb'"decision"' + _K + _STR + rb")"
    + rb'|(?P<audit>audit"' + _C + rb'"audited_context_id"' + _K + _Q + _C + rb'"outcome"'
    + _K + _STR + rb")"
    + _ATTEMPT_BRANCHES
    + rb"|(?P<whole>(?:" + b"|".join(k.encode() for k in _PARSED_WHOLE) + rb')")'
    + rb")"
)  # fmt: skip

# the coordination tables alone: the attempts, and each result's episode (its event's own)
_TALLY_RE = re.compile(
    rb'"kind"' + _K + rb'"(?:(?P<result>episode_result")'
    + _ATTEMPT_BRANCHES
    + rb"|(?P<whole>(?:" + b"|".join(k.encode() for k in attempts.COUNTED_KINDS) + rb')")'
    + rb")"
)  # fmt: skip


def _groups(prefix: str, *fields: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{f}" for f in fields)


_PICK = _groups("p", "model", "game", "observation", "pair", "choice")
_RECOGNITION = _groups(
    "r", "model", "game", "countermeasure", "policy_context_id", "outcome", "backdoor"
)
_HONEYPOT = _groups("h", "model", "game", "countermeasure", "honeypot_id", "outcome")
_JAM = _groups("j", "model", "game", "method", "policy_context_id", "survived")
_JSON_WORDS = {b"true": True, b"false": False, b"null": None}
_PARSE_FAILED = re.compile(rb'"parse_ok"' + _K + rb"false")
_EPISODE = re.compile(rb'"episode_id"' + _K + rb"(null|" + _Q + rb")")
_HEAD = re.compile(
    rb'"episode_id"' + _K + rb"(null|" + _Q + rb")" + _C + rb'"agent_id"' + _K + rb"(?:null|"
    + _Q + rb")" + _C + rb'"context_id"' + _K + rb"(null|" + _Q + rb")" + _C
)  # fmt: skip


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


def _pick(m: re.Match[bytes], context: bytes, short: _Names) -> attempts.Entry:
    model, game, observation, pair, choice = m.group(*_PICK)
    return attempts.pick(
        context, short[model], short[game], short[observation], int(pair), _text_or_none(choice)
    )


def _recognition(m: re.Match[bytes], context: bytes, short: _Names) -> attempts.Entry:
    model, game, cm, policy, outcome, backdoor = m.group(*_RECOGNITION)
    return attempts.recognition(
        context,
        short[model],
        short[game],
        short[cm],
        policy,
        short[outcome],
        _JSON_WORDS[backdoor],
    )


def _honeypot(m: re.Match[bytes], context: bytes, short: _Names) -> attempts.Entry:
    model, game, cm, honeypot_id, outcome = m.group(*_HONEYPOT)
    return attempts.honeypot(
        context, short[model], short[game], short[cm], honeypot_id, short[outcome]
    )


def _jam(m: re.Match[bytes], context: bytes, short: _Names) -> attempts.Entry:
    model, game, method, policy, survived = m.group(*_JAM)
    return attempts.jam(
        context, short[model], short[game], short[method], policy, _JSON_WORDS[survived]
    )


_ATTEMPTS = {"pick": _pick, "recognition": _recognition, "honeypot": _honeypot, "jam": _jam}


def _head(buf: bytes, start: int, at: int) -> re.Match[bytes] | None:
    """The line's head (`_HEAD`: its episode and context ids), between its start and its kind at
    `at`; None when not in the writer's layout."""
    id_at = buf.find(b'"episode_id"', start, at)
    return None if id_at < 0 else _HEAD.match(buf, id_at, at)


def _add_whole(tally: attempts.Tally, line: bytes) -> None:
    """A line parsed whole, to `tally`."""
    try:
        event = json.loads(line)
    except ValueError:
        return
    if isinstance(event, dict):
        tally.add(event)


def _attempt(
    tally: attempts.Tally,
    short: _Names,
    buf: bytes,
    start: int,
    m: re.Match[bytes],
    branch: str,
    stop: int,
) -> None:
    """The attempt `m` of the line starting at `start`, read in place (parsed whole when its
    head is in another layout), to `tally`."""
    head = _head(buf, start, m.start())
    if head is None:
        _add_whole(tally, buf[start : buf.find(b"\n", m.end(), stop)])
        return
    episode = _text_or_none(head.group(1))
    if episode is not None:  # ids as read: keys within one episode's attempts
        tally.add_entry(episode, _ATTEMPTS[branch](m, head.group(2), short))


def _tally_block(tally: attempts.Tally, short: _Names, buf: bytes, stop: int) -> None:
    """The coordination attempts and results of buf[:stop] (whole lines), in order."""
    raw: bytes | None = None  # the last episode id read, as read, and decoded: lines of one
    episode: str | None = None  # episode come together
    for m in _TALLY_RE.finditer(buf, 0, stop):
        branch = m.lastgroup
        at = m.start()
        start = buf.rfind(b"\n", 0, at) + 1
        head = _head(buf, start, at) if branch != "whole" else None
        if head is None:  # its fields, or its head, in another layout
            _add_whole(tally, buf[start : buf.find(b"\n", m.end(), stop)])
            continue
        if head.group(1) != raw:
            raw = head.group(1)
            episode = _text_or_none(raw)
        if episode is None:
            continue
        if branch == "result":
            tally.commit(episode)
        else:  # ids as read: keys within one episode's attempts
            tally.add_entry(episode, _ATTEMPTS[branch](m, head.group(2), short))  # type: ignore[index]


def coordination_tables(path: Path, size: int = BLOCK) -> dict[str, list[dict[str, Any]]]:
    """The default view's tables of an events file: `agreement` and `collusion`
    (`sandbox.attempts`, which they equal), reading only the coordination attempts and the
    episode results. Read in Python: grep's prefilter (`needle_blocks`) saves a tenth of the
    time with a core to spare and costs more without one; the time is the attempts' own (a
    few microseconds of Python each)."""
    tally = attempts.Tally()
    short = _Names()
    for buf, stop in file_blocks(path, size):
        _tally_block(tally, short, buf, stop)
    return tally.rows()


@dataclass
class _Open:
    """What an episode whose result has not been read yet adds to its policy model's row."""

    monitor_scores: int = 0
    monitor_missing: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    audits_caught: int = 0
    audits_clean: int = 0

    def add_to(self, row: Row) -> None:
        row.monitor_scores += self.monitor_scores
        row.monitor_missing += self.monitor_missing
        for decision, n in self.decisions.items():
            row.decisions[decision] = row.decisions.get(decision, 0) + n
        row.audits_caught += self.audits_caught
        row.audits_clean += self.audits_clean


class _Summary:
    """The default view's state: the rows (by raw model and game where read by the regex), the
    monitor scores, decisions and audits of each episode whose result has not been read yet, and
    the coordination tally."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.contexts: Counter[tuple[bytes, bytes]] = Counter()
        self.open: dict[str | None, _Open] = {}
        self.tally = attempts.Tally()
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
        """The lines of buf[:stop] (whole lines) that count, in order."""
        names = self.names
        short = self.short
        for m in _SUMMARY_RE.finditer(buf, 0, stop):
            branch = m.lastgroup
            if branch == "context":
                self.contexts[(m.group(2), m.group(3))] += 1
                continue
            if branch == "result":
                episode, model, game = m.group(5, 6, 7)
                key = names.get((model, game))
                if key is None:
                    key = names[(model, game)] = (_text(model), _text(game))
                self.result(_text(episode), *key)
                continue
            start = buf.rfind(b"\n", 0, m.start()) + 1
            if branch in _ATTEMPTS:
                _attempt(self.tally, short, buf, start, m, branch, stop)
                continue
            if branch == "whole":
                try:
                    event = json.loads(buf[start : buf.find(b"\n", m.end(), stop)])
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.event(event)
                continue
            head = _EPISODE.search(buf, start, m.start())
            episode = None if head is None else _text_or_none(head.group(1))
            pending = self.of_episode(episode)
            if branch == "monitor":
                pending.monitor_scores += 1
                pending.monitor_missing += m.group(9) is not None
            elif branch == "decision":
                decision = _text(m.group(11))
                pending.decisions[decision] = pending.decisions.get(decision, 0) + 1
            elif m.group(13) == b"caught":
                pending.audits_caught += 1
            else:
                pending.audits_clean += 1
        for m in _PARSE_FAILED.finditer(buf, 0, stop):
            start = buf.rfind(b"\n", 0, m.start()) + 1
            line = buf[start : buf.find(b"\n", m.end(), stop)]
            if b'"action"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("kind") == "action":
                self.event(event)

    def policy_models(self, blocks: Iterable[tuple[bytes, int]]) -> None:
        """Count what the episodes still open hold under their first policy context's model and
        game (read from `blocks`, the same lines again), or under ("?", "?")."""
        keys: dict[str | None, tuple[str, str]] = {}
        needles = [_needle(e) for e in self.open if e is not None]
        for line in lines_with(blocks, needles) if needles else ():
            try:
                event = json.loads(line)
            except ValueError:
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

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        for (model, game), n in self.contexts.items():
            self.row((_text(model), _text(game))).contexts += n
        self.contexts.clear()
        tables = self.tally.rows()
        return {
            "agreement": tables["agreement"],
            "collusion": tables["collusion"],
            "summary": [self.rows[k].as_dict() for k in sorted(self.rows)],
        }


def _tables(blocks: Callable[[], Iterable[tuple[bytes, int]]]) -> dict[str, list[dict[str, Any]]]:
    state = _Summary()
    for buf, stop in blocks():
        state.block(buf, stop)
    if state.open:
        state.policy_models(blocks())
    return state.tables()


def summary_tables(path: Path, size: int = BLOCK) -> dict[str, list[dict[str, Any]]]:
    """The default view's tables of an events file: `agreement` and `collusion`
    (`sandbox.attempts`), and `summary`: per (model, game), episodes, contexts and parse
    failures (under each context's own model, so a trusted model's contexts have their row), and
    the monitor scores, protocol decisions and audits of each episode under its policy model: its
    result's record's model and game, or, for an episode with no result yet, its first policy
    context's (read in a second pass, over the lines of those episodes only)."""
    return _tables(lambda: file_blocks(path, size))


def summarize(lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """`summary_tables`' `summary`, of complete lines."""
    return _tables(lambda: ((line, len(line)) for line in lines))["summary"]
