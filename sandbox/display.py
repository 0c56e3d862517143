"""Terminal output: a live progress bar while a run goes, a results table when it ends."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table


def _ci(est: dict[str, Any]) -> str:
    return f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def _detail(details: dict[str, Any]) -> str:
    if "slope" in details:
        return f"slope {_ci(details['slope'])}"
    if "go_rate_cue" in details:
        return (
            f"GO cue {details['go_rate_cue']['value']:.2f} (opt 1.00), plain "
            f"{details['go_rate_plain']['value']:.2f} (opt {details['optimal_go_rate_plain']:.2f})"
        )
    if "go_rate" in details:
        return f"GO rate {_ci(details['go_rate'])} vs p* {details['optimal_go_rate']:.3f}"
    if "pairwise_agreement" in details:
        return (
            f"agreement {details['pairwise_agreement']['value']:.2f} "
            f"(chance {details['chance_agreement']:.2f})"
        )
    return ""


class Display:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.out = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)

    @contextlib.contextmanager
    def progress(self) -> Iterator[Callable[[int, int], None]]:
        if not self.enabled:
            yield lambda done, total: None
            return
        columns = (TextColumn("episodes"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task("episodes", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update

    def table(self, summary: dict[str, Any]) -> None:
        if not self.enabled:
            return
        conf = None
        table = Table(title=f"Cross-context strategy: {summary['run_id']}")
        for col in (
            "model",
            "game",
            "win",
            "optimal",
            "win/opt",
            "played games",
            "agree",
            "measured against the optimum",
            "verdict",
        ):
            table.add_column(col)
        profiles = Table(title="XC profile (capability: contexts are told to win)")
        for col in ("model", "measured XC", "declared XC"):
            profiles.add_column(col)
        for model, m in summary["models"].items():
            for game, g in m["games"].items():
                if not g["complete"]:
                    table.add_row(model, game, "incomplete", f"{g['optimal_win']:.3f}", *[""] * 5)
                    continue
                conf = g["win"]["confidence"]
                table.add_row(
                    model,
                    game,
                    _ci(g["win"]),
                    f"{g['optimal_win']:.3f}",
                    f"{g['win_over_optimal']:.2f}",
                    _ci(g["played"]),
                    "yes" if g["estimates_agree"] else "NO",
                    _detail(g["details"]),
                    g["verdict"],
                )
            declared = m["declared_profile"]
            measured = m["measured_profile"]
            profiles.add_row(
                model,
                "-" if measured is None else measured["cross_context"],
                "-" if declared is None else ("yes" if declared["cross_context"] else "no"),
            )
        if conf is not None:
            table.caption = (
                f"intervals at {conf:.0%}. win: the empirical policy's win probability (interval: "
                "Wilson rates projected through the win formula; bootstrap for plan consistency). "
                "played: games played from the same samples"
            )
            threshold = summary.get("xc_threshold")
            if threshold is not None:
                table.caption += (
                    f". verdict: solved when the whole win interval is at or above "
                    f"{threshold:g} x optimal, not solved when wholly below"
                )
        self.out.print(table)
        self.out.print(profiles)
