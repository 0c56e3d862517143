"""A run's directory: `config.yaml`, `events.jsonl`, `results.jsonl`, `summary.json`, and while
the run is unfinished `answers.jsonl` (`sandbox.record.cache`: every answer as it arrived).

Only the driver writes here. Lines are appended whole and flushed, so a crash can at worst leave
one torn last line; `open_for_resume` drops that line and any events of episodes that never
reached `results.jsonl`, so a resumed run neither duplicates nor loses a finished episode. It
also un-commits the episodes that hold an error outcome (a call that failed after its retries),
so each resume asks those contexts once more; the answers of every episode it drops stay in
`answers.jsonl`, so the resume asks no answered context again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import yaml

from sandbox.config import Config, ConfigError, config_from_mapping, read_yaml
from sandbox.core.context import CACHED, UNASKED
from sandbox.core.events import (
    EVENT_ADAPTER,
    RECORD_ADAPTER,
    ActionTaken,
    ContextStarted,
    Event,
    Record,
    RunFinished,
    RunStarted,
    complete_lines,
    dump_json,
    read_events,
)
from sandbox.core.results import Summary
from sandbox.record.cache import ANSWERS, AnsweredContext, outcome_of

CONFIG, EVENTS, RESULTS, SUMMARY = "config.yaml", "events.jsonl", "results.jsonl", "summary.json"
FINISHED = ".finished"
"""Where a finished run's files wait while its error outcomes are asked again."""


class RunDirError(ValueError):
    """A path given as a run directory is not one that can be reopened: it does not exist,
    holds no run, or its config was edited since the run started."""


def new_run_id(config: Config) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{config.run.name}-{stamp}-{config.digest()[:8]}"


