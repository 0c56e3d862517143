"""Export a finished run to another tool's log format: `sandbox export RUN_DIR --format F`.

Formats are entries of `FORMATS` (`inspect`: Inspect AI `.eval` logs, `inspect_logs`). Importing
this package registers every format.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.core.registry import RegistryError
from sandbox.review.export import inspect_logs
from sandbox.review.export.base import FORMATS, ExportError, FinishedRun, Progress

__all__ = ["FORMATS", "ExportError", "FinishedRun", "Progress", "export_run", "inspect_logs"]


def export_run(
    run_dir: Path, fmt: str, out_dir: Path | None = None, progress: Progress | None = None
) -> list[Path]:
    """Write the finished run `run_dir` in format `fmt` under `out_dir` (default:
    `run_dir/<fmt>/`); return the files written. `progress(done, total)` hears of each episode
    written."""
    try:
        FORMATS.entry(fmt)
    except RegistryError as exc:
        raise ExportError(str(exc)) from None
    run = FinishedRun.open(run_dir)
    return FORMATS.build(fmt, run=run, out_dir=out_dir or run_dir / fmt, progress=progress)
