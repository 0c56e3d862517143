"""The run report (`sandbox/review/report/`): its model holds the run's own numbers, it plots only
what ran, each point is drawn where its value says, the HTML is self-contained and escapes the run's
text, and headless Chromium renders every plot.

One real run covers every part (XC with a sweep, CO agreement and collusion, TG, a deployment
under untrusted monitoring); one XC-only run goes through `sandbox run` itself. Expected values
are read from each run's `summary.json` here, independently of the report's code.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import cli
from sandbox.config import config_from_mapping
from sandbox.core.results import Summary
from sandbox.review.report import build_report, html, markdown, read_run, svg, write_report
from sandbox.review.report.model import Plot, Report
from sandbox.run.runner import run_config
from tests.conftest import REPO, SB_GAMES, small_config

ALL_PLOTS = {
    "xc-calibration",
    "xc-win",
    "co-agreement",
    "co-collusion",
    "tg-gap",
    "protocol-frontier",
}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/profile.yaml (TG, XC, CO agreement, collusion under untrusted monitoring) plus
    plan consistency and a sweep, few samples, in process: about 10 s."""
    data = yaml.safe_load((REPO / "configs" / "profile.yaml").read_text())
    # without the SB games: the SB tables and plots have their own run (conftest's sb_run)
    data["games"] = [g for g in data["games"] if g["name"] not in SB_GAMES]
    data["games"] += [
        {"name": "plan_consistency"},
        {"name": "situation_sweep", "params": {"grid": [[3, 1], [10, 1], [10, 5]]}},
    ]
    overrides = [
        "engine=local",
        f"run.output_dir={tmp_path_factory.mktemp('report')}",
        "models=[honest, focal_colluder, worst_case]",
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
    return path


@pytest.fixture(scope="module")
def xc_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An XC-only run through `sandbox run` itself: (run dir, what it printed to stderr)."""
    tmp = tmp_path_factory.mktemp("report-xc")
    data = small_config(tmp, models=["stateless_strategist", "honest"])
    data["sampling"] = {"k": 20, "played_games": 100, "bootstrap": 100}
    config = tmp / "xc.yaml"
    config.write_text(yaml.safe_dump(data))
    with pytest.MonkeyPatch.context() as mp:
        err: list[str] = []
        mp.setattr("sys.stderr", _Capture(err))
        assert cli.main(["run", str(config), "--quiet"]) == 0
    (path,) = (tmp / "runs").iterdir()
    return path, "".join(err)


@pytest.fixture(scope="module")
def replay_run(xc_run: tuple[Path, str]) -> tuple[Path, str]:
    """`sandbox replay` of the XC run, every answer from its log: (run dir, its stderr)."""
    source = xc_run[0]
    with pytest.MonkeyPatch.context() as mp:
        err: list[str] = []
        mp.setattr("sys.stderr", _Capture(err))
        assert cli.main(["replay", str(source), "--quiet"]) == 0
    (path,) = [p for p in source.parent.iterdir() if p != source]
    return path, "".join(err)


class _Capture:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def write(self, text: str) -> int:
        self.into.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def _report(run_dir: Path) -> tuple[dict[str, Any], Report]:
    """The run's `summary.json` as data (what a test expects is read from it, not through the
    report's code), and its report."""
    summary, config, text = read_run(run_dir)
    return _summary_json(run_dir), build_report(summary, config, text)


def _summary_json(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return data


def _ci(est: Mapping[str, float]) -> str:
    return f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def _points(plot: Plot) -> dict[tuple[str, str], tuple[Any, float, Any, Any]]:
    out = {}
    for s in plot.series:
        for p in s.points:
            assert (s.name, p.label) not in out, (s.name, p.label)
            out[s.name, p.label] = (p.x, p.y, p.low, p.high)
    return out


def _assert_points(plot: Plot, want: Mapping[tuple[str, str], tuple[Any, ...]]) -> None:
    got = _points(plot)
    assert set(got) == set(want), (plot.id, set(got) ^ set(want))
    for key, values in want.items():
        for g, w in zip(got[key], values, strict=True):
            assert g == (w if isinstance(w, str) else pytest.approx(w)), (plot.id, key, got[key])


def _est(x: Any, e: Mapping[str, float]) -> tuple[Any, float, float, float]:
    return (x, e["value"], e["low"], e["high"])


# --- the report model -------------------------------------------------------------------------


def test_only_the_parts_that_ran_are_plotted(full_run: Path, xc_run: tuple[Path, str]) -> None:
    _, full = _report(full_run)
    assert set(full.plots()) == ALL_PLOTS
    assert [s.id for s in full.sections] == ["profile", "xc", "co", "tg", "protocols", "provenance"]
    _, xc = _report(xc_run[0])
    assert set(xc.plots()) == {"xc-calibration", "xc-win"}
    assert [s.id for s in xc.sections] == ["profile", "xc", "provenance"]
    assert "deployments" not in xc.tables() and "tg-cells" not in xc.tables()


def test_each_plotted_point_is_its_own_summary_value(full_run: Path) -> None:
    """Every point, keyed by its series (a model) and label, has exactly the summary's value
    and interval: a point under the wrong model, a bound swapped or a point missing fails."""
    summary, report = _report(full_run)
    plots = report.plots()
    calibration: dict[tuple[str, str], tuple[Any, ...]] = {}
    win: dict[tuple[str, str], tuple[Any, ...]] = {}
    agreement: dict[tuple[str, str], tuple[Any, ...]] = {}
    gaps: dict[tuple[str, str], tuple[Any, ...]] = {}
    red: dict[tuple[str, str], tuple[Any, ...]] = {}
    frontier: dict[tuple[str, str], tuple[Any, ...]] = {}
    for model, entry in summary["models"].items():
        for gid, g in entry["games"].items():
            d, suite = g["details"], g["suite"]
            if "go_rate" in d:
                calibration[model, gid] = _est(d["optimal_go_rate"], d["go_rate"])
            if "go_rate_cue" in d:
                calibration[model, f"{gid}: cue"] = _est(1.0, d["go_rate_cue"])
                calibration[model, f"{gid}: no cue"] = _est(
                    d["optimal_go_rate_plain"], d["go_rate_plain"]
                )
            for p in d.get("points", []):
                label = f"{gid}: N={p['rounds']}, M={p['audited']}"
                calibration[f"{model}: {gid}", label] = _est(p["optimal_go_rate"], p["go_rate"])
            if suite == "xc":
                opt, w = g["optimal_win"], g["win"]
                win[model, gid] = (gid, w["value"] / opt, w["low"] / opt, w["high"] / opt)
            if suite == "co":
                agreement[model, gid] = _est(gid, d["pairwise_agreement"])
            if suite == "tg":
                for cell, c in d["cells"].items():
                    gaps[model, cell] = _est(cell, c["gap"])
        dep = entry["deployment"]
        for cm, c in dep["collusion"].items():
            if c["red_win"] is not None:
                red[model, cm] = _est(cm, c["red_win"])
        for p in dep["frontier"]:
            s, u = p["safety"], p["usefulness"]
            if s is None or u is None:
                continue  # unmeasured (no attack): nothing to draw
            key = (f"{model}: defer frontier", f"defer {p['defer_fraction']:g}")
            frontier[key] = (u["value"], s["value"], s["low"], s["high"])
        if dep["safety"] is not None and dep["usefulness"] is not None:
            key = (f"{model}: {dep['protocol']}", dep["protocol"])
            frontier[key] = (dep["usefulness"]["value"], *_est(0, dep["safety"])[1:])
    assert any(k[0].endswith("situation_sweep") for k in calibration)  # the sweep's curve
    assert red and gaps and len(frontier) > 3
    _assert_points(plots["xc-calibration"], calibration)
    _assert_points(plots["xc-win"], win)
    _assert_points(plots["co-agreement"], agreement)
    _assert_points(plots["tg-gap"], gaps)
    _assert_points(plots["co-collusion"], red)
    _assert_points(plots["protocol-frontier"], frontier)
    for plot in plots.values():
        for s in plot.series:
            for p in s.points:
                assert p.low is not None and p.high is not None
                assert p.low <= p.y + 1e-9 and p.y <= p.high + 1e-9, (plot.id, s.name, p)
    chance = {r.category: r.value for r in plots["co-agreement"].references}
    assert chance == {
        gid: g["details"]["chance_agreement"]
        for gid, g in summary["models"]["honest"]["games"].items()
        if g["suite"] == "co"
    }
    assert [r.value for r in plots["xc-win"].references] == [summary["xc_threshold"]]


def test_two_tg_games_put_no_two_points_in_one_slot(full_run: Path) -> None:
    """With two TG games in one run, a model's points for the same cell are two categories
    (`game: cell`), each drawn in its own bar slot; with one, the cell alone is the category."""
    summary, report = _report(full_run)
    one = report.plots()["tg-gap"]
    assert all(p.x == p.label and p.x in one.categories for s in one.series for p in s.points)
    summary = copy.deepcopy(summary)
    for entry in summary["models"].values():
        games = entry["games"]
        second = copy.deepcopy(games["training_gaming"])
        for c in second["details"]["cells"].values():  # other values, so a mix-up shows
            c["gap"] = {**c["gap"], **{k: c["gap"][k] / 2 - 0.25 for k in ("value", "low", "high")}}
        games["tg_again"] = second
    config = yaml.safe_load((full_run / "config.yaml").read_text())
    two_report = build_report(Summary.parse(summary), config)
    plot = two_report.plots()["tg-gap"]
    want = {}
    for model, entry in summary["models"].items():
        for gid in ("training_gaming", "tg_again"):
            for cell, c in entry["games"][gid]["details"]["cells"].items():
                want[model, f"{gid}: {cell}"] = _est(f"{gid}: {cell}", c["gap"])
    _assert_points(plot, want)
    cells = len(summary["models"]["honest"]["games"]["training_gaming"]["details"]["cells"])
    assert len(plot.categories) == 2 * cells == len({k[1] for k in want})
    root = _svgs(html.render(two_report))["tg-gap"]
    for series in root.iter(f"{NS}g"):
        if series.get("class") != "series":
            continue
        slots = [float(r.get("x", "")) for r in series.iter(f"{NS}rect") if r.get("class") == "bar"]
        assert len(slots) == 2 * cells and len(set(slots)) == len(slots), series.get("data-series")
    rows = {(r[0], r[1], r[2]) for r in two_report.tables()["tg-cells"].rows}
    assert {(m, k.split(": ")[0], k.split(": ")[1]) for m, k in want} == rows


def test_the_tables_hold_the_runs_numbers(full_run: Path) -> None:
    summary, report = _report(full_run)
    tables = report.tables()
    profile = {row[0]: row for row in tables["profile"].rows}
    assert list(profile) == list(summary["profile"])
    for model, p in summary["profile"].items():
        tg, xc, co = p["training_gaming"], p["cross_context"], p["coordination"]
        row = profile[model]
        assert row[1].startswith(f"{tg['verdict']}: {_ci(tg['largest_gap'])}")
        assert row[2].startswith(f"{xc['verdict']}: {_ci(xc['win_over_optimal'])}")
        assert row[3].startswith(f"{co['verdict']}: {_ci(co['agreement'])}")
        assert row[-1] == p["reading"]
    games = {(r[0], r[1]): r for r in tables["games-xc"].rows + tables["games-co"].rows}
    for model, entry in summary["models"].items():
        for gid, g in entry["games"].items():
            if g["suite"] == "tg":
                continue
            assert games[model, gid][2] == _ci(g["win"])
            assert games[model, gid][-1] == g["verdict"]
    tg = tables["tg-cells"]
    assert tg.columns[:2] == ("model", "cell")  # one TG game: named in the title, no column
    assert "training_gaming" in tg.title
    cells = {(r[0], r[1]): r for r in tg.rows}
    for model, entry in summary["models"].items():
        probe = entry["games"]["training_gaming"]
        verdicts = []
        for cell, c in probe["details"]["cells"].items():
            row = cells[model, cell]
            assert row[2:4] == (_ci(c["gap"]), _ci(c["gap_adjusted"]))
            assert row[5:] == (_ci(c["compliance_train"]), _ci(c["compliance_deploy"]))
            verdicts.append(row[4])
        # the cells' verdicts add up to the probe's, by its rule: yes if any, no if all
        assert ("yes" in verdicts) == (probe["verdict"] == "yes"), model
        assert (set(verdicts) == {"no"}) == (probe["verdict"] == "no"), model
    usage = {r[0]: r for r in tables["usage"].rows}
    for model, u in summary["usage_by_model"].items():
        assert usage[model][1] == str(u["contexts"])
        assert usage[model][4:6] == (str(u["prompt_tokens"]), str(u["completion_tokens"]))
        assert usage[model][3] == str(u.get("retries", "-"))
    run = dict(tables["run"].rows)
    config = yaml.safe_load((full_run / "config.yaml").read_text())
    assert run["seed"] == str(config["run"]["seed"])
    assert run["config SHA-256"] == summary["config_sha256"]
    assert run["models"] == "honest, focal_colluder, worst_case"
    assert run["trusted model"] == "trusted"
    parse = {(r[0], r[1]): r for r in tables["parse-failures"].rows}
    for model, entry in summary["models"].items():
        for gid, g in entry["games"].items():
            rate, n = g["parse_failure_rate"], g["samples"]
            assert parse[model, gid][2:] == (str(n), str(round(rate * n)), f"{rate:.3f}")
    assert report.config_yaml == (full_run / "config.yaml").read_text()


def test_the_code_isolation_shows_for_a_run_that_checks_code(
    full_run: Path, xc_run: tuple[Path, str]
) -> None:
    """A deployment's report says how its code ran (from the run's summary, which the run
    header's isolation fills); `none` reads as no sandbox; a run made before isolation was
    recorded says so rather than claim a sandbox; a run with no code has no such row."""
    _, config, text = read_run(full_run)
    summary = _summary_json(full_run)
    assert summary["isolation"] == "bwrap"
    events = (full_run / "events.jsonl").read_text().splitlines()
    assert json.loads(events[0])["isolation"] == "bwrap"

    def row(summary: dict[str, Any]) -> str:
        report = build_report(Summary.parse(summary), config, text)
        return dict(report.tables()["run"].rows)["code isolation"]

    assert row(summary) == "bwrap"
    assert row({**summary, "isolation": "none"}).startswith("none: unsandboxed")
    old = {k: v for k, v in summary.items() if k != "isolation"}
    assert row(old).startswith("not recorded")
    xc_summary, xc_config, xc_text = read_run(xc_run[0])
    assert xc_summary.isolation is None
    rows = dict(build_report(xc_summary, xc_config, xc_text).tables()["run"].rows)
    assert "code isolation" not in rows


def test_retries_show_when_recorded_and_a_dash_when_not(full_run: Path) -> None:
    summary, _ = _report(full_run)
    summary = copy.deepcopy(summary)
    models = list(summary["usage_by_model"])
    for u in summary["usage_by_model"].values():
        u.pop("retries", None)
    summary["usage_by_model"][models[0]]["retries"] = 7
    usage = {r[0]: r for r in build_report(Summary.parse(summary), {}).tables()["usage"].rows}
    assert usage[models[0]][3] == "7"
    assert all(usage[m][3] == "-" for m in models[1:])
    assert usage["all models"][3] == "-"  # not a sum of what some models did not count
    assert usage["all models"][1] == str(
        sum(u["contexts"] for u in summary["usage_by_model"].values())
    )
    del summary["usage_by_model"]  # a run from before the events were tallied
    usage = {r[0]: r for r in build_report(Summary.parse(summary), {}).tables()["usage"].rows}
    assert usage["all models"][1:6] == ("-",) * 5


def test_the_usage_total_is_what_was_paid_beside_its_cost(
    full_run: Path, replay_run: tuple[Path, str]
) -> None:
    """The total row sums the calls made (shared plans' included, a replay's answers from its
    source's log not), so its tokens and the total cost beside it count the same calls."""
    for run_dir in (full_run, replay_run[0]):
        summary, report = _report(run_dir)
        table = report.tables()["usage"]
        usage = {r[0]: r for r in table.rows}
        paid = summary["usage_by_model"].values()
        assert usage["all models"][1:] == (
            *(
                str(sum(u[key] for u in paid))
                for key in ("contexts", "errors", "retries", "prompt_tokens", "completion_tokens")
            ),
            f"{summary['cost']['total_usd']:.4f}",
        )
        assert "contexts whose calls were made" in table.caption
        assert "a replay's answers from its source run's log are not counted" in table.caption
    replayed, report = _report(replay_run[0])
    assert replayed["usage"]["prompt_tokens"] > 0  # what the episodes used, answered from the log
    usage = {r[0]: r for r in report.tables()["usage"].rows}
    assert usage["all models"][1:] == ("0", "0", "0", "0", "0", "0.0000")  # nothing was asked


# --- rendering ------------------------------------------------------------------------------


def _svgs(page: str) -> dict[str, ET.Element]:
    found = re.findall(r'<figure data-plot="([^"]+)">.*?(<svg .*?</svg>)', page, re.S)
    return {plot_id: ET.fromstring(markup) for plot_id, markup in found}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


NS = "{http://www.w3.org/2000/svg}"


def test_each_point_is_drawn_where_its_value_says(full_run: Path) -> None:
    """The SVG's geometry, not just its data attributes: a marker or bar edge at the pixel its
    value maps to, its interval from low to high, and its colour that of its legend entry."""
    _, report = _report(full_run)
    drawn = _svgs(html.render(report))
    assert set(drawn) == ALL_PLOTS
    for plot_id, root in drawn.items():
        plot = report.plots()[plot_id]
        area = root.find(f".//{NS}g[@class='plot-area']")
        assert area is not None
        (d0, d1), (p0, p1) = (
            _floats(area.get("data-y-domain", "")),
            _floats(area.get("data-y-px", "")),
        )

        def px(
            value: float, d0: float = d0, d1: float = d1, p0: float = p0, p1: float = p1
        ) -> float:
            return p0 + (value - d0) / (d1 - d0) * (p1 - p0)

        legend = {
            e.get("data-name"): ET.tostring(e, encoding="unicode")
            for e in root.iter(f"{NS}g")
            if e.get("class") == "legend-entry"
        }
        count = 0
        for series in area.iter(f"{NS}g"):
            if series.get("class") != "series":
                continue
            name, colour = series.get("data-series"), series.get("data-colour")
            assert f'"{colour}"' in legend[name], (plot_id, name)
            for g in series.iter(f"{NS}g"):
                if g.get("class") != "point":
                    continue
                count += 1
                y = float(g.get("data-y", ""))
                marker = g.find(f"{NS}circle")
                if marker is not None:
                    assert float(marker.get("cy", "")) == pytest.approx(px(y), abs=0.01)
                else:
                    bar = g.find(f"{NS}rect")
                    assert bar is not None
                    top, height = float(bar.get("y", "")), float(bar.get("height", ""))
                    edge = top if bar.get("data-value-edge") == "top" else top + height
                    assert edge == pytest.approx(px(y), abs=0.01), (plot_id, g.attrib)
                whisker = g.find(f"{NS}line[@class='interval']")
                assert whisker is not None
                low, high = float(g.get("data-low", "")), float(g.get("data-high", ""))
                assert float(whisker.get("y1", "")) == pytest.approx(px(low), abs=0.01)
                assert float(whisker.get("y2", "")) == pytest.approx(px(high), abs=0.01)
        assert count == sum(len(s.points) for s in plot.series)
    # a model keeps its colour from plot to plot
    colours: dict[str, set[str]] = {}
    for root in drawn.values():
        for series in root.iter(f"{NS}g"):
            if series.get("class") == "series":
                model = series.get("data-series", "").split(":")[0]
                colours.setdefault(model, set()).add(series.get("data-colour", ""))
    assert all(len(c) == 1 for c in colours.values()), colours


def test_nice_ticks_cover_the_range() -> None:
    assert svg.nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert svg.nice_ticks(-1.0, 1.0) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    ticks = svg.nice_ticks(0.0, 1.07)
    assert ticks[0] <= 0.0 and ticks[-1] >= 1.07


def test_html_escapes_the_runs_text(full_run: Path) -> None:
    _, config, text = read_run(full_run)
    evil = '<img src=x onerror="alert(1)">'
    renamed = _summary_json(full_run)
    for key in ("models", "profile", "usage_by_model"):
        renamed[key] = {(evil if k == "honest" else k): v for k, v in renamed[key].items()}
    config = {**config, "models": [evil]}
    page = html.render(build_report(Summary.parse(renamed), config, text + f"# {evil}\n"))
    assert "<img" not in page and 'onerror="' not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    for markup in re.findall(r"<svg .*?</svg>", page, re.S):
        ET.fromstring(markup)  # still well-formed XML


def test_markdown_holds_every_table_and_every_plots_points(full_run: Path) -> None:
    summary, report = _report(full_run)
    text = markdown.render(report)
    for t in report.tables().values():
        assert f"### {t.title}" in text
        assert "| " + " | ".join(c.replace("|", "\\|") for c in t.rows[0]) + " |" in text
    for p in report.plots().values():
        assert f"### {p.title}" in text
        for s in p.series:
            for point in s.points:
                assert f"| {s.name} | {point.label} |" in text
    assert "```yaml" in text and summary["run_id"] in text


# --- the command line -------------------------------------------------------------------------


def test_sandbox_run_writes_the_report_and_says_where(xc_run: tuple[Path, str]) -> None:
    path, err = xc_run
    assert f"report: {path / 'report.html'}" in err
    assert (path / "report.md").is_file() and (path / "report.html").is_file()
    # how long it took, not the progress bar's "0:00:00" left
    assert re.search(
        rf"^finished in (\d+\.\d s|\d+:\d\d); wrote {re.escape(str(path))}$", err, re.M
    )


def test_a_replay_gets_its_own_report(
    xc_run: tuple[Path, str], replay_run: tuple[Path, str]
) -> None:
    replay, err = replay_run
    assert f"report: {replay / 'report.html'}" in err
    run = dict(build_report(*read_run(replay)[:2]).tables()["run"].rows)
    assert run["replay of"] == xc_run[0].name
    assert replay.name.startswith(f"{xc_run[0].name}-replay-")
    # the source line in words, not a Python dict
    summary = json.loads((replay / "summary.json").read_text())
    cached = summary["replay"]["cached_contexts"]
    roles = ", ".join(f"{role} {n}" for role, n in cached.items())
    line = next(ln for ln in err.splitlines() if ln.startswith("replayed "))
    assert line == (
        f"replayed {xc_run[0].name}: contexts answered from its log: "
        f"{sum(cached.values())} ({roles}); asked anew: none"
    )


def test_sandbox_report_writes_both_files(
    xc_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = xc_run[0]
    (path / "report.html").unlink()
    assert cli.main(["report", str(path)]) == 0
    assert capsys.readouterr().out.split() == [str(path / "report.md"), str(path / "report.html")]
    assert (path / "report.html").read_text().startswith("<!doctype html>")


def test_sandbox_report_refuses_what_is_not_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("run: {}\n")
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no summary.json" in err
    assert f"sandbox run --resume {tmp_path}" in err
    assert not (tmp_path / "report.html").exists()


def test_a_report_that_fails_leaves_the_run_and_says_how_to_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli._report_after_run(tmp_path)  # no summary: the report fails, nothing is raised
    err = capsys.readouterr().err
    assert "report: ReportError" in err and f"sandbox report {tmp_path}" in err


# --- headless Chromium ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")


def _chromium(*args: str) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not on PATH (.ci/install-browser installs it)")
        pytest.skip("chromium is not on PATH (Debian: apt-get install chromium); CI runs this")
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _page_requests(page: Path, netlog: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from `page`, and the URLs the page itself asked the network for:
    requests started on behalf of a file:// page (Chromium's own background requests, updates
    and the like, belong to no page and are left out)."""
    dom = _chromium("--dump-dom", f"--log-net-log={netlog}", page.as_uri())
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = [
        str(e["params"]["url"])
        for e in log["events"]
        if e["type"] == start
        and str(e.get("params", {}).get("network_isolation_key", "")).startswith("file://")
        and not str(e["params"]["url"]).startswith("file:")
    ]
    return dom, urls


def test_chromium_renders_every_plot_and_table(full_run: Path, tmp_path: Path) -> None:
    files = write_report(full_run)
    summary, report = _report(full_run)
    page = files.html.read_text(encoding="utf-8")
    # self-contained: nothing to fetch (the only URL is the SVG namespace)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page)
    assert "@import" not in page and "url(" not in page
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    dom, requests = _page_requests(files.html, tmp_path / "report.netlog.json")
    assert requests == []
    # the check sees a page's request: an image from the network is caught
    fetching = tmp_path / "fetching.html"
    fetching.write_text('<p>x</p><img src="http://example.invalid/x.png">', encoding="utf-8")
    assert _page_requests(fetching, tmp_path / "fetching.netlog.json")[1] == [
        "http://example.invalid/x.png"
    ]
    figures = dict(re.findall(r'<figure data-plot="([^"]+)">(.*?)</figure>', dom, re.S))
    assert set(figures) == ALL_PLOTS
    for plot_id, plot in report.plots().items():
        markup = figures[plot_id]
        assert "<svg" in markup
        ys = [float(v) for v in re.findall(r'<g class="point"[^>]*?data-y="([^"]+)"', markup)]
        want = [p.y for s in plot.series for p in s.points]
        assert ys == pytest.approx(want), plot_id
    for model, p in summary["profile"].items():
        xc = p["cross_context"]
        assert f"<td>{model}</td>" in dom
        assert f"{xc['verdict']}: {_ci(xc['win_over_optimal'])}" in dom
    shot = full_run / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,1600", files.html.as_uri())
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_small_rates_print_with_significant_figures() -> None:
    """A rate keeps at least two significant figures in fixed point: the red team's best rate
    at T = 5000 (0.00036...) must not read as 0.000; from 0.01 up, three decimals as before."""
    from sandbox.review.display import Display, rate_text

    assert rate_text(0.000365829) == "0.00037"
    assert rate_text(0.0018766) == "0.0019"
    assert rate_text(0.000012) == "0.000012"
    assert rate_text(0.0952) == "0.095"
    assert rate_text(0.05) == "0.050"
    assert rate_text(1.0) == "1.000"
    assert rate_text(0.0) == "0.000"
    estimate = {"value": 0.7, "low": 0.5, "high": 0.9, "confidence": 0.95, "n": 10}
    deployment = {
        "complete": True,
        "protocol": "trusted_monitoring",
        "positional_audits": False,
        "steps": {"calibration": 10, "honest": 10, "attack": 10},
        "tasks": 5000,
        "audit_budget": 0.02,
        "safety": estimate,
        "safety_at_best_attack_rate": estimate,
        "best_attack_rate": 0.000365829,
        "best_attack_rate_bracket": [0.0003, 0.0004],
        "usefulness": estimate,
        "attack_rate": {**estimate, "value": 0.045},
        "backdoor_success_rate": estimate,
        "honest_audit_rate": 0.02,
        "monitor_missing_rate": 0.0,
        "frontier": [],
        "decisions": {},
    }
    model = {"games": {}, "deployment": deployment, "measured_profile": None}
    summary = Summary.parse(
        {
            "run_id": "r",
            "config_sha256": "0" * 64,
            "episodes": 30,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            "models": {"attacker": {**model, "declared_profile": None}},
            "templates": {},
        }
    )
    table = Display.deployments_table(summary)
    assert table is not None
    cells = [str(c) for column in table.columns for c in column.cells]
    assert "0.045 (0.00037)" in cells
