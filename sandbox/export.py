"""Export a finished run to another tool's log format.

Placeholder seam: `sandbox export` calls `export_run`; the Inspect AI writer lands with issue 12.
"""

from __future__ import annotations

from pathlib import Path


class ExportError(Exception):
    """The run cannot be exported (not a finished run, unknown format, writer missing)."""


def export_run(run_dir: Path, fmt: str, out_dir: Path | None = None) -> list[Path]:
    """Write `run_dir` in format `fmt` under `out_dir`; return the files written."""
    raise ExportError(f"format {fmt!r} is not implemented yet")
