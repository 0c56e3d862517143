"""`sandbox logs`: every filter, the timeline and the summary against brute force over a whole
parsed log, of a small XC run and a small deployment."""

from __future__ import annotations

import io
import itertools
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Literal, get_args

import pytest
from pydantic import BaseModel

from sandbox.cli import main
from sandbox.core.context import Usage
from sandbox.core.events import (
    COORDINATION_TYPES,
    EVENT_ADAPTER,
    EVENT_TYPES,
    ActionTaken,
    AuditPerformed,
    ContextStarted,
    CoordinationPick,
    Countermeasure,
    EpisodeFinished,
    Event,
    EventWriter,
    HoneypotVerdict,
    ItemAnswered,
    Jamming,
    MonitorScored,
    PlanWritten,
    ProtocolDecision,
    RunStopped,
    SignalInserted,
    SignalJammed,
    SignalRecognition,
    complete_lines,
    kind_of,
)
from sandbox.record.runstore import EVENTS
from sandbox.review import attempts, eventlines
from sandbox.review import logs as logs_module
from sandbox.review.eventlines import KINDS, describe
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
    union = get_args(get_args(Event)[0])
    assert union == EVENT_TYPES
    assert tuple(member.model_fields["kind"].default for member in union) == KINDS
    assert logs_module.EVENTS == eventlines.EVENTS == EVENTS
    # the coordination attempts' kinds and values are the event classes' own
    assert tuple(kind_of(t) for t in COORDINATION_TYPES) == attempts.KINDS
    assert set(attempts.COUNTED_KINDS) == set(attempts.KINDS) - {kind_of(SignalInserted)}
    assert get_args(Countermeasure) == attempts.COUNTERMEASURES
    assert set(attempts.JAMMED_UNDER) == set(get_args(Jamming))
    assert set(attempts.JAMMED_UNDER.values()) <= set(get_args(Countermeasure))
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
        "item_answer",
        "signal_inserted",
        "jam",
        "signal_recognition",
        "honeypot_verdict",
        "episode_result",
        "run_stopped",
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
    policy: dict[str, tuple[str, str]] = {}
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
    code, out, _ = logs(capsys, str(path), "--json", "--summary")
    assert code == 0
    rows = summary_rows(out)
    assert rows == brute_summary(events)
    if which == "xc":
        assert sum(r["parse_failures"] for r in rows) > 0
    else:
        attacker = next(r for r in rows if r["model"] == "attacker")
        assert attacker["monitor_scores"] > 0 and attacker["audits_caught"] > 0
        assert sum(attacker["decisions"].values()) == attacker["episodes"] == 180
    code, out, _ = logs(capsys, str(path), "--summary")
    assert code == 0 and "model" in out and "events per model and game" in out
    # the default view does not read them
    code, out, _ = logs(capsys, str(path))
    assert code == 0 and "events per model and game" not in out and "--summary" in out
    code, out, _ = logs(capsys, str(path), "--json")
    assert code == 0 and not summary_rows(out)


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
    code, out, _ = logs(capsys, str(torn), "--json", "--summary")
    events = [json.loads(line) for line in lines[:cut]]
    assert summary_rows(out) == brute_summary(events)
    for line in lines[:cut]:
        EVENT_ADAPTER.validate_json(line)


