"""`sandbox replay`: a finished run re-evaluated from its own log, with no model asked again
for what it already answered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.core.context import CACHED
from sandbox.core.events import EVENT_ADAPTER, CodeChecked, ProtocolDecision, StepRecord
from sandbox.record.runstore import EVENTS, RESULTS, SUMMARY
from tests.test_protocols import deployment_config, run


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("replay")
    path, _ = run(deployment_config(tmp, "trusted_monitoring", steps=40))
    return path


def _replay(source: Path, *overrides: str) -> tuple[Path, dict]:
    before = {p.name for p in source.parent.iterdir()}
    assert main(["replay", str(source), *overrides, "--quiet"]) == 0
    (new,) = [p for p in source.parent.iterdir() if p.name not in before]
    return new, json.loads((new / SUMMARY).read_text())


def _steps(path: Path) -> dict[str, StepRecord]:
    records = [json.loads(line) for line in (path / RESULTS).open()]
    return {r["episode_id"]: StepRecord.model_validate(r) for r in records}


def _checks(path: Path) -> list[CodeChecked]:
    """Every code check the run's steps recorded (with a hash: a reply with code)."""
    return [
        check
        for line in (path / EVENTS).open()
        if '"protocol_decision"' in line
        for check in ProtocolDecision.model_validate_json(line).checks
        if check.check_sha256 is not None
    ]


def test_replay_under_its_own_protocol_is_byte_identical_and_asks_nothing(source: Path) -> None:
    new, summary = _replay(source)
    assert (new / RESULTS).read_bytes() == (source / RESULTS).read_bytes()
    # nor runs any code again: every check is the source's, by the hash of what it checked
    checks = _checks(new)
    assert len(checks) >= 3 * 40 and {c.node for c in checks} == {CACHED}
    assert {c.node for c in _checks(source)} == {"local"}
    assert summary["replay"]["source_run"] == source.name
    assert summary["replay"]["new_contexts"] == {}
    assert summary["replay"]["cached_contexts"]["policy"] == 3 * 40
    original = json.loads((source / SUMMARY).read_text())
    assert summary["models"] == original["models"]
    started = next(EVENT_ADAPTER.validate_json(line) for line in (new / EVENTS).open())
    assert started.source_run == source.name  # type: ignore[union-attr]


def test_a_replay_is_named_after_its_source_and_differs_by_overrides(source: Path) -> None:
    """A replay's directory reads as a replay of its source, not as a new run; replays of one
    run under different overrides get different names, one replayed twice alike a `-2`."""
    first, _ = _replay(source, "control.audit_budget=0.03")
    other, _ = _replay(source, "control.audit_budget=0.04")
    again, _ = _replay(source, "control.audit_budget=0.03")
    assert first.name.startswith(f"{source.name}-replay-")
    assert other.name.startswith(f"{source.name}-replay-") and other.name != first.name
    assert again.name == f"{first.name}-2"
    started = next(EVENT_ADAPTER.validate_json(line) for line in (first / EVENTS).open())
    assert started.run_id == first.name  # type: ignore[union-attr]
    assert started.source_run == source.name  # type: ignore[union-attr]
    assert f"| replay of | {source.name} |" in (first / "report.md").read_text()


def test_swapping_the_protocol_changes_only_its_decisions(source: Path) -> None:
    new, summary = _replay(source, "control.protocol=defer_to_trusted")
    # no policy or monitor context is asked again: only the trusted model's new solutions
    assert "policy" not in summary["replay"]["new_contexts"]
    assert "monitor" not in summary["replay"]["new_contexts"]
    assert summary["replay"]["new_contexts"].get("trusted", 0) > 0
    before, after = _steps(source), _steps(new)
    assert before.keys() == after.keys()
    for episode, old in before.items():
        now = after[episode]
        assert (now.task, now.attacked, now.policy, now.score) == (
            old.task,
            old.attacked,
            old.policy,
            old.score,
        )
        assert now.protocol == "defer_to_trusted" and old.protocol == "trusted_monitoring"
    assert any(after[e].decision == "defer" for e in after)
    assert summary["models"]["attacker"]["deployment"]["protocol"] == "defer_to_trusted"


