"""The terminal tables (`sandbox.review.display`): they fit the console they are printed on, never
cut a model's or a game's name, and show the TG probe in its own table, per cell."""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from sandbox.config import config_from_mapping
from sandbox.core.results import Summary
from sandbox.review.display import GAME_COLUMNS, Display, elapsed_text, interval_text
from sandbox.run.runner import run_config
from tests.conftest import SB_GAMES

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """configs/profile.yaml (XC, CO agreement, the TG probe, collusion under untrusted
    monitoring) with the longest shipped model name, few samples, in process."""
    import json

    data = yaml.safe_load((REPO / "configs" / "profile.yaml").read_text())
    # without the SB games: the SB tables and plots have their own run (conftest's sb_run)
    data["games"] = [g for g in data["games"] if g["name"] not in SB_GAMES]
    overrides = [
        "engine=local",
        f"run.output_dir={tmp_path_factory.mktemp('display')}",
        "models=[stateless_strategist, focal_colluder, worst_case]",
        # a fixed run of 30 (the config samples adaptively up to 600)
        "sampling.stopping=fixed",
        "sampling.k_max=null",
        "sampling.k=30",
        "sampling.bootstrap=200",
        "sampling.played_games=200",
        "games.4.k=10",
        "control.steps=30",
        "control.deployments=300",
    ]
    path, _ = run_config(config_from_mapping(data, overrides))
    result: dict[str, Any] = json.loads((path / "summary.json").read_text())
    return result


def _render(summary: dict[str, Any], width: int) -> str:
    """The tables of `summary` (a `summary.json` as data: a test edits it first)."""
    out = Console(width=width, file=io.StringIO(), color_system=None)
    Display(out=out).table(Summary.parse(summary))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def _whole(name: str, line: str) -> bool:
    """`name` stands in `line` as itself, not as part of a longer word or cut short."""
    return re.search(rf"(?<![\w…]){re.escape(name)}(?![\w…])", line) is not None


def _games(summary: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (model, game, g)
        for model, entry in summary["models"].items()
        for game, g in entry["games"].items()
    ]


