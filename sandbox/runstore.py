"""A run's directory: `config.yaml`, `events.jsonl`, `results.jsonl`, `summary.json`.

Only the driver writes here. Lines are appended whole and flushed, so a crash can at worst leave
one torn last line; `open_for_resume` drops that line and any events of episodes that never
reached `results.jsonl`, so a resumed run neither duplicates nor loses a finished episode.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import yaml

from sandbox.config import Config, ConfigError, config_from_mapping, read_yaml
from sandbox.events import (
    EVENT_ADAPTER,
    RECORD_ADAPTER,
    Event,
    Record,
    RunFinished,
    RunStarted,
    dump_json,
    read_events,
)

CONFIG, EVENTS, RESULTS, SUMMARY = "config.yaml", "events.jsonl", "results.jsonl", "summary.json"


class RunDirError(ValueError):
    """A path given as a run directory is not one that can be reopened: it does not exist,
    holds no run, or its config was edited since the run started."""


def new_run_id(config: Config) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{config.run.name}-{stamp}-{config.digest()[:8]}"


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = path.name
        self._events: IO[str] | None = None
        self._results: IO[str] | None = None

    # --- creation and reopening -----------------------------------------------------------
    @classmethod
    def create(cls, config: Config) -> RunStore:
        """A fresh run directory holding the resolved config (never an API key: only its name)."""
        base = config.run.output_dir
        run_id = new_run_id(config)
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
        context events of a shared plan whose `plan_written` event never made it to disk."""
        records = self.records()
        _rewrite_lines(self.path / RESULTS, [dump_json(r.model_dump(mode="json")) for r in records])
        done = {r.episode_id for r in records}
        events_path = self.path / EVENTS
        if not events_path.exists():
            return
        events: list[tuple[str, Event]] = []
        with events_path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                events.append((line.rstrip("\n"), EVENT_ADAPTER.validate_json(line)))
        # A shared plan's context counts as done only once its plan_written event is recorded.
        planned = {e.context_id for _, e in events if e.kind == "plan_written"}
        kept: list[str] = []
        for line, event in events:
            if event.kind == "run_finished":
                continue
            if event.episode_id is not None and event.episode_id not in done:
                continue
            if (
                event.kind in ("context_started", "action")
                and event.episode_id is None
                and event.context_id not in planned
            ):
                continue
            kept.append(line)
        _rewrite_lines(events_path, kept)

    # --- reading ---------------------------------------------------------------------------
    def records(self) -> list[Record]:
        """Complete result lines, first occurrence of each episode."""
        path = self.path / RESULTS
        seen: dict[str, Record] = {}
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        break
                    record = RECORD_ADAPTER.validate_json(line)
                    seen.setdefault(record.episode_id, record)
        return list(seen.values())

    # --- writing ---------------------------------------------------------------------------
    def open_streams(self) -> tuple[IO[str], IO[str]]:
        self._events = (self.path / EVENTS).open("a", encoding="utf-8")
        self._results = (self.path / RESULTS).open("a", encoding="utf-8")
        return self._events, self._results

    def append_result(self, record: Record) -> None:
        assert self._results is not None, "open_streams first"
        self._results.write(dump_json(record.model_dump(mode="json")) + "\n")
        self._results.flush()

    def write_summary(self, summary: dict[str, object]) -> None:
        tmp = self.path / f".{SUMMARY}.tmp"
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / SUMMARY)

    def close(self) -> None:
        for stream in (self._events, self._results):
            if stream is not None:
                stream.close()
        self._events = self._results = None


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
