"""The report a researcher reads and shares: `report.md` and a self-contained `report.html`
written into a finished run's directory, from its `summary.json` and `config.yaml` alone (no
Ray, no model call), so any finished run can be reported again.

`build_report` makes the report model (`model.py`: pure, tested without a browser);
`markdown.py` and `html.py` render it; `svg.py` draws its plots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.core.results import Summary, SummaryError
from sandbox.record.runstore import CONFIG, SUMMARY
from sandbox.review.report import html, markdown
from sandbox.review.report.build import build_report
from sandbox.review.report.model import Plot, Report, Table

__all__ = [
    "Plot",
    "Report",
    "ReportError",
    "ReportFiles",
    "Table",
    "build_report",
    "read_run",
    "write_report",
]

MARKDOWN, HTML = "report.md", "report.html"


class ReportError(Exception):
    """The directory is not a finished run that can be reported (the message says what to do)."""


@dataclass(frozen=True, slots=True)
class ReportFiles:
    markdown: Path
    html: Path


def read_run(run_dir: Path) -> tuple[Summary, dict[str, Any], str]:
    """A finished run's summary (of any schema version `Summary.read` knows), parsed config and
    config text; ReportError if it has none, or one that cannot be read."""
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} does not exist or is not a directory")
    summary_path, config_path = run_dir / SUMMARY, run_dir / CONFIG
    if not summary_path.is_file():
        hint = (
            f"finish it with `sandbox run --resume {run_dir}`"
            if config_path.is_file()
            else "give a run directory, e.g. runs/<run_id>"
        )
        raise ReportError(f"{run_dir} has no {SUMMARY}: not a finished run ({hint})")
    try:
        summary = Summary.read(summary_path)
    except SummaryError as exc:
        raise ReportError(str(exc)) from None
    try:
        config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
        config = yaml.safe_load(config_text) if config_text else {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ReportError(f"cannot read {run_dir}: {exc}") from None
    return summary, config if isinstance(config, dict) else {}, config_text


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a reader never opens half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(run_dir: Path) -> ReportFiles:
    """Write `report.md` and `report.html` into `run_dir` (replacing earlier ones)."""
    summary, config, config_text = read_run(run_dir)
    report = build_report(summary, config, config_text)
    files = ReportFiles(run_dir / MARKDOWN, run_dir / HTML)
    _write(files.markdown, markdown.render(report))
    _write(files.html, html.render(report))
    return files