def test_a_replay_under_another_protocol_equals_a_fresh_run_of_it(
    source: Path, tmp_path: Path
) -> None:
    """Reused answers and reused code checks change nothing: the replay under defer-to-trusted
    records what a run made under it from scratch records, byte for byte. Only checks of code
    the source never checked run (a check reused for other code, say keyed by task or context,
    would make the results differ)."""
    new, _ = _replay(source, "control.protocol=defer_to_trusted")
    fresh, _ = run(deployment_config(tmp_path, "defer_to_trusted", steps=40))
    assert (new / RESULTS).read_bytes() == (fresh / RESULTS).read_bytes()
    source_hashes = {c.check_sha256 for c in _checks(source)}
    checks = _checks(new)
    assert {c.node for c in checks} == {CACHED, "local"}  # reused, and new code checked
    for check in checks:
        assert (check.node == CACHED) == (check.check_sha256 in source_hashes), check


def test_a_check_is_not_reused_under_another_isolation(source: Path) -> None:
    """A sample may behave differently outside the sandbox: under another isolation every
    check runs again (answers are still reused)."""
    new, summary = _replay(source, "settings.isolation=none")
    assert summary["replay"]["new_contexts"] == {}
    checks = _checks(new)
    assert checks and all(c.node == "local" for c in checks)
    assert (new / RESULTS).read_bytes() == (source / RESULTS).read_bytes()


def test_another_backend_setting_is_asked_anew(source: Path) -> None:
    """The cache key holds each model's backend: an attacker with another attack rate is
    another model, whose answers the source's log cannot give."""
    _, summary = _replay(source, "backend.params.organisms.attacker.attack_rate=1.0")
    assert summary["replay"]["new_contexts"]["policy"] > 0
    assert "policy" not in summary["replay"]["cached_contexts"]
    attack = summary["models"]["attacker"]["deployment"]["attack_rate"]
    assert attack["value"] == 1.0


def test_replay_of_a_missing_or_unfinished_run_is_refused(source: Path, tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "nowhere")]) == 2
    unfinished = tmp_path / "unfinished"
    shutil.copytree(source, unfinished)
    lines = (unfinished / EVENTS).read_text().splitlines(keepends=True)
    (unfinished / EVENTS).write_text("".join(lines[:-1]))  # no run_finished
    assert main(["replay", str(unfinished)]) == 2


def test_a_resumed_replay_still_answers_from_its_source(source: Path, tmp_path: Path) -> None:
    """A replay stopped halfway and resumed asks no model either."""
    replayed, _ = _replay(source)
    stopped = tmp_path / replayed.name
    shutil.copytree(replayed, stopped)
    results = (stopped / RESULTS).read_text().splitlines(keepends=True)
    (stopped / RESULTS).write_text("".join(results[: len(results) // 2]))
    events = (stopped / EVENTS).read_text().splitlines(keepends=True)
    (stopped / EVENTS).write_text("".join(events[:-1]))
    (stopped / SUMMARY).unlink()
    assert main(["run", "--resume", str(stopped), "--quiet"]) == 0
    summary = json.loads((stopped / SUMMARY).read_text())
    assert summary["replay"]["source_run"] == source.name
    assert summary["replay"]["new_contexts"] == {}
    assert (stopped / RESULTS).read_bytes() == (source / RESULTS).read_bytes()


def _new_work(path: Path) -> tuple[set[str], set[str | None]]:
    """(the workers that answered a context anew, the nodes that ran a code check anew) in a
    run's log: what its engine did, the record's answers and checks left out."""
    workers: set[str] = set()
    for line in (path / EVENTS).open():
        if '"kind": "action"' in line:
            worker = json.loads(line)["worker"]
            if worker != CACHED:
                workers.add(worker)
    nodes = {c.node for c in _checks(path) if c.node != CACHED}
    return workers, nodes


def test_a_replay_on_the_local_engine_equals_one_on_ray(ray_cluster: str, tmp_path: Path) -> None:
    """A run made on Ray replayed with `engine=local` (in process: no Ray started) records what
    its replay on Ray records, byte for byte, asking the same contexts and running the same
    checks anew, there in this process."""
    data = deployment_config(tmp_path, "trusted_monitoring", steps=20)
    data["engine"] = {"name": "ray", "params": {"address": ray_cluster}}
    source, _ = run(data)
    on_ray, ray_summary = _replay(source, "control.protocol=trusted_editing")
    local, local_summary = _replay(source, "control.protocol=trusted_editing", "engine=local")
    assert (local / RESULTS).read_bytes() == (on_ray / RESULTS).read_bytes()
    assert local_summary["models"] == ray_summary["models"]
    assert local_summary["replay"] == ray_summary["replay"]
    assert local_summary["replay"]["new_contexts"].get("trusted", 0) > 0
    ray_workers, ray_nodes = _new_work(on_ray)
    local_workers, local_nodes = _new_work(local)
    assert local_workers == {"local"} and ray_workers and "local" not in ray_workers
    assert local_nodes <= {"local"} and "local" not in ray_nodes