def replay_run_id(source_run_id: str, config: Config) -> str:
    """A replay's run id: its source run's id, `-replay-`, and the replay's config digest, so it
    reads as what it re-evaluates (not as a new run), and two replays of one run under different
    overrides get different ids (one replayed twice alike gets `-2`, as any taken id does)."""
    return f"{source_run_id}-replay-{config.digest()[:8]}"


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = path.name
        self._events: IO[str] | None = None
        self._results: IO[str] | None = None
        self._answers: IO[str] | None = None

    # --- creation and reopening -----------------------------------------------------------
    @classmethod
    def create(cls, config: Config, run_id: str | None = None) -> RunStore:
        """A fresh run directory holding the resolved config (never an API key: only its name),
        named `run_id` (`new_run_id` when None; a taken name gets a `-2`, `-3`, ... suffix)."""
        base = config.run.output_dir
        run_id = new_run_id(config) if run_id is None else run_id
        path = base / run_id
        suffix = 1
        while path.exists():
            suffix += 1
            path = base / f"{run_id}-{suffix}"
        path.mkdir(parents=True)
        store = cls(path)
        tmp = path / f".{CONFIG}.tmp"
        tmp.write_text(yaml.safe_dump(config.resolved(), sort_keys=False), encoding="utf-8")
        os.replace(tmp, path / CONFIG)
        return store

    @classmethod
    def open(cls, path: Path) -> tuple[RunStore, Config]:
        """Reopen an existing run directory and its config, changing nothing on disk."""
        if not path.exists():
            raise RunDirError(f"{path} does not exist")
        if not (path / CONFIG).is_file():
            raise RunDirError(f"{path} is not a run directory (no {CONFIG})")
        data = read_yaml((path / CONFIG).read_text(encoding="utf-8"), path / CONFIG)
        if not isinstance(data, dict):
            raise ConfigError("", f"{path / CONFIG} must hold a mapping")
        config = config_from_mapping(data)
        started = next(read_events(path / EVENTS), None) if (path / EVENTS).exists() else None
        if isinstance(started, RunStarted) and started.config_sha256 != config.digest():
            raise RunDirError(
                f"{path / CONFIG} no longer matches the config the run started with (SHA-256 "
                f"{started.config_sha256[:12]}...): the config was edited; start a new run instead"
            )
        return cls(path), config

    @classmethod
    def open_for_resume(cls, path: Path) -> tuple[RunStore, Config]:
        """Reopen a run to finish it: `open`, then `repair`."""
        store, config = cls.open(path)
        store.repair()
        return store, config

    def started(self) -> RunStarted | None:
        """The run's first `run_started` event, if it got that far."""
        events = self.path / EVENTS
        first = next(read_events(events), None) if events.is_file() else None
        return first if isinstance(first, RunStarted) else None

    def finished(self) -> bool:
        """The run wrote its summary and then its `run_finished` event: nothing is left to do."""
        events = self.path / EVENTS
        if not (self.path / SUMMARY).is_file() or not events.is_file():
            return False
        last = _last_line(events)
        return last is not None and isinstance(EVENT_ADAPTER.validate_json(last), RunFinished)

    def repair(self) -> None:
        """Drop a torn last line of results, events of episodes with no result line, and the
        context events of a shared plan whose `plan_written` event never made it to disk;
        un-commit the episodes holding an error outcome (their results and events dropped,
        the run no longer finished). The answered contexts of what is dropped are kept in
        `answers.jsonl` first."""
        records = self.records()
        events = self._read_events()
        redo = _error_episodes(events, {r.episode_id for r in records})
        records = [r for r in records if r.episode_id not in redo]
        done = {r.episode_id for r in records}
        # A shared plan's context counts as done only once its plan_written event is recorded.
        planned = {e.context_id for _, e in events if e.kind == "plan_written"}
        requests = {
            e.context_id: e.request_sha256
            for _, e in events
            if isinstance(e, ContextStarted) and e.request_sha256 is not None
        }
        kept: list[str] = []
        answers: list[str] = []
        for line, event in events:
            if event.kind == "run_finished":
                continue
            dropped = (event.episode_id is not None and event.episode_id not in done) or (
                event.kind in ("context_started", "action")
                and event.episode_id is None
                and event.context_id not in planned
            )
            if not dropped:
                kept.append(line)
            elif (
                isinstance(event, ActionTaken)
                and event.error is None
                and event.worker not in (CACHED, UNASKED)  # a replay's source answers it again
            ):
                request = requests.get(event.context_id)
                if request is not None:
                    outcome = outcome_of(event, event.worker)
                    answers.append(AnsweredContext(request_sha256=request, outcome=outcome).line())
        if answers:
            with (self.path / ANSWERS).open("a", encoding="utf-8") as fh:
                fh.write("".join(f"{line}\n" for line in answers))
                fh.flush()
                os.fsync(fh.fileno())
        if redo:
            (self.path / SUMMARY).unlink(missing_ok=True)
        _rewrite_lines(self.path / RESULTS, [dump_json(r.model_dump(mode="json")) for r in records])
        if (self.path / EVENTS).exists():
            _rewrite_lines(self.path / EVENTS, kept)

    def keep_finished(self) -> None:
        """Before a finished run is reopened (to ask its error outcomes again): its results,
        events and summary are kept aside as they are (hard links: no copy; `repair` replaces
        the files rather than writing into them), for `restore_finished` if the attempt fails."""
        kept = self.path / FINISHED
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir()
        for name in (RESULTS, EVENTS, SUMMARY):
            try:
                os.link(self.path / name, kept / name)
            except OSError:
                shutil.copy2(self.path / name, kept / name)

    def restore_finished(self) -> None:
        """The attempt failed: the run is the finished run it was (its answers from the
        attempt stay in `answers.jsonl` for the next)."""
        kept = self.path / FINISHED
        self.close()
        if all((kept / name).is_file() for name in (RESULTS, EVENTS, SUMMARY)):
            for name in (RESULTS, EVENTS, SUMMARY):
                os.replace(kept / name, self.path / name)
        # else: kept aside only in part (stopped while keeping), so the run was never reopened
        shutil.rmtree(kept, ignore_errors=True)

    def drop_finished(self) -> None:
        shutil.rmtree(self.path / FINISHED, ignore_errors=True)

    def error_episodes(self) -> set[str]:
        """Committed episodes holding an error outcome: what a resume asks again."""
        return _error_episodes(self._read_events(), {r.episode_id for r in self.records()})

    def _read_events(self) -> list[tuple[str, Event]]:
        """Every complete line of the event log with its parsed event."""
        return [
            (line[:-1].decode("utf-8"), EVENT_ADAPTER.validate_json(line))
            for line in complete_lines(self.path / EVENTS)
        ]

    # --- reading ---------------------------------------------------------------------------
    def records(self) -> list[Record]:
        """Complete result lines, first occurrence of each episode."""
        seen: dict[str, Record] = {}
        for line in complete_lines(self.path / RESULTS):
            record = RECORD_ADAPTER.validate_json(line)
            seen.setdefault(record.episode_id, record)
        return list(seen.values())

    def in_order(self, episode_ids: Sequence[str]) -> list[Record]:
        """The records of `episode_ids` (the run's commit order) in that order, `results.jsonl`
        rewritten so if it was not (episodes redone by a resume were appended last; a resumed
        adaptive run may hold episodes its sequence no longer reaches, whose lines are dropped;
        their events stay in the log): the same config and seed give the same bytes however
        the run got there."""
        records = self.records()
        rank = {episode_id: i for i, episode_id in enumerate(episode_ids)}
        ordered = sorted(
            (r for r in records if r.episode_id in rank), key=lambda r: rank[r.episode_id]
        )
        if ordered != records:
            _rewrite_lines(
                self.path / RESULTS, [dump_json(r.model_dump(mode="json")) for r in ordered]
            )
            if self._results is not None:
                self._results.close()
                self._results = (self.path / RESULTS).open("a", encoding="utf-8")
        return ordered

    # --- writing ---------------------------------------------------------------------------
    def open_streams(self) -> tuple[IO[str], IO[str]]:
        self._events = (self.path / EVENTS).open("a", encoding="utf-8")
        self._results = (self.path / RESULTS).open("a", encoding="utf-8")
        return self._events, self._results

    def keep_answers(self, answers: Sequence[AnsweredContext]) -> None:
        """Append answers to `answers.jsonl` as they arrive (flushed: a crash loses none that
        reached the file)."""
        if self._answers is None:
            self._answers = (self.path / ANSWERS).open("a", encoding="utf-8")
        self._answers.write("".join(f"{a.line()}\n" for a in answers))
        self._answers.flush()

    def discard_answers(self) -> None:
        """The run finished: every answer is in its event log, so `answers.jsonl` goes."""
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        (self.path / ANSWERS).unlink(missing_ok=True)

    def append_result(self, record: Record) -> None:
        assert self._results is not None, "open_streams first"
        self._results.write(dump_json(record.model_dump(mode="json")) + "\n")
        self._results.flush()

    def write_summary(self, summary: Summary) -> None:
        """`summary.json`, whole or not at all (a reader never opens half a summary)."""
        tmp = self.path / f".{SUMMARY}.tmp"
        tmp.write_text(summary.to_json(), encoding="utf-8")
        os.replace(tmp, self.path / SUMMARY)

    def summary(self) -> Summary:
        """The run's `summary.json` (`Summary.read`: any schema version it knows); SummaryError
        if it has none or it cannot be read."""
        return Summary.read(self.path / SUMMARY)

    def close(self) -> None:
        for stream in (self._events, self._results, self._answers):
            if stream is not None:
                stream.close()
        self._events = self._results = self._answers = None


def _error_episodes(events: Sequence[tuple[str, Event]], committed: set[str]) -> set[str]:
    """The committed episodes whose `action` events hold an error outcome."""
    return {
        e.episode_id
        for _, e in events
        if isinstance(e, ActionTaken)
        and e.error is not None
        and e.episode_id is not None
        and e.episode_id in committed
    }


def _last_line(path: Path, block: int = 1 << 16) -> str | None:
    """The last complete line of a file, read from its end (event logs grow large)."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - block))
        lines = fh.read().split(b"\n")
    # a complete last line leaves "" after the final newline; a longer one than `block` is
    # not an event this looks for
    if len(lines) < 2 or lines[-1]:
        return None
    return lines[-2].decode("utf-8", errors="replace")


def _rewrite_lines(path: Path, lines: list[str]) -> None:
    """Atomically replace `path` with exactly `lines` (each newline-terminated)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)