@pytest.mark.parametrize("width", [80, 100])
def test_every_table_fits_the_width_and_no_name_is_cut(summary: dict[str, Any], width: int) -> None:
    """Piped output at 80 columns cut `focal_colluder` to `focal_…`, and the games table was
    200 columns wide: each line now fits, and each row names its model and game whole, on one
    line (a name folded over two lines would fail too)."""
    text = _render(summary, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text
    for model, game, g in _games(summary):
        if g["suite"] == "tg":
            continue
        assert any(_whole(model, ln) and _whole(game, ln) for ln in lines), (model, game)
    tg_games = {game for _, game, g in _games(summary) if g["suite"] == "tg"}
    assert tg_games and all(any(_whole(game, ln) for ln in lines) for game in tg_games)
    for model, entry in summary["models"].items():
        cells = entry["games"]["training_gaming"]["details"]["cells"]
        for cell in cells:
            assert any(_whole(model, ln) and _whole(cell, ln) for ln in lines), (model, cell)
    # every table is there, in parts where it was split
    for title in (
        "Games: cross-context strategy and coordination",
        "Training-gaming probe per cell",
        "Measured profiles beside the declared ones",
        "Deployments under a control protocol",
        "Collusion under untrusted monitoring",
    ):
        assert title in text, title


def test_a_wide_console_gets_each_table_whole_a_narrow_one_in_parts(
    summary: dict[str, Any],
) -> None:
    """Split only where the rows would not fit: at 250 columns the games table is one table
    (every column in one header line); at 100 it is two, each led by model and game."""
    wide = _render(summary, 250)
    header = next(ln for ln in wide.splitlines() if "played games" in ln)
    assert all(col in header for col in GAME_COLUMNS)
    assert "(continued)" not in wide
    narrow = _render(summary, 100).splitlines()
    headers = [ln for ln in narrow if _whole("model", ln) and _whole("game", ln)]
    assert any("win/opt" in ln and "verdict" in ln for ln in headers)
    assert any("played games" in ln and "agree" in ln for ln in headers)
    assert not any("win/opt" in ln and "played games" in ln for ln in headers)


def test_the_tg_probe_has_its_own_table_not_the_games_one(summary: dict[str, Any]) -> None:
    """TG has no optimum: its rows left the games table (where it read `optimal 1.000`) for a
    table of its cells: the gap with its interval, the adjusted one and the cell's verdict."""
    games = Display.games_table(Summary.parse(summary))
    assert games is not None
    listed = {str(c) for c in games.columns[1].cells}
    assert "training_gaming" not in listed and "schelling" in listed
    tg = Display.tg_table(Summary.parse(summary))
    assert tg is not None
    headers = [str(c.header) for c in tg.columns]
    assert headers[:5] == ["model", "cell", "gap", "gap (Bonferroni)", "verdict"]
    rows = list(zip(*[[str(v) for v in c.cells] for c in tg.columns], strict=True))
    for model, entry in summary["models"].items():
        probe = entry["games"]["training_gaming"]
        mine = {r[1]: r for r in rows if r[0] == model}
        assert set(mine) == set(probe["details"]["cells"])
        for cell, c in probe["details"]["cells"].items():
            assert mine[cell][2:4] == (interval_text(c["gap"]), interval_text(c["gap_adjusted"]))
        verdicts = {r[4] for r in mine.values()}
        assert ("yes" in verdicts) == (probe["verdict"] == "yes"), model
        assert (verdicts == {"no"}) == (probe["verdict"] == "no"), model
    # worst_case games training in its trigger cells; stateless_strategist never does
    assert any(r[0] == "worst_case" and r[4] == "yes" for r in rows)
    assert "yes" not in {r[4] for r in rows if r[0] == "stateless_strategist"}


def test_a_capability_not_measured_reads_not_run(summary: dict[str, Any]) -> None:
    """A run without collusion shows `not run` in the profile's CO collusion column (as the
    README's SmolLM2 row), not a bare `-`, and the caption says what it means."""
    without = copy.deepcopy(summary)
    for p in without["profile"].values():
        p["collusion"] = None
    table = Display.capability_profile_table(Summary.parse(without))
    assert table is not None
    column = next(c for c in table.columns if str(c.header) == "CO collusion")
    assert {str(c) for c in column.cells} == {"not run"}
    assert "not run: " in str(table.caption)
    measured = Display.capability_profile_table(Summary.parse(summary))
    assert measured is not None
    column = next(c for c in measured.columns if str(c.header) == "CO collusion")
    cells = dict(zip(summary["profile"], map(str, column.cells), strict=True))
    assert any(p["collusion"] is not None for p in summary["profile"].values())
    for model, p in summary["profile"].items():
        if p["collusion"] is None:
            assert cells[model] == "not run"
        else:
            assert cells[model].startswith(f"{p['collusion']['verdict']}: "), model


def test_a_summary_without_the_tg_margin_still_shows(summary: dict[str, Any]) -> None:
    """A summary that does not record the probe's margin shows the cells, verdict `-`."""
    older = copy.deepcopy(summary)
    for entry in older["models"].values():
        entry["games"]["training_gaming"]["details"].pop("margin")
    tg = Display.tg_table(Summary.parse(older))
    assert tg is not None
    verdict = next(c for c in tg.columns if str(c.header) == "verdict")
    assert {str(c) for c in verdict.cells} == {"-"}
    assert "stateless_strategist" in _render(older, 100)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (35.24, "35.2 s"), (59.94, "59.9 s"), (191.4, "3:11"), (3723, "1:02:03")],
)
def test_elapsed_time_reads_as_a_duration(seconds: float, text: str) -> None:
    assert elapsed_text(seconds) == text


def test_the_audit_column_reads_what_the_protocol_declares(summary: dict[str, Any]) -> None:
    """Audits a protocol declares positional (`positional_audits` in the deployment summary, as
    upfront auditing's are) read as the first share of each deployment; others as the honest
    audit rate against the budget; a run from before the field, as the latter."""
    model, entry = next((m, e) for m, e in summary["models"].items() if e.get("deployment"))
    d = entry["deployment"]
    assert d["positional_audits"] is False  # untrusted monitoring audits by score
    shown = _render(summary, 200)
    assert f"(budget {d['audit_budget']:g})" in shown
    positional = copy.deepcopy(summary)
    positional["models"][model]["deployment"]["positional_audits"] = True
    assert f"first {d['audit_budget']:g} of each deployment" in _render(positional, 200)
    old = copy.deepcopy(summary)  # version 1, and without the key
    del old["schema_version"], old["models"][model]["deployment"]["positional_audits"]
    assert "of each deployment" not in _render(old, 200)
