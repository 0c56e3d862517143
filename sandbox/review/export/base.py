"""What every export format reads: a finished run, opened once; and the registry of formats.

A run's files are read as streams, never whole: `FinishedRun.record_heads` yields where each
episode's line of `results.jsonl` is, in order, and `lines` any JSON-lines file of the run with
each line's offset, so a format can index a large log in one pass and read back only the lines it
needs (`LineReader`) instead of holding every record and event of a 9,500-episode run in memory
(the Inspect export held 450 MiB of them for the quickstart)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from pydantic import BaseModel

from sandbox.config import Config, ConfigError
from sandbox.core.events import RECORD_ADAPTER, Event, Record, complete_lines, read_events
from sandbox.core.registry import Registry
from sandbox.core.results import Summary, SummaryError
from sandbox.record.runstore import EVENTS, RESULTS, SUMMARY, RunDirError, RunStore


class ExportError(Exception):
    """The run cannot be exported (not a finished run, unknown format, writer missing)."""


Progress = Callable[[int, int], None]
"""`(done, total)`: episodes written out of the run's, called as an export goes."""

FORMATS: Registry[list[Path]] = Registry("export format")
"""Format name -> writer `(params, *, run, out_dir, progress) -> the files written`. Entries live
in the modules beside this one; the package's `__init__` imports them."""


class RecordHead(BaseModel):
    """What grouping needs of a `results.jsonl` line, parsed without validating the rest."""

    episode_id: str
    model: str
    game: str


@dataclass(frozen=True)
class FinishedRun:
    """A run directory whose run got to its end: its config and summary; its records and events
    read from its files when asked for."""

    path: Path
    config: Config
    summary: Summary

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
        return cls(path, config, summary)

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    def events(self) -> Iterator[Event]:
        return read_events(self.path / EVENTS)

    def record_heads(self) -> Iterator[tuple[RecordHead, int]]:
        """Each episode's results line, first occurrence only (as `RunStore.records`): its
        model, game and episode, and the line's offset in `results.jsonl` (read it back whole
        with `LineReader.record`)."""
        seen: set[str] = set()
        for offset, line in lines(self.path / RESULTS):
            head = RecordHead.model_validate_json(line)
            if head.episode_id not in seen:
                seen.add(head.episode_id)
                yield head, offset


def lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """`complete_lines` with each line's byte offset in the file (a torn last line is left
    out, as every reader of a run's files leaves it)."""
    offset = 0
    for line in complete_lines(path):
        yield offset, line
        offset += len(line)


class LineReader:
    """Lines of a JSON-lines file read back by their offset (`lines`): one open file, a seek and
    a line per read."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("rb")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._file.close()

    def line(self, offset: int) -> bytes:
        self._file.seek(offset)
        return self._file.readline()

    def record(self, offset: int) -> Record:
        """The results line at `offset`, validated."""
        return RECORD_ADAPTER.validate_json(self.line(offset))
