"""`sandbox logs`: every filter, the timeline and the summary against brute force over a whole
parsed log, of a small XC run and a small deployment."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sandbox.cli import main
from sandbox.events import EVENT_ADAPTER
from sandbox.logs import KINDS, describe
from sandbox.runstore import EVENTS
from tests.conftest import small_config
from tests.test_protocols import deployment_config, run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("logs")
    data = small_config(tmp / "xc", agents={"copies": 4, "actors": 2, "max_reasks": 1})
    data["models"] = ["honest", "random", "sloppy", "babbler"]
    return {"xc": run(data)[0], "deployment": run(deployment_config(tmp / "dep", "resample"))[0]}


def lines_of(path: Path) -> list[str]:
    return (path / EVENTS).read_text(encoding="utf-8").splitlines(keepends=True)


def model_of(e: dict[str, Any]) -> str | None:
    return e.get("model") or (e.get("record") or {}).get("model")


def game_of(e: dict[str, Any]) -> str | None:
    return e.get("game") or (e.get("record") or {}).get("game")


def logs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["logs", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_kinds_are_the_event_unions() -> None:
    assert set(KINDS) == {
        "run_started",
        "prompt",
        "context_started",
        "action",
        "plan_written",
        "monitor_score",
        "protocol_decision",
        "audit",
        "coordination_pick",
        "signal_inserted",
        "jam",
        "signal_recognition",
        "honeypot_verdict",
        "episode_result",
        "run_finished",
    }


@pytest.mark.parametrize("which", ["xc", "deployment"])
def test_each_filter_returns_exactly_the_matching_events(
    runs: dict[str, Path], which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = runs[which]
    lines = lines_of(path)
    events = [json.loads(line) for line in lines]
    episodes = sorted({e["episode_id"] for e in events if e.get("episode_id")})
    cases: list[tuple[list[str], Any]] = [
        (["--kind", "action"], lambda e: e["kind"] == "action"),
        (
            ["--kind", "audit", "--kind", "monitor_score"],
            lambda e: e["kind"] in ("audit", "monitor_score"),
        ),
        (["--agent", "copy-1"], lambda e: e.get("agent_id") == "copy-1"),
        (["--episode", episodes[3]], lambda e: e.get("episode_id") == episodes[3]),
        (
            ["--kind", "action", "--agent", "copy-2", "--model", model_of(events[-2]) or ""],
            lambda e: (
                e["kind"] == "action"
                and e.get("agent_id") == "copy-2"
                and model_of(e) == model_of(events[-2])
            ),
        ),
    ]
    for model in sorted({m for e in events if (m := model_of(e))}):
        cases.append((["--model", model], lambda e, m=model: model_of(e) == m))
    for game in sorted({g for e in events if (g := game_of(e))}):
        cases.append(
            (
                ["--game", game, "--kind", "episode_result"],
                lambda e, g=game: game_of(e) == g and e["kind"] == "episode_result",
            )
        )
    for argv, keep in cases:
        expected = [line for line, e in zip(lines, events, strict=True) if keep(e)]
        assert expected or (which == "xc" and "audit" in argv), argv
        code, out, _ = logs(capsys, str(path), *argv, "--json")
        assert code == 0
        assert out == "".join(expected), argv  # byte-equal, in file order
        code, out, _ = logs(capsys, str(path), *argv)
        assert code == 0
        assert out.splitlines() == [describe(json.loads(line)) for line in expected], argv
        code, out, _ = logs(capsys, str(path), *argv, "--json", "--limit", "2")
        assert out == "".join(expected[:2])
    if which == "xc":
        # parse failures are there to be found, and the human line says so
        code, out, _ = logs(capsys, str(path), "--kind", "action", "--model", "babbler")
        assert "parse_ok=False" in out
    else:
        code, out, _ = logs(capsys, str(path), "--kind", "protocol_decision")
        assert "resample ->" in out or "accept" in out


def test_timeline_is_the_episode_in_file_order(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = runs["deployment"]
    lines = lines_of(path)
    events = [json.loads(line) for line in lines]
    audited = next(e["episode_id"] for e in events if e["kind"] == "audit")
    expected = [
        line for line, e in zip(lines, events, strict=True) if e.get("episode_id") == audited
    ]
    code, out, _ = logs(capsys, str(path), "--timeline", audited, "--json")
    assert code == 0 and out == "".join(expected)
    code, out, _ = logs(capsys, str(path), "--timeline", audited)
    shown = out.splitlines()
    assert [s.split()[0] for s in shown] == [json.loads(line)["kind"] for line in expected]
    assert shown[-1].startswith("episode_result") and any(s.startswith("audit") for s in shown)
    # the prompt a context saw is shown (shortened), looked up by its hash
    assert "prompt='Task:" in out
    code, out, err = logs(capsys, str(path), "--timeline", audited[:-1] + "x")
    assert code == 2 and "no episode" in err and audited[:-1] in err


def brute_summary(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    policy = {}
    for e in events:
        if e["kind"] == "context_started" and e.get("role") == "policy":
            policy.setdefault(e["episode_id"], (e["model"], e["game"]))
    counts: Counter[tuple[str, str, str]] = Counter()
    for e in events:
        kind = e["kind"]
        if kind == "context_started":
            counts[(e["model"], e["game"], "contexts")] += 1
        elif kind == "action" and not e["parse_ok"]:
            counts[(e["model"], e["game"], "parse_failures")] += 1
        elif kind == "episode_result":
            counts[(e["record"]["model"], e["record"]["game"], "episodes")] += 1
        elif kind == "monitor_score":
            counts[(*policy[e["episode_id"]], "monitor_scores")] += 1
            counts[(*policy[e["episode_id"]], "monitor_missing")] += e["score"] is None
        elif kind == "protocol_decision":
            counts[(*policy[e["episode_id"]], "decision:" + e["decision"])] += 1
        elif kind == "audit":
            counts[(*policy[e["episode_id"]], "audits_" + e["outcome"])] += 1
    rows = []
    for model, game in sorted({(m, g) for m, g, _ in counts}):
        row: dict[str, Any] = {"model": model, "game": game, "decisions": {}}
        for key in ("episodes", "contexts", "parse_failures", "monitor_scores",
                    "monitor_missing", "audits_caught", "audits_clean"):  # fmt: skip
            row[key] = counts[(model, game, key)]
        for (m, g, key), n in sorted(counts.items()):
            if (m, g) == (model, game) and key.startswith("decision:") and n:
                row["decisions"][key.removeprefix("decision:")] = n
        rows.append(row)
    return rows


def summary_rows(out: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in out.splitlines()]
    return [{k: v for k, v in r.items() if k != "table"} for r in rows if r["table"] == "summary"]


@pytest.mark.parametrize("which", ["xc", "deployment"])
def test_summary_counts_equal_brute_force(
    runs: dict[str, Path], which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = runs[which]
    events = [json.loads(line) for line in lines_of(path)]
    code, out, _ = logs(capsys, str(path), "--json")
    assert code == 0
    rows = summary_rows(out)
    assert rows == brute_summary(events)
    if which == "xc":
        assert sum(r["parse_failures"] for r in rows) > 0
    else:
        attacker = next(r for r in rows if r["model"] == "attacker")
        assert attacker["monitor_scores"] > 0 and attacker["audits_caught"] > 0
        assert sum(attacker["decisions"].values()) == attacker["episodes"] == 180
    code, out, _ = logs(capsys, str(path))
    assert code == 0 and "model" in out and "events per model and game" in out


def test_a_torn_last_line_is_skipped(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = lines_of(runs["deployment"])
    # cut in the middle of an audit line: a run still being written
    cut = max(i for i, line in enumerate(lines) if '"kind": "audit"' in line)
    torn = tmp_path / "run"
    torn.mkdir()
    (torn / EVENTS).write_text("".join(lines[:cut]) + lines[cut][:-20], encoding="utf-8")
    code, out, _ = logs(capsys, str(torn), "--kind", "audit", "--json")
    assert code == 0
    assert out == "".join(line for line in lines[:cut] if '"kind": "audit"' in line)
    code, out, _ = logs(capsys, str(torn), "--json")
    events = [json.loads(line) for line in lines[:cut]]
    assert summary_rows(out) == brute_summary(events)
    for line in lines[:cut]:
        EVENT_ADAPTER.validate_json(line)


def test_bad_arguments_exit_2(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = logs(capsys, str(runs["xc"]), "--kind", "acton")
    assert code == 2 and "acton" in err and all(k in err for k in KINDS)
    code, _, err = logs(capsys, str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err
    code, _, err = logs(capsys, str(tmp_path))
    assert code == 2 and EVENTS in err
    code, _, err = logs(capsys, str(runs["xc"]), "--limit", "-1")
    assert code == 2
