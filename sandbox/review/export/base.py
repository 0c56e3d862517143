"""What every export format reads: a finished run, loaded once; and the registry of formats."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.config import Config, ConfigError
from sandbox.core.events import Event, Record, read_events
from sandbox.core.registry import Registry
from sandbox.core.results import Summary, SummaryError
from sandbox.record.runstore import EVENTS, SUMMARY, RunDirError, RunStore


class ExportError(Exception):
    """The run cannot be exported (not a finished run, unknown format, writer missing)."""


FORMATS: Registry[list[Path]] = Registry("export format")
"""Format name -> writer `(params, *, run, out_dir) -> the files written`. Entries live in the
modules beside this one; the package's `__init__` imports them."""


@dataclass(frozen=True)
class FinishedRun:
    """A run directory whose run got to its end: its config, summary and episode records."""

    path: Path
    config: Config
    summary: Summary
    records: list[Record]

    @classmethod
    def open(cls, path: Path) -> FinishedRun:
        try:
            store, config = RunStore.open(path)
        except (RunDirError, ConfigError) as exc:
            raise ExportError(str(exc)) from None
        if not store.finished():
            raise ExportError(
                f"{path} is not a finished run (no {SUMMARY}, or no run_finished event): finish "
                f"it first with `sandbox run --resume {path}`"
            )
        try:
            summary = store.summary()
        except SummaryError as exc:
            raise ExportError(str(exc)) from None
        return cls(path, config, summary, store.records())

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    def events(self) -> Iterator[Event]:
        return read_events(self.path / EVENTS)
