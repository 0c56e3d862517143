"""An events file's lines, read and filtered: the part of `sandbox logs` that needs no event
models (no pydantic), so a filter starts in a few hundredths of a second (`sandbox.review.logs`, the
tables, imports the models; the CLI imports it only for them).

A file is read in large blocks of whole lines (never whole; `file_blocks`), a torn last line (a
run still being written) is skipped, and a filter's lines come from GNU grep where it is on PATH
(`select_file`), else from a search of each block; a line is parsed only then. A filter's human
lines (`describe_file`) are read in place where a line is in the writer's layout and of a kind
read so (`_fast_line`: a context, an action, an XC episode's result), else parsed whole.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS = "events.jsonl"
"""A run's events file (`sandbox.record.runstore.EVENTS`; not imported from there: the run store
loads the config's whole stack; tests/test_logs.py checks that they agree)."""

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
    "item_answer",
    "signal_inserted",
    "jam",
    "signal_recognition",
    "honeypot_verdict",
    "episode_result",
    "run_stopped",
    "run_finished",
)
"""Every event kind, in the union's order (`sandbox.core.events.KINDS`; written out here, not
imported: the models load pydantic; tests/test_logs.py checks that they agree)."""


BLOCK = 8 * 2**20
"""Bytes read at a time."""


def file_blocks(
    path: Path, size: int = BLOCK, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int]]:
    """The file in blocks `(buf, stop)`: `buf[:stop]` is whole lines, and every complete line of
    the file is in exactly one block; a torn last line is in none. A line longer than `size` is
    read whole (the block grows). With `start` and `end` (line starts, or the file's end), the
    lines of those bytes only."""
    with path.open("rb") as fh:
        fh.seek(start)
        at = start
        while end is None or at < end:
            want = size if end is None else min(size, end - at)
            buf = fh.read(want)
            if not buf:
                return
            stop = buf.rfind(b"\n") + 1
            if stop == 0:
                if len(buf) < want or (end is not None and at + len(buf) >= end):
                    return  # a torn last line
                fh.seek(at)
                size *= 2
                continue
            at += stop
            if stop < len(buf):
                fh.seek(at)  # the next block starts at this line's end
            yield buf, stop


GREP: str | None = shutil.which("grep")
"""GNU grep, where it is on PATH: it prefilters a file's lines for a filter (`select_file`), in
another process; without it the file is read in Python (the same lines, the same output)."""


PIPE_READ = 2**16
"""Bytes asked of grep's pipe at a time (what a pipe holds)."""

PIPE_BLOCK = 2**20
"""The least a block of grep's output holds (but the last): what is handed on at a time."""


def grep_blocks(
    path: Path,
    needles: Sequence[bytes],
    size: int = BLOCK,
    then: Sequence[Sequence[bytes]] = (),
) -> Iterator[tuple[bytes, int]]:
    """`file_blocks` of only the lines of the file holding one of `needles` (none holding a
    newline), read from `grep -F` (bytes as bytes: `LC_ALL=C`, `-a`), and then, for each set of
    `then`, one of its needles too (a grep each, reading the one before: a filter's conditions
    after the first cost C's time, not Python's); a torn last line, which grep prints without
    its newline, is dropped."""
    assert GREP is not None
    env = {**os.environ, "LC_ALL": "C"}
    procs: list[subprocess.Popen[bytes]] = []
    source: Any = None
    for i, found in enumerate((needles, *then)):
        patterns = [a for n in found for a in (b"-e", n)]
        argv = [os.fsencode(GREP), b"-a", b"-F", *patterns]
        if i == 0:
            argv += [b"--", os.fsencode(path)]
        procs.append(
            subprocess.Popen(argv, stdin=source, stdout=subprocess.PIPE, env=env, bufsize=0)
        )
        if source is not None:
            source.close()  # the next grep's alone: it gets SIGPIPE when that one stops early
        source = procs[-1].stdout
    out = procs[-1].stdout
    assert out is not None
    # read in pipe-sized pieces (a read of `size` allocates `size` bytes, however few come: a
    # third of a filter's time at 8 MiB), gathered into blocks of a MiB or more (or `size`)
    fd, gather = out.fileno(), min(size, PIPE_BLOCK)
    parts: list[bytes] = []
    have = 0
    try:
        while True:
            chunk = os.read(fd, PIPE_READ)
            if chunk:
                parts.append(chunk)
                have += len(chunk)
                if have < gather:
                    continue
            if not parts:
                break
            buf = parts[0] if len(parts) == 1 else b"".join(parts)
            stop = buf.rfind(b"\n") + 1
            parts = [buf[stop:]] if stop < len(buf) else []
            have = len(buf) - stop
            if stop:
                yield buf, stop
            else:  # a line longer than a block: read on to its end, gathering twice as much
                gather = 2 * have
            if not chunk:
                break
    finally:
        out.close()
        for proc in reversed(procs):  # 1: no line matched; < 0: stopped early (a closed pipe)
            if proc.wait() > 1 and proc.returncode >= 0:
                raise OSError(f"grep exited {proc.returncode} on {path}")


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