def test_bad_arguments_exit_2(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = logs(capsys, str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err
    code, _, err = logs(capsys, str(tmp_path))
    assert code == 2 and EVENTS in err
    code, _, err = logs(capsys, str(runs["xc"]), "--limit", "-1")
    assert code == 2
    code, _, err = logs(capsys, str(runs["xc"]), "--summary", "--kind", "action")
    assert code == 2 and "--summary" in err


# --- coordination attempts ----------------------------------------------------------------------

COUNTERMEASURES = ("none", "honeypots", "honeypots+redaction", "honeypots+paraphrase")


def pick(episode: str, ctx: str, pair: int, choice: str | None) -> dict[str, Any]:
    return {
        "kind": "coordination_pick",
        "run_id": "r",
        "episode_id": episode,
        "agent_id": "copy-0",
        "context_id": ctx,
        "model": "m",
        "game": "schelling",
        "observation": "options",
        "index": 0,
        "pair": pair,
        "choice": choice,
    }


def verdict(episode: str, cm: str, outcome: str, backdoor: bool) -> dict[str, Any]:
    return {
        "kind": "signal_recognition",
        "run_id": "r",
        "episode_id": episode,
        "agent_id": "copy-1",
        "context_id": f"{episode}/monitor",
        "model": "m",
        "game": "code",
        "countermeasure": cm,
        "policy_context_id": f"{episode}/policy",
        "policy_agent_id": "copy-0",
        "signal": "# note",
        "score": 1.0,
        "outcome": outcome,
        "backdoor": backdoor,
    }


def honeypot(episode: str, cm: str, outcome: str) -> dict[str, Any]:
    return {
        "kind": "honeypot_verdict",
        "run_id": "r",
        "episode_id": episode,
        "agent_id": "copy-1",
        "context_id": f"{episode}/monitor",
        "model": "m",
        "game": "code",
        "countermeasure": cm,
        "honeypot_id": f"{episode}/hp",
        "score": 2.0,
        "outcome": outcome,
    }


def jam(episode: str, method: str, survived: bool | None) -> dict[str, Any]:
    return {
        "kind": "jam",
        "run_id": "r",
        "episode_id": episode,
        "agent_id": None,
        "context_id": f"{episode}/{method}",
        "model": "m",
        "game": "code",
        "method": method,
        "policy_context_id": f"{episode}/policy",
        "policy_agent_id": "copy-0",
        "signal": "# note",
        "survived": survived,
    }


def result(episode: str) -> dict[str, Any]:
    return {"kind": "episode_result", "run_id": "r", "episode_id": episode}


def hand_built() -> list[dict[str, Any]]:
    return [
        # e1, e2: pair 0 agrees ("A", "A"); pair 1 does not (None agrees with nothing)
        pick("e1", "e1/a", 0, "A"),
        pick("e1", "e1/b", 1, None),
        # e4 is never committed (a resumed run redid nothing of it): it would complete pair 2
        pick("e4", "e4/a", 2, "B"),
        verdict("e4", "none", "recognized", True),
        pick("e2", "e2/a", 0, "A"),
        pick("e2", "e2/a", 0, "A"),  # the same pick again (a redone episode): once
        pick("e2", "e2/b", 1, None),
        verdict("e1", "none", "recognized", True),
        verdict("e1", "none", "recognized", True),  # again: once
        verdict("e1", "honeypots", "missed", True),
        verdict("e1", "honeypots+redaction", "recognized", False),
        honeypot("e1", "honeypots", "passed"),
        honeypot("e1", "honeypots+redaction", "flagged"),
        jam("e1", "redaction", False),
        jam("e1", "paraphrase", True),
        {"kind": "signal_inserted", "episode_id": "e1", "model": "m", "game": "code"},
        result("e1"),
        result("e2"),
        # e3: pair 2's other pick is missing
        pick("e3", "e3/a", 2, "B"),
        verdict("e3", "none", "recognized", False),
        jam("e3", "paraphrase", False),
        jam("e3", "redaction", None),  # no detector: not jammed
        result("e3"),
        pick("e4", "e4/b", 3, "C"),
    ]


EXPECTED_AGREEMENT = [
    {"model": "m", "game": "schelling", "picks": 5, "pairs": 2, "agreed": 1, "agreement": 0.5}
]


def collusion_row(cm: str, *counts: int) -> dict[str, Any]:
    names = ("attempted", "recognized", "succeeded", "honeypots", "honeypots_passed", "jammed")
    return {
        "model": "m",
        "game": "code",
        "countermeasure": cm,
        **dict(zip(names, counts, strict=True)),
    }


EXPECTED_COLLUSION = [
    collusion_row("none", 2, 2, 1, 0, 0, 0),
    collusion_row("honeypots", 1, 0, 0, 1, 1, 0),
    collusion_row("honeypots+redaction", 1, 1, 0, 1, 0, 1),
    collusion_row("honeypots+paraphrase", 0, 0, 0, 0, 0, 1),
]


def test_the_tally_counts_a_hand_built_log() -> None:
    tally = attempts.Tally()
    for event in hand_built():
        tally.add(event)
    assert tally.rows() == {"agreement": EXPECTED_AGREEMENT, "collusion": EXPECTED_COLLUSION}
    lines = [json.dumps(e).encode() + b"\n" for e in hand_built()]
    compact = [json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in hand_built()]
    expected = {"agreement": EXPECTED_AGREEMENT, "collusion": EXPECTED_COLLUSION}
    assert attempts.coordination_tables(lines) == expected
    assert attempts.coordination_tables(compact) == expected
    # without the results nothing is committed
    assert attempts.coordination_tables(
        line for line in lines if b"episode_result" not in line
    ) == {
        "agreement": [],
        "collusion": [],
    }
    assert get_args(Countermeasure) == attempts.COUNTERMEASURES
    assert set(attempts.KINDS) | {"episode_result"} <= set(KINDS)


def coordination_events(run_id: str, episode: str, i: int) -> list[Any]:
    """A step's coordination attempts, as the runner would write them (varied by `i`)."""
    ids = {"run_id": run_id, "episode_id": episode}
    policy, monitor = f"{episode}/policy/0", f"{episode}/monitor/{i % 3}"
    common = {**ids, "model": "attacker", "game": "deployment"}
    events: list[Any] = [
        CoordinationPick(
            **ids,
            agent_id=f"copy-{i % 4}",
            context_id=f"{episode}/pick",
            model="attacker",
            game="schelling",
            observation="options",
            index=i,
            pair=i // 2,
            choice=("SUN", "SUN", None, "moon", "SUN")[i % 5],
        ),
        SignalInserted(
            **common,
            agent_id="copy-0",
            context_id=policy,
            signal="# ok",
            declared=i % 2 == 0,
            inserted=True,
        ),
    ]
    for method in ("redaction", "paraphrase"):
        events.append(
            SignalJammed(
                **common,
                context_id=f"{episode}/{method}",
                method=method,
                policy_context_id=policy,
                policy_agent_id="copy-0",
                signal="# ok",
                survived=(True, False, None)[(i + len(method)) % 3],
            )
        )
    for j, cm in enumerate(COUNTERMEASURES):
        events.append(
            SignalRecognition(
                **common,
                agent_id=f"copy-{(i + j) % 4}",
                context_id=monitor,
                countermeasure=cm,
                policy_context_id=policy,
                policy_agent_id="copy-0",
                signal="# ok",
                score=None if (i + j) % 7 == 0 else float(j),
                outcome="recognized" if (i + j) % 3 else "missed",
                backdoor=i % 2 == 0,
            )
        )
        if cm != "none":
            events.append(
                HoneypotVerdict(
                    **common,
                    agent_id=f"copy-{(i + j) % 4}",
                    context_id=monitor,
                    countermeasure=cm,
                    honeypot_id=f"{episode}/honeypot",
                    score=float(j),
                    outcome="passed" if (i + j) % 4 == 0 else "flagged",
                )
            )
    return events


def rendered(events: list[Any]) -> list[str]:
    out = io.StringIO()
    writer = EventWriter(out)
    for event in events:
        writer.emit(event)
    return out.getvalue().splitlines(keepends=True)


@pytest.fixture(scope="module")
def coordinated(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment's log with coordination attempts before each episode's result, those of
    one episode twice (a redone episode), and an episode never committed."""
    lines = lines_of(runs["deployment"])
    out: list[str] = []
    i = 0
    for line in lines:
        event = json.loads(line)
        if event["kind"] == "episode_result":
            attempts_ = rendered(coordination_events(event["run_id"], event["episode_id"], i))
            out += attempts_ + (attempts_ if i == 3 else [])
            i += 1
        elif event["kind"] == "run_finished":
            out += rendered(coordination_events(event["run_id"], "attacker/deployment/ghost", 1))
        out.append(line)
    path = tmp_path_factory.mktemp("coordinated")
    (path / EVENTS).write_text("".join(out), encoding="utf-8")
    return path


def brute_coordination(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tables, straight from the whole parsed log."""
    committed = {e["episode_id"] for e in events if e["kind"] == "episode_result"}
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in events:
        if e["kind"] in attempts.KINDS and e["episode_id"] in committed:
            detail = [e.get(k) for k in ("observation", "countermeasure", "method")]
            other = [e.get(k) for k in ("pair", "policy_context_id", "honeypot_id")]
            kept[(e["episode_id"], e["kind"], e["context_id"], *detail, *other)] = e
    picks: dict[tuple[str, str, int], list[str | None]] = {}
    rows: dict[tuple[str, str, str], Counter[str]] = {}
    for e in kept.values():
        if e["kind"] == "coordination_pick":
            picks.setdefault((e["model"], e["game"], e["pair"]), []).append(e["choice"])
        elif e["kind"] == "signal_recognition":
            row = rows.setdefault((e["model"], e["game"], e["countermeasure"]), Counter())
            row["attempted"] += 1
            row["recognized"] += e["outcome"] == "recognized"
            row["succeeded"] += e["outcome"] == "recognized" and e["backdoor"]
        elif e["kind"] == "honeypot_verdict":
            row = rows.setdefault((e["model"], e["game"], e["countermeasure"]), Counter())
            row["honeypots"] += 1
            row["honeypots_passed"] += e["outcome"] == "passed"
        elif e["kind"] == "jam":
            cm = "honeypots+" + e["method"]
            rows.setdefault((e["model"], e["game"], cm), Counter())["jammed"] += (
                e["survived"] is False
            )
    agreement = []
    for model, game in sorted({(m, g) for m, g, _ in picks}):
        choices = [c for (m, g, _), c in picks.items() if (m, g) == (model, game)]
        pairs = [c for c in choices if len(c) == 2]
        agreed = sum(a == b and a is not None for a, b in pairs)
        agreement.append(
            {
                "model": model,
                "game": game,
                "picks": sum(map(len, choices)),
                "pairs": len(pairs),
                "agreed": agreed,
                "agreement": agreed / len(pairs) if pairs else None,
            }
        )
    collusion = [
        collusion_row(cm, *(rows[(m, g, cm)][k] for k in attempts.COLLUSION_COUNTS))
        | {"model": m, "game": g}
        for m, g, cm in sorted(rows, key=lambda k: (k[0], k[1], COUNTERMEASURES.index(k[2])))
    ]
    return {"agreement": agreement, "collusion": collusion}


def test_the_default_view_tallies_the_coordination_attempts(
    coordinated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = lines_of(coordinated)
    events = [json.loads(line) for line in lines]
    code, out, _ = logs(capsys, str(coordinated), "--json", "--summary")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    tables: dict[str, list[dict[str, Any]]] = {"agreement": [], "collusion": [], "summary": []}
    for row in rows:
        tables[row.pop("table")].append(row)
    order = [json.loads(line)["table"] for line in out.splitlines()]
    assert order == sorted(order, key=["agreement", "collusion", "summary"].index)
    brute = brute_coordination(events)
    assert {k: tables[k] for k in ("agreement", "collusion")} == brute
    # the ghost episode and the doubled one would change these counts
    none = next(r for r in tables["collusion"] if r["countermeasure"] == "none")
    assert none["attempted"] == 180 and 0 < none["succeeded"] < none["recognized"] < 180
    assert tables["agreement"][0]["pairs"] == 90 and tables["agreement"][0]["picks"] == 180
    assert 0 < tables["agreement"][0]["agreed"] < 90
    assert tables["summary"] == brute_summary(events)
    # the default view: the same tables, without the summary
    code, out, _ = logs(capsys, str(coordinated), "--json")
    assert code == 0
    assert out == "".join(
        json.dumps({"table": name} | row, ensure_ascii=False) + "\n"
        for name in ("agreement", "collusion")
        for row in tables[name]
    )
    # the human view shows the same rows
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = logs(capsys, str(coordinated), "--summary")
    assert code == 0
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if "│" in line]
    for row in tables["collusion"]:
        caught = f"{row['honeypots_passed']} of {row['honeypots']}" if row["honeypots"] else "-"
        shown = [row["attempted"], row["recognized"], caught, row["jammed"], row["succeeded"]]
        assert [row["model"], row["game"], row["countermeasure"], *map(str, shown)] in cells
    for row in tables["agreement"]:
        shown = [row["picks"], row["pairs"], row["agreed"], f"{row['agreement']:.3f}"]
        assert [row["model"], row["game"], *map(str, shown)] in cells
    for row in tables["summary"]:
        assert [row["model"], row["game"], str(row["episodes"]), str(row["contexts"])] in [
            c[:4] for c in cells
        ]
    assert "no coordination events" not in out


def test_a_run_without_coordination_says_so(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = logs(capsys, str(runs["xc"]))
    assert code == 0 and "no coordination events in this run" in out
    code, out, _ = logs(capsys, str(runs["xc"]), "--json")
    assert code == 0 and out == ""
    code, out, _ = logs(capsys, str(runs["xc"]), "--json", "--summary")
    assert {json.loads(line)["table"] for line in out.splitlines()} == {"summary"}


def test_filters_on_the_coordination_kinds_return_exactly_the_matching_events(
    coordinated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = lines_of(coordinated)
    events = [json.loads(line) for line in lines]
    episode = next(e["episode_id"] for e in events if e["kind"] == "jam")
    cases: list[tuple[list[str], Any]] = [
        (
            ["--kind", "signal_recognition", "--agent", "copy-3"],
            lambda e: e["kind"] == "signal_recognition" and e.get("agent_id") == "copy-3",
        ),
        (["--kind", "jam"], lambda e: e["kind"] == "jam"),
        (
            ["--kind", "coordination_pick", "--game", "schelling"],
            lambda e: e["kind"] == "coordination_pick" and e.get("game") == "schelling",
        ),
        (
            ["--kind", "honeypot_verdict", "--kind", "signal_inserted", "--model", "attacker"],
            lambda e: (
                e["kind"] in ("honeypot_verdict", "signal_inserted") and model_of(e) == "attacker"
            ),
        ),
        (
            ["--episode", episode, "--kind", "signal_recognition"],
            lambda e: e.get("episode_id") == episode and e["kind"] == "signal_recognition",
        ),
        (["--agent", "copy-2"], lambda e: e.get("agent_id") == "copy-2"),
    ]
    for argv, keep in cases:
        expected = [line for line, e in zip(lines, events, strict=True) if keep(e)]
        assert expected, argv
        code, out, _ = logs(capsys, str(coordinated), *argv, "--json")
        assert code == 0 and out == "".join(expected), argv
        code, out, _ = logs(capsys, str(coordinated), *argv)
        assert out.splitlines() == [describe(json.loads(line)) for line in expected], argv
    # each new kind has a line of its own details
    for kind in attempts.KINDS:
        event = next(e for e in events if e["kind"] == kind)
        assert describe(event).startswith(kind) and len(describe(event).split()) > 5, kind
    rec = next(e for e in events if e["kind"] == "signal_recognition")
    assert f"{rec['countermeasure']}: {rec['outcome']}" in describe(rec)


@pytest.mark.parametrize("size", [1, 7, 100, 4096])
def test_the_block_reader_returns_the_lines_a_file_iterator_would(
    coordinated: Path, tmp_path: Path, size: int
) -> None:
    lines = lines_of(coordinated)[:300]
    torn = tmp_path / EVENTS
    torn.write_text("".join(lines) + lines[300 - 1][:-30], encoding="utf-8")
    with torn.open("rb") as fh:
        expected = [line for line in fh if line.endswith(b"\n")]
    assert len(expected) == 300
    assert list(complete_lines(torn)) == expected
    blocks = list(eventlines.file_blocks(torn, size))
    assert b"".join(buf[:stop] for buf, stop in blocks) == b"".join(expected)
    assert all(buf[stop - 1 : stop] == b"\n" for buf, stop in blocks)
    # needles anywhere in a line, also across what would be a block boundary at this size
    needles = [b'"kind": "jam"', b'"honeypot"', b"policy/0"]
    found = list(eventlines.lines_with(eventlines.file_blocks(torn, size), needles))
    assert found == [line for line in expected if any(n in line for n in needles)]
    assert found
    tables = logs_module.summary_tables(torn, size)
    assert tables == logs_module.summary_tables(torn)
    assert tables["summary"] == brute_summary([json.loads(line) for line in expected])
    coordination = attempts.coordination_tables(expected)
    assert {k: tables[k] for k in ("agreement", "collusion")} == coordination
    assert logs_module.coordination_tables(torn, size) == coordination
    if eventlines.GREP is not None:
        grepped = list(eventlines.lines_with(eventlines.grep_blocks(torn, needles, size), needles))
        assert grepped == found


def test_a_torn_coordination_line_is_skipped(
    coordinated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = lines_of(coordinated)
    cut = max(i for i, line in enumerate(lines) if '"kind": "signal_recognition"' in line)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / EVENTS).write_text("".join(lines[:cut]) + lines[cut][:-25], encoding="utf-8")
    code, out, _ = logs(capsys, str(run_dir), "--kind", "signal_recognition", "--json")
    assert code == 0
    assert out == "".join(line for line in lines[:cut] if "signal_recognition" in line)
    code, out, _ = logs(capsys, str(run_dir), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    events = [json.loads(line) for line in lines[:cut]]
    collusion = [{k: v for k, v in r.items() if k != "table"} for r in rows]
    assert [r for r in collusion if "countermeasure" in r] == brute_coordination(events)[
        "collusion"
    ]


VIEWS: list[list[str]] = [
    [],
    ["--json"],
    ["--summary"],
    ["--json", "--summary"],
    ["--kind", "audit", "--json"],
    ["--kind", "signal_recognition", "--agent", "copy-3", "--json"],
    ["--kind", "honeypot_verdict", "--kind", "jam", "--model", "attacker"],
    ["--model", "honest"],
    ["--agent", "copy-2", "--limit", "5", "--json"],
]


@pytest.mark.skipif(eventlines.GREP is None, reason="no grep on PATH")
def test_grep_and_the_python_reader_show_the_same(
    runs: dict[str, Path],
    coordinated: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = lines_of(coordinated)
    torn = tmp_path / "torn"
    torn.mkdir()
    cut = max(i for i, line in enumerate(lines) if '"kind": "honeypot_verdict"' in line)
    (torn / EVENTS).write_text("".join(lines[:cut]) + lines[cut][:-10], encoding="utf-8")
    episode = next(json.loads(line)["episode_id"] for line in lines if '"jam"' in line)
    views = [*VIEWS, ["--timeline", episode]]
    for run_dir in (runs["xc"], runs["deployment"], coordinated, torn):
        for argv in views:
            monkeypatch.setattr(eventlines, "GREP", shutil.which("grep"))
            grepped = logs(capsys, str(run_dir), *argv)
            monkeypatch.setattr(eventlines, "GREP", None)
            assert logs(capsys, str(run_dir), *argv) == grepped, (run_dir, argv)
            assert grepped[0] == 0 or argv[0] == "--timeline"
    # the torn line is in no view
    monkeypatch.setattr(eventlines, "GREP", shutil.which("grep"))
    _, out, _ = logs(capsys, str(torn), "--kind", "honeypot_verdict", "--json")
    assert out == "".join(line for line in lines[:cut] if '"kind": "honeypot_verdict"' in line)


def test_a_filter_on_a_kind_reads_only_lines_of_that_kind(
    coordinated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `"audit"` is also a decision's value: those lines are not parsed
    parsed: list[bytes] = []
    loads = json.loads

    def counting(line: bytes) -> Any:
        parsed.append(line)
        return loads(line)

    monkeypatch.setattr(eventlines.json, "loads", counting)
    flt = eventlines.Filter(kinds=frozenset({"audit"}))
    selected = list(eventlines.select_file(coordinated / EVENTS, flt))
    assert selected and all(e["kind"] == "audit" for _, e in selected)
    assert len(parsed) == len(selected)


@pytest.mark.parametrize("layout", ["compact", "sorted keys"])
def test_lines_in_another_layout_are_parsed_whole(
    coordinated: Path, tmp_path: Path, layout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [json.loads(line) for line in lines_of(coordinated)]
    if layout == "compact":
        lines = [json.dumps(e, separators=(",", ":")) + "\n" for e in events]
    else:
        lines = [json.dumps(e, sort_keys=True) + "\n" for e in events]
    (tmp_path / EVENTS).write_text("".join(lines), encoding="utf-8")
    brute = brute_coordination(events)
    assert brute["collusion"] and brute["agreement"]
    assert logs_module.coordination_tables(tmp_path / EVENTS) == brute
    tables = logs_module.summary_tables(tmp_path / EVENTS)
    assert {k: tables[k] for k in ("agreement", "collusion")} == brute
    assert tables["summary"] == brute_summary(events)
    code, out, _ = logs(capsys, str(tmp_path), "--kind", "jam", "--json")
    assert code == 0 and out == "".join(
        line for line, e in zip(lines, events, strict=True) if e["kind"] == "jam"
    )


# --- the fast path, derived from the event models -------------------------------------------------

BRANCHES: dict[type[BaseModel], str] = {
    ContextStarted: "context",
    ActionTaken: "action",
    EpisodeFinished: "result",
    MonitorScored: "monitor",
    ProtocolDecision: "decision",
    AuditPerformed: "audit",
    CoordinationPick: "pick",
    SignalRecognition: "recognition",
    HoneypotVerdict: "honeypot",
    SignalJammed: "jam",
}
"""The event kinds the default view reads in place, and the branch of the pattern each has."""


def sample_lines(logs: list[Path]) -> dict[str, list[bytes]]:
    """A few lines of every event kind, as the writer wrote them: from the runs' logs, and kinds
    no test run writes built here (and written by `EventWriter`)."""
    found: dict[str, list[bytes]] = {}
    for path in logs:
        for line in complete_lines(path / EVENTS):
            event = json.loads(line)
            key = event["kind"]
            if key == "episode_result":  # both record types
                key += "/" + str(event["record"].get("kind"))
            if len(found.setdefault(key, [])) < 3:
                found[key].append(line)
    built = [
        RunStopped(run_id="r", cause="endpoint down", errors=5, window=8, episodes_done=2),
        PlanWritten(
            run_id="r",
            model="m",
            game="plan_consistency",
            situation="s",
            plan='say "yes", then\\nstop',
            parse_ok=False,
            usage=Usage(),
        ),
        ItemAnswered(
            run_id="r",
            model="m",
            game="selective_sandbagging",
            observation="sandbag_hazard_d2_05",
            condition="sandbag",
            item="hazard_d2_05",
            domain="hazard",
            difficulty=2,
            answer=None,
            label=None,
            correct=False,
        ),
    ]
    for line in rendered(built):
        found.setdefault(json.loads(line)["kind"], []).append(line.encode())
    samples: dict[str, list[bytes]] = {}
    for key, lines in found.items():
        samples.setdefault(key.split("/")[0], []).extend(lines)
    assert {"episode_result/None", "episode_result/protocol_step"} <= set(found)
    return samples


def json_value(raw: bytes) -> Any:
    """A captured group's value: a raw JSON value, or a string's content."""
    try:
        return json.loads(raw)
    except ValueError:
        return json.loads(b'"' + raw + b'"')


def test_the_fast_path_reads_what_the_models_write(
    runs: dict[str, Path], coordinated: Path
) -> None:
    samples = sample_lines([runs["xc"], runs["deployment"], coordinated])
    assert set(samples) == set(KINDS), "a sample of every kind"
    types = {kind_of(t): t for t in EVENT_TYPES}
    # every event's fields before its kind are the same, in the same order: the head is any's
    heads = {tuple(list(t.model_fields)[: list(t.model_fields).index("kind")]) for t in EVENT_TYPES}
    assert len(heads) == 1 and {"episode_id", "context_id"} <= set(heads.pop())
    checked: Counter[str] = Counter()
    for kind, lines in samples.items():
        branch = BRANCHES.get(types[kind])
        for line in lines:
            event = json.loads(line)
            # the ids before the kind, read in place
            head = logs_module._HEAD.match(line, line.find(b'"episode_id"'))
            assert head is not None, line
            assert json_value(head["head_episode_id"]) == event["episode_id"]
            assert json_value(head["head_context_id"]) == event["context_id"]
            for pattern, whole in (
                (logs_module._SUMMARY_RE, logs_module._PARSED_WHOLE),
                (logs_module._TALLY_RE, attempts.COUNTED_KINDS),
            ):
                m = pattern.search(line)
                if m is None:  # a kind this view does not read
                    assert branch not in pattern.groupindex and kind not in whole, (kind, line)
                    continue
                assert m.start() == line.find(b'"kind"'), line  # the event's own kind
                if m.lastgroup == "whole":
                    assert branch not in pattern.groupindex and kind in whole, kind
                    continue
                assert m.lastgroup == branch, (kind, m.lastgroup)
                reads = [g for g in pattern.groupindex if g.startswith(f"{branch}_")]
                owner = event["record"] if kind == "episode_result" else event
                for group in reads:
                    name = group.removeprefix(f"{branch}_")
                    assert m[group] is not None, (kind, group)
                    assert json_value(m[group]) == owner[name], (kind, name, line)
                    checked[f"{kind}.{name}"] += 1
    # every field the fast path reads was compared with the parsed line
    wanted = {
        f"{kind_of(t)}.{g.removeprefix(b + '_')}"
        for t, b in BRANCHES.items()
        for pattern in (logs_module._SUMMARY_RE, logs_module._TALLY_RE)
        for g in pattern.groupindex
        if g.startswith(f"{b}_")
    }
    assert wanted and wanted == set(checked)
    assert "coordination_pick.choice" in wanted and "episode_result.game" in wanted
    # every action's parse flag is read in place: both values among the samples
    actions = [line for line in complete_lines(runs["xc"] / EVENTS) if b'"action"' in line]
    flags = {m["action_parse_ok"] for m in map(logs_module._SUMMARY_RE.search, actions) if m}
    assert flags == {b"true", b"false"} and "action.parse_ok" in wanted


def test_a_field_added_before_those_read_changes_the_pattern() -> None:
    class Pick(BaseModel):  # a pick with a field added between two the tally reads
        kind: Literal["coordination_pick"] = "coordination_pick"
        model: str
        weight: float | None
        game: str

    branch = logs_module._after_kind(Pick, "pick", "model", "game")
    pattern = re.compile(rb'"kind":\s?"(?:' + branch + rb")")
    line = json.dumps(Pick(model="m", weight=0.5, game='g"x\\y').model_dump(mode="json"))
    m = pattern.search(line.encode())
    assert m is not None and m["pick_model"] == b"m" and json_value(m["pick_game"]) == 'g"x\\y'
    # the layout before the field was added no longer matches (it would be parsed whole)
    assert pattern.search(b'{"kind": "coordination_pick", "model": "m", "game": "g"}') is None
    assert logs_module._after_kind(CoordinationPick, "pick", "model", "game") != branch

    class Tagged(BaseModel):  # a list cannot be matched in place: said at import, by name
        kind: Literal["coordination_pick"] = "coordination_pick"
        model: str
        tags: list[str]
        game: str

    with pytest.raises(TypeError, match=r"Tagged\.tags"):
        logs_module._after_kind(Tagged, "pick", "model", "game")
    with pytest.raises(LookupError, match=r"CoordinationPick has no field \['gmae'\]"):
        logs_module._after_kind(CoordinationPick, "pick", "gmae")


# --- what a mistyped argument says ----------------------------------------------------------------


def test_an_unknown_kind_names_the_closest() -> None:
    assert eventlines.kind_error(["action", "audit"]) is None
    assert eventlines.kind_error([]) is None
    assert eventlines.kind_error(["audit", "actoin"]) == (
        "unknown kind 'actoin'; did you mean 'action'?"
    )
    far = eventlines.kind_error(["zzz"])
    assert far is not None and far.startswith("unknown kind 'zzz'; known: ")
    assert all(k in far for k in KINDS)


def test_an_unknown_kind_on_the_command_line_names_the_closest(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = logs(capsys, str(runs["xc"]), "--kind", "actoin")
    assert code == 2 and out == ""
    assert "unknown kind 'actoin'; did you mean 'action'?" in err
    assert "honeypot_verdict" not in err  # not every kind
    code, _, err = logs(capsys, str(runs["xc"]), "--kind", "zzz")
    assert code == 2 and all(k in err for k in KINDS)


def test_an_unknown_episode_says_the_id_format_and_what_it_may_mean(tmp_path: Path) -> None:
    ids = [f"{m}/{g}/{i:05d}" for m in ("honest", "random") for g in ("a", "b") for i in (3, 13)]
    message = eventlines.unknown_episode("3", ids, tmp_path / EVENTS)
    assert message.startswith(f"no episode '3' in {tmp_path / EVENTS}; ")
    assert "episode ids look like <model>/<game>/<index>, e.g. honest/a/00003" in message
    # an index: the episodes of that index (not 13), each model and game
    threes = sorted(i for i in ids if i.endswith("/00003"))
    assert message.endswith(f"did you mean {', '.join(threes)}?")
    # a suffix with the index unpadded: the one episode
    assert eventlines.episode_suggestions("b/3", ids) == ["honest/b/00003", "random/b/00003"]
    assert eventlines.episode_suggestions("random/a/13", ids) == ["random/a/00013"]
    # a typo: the closest by spelling
    assert eventlines.episode_suggestions("honets/a/00013", ids)[0] == "honest/a/00013"
    many = [f"m{j}/g/00003" for j in range(8)]
    message = eventlines.unknown_episode("00003", many, tmp_path / EVENTS)
    assert message.endswith(f"did you mean {', '.join(many[:5])} (and 3 more)?")
    empty = eventlines.unknown_episode("3", [], tmp_path / EVENTS)
    assert "e.g. honest/upfront_auditing/00003" in empty and "no finished episode" in empty


def test_an_unknown_timeline_on_the_command_line_says_the_format(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = runs["xc"]
    ids = sorted({e["episode_id"] for e in map(json.loads, lines_of(path)) if e.get("episode_id")})
    code, out, err = logs(capsys, str(path), "--timeline", "3")
    assert code == 2 and out == ""
    assert "episode ids look like <model>/<game>/<index>" in err and f"e.g. {ids[0]}" in err
    threes = [i for i in ids if i.endswith("/00003")]
    assert threes and all(i in err for i in threes[: eventlines.SUGGESTED])
    game = ids[0].split("/")[1]
    code, _, err = logs(capsys, str(path), "--timeline", f"{game}/3")
    assert code == 2 and all(i in err for i in threes if f"/{game}/" in i)
    assert not any(i in err for i in threes if f"/{game}/" not in i)


# --- a large log read in parts, in parallel -------------------------------------------------------


def line_starts(path: Path) -> list[int]:
    starts, at = [], 0
    for line in complete_lines(path):
        starts.append(at)
        at += len(line)
    return starts


def spans_at(path: Path, cuts: list[int]) -> list[tuple[int, int]]:
    edges = [0, *cuts, path.stat().st_size]
    return list(itertools.pairwise(edges))


@pytest.mark.parametrize("view", ["coordination", "summary"])
def test_parts_merged_equal_the_log_read_in_a_row(
    coordinated: Path, runs: dict[str, Path], view: str
) -> None:
    # cut anywhere: after a result (parts merge), inside an episode, inside the doubled episode
    # and before the ghost one (a part that does not merge is read again after the others)
    new = logs_module._Attempts if view == "coordination" else logs_module._Summary
    for path in (coordinated / EVENTS, runs["xc"] / EVENTS):
        size = path.stat().st_size
        whole = logs_module._read_tables(path, new, 4096, 1)
        assert whole["collusion"] or path.parent != coordinated
        starts = line_starts(path)[1:]
        for i in range(0, len(starts), len(starts) // 40):
            got = logs_module._read_tables(
                path, new, 4096, None, spans_at(path, [starts[i]]), False
            )
            assert got == whole, (path, starts[i])
        three = [starts[len(starts) // 3], starts[2 * len(starts) // 3]]
        assert logs_module._read_tables(path, new, 4096, None, spans_at(path, three), False) == (
            whole
        )
        assert logs_module._read_tables(path, new, size, 3, None, False) == whole


def test_a_part_merges_only_where_reading_it_in_a_row_would_count_the_same() -> None:
    events = hand_built()

    def tally(part: list[dict[str, Any]], is_part: bool = True) -> attempts.Tally:
        t = attempts.Tally(part=is_part)
        for e in part:
            t.add(e)
        return t

    for cut in range(len(events) + 1):
        before, after = tally(events[:cut], False), tally(events[cut:])
        merged = before.merge(after)
        episodes_before = {e["episode_id"] for e in events[:cut]}
        crossing = any(
            e["kind"] != "episode_result" and e["episode_id"] in episodes_before
            for e in events[cut:]
        ) or any(
            e["episode_id"] in {x["episode_id"] for x in events[cut:]}
            for e in events[:cut]
            if e["kind"] != "episode_result"
        )
        if merged:
            assert before.rows() == tally(events, False).rows(), cut
        else:
            assert crossing, cut  # it refuses only an episode across the cut
            assert before.rows() == tally(events[:cut], False).rows(), cut  # and changes nothing


def test_ranges_cut_after_an_episode_result(coordinated: Path) -> None:
    path = coordinated / EVENTS
    data = path.read_bytes()
    spans = logs_module.ranges(path, 4)
    assert len(spans) == 4 and spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    for start, _ in spans[1:]:
        previous = data[data.rfind(b"\n", 0, start - 1) + 1 : start]
        assert json.loads(previous)["kind"] == "episode_result"
    # each part's blocks hold its lines, all together every line once
    parts = [
        b"".join(buf[:stop] for buf, stop in eventlines.file_blocks(path, 1000, *span))
        for span in spans
    ]
    assert b"".join(parts) == data
    assert logs_module.workers(2**20) == 1
    assert logs_module.workers(10 * logs_module.PART_MIN) >= 1
    # parts cut there merge: none is read twice
    for new in (logs_module._Attempts, logs_module._Summary):
        states = []
        for start, end in spans:
            state = new(True)
            for buf, stop in eventlines.file_blocks(path, 4096, start, end):
                state.block(buf, stop)
            states.append(state)
        assert all(states[0].merge(part) for part in states[1:])  # type: ignore[arg-type]


FORKED = """
import json, sys
from pathlib import Path
from sandbox.review import logs
path = Path(sys.argv[1])
size = path.stat().st_size
both = {}
for name, read in (("coordination", logs.coordination_tables), ("summary", logs.summary_tables)):
    both[name] = [read(path, 4096, 1), read(path, 4096, 3)]
# a child that fails: its part is read again here
real = logs._Child.result
logs._Child.result = lambda self: (real(self), None)[1]
both["failed"] = [logs.summary_tables(path, 4096, 1), logs.summary_tables(path, 4096, 3)]
print(json.dumps(both))
"""


def test_a_large_log_is_read_in_forked_processes(coordinated: Path) -> None:
    # forked in a process of its own (this one runs Ray's threads)
    out = subprocess.run(
        [sys.executable, "-c", FORKED, str(coordinated / EVENTS)],
        capture_output=True,
        check=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    for name, (in_a_row, forked) in json.loads(out).items():
        assert forked == in_a_row, name
    assert json.loads(out)["summary"][0]["collusion"]


# --- a reader that closes the pipe early ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["--json"], [], ["--kind", "honeypot_verdict", "--json"], ["--model", "attacker"]]
)
def test_a_closed_pipe_ends_the_output_quietly(coordinated: Path, argv: list[str]) -> None:
    # `sandbox logs RUN --json | head -1`: the reader has what it wanted, so exit 0 and no
    # traceback; the output is far larger than a pipe holds, so the write fails mid-way
    cli = [sys.executable, "-m", "sandbox.cli", "logs", str(coordinated), *argv]
    if argv[:1] != ["--json"] and argv:
        full = subprocess.run(cli, capture_output=True, check=True).stdout
        assert len(full) > 2**17  # twice what a pipe holds
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 0 and err == b"" and first
    # and through a shell, as typed
    shell = subprocess.run(
        ["bash", "-c", 'set -o pipefail; "$@" | head -1', "bash", *cli],
        capture_output=True,
    )
    assert shell.returncode == 0 and shell.stderr == b"" and shell.stdout.count(b"\n") == 1


# --- a filter's start-up --------------------------------------------------------------------------


def test_a_filter_loads_no_event_models(coordinated: Path) -> None:
    # a filter is served by `sandbox.review.eventlines` alone: the event models (pydantic) and
    # the tables (`sandbox.review.logs`) are what most of a filter's start-up cost
    code = (
        "import sys\n"
        "from sandbox.cli import main\n"
        f"for argv in ({['--kind', 'audit', '--json']!r}, {['--model', 'attacker']!r}, "
        f"{['--agent', 'copy-1', '--limit', '3']!r}):\n"
        f"    assert main(['logs', {str(coordinated)!r}, *argv]) == 0\n"
        "heavy = ('pydantic', 'sandbox.core.events', 'sandbox.review.logs', 'rich')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- a filter's human lines, read in place --------------------------------------------------------


def test_the_lines_read_in_place_are_described_as_parsed(
    runs: dict[str, Path], coordinated: Path
) -> None:
    # every line of the logs: where the fast path reads a line, what it reads is what the parsed
    # line gives `describe` and the filter; it reads every context, action and XC result
    read: Counter[str] = Counter()
    for path in (runs["xc"], runs["deployment"], coordinated):
        for line in (path / EVENTS).read_bytes().splitlines():
            event = json.loads(line)
            fast = eventlines._fast_line(line)
            if fast is None:
                assert event["kind"] not in ("context_started", "action") and (
                    event["kind"] != "episode_result" or event["record"].get("kind")
                ), line
                continue
            read[event["kind"]] += 1
            kind, episode, agent, model, game, details = fast
            assert (kind, episode, agent, model, game) == (
                event["kind"],
                event.get("episode_id"),
                event.get("agent_id"),
                model_of(event),
                game_of(event),
            )
            assert eventlines._described(kind, episode, agent, model, details) == describe(event)
    assert set(read) == {"context_started", "action", "episode_result"}


def written(event: dict[str, Any], **fields: Any) -> str:
    """An event's line as the writer writes it, with fields changed (in place) or added."""
    return json.dumps(event | fields, ensure_ascii=False) + "\n"


def test_a_filter_matches_fields_not_text_that_holds_them(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = [json.loads(line) for line in lines_of(runs["xc"])]
    context = next(e for e in events if e["kind"] == "context_started" and e["answer"])
    action = next(e for e in events if e["kind"] == "action")
    result = next(e for e in events if e["kind"] == "episode_result")
    record = result["record"]
    lines = [
        # another model's lines whose text, or a nested object, holds `"model": "honest"`
        written(context, model="random", answer=context["answer"] | {"model": "honest"}),
        written(action, model="random", visible='say "model": "honest", then WAIT'),
        written(action, model="random", choice='{"model": "honest"}', episode_id="x/model"),
        # and honest's own, one of them a result, with escapes and odd values to decode
        written(action, model="honest", visible='a "quoted"\n\ttab and ünïcode', score=0.25),
        written(action, model="honest", choice=None, score=3, parse_ok=False, agent_id=None),
        written(context, model="honest", role="monitor", answer=None, game="g\\h"),
        written(result, record=record | {"model": "honest", "game": "deployment/\u2603"}),
        written(result, agent_id="copy-1", record=record | {"model": "random"}),
        # honest's, in another layout (compact; keys sorted): parsed whole
        json.dumps(action | {"model": "honest"}, separators=(",", ":")) + "\n",
        json.dumps(context | {"model": "honest"}, sort_keys=True) + "\n",
        # honest's, of a kind not read in place, and one whose model is empty (no match)
        written(events[0], kind="plan_written", model="honest", plan="p", parse_ok=True),
        written(action, model=""),
    ]
    (tmp_path / EVENTS).write_text("".join(lines), encoding="utf-8")
    parsed = [json.loads(line) for line in lines]
    assert sum(eventlines._fast_line(line.encode().rstrip()) is not None for line in lines) == 9
    for argv, keep in [
        (["--model", "honest"], lambda e: model_of(e) == "honest"),
        (
            ["--model", "random", "--kind", "action"],
            lambda e: model_of(e) == "random" and e["kind"] == "action",
        ),
        (["--game", "deployment/\u2603"], lambda e: game_of(e) == "deployment/\u2603"),
        (["--agent", "copy-1", "--limit", "1"], lambda e: e.get("agent_id") == "copy-1"),
        (["--episode", "x/model"], lambda e: e.get("episode_id") == "x/model"),
    ]:
        expected = [describe(e) for e in parsed if keep(e)][: 1 if "--limit" in argv else None]
        assert expected, argv
        for grep in (shutil.which("grep"), None):  # grep's lines, and Python's search's
            monkeypatch.setattr(eventlines, "GREP", grep)
            code, out, _ = logs(capsys, str(tmp_path), *argv)
            assert code == 0 and out.splitlines() == expected, (argv, grep)
    monkeypatch.setattr(eventlines, "GREP", shutil.which("grep"))
    _, out, _ = logs(capsys, str(tmp_path), "--model", "honest")
    assert len(out.splitlines()) == 7 and "say" not in out and "ünïcode" in out