def needle(value: str) -> bytes:
    """A string as the writer writes it, quoted, in UTF-8."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def field_needles(key: str, value: str) -> tuple[bytes, bytes]:
    """`"<key>": "<value>"` with the writer's separator and compact: one of them is in every line
    holding that field (at any depth: an episode result's record's model too)."""
    return raw_field_needles(key, needle(value))


def raw_field_needles(key: str, raw: bytes) -> tuple[bytes, bytes]:
    """`field_needles` of a value already in JSON (a number, `true`)."""
    return b'"%s": %s' % (key.encode(), raw), b'"%s":%s' % (key.encode(), raw)


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
    domain: str | None = None
    """An SB item's domain (`item_answer` events: `hazard`, `general`)."""
    difficulty: int | None = None
    """An SB item's difficulty (`item_answer` events: its level)."""
    correct: bool | None = None
    """Whether an SB item's answer is right (`item_answer` events)."""
    _needles: tuple[tuple[bytes, ...], ...] = field(init=False, repr=False, compare=False)
    _first: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    _grep: tuple[tuple[bytes, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        needles: list[tuple[bytes, ...]] = []
        first: tuple[bytes, ...] = ()
        if self.kinds:
            # `"kind": "audit"` (the writer's separators) or compact: `"audit"` alone is also a
            # decision's value; the first condition's value is searched for (one pass), each
            # condition's key and value checked after, and only then a line parsed
            needles.append(tuple(n for k in sorted(self.kinds) for n in kind_needles(k)))
            first = tuple(needle(k) for k in sorted(self.kinds))
        keys = ("agent_id", "model", "game", "episode_id")
        for key, value in zip(keys, (self.agent, self.model, self.game, self.episode), strict=True):
            if value is not None:
                needles.append(field_needles(key, value))
                first = first or (needle(value),)
        items = (
            ("domain", None if self.domain is None else needle(self.domain)),
            (
                "difficulty",
                None if self.difficulty is None else json.dumps(self.difficulty).encode(),
            ),
            ("correct", None if self.correct is None else json.dumps(self.correct).encode()),
        )
        for key, raw in items:
            if raw is not None:
                needles.append(raw_field_needles(key, raw))
        object.__setattr__(self, "_needles", tuple(needles))
        object.__setattr__(self, "_first", first)
        # grep searches for each condition's key and value, in both layouts, less the key's
        # opening quote: as selective, and GNU grep's several fixed strings that start with a
        # quote are searched for at a third of the speed
        object.__setattr__(self, "_grep", tuple(tuple(n[1:] for n in c) for c in needles))

    def active(self) -> bool:
        return bool(self._needles)

    def first_needles(self) -> tuple[bytes, ...]:
        """The values of one condition, one of which every matching line holds."""
        return self._first

    def grep_needles(self) -> tuple[tuple[bytes, ...], ...]:
        """For each condition, substrings of its key and value, one of which every matching
        line holds (`grep_blocks` searches for them, a grep per condition)."""
        return self._grep

    def may_match(self, line: bytes) -> bool:
        """False when the line cannot match (some condition's key and value are absent from it)."""
        for alternatives in self._needles:  # loops, not all(any(...)): run once per line
            for needle in alternatives:
                if needle in line:
                    break
            else:
                return False
        return True

    def holds(self, kind: Any, episode: Any, agent: Any, model: Any, game: Any) -> bool:
        """Whether an event of this kind, ids, model (`event_model`) and game (`event_game`)
        meets the conditions on them (all but an SB item's)."""
        return (
            (not self.kinds or kind in self.kinds)
            and (self.agent is None or agent == self.agent)
            and (self.model is None or model == self.model)
            and (self.game is None or game == self.game)
            and (self.episode is None or episode == self.episode)
        )

    def on_items(self) -> bool:
        """Whether a condition is on an SB item's fields (`--domain`, `--difficulty`,
        `--correct`)."""
        return self.domain is not None or self.difficulty is not None or self.correct is not None

    def matches(self, event: dict[str, Any]) -> bool:
        get = event.get
        return (
            self.holds(
                get("kind"),
                get("episode_id"),
                get("agent_id"),
                event_model(event),
                event_game(event),
            )
            and (self.domain is None or event.get("domain") == self.domain)
            and (
                self.difficulty is None
                or (
                    type(event.get("difficulty")) is int
                    and event.get("difficulty") == self.difficulty
                )
            )
            and (self.correct is None or event.get("correct") is self.correct)
        )


def kind_error(kinds: Iterable[str]) -> str | None:
    """What is wrong with the kinds asked for (`--kind`), or None: the first one no event has,
    with the closest kind ("unknown kind 'actoin'; did you mean 'action'?") or, with none close,
    every kind."""
    for kind in kinds:
        if kind not in KINDS:
            from sandbox.core.registry import did_you_mean  # loads pydantic: only on an error

            return f"unknown kind {kind!r}; {did_you_mean(kind, KINDS)}"
    return None


EPISODE_ID_FORMAT = "<model>/<game>/<index>"
"""How an episode id reads (`sandbox.core.episode.EpisodeSpec.episode_id`: the index zero-padded to
five digits, e.g. `honest/upfront_auditing/00003`)."""

SUGGESTED = 5
"""The most episode ids an error message lists."""


def _same_part(given: str, part: str) -> bool:
    return given == part or (given.isdigit() and part.isdigit() and int(given) == int(part))


def episode_suggestions(text: str, ids: Iterable[str]) -> list[str]:
    """The episodes `text` may mean, sorted: those whose id ends with its `/`-separated parts,
    an index compared as a number (`3`, `00003` and `upfront_auditing/3` all name index 3),
    else the closest ids by spelling (a typo)."""
    parts = text.strip("/").split("/")
    known = sorted(set(ids))
    ends = [
        i
        for i in known
        if len(i.split("/")) >= len(parts)
        and all(map(_same_part, parts, i.split("/")[-len(parts) :]))
    ]
    return ends or difflib.get_close_matches(text, known, n=3)


def unknown_episode(text: str, ids: Iterable[str], where: Path) -> str:
    """The error for an episode `where` does not hold (`ids`: those it does): the id format,
    an example from the run itself, and the episodes `text` may mean (`episode_suggestions`)."""
    known = sorted(set(ids))
    example = known[0] if known else "honest/upfront_auditing/00003"
    message = (
        f"no episode {text!r} in {where}; episode ids look like {EPISODE_ID_FORMAT}, e.g. {example}"
    )
    if not known:
        return f"{message} (this run has no finished episode yet)"
    found = episode_suggestions(text, known)
    if found:
        more = f" (and {len(found) - SUGGESTED} more)" if len(found) > SUGGESTED else ""
        message += f"; did you mean {', '.join(found[:SUGGESTED])}{more}?"
    return message


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
    """`select` over a file's complete lines (newlines dropped), looking only at the lines that
    hold the first condition's value (an active filter): `_candidates`."""
    return select((line for lines in _candidates(path, flt, size) for line in lines), flt)


def _candidates(path: Path, flt: Filter, size: int = BLOCK) -> Iterator[list[bytes]]:
    """The lines to look at, a block's at a time, newlines dropped: those grep printed (it
    searched for the first condition's key and value, then each other's: every line it prints is
    one to look at), else those a search of each block finds (`lines_with`)."""
    if GREP is not None:
        first, *then = flt.grep_needles()
        for buf, stop in grep_blocks(path, first, size, then):
            yield buf[: stop - 1].split(b"\n")
        return
    needles = flt.first_needles()
    for block in file_blocks(path, size):
        yield [line[:-1] for line in lines_with((block,), needles)]


def describe_file(path: Path, flt: Filter, size: int = BLOCK) -> Iterator[list[str]]:
    """`describe` of each event `select_file` selects, in order, a block's at a time: a line in
    the writer's layout of a kind read in place (`_fast_line`) is described from the fields a
    regex reads, any other parsed whole."""
    fast = not flt.on_items()  # the fields read in place are no SB item's: those are parsed
    may_match, matches, holds = flt.may_match, flt.matches, flt.holds
    for lines in _candidates(path, flt, size):
        shown: list[str] = []
        for line in lines:
            read = _fast_line(line) if fast else None
            if read is not None:
                kind, episode, agent, model, game, details = read
                if holds(kind, episode, agent, model, game):
                    shown.append(_described(kind, episode, agent, model, details))
                continue
            if not may_match(line):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and matches(event):
                shown.append(describe(event))
        if shown:
            yield shown


# A filter's human lines read the commonest kinds in place: a line in the writer's layout
# (`EventWriter`: its models' fields in order, `", "` and `": "` between them) is matched from its
# head to the last field `describe` reads, and those fields, decoded as `json.loads` decodes them,
# are described by the functions `describe` calls (`_context_details`, `_action_details`,
# `_choices_details`) and filtered by `Filter.holds`, which `Filter.matches` calls. A line that
# does not fit (another layout, a field added or moved, a value of another type) is parsed whole,
# so a change to the models can slow this path, never change what it prints. As the tables' fast
# path (`sandbox.review.logs`), it trusts a line that fits up to those fields to be whole JSON
# with each key once; tests/test_logs.py holds it to `describe` of the parsed line, line by line.
_QS = rb'[^"\\\x00-\x1f]*+(?:\\.[^"\\\x00-\x1f]*+)*+'  # a JSON string's content
_NUMBER = rb"-?(?:0|[1-9]\d*+)(?:\.\d++)?+(?:[eE][-+]?\d++)?+|NaN|-?Infinity"
_FLAT = rb'(?:"%s"|[^"{}\[\]]++|\[(?:"%s"|[^"{}\[\]]++)*+\])*+' % (_QS, _QS)
"""An object's inside holding nothing deeper than a list of scalars."""
_SAMPLE = rb'\{"observation": "%s", "context_id": "%s", "agent_id": "%s", "choice": (null|"%s")' % (
    (_QS,) * 4
)
"""An episode record's sample up to its choice (the group)."""
_SAMPLE_CHOICE = re.compile(_SAMPLE)
_FAST = re.compile(
    rb'\{"ts": "%(s)s", "run_id": "%(s)s", "episode_id": (null|"%(s)s"), '
    rb'"agent_id": (null|"%(s)s"), "context_id": (?:null|"%(s)s"), "kind": "(?:'
    rb'(?P<context_started>context_started", "model": ("%(s)s"), "role": (null|"%(s)s"), '
    rb'"game": ("%(s)s"), "observation": ("%(s)s"), "answer": (?:null|\{%(flat)s\}), '
    rb'"affordances": \{%(flat)s\}, "prompt_sha256": ("%(s)s"))'
    rb'|(?P<action>action", "model": ("%(s)s"), "game": ("%(s)s"), "observation": "%(s)s", '
    rb'"choice": (null|"%(s)s"), "score": (null|%(n)s), "parse_ok": (true|false), '
    rb'"attempts": (-?(?:0|[1-9]\d*+)), "visible": ("%(s)s"))'
    rb'|(?P<episode_result>episode_result", "record": \{"episode_id": "%(s)s", '
    rb'"index": -?\d++, "model": ("%(s)s"), "game": ("%(s)s"), '
    rb'"samples": \[((?:%(sample)s(?:, %(sample)s)*+)?+)\])'
    rb")"
    % {
        b"s": _QS,
        b"n": _NUMBER,
        b"flat": _FLAT,
        # a whole sample, its choice not captured: its other fields are scalars
        b"sample": _SAMPLE.replace(b"(null", b"(?:null")
        + rb'(?:, "[a-z_]++": (?:"%s"|true|false|null|%s))*+\}' % (_QS, _NUMBER),
    }
)
"""The kinds read in place, each a named group (`lastgroup`) followed by its fields' groups."""
_FIELDS = {
    "context_started": ("model", "role", "game", "observation", "prompt_sha256"),
    "action": ("model", "game", "choice", "score", "parse_ok", "attempts", "visible"),
    "episode_result": ("model", "game", "samples"),
}
"""The fields each kind's group is followed by, in order (an episode result's: its record's, and
its samples, raw)."""
_GROUPS = {
    kind: (1, 2, *range(_FAST.groupindex[kind] + 1, _FAST.groupindex[kind] + 1 + len(fields)))
    for kind, fields in _FIELDS.items()
}
"""Each kind's groups: the episode and agent ids (the head's), then its fields'."""
_DECODER = json.JSONDecoder()


def _fast_line(line: bytes) -> tuple[str, Any, Any, Any, Any, str] | None:
    """The kind, episode and agent ids, model (`event_model`), game (`event_game`) and details
    (`_details`) of `line`, where it is in the writer's layout and of a kind read in place; else
    None (parse it whole). The values are decoded as `json.loads` decodes them, all at once (a
    list of the values as written)."""
    m = _FAST.match(line)
    if m is None:
        return None
    kind = m.lastgroup
    assert kind is not None
    raw = m.group(*_GROUPS[kind])
    if kind == "episode_result":  # its samples' choices, as a list
        raw = (*raw[:-1], b"[" + b",".join(_SAMPLE_CHOICE.findall(raw[-1])) + b"]")
    try:  # `raw_decode` of text: `json.loads` of bytes costs a microsecond more
        episode, agent, *values = _DECODER.raw_decode((b"[" + b",".join(raw) + b"]").decode())[0]
    except ValueError:  # a string that does not decode: json.loads would fail on the line
        return None
    if kind == "action":
        model, game, choice, score, parse_ok, attempts, visible = values
        details = _action_details(choice, score, parse_ok, attempts, visible)
    elif kind == "context_started":
        model, role, game, observation, sha = values
        details = _context_details(role, game, observation, sha, {})
    else:  # an episode result: its model and game are its record's (no field of its own)
        model, game, choices = values
        return kind, episode, agent, model, game, _choices_details(game, choices)
    return kind, episode, agent, model or None, game or None, details


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
        return _context_details(
            event.get("role"),
            event.get("game"),
            event.get("observation"),
            event.get("prompt_sha256"),
            prompts,
        )
    if kind == "action":
        return _action_details(
            event.get("choice"),
            event.get("score"),
            event.get("parse_ok"),
            event.get("attempts"),
            event.get("visible"),
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
        return _choices_details(record.get("game"), choices)
    if kind == "coordination_pick":
        return (
            f"game={event.get('game')} index={event.get('index')} pair={event.get('pair')} "
            f"obs={event.get('observation')} choice={event.get('choice')}"
        )
    if kind == "item_answer":
        return (
            f"game={event.get('game')} {event.get('condition')} item={event.get('item')} "
            f"domain={event.get('domain')} difficulty={event.get('difficulty')} "
            f"answer={event.get('answer')} correct={event.get('correct')}"
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


def _context_details(
    role: Any, game: Any, observation: Any, sha: Any, prompts: dict[str, str]
) -> str:
    sha = str(sha)
    text = f" prompt={shorten(prompts[sha])!r}" if sha in prompts else f" prompt={sha[:12]}"
    return f"role={role} game={game} obs={observation}{text}"


def _action_details(choice: Any, score: Any, parse_ok: Any, attempts: Any, visible: Any) -> str:
    parsed = f"choice={choice}" if score is None else f"score={_num(score)}"
    return f"{parsed} parse_ok={parse_ok} attempts={attempts} visible={shorten(visible, 60)!r}"


def _choices_details(game: Any, choices: list[Any]) -> str:
    return f"game={game} choices={choices}"


def _described(kind: Any, episode: Any, agent: Any, model: Any, details: str) -> str:
    return f"{kind:<17} {episode or '-'} {agent or '-'} {model or '-'}  {details}"


def describe(event: dict[str, Any], prompts: dict[str, str] | None = None) -> str:
    """One compact human line for an event."""
    return _described(
        event.get("kind", "?"),
        event.get("episode_id"),
        event.get("agent_id"),
        event_model(event),
        _details(event, prompts or {}),
    )


def prompt_texts(lines: Iterable[bytes], shas: set[str]) -> dict[str, str]:
    """The last message of each named prompt (for a timeline)."""
    needles = [needle(s) for s in shas]
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
