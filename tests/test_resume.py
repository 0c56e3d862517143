"""Crash safety: a driver killed with SIGKILL and resumed, and an agent actor killed mid-run, both
leave `results.jsonl` byte-identical to an undisturbed run with the same config and seed.

The Ray runs join the session cluster (`ray_cluster`): in-process through the already connected
driver, in a subprocess through `ray.address=<the session's address>`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.config import config_from_mapping
from sandbox.core.events import EVENT_ADAPTER
from sandbox.record.runstore import CONFIG, EVENTS, RESULTS, SUMMARY, RunDirError, RunStore
from sandbox.run.runner import RunError, Runner, episode_plan
from tests.conftest import REPO, cli_command, run_in_process, small_config

NAMESPACE = "coordination-sandbox"  # sandbox.engines.ray_engine.NAMESPACE

# 3 models x 2 games x K episodes, dispatched BATCH at a time: with scripted organisms this takes
# about two seconds on Ray, long enough to SIGKILL the driver halfway.
K, BATCH = 80, 4
TOTAL = 3 * 2 * K


def _config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "run": {"name": "resume", "seed": 11, "output_dir": str(tmp_path / "runs")},
        "sampling": {"k": K, "played_games": 200, "bootstrap": 200, "batch_episodes": BATCH},
        "games": [
            {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}},
            # a shared plan per (model, situation): a resumed run must reuse, not rewrite, it
            {"name": "plan_consistency", "affordances": {"shared_planning": True}},
        ],
    }
    return small_config(tmp_path, **{**defaults, **sections})


def _lines(path: Path) -> list[str]:
    """The file's lines; fails on a torn (unterminated) last line."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") or not text, f"{path.name} ends with a torn line: {text[-80:]!r}"
    return text.splitlines()


def _complete_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _events(run_dir: Path) -> list[dict[str, Any]]:
    events = []
    for line in _lines(run_dir / EVENTS):
        data = json.loads(line)
        EVENT_ADAPTER.validate_python(data)  # a known event kind with its exact fields
        events.append(data)
    return events


@pytest.fixture(scope="module")
def ray_setup(ray_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Ray config for the module and its undisturbed reference run (in-process)."""
    tmp = tmp_path_factory.mktemp("resume")
    config = _config(tmp, engine="ray", ray={"address": ray_cluster})
    config_file = tmp / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    reference, _ = run_in_process(config)
    return {"config": config, "file": config_file, "out": tmp / "runs", "reference": reference}


# --- the repair logic, no Ray -------------------------------------------------------------------


def test_open_for_resume_drops_torn_result_and_orphan_events(tmp_path: Path) -> None:
    config = _config(tmp_path, sampling={"k": 3, "played_games": 100, "bootstrap": 100})
    full, _ = run_in_process(config)  # the local engine: fast, same results as Ray
    full_results = (full / RESULTS).read_text(encoding="utf-8")
    full_events = _lines(full / EVENTS)
    result_lines = full_results.splitlines()
    assert len(result_lines) == 3 * 2 * 3

    # A crash while writing the 5th result line: 4 whole lines, then half of the 5th. The event
    # log already holds every event of episode 5 and the first event of episode 6, also torn.
    kept_ids = [json.loads(line)["episode_id"] for line in result_lines[:4]]
    torn_id = json.loads(result_lines[4])["episode_id"]
    sixth_id = json.loads(result_lines[5])["episode_id"]
    cut = max(
        i for i, line in enumerate(full_events) if json.loads(line).get("episode_id") == torn_id
    )
    sixth_first = next(
        line for line in full_events if json.loads(line).get("episode_id") == sixth_id
    )
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / CONFIG).write_bytes((full / CONFIG).read_bytes())
    (crashed / RESULTS).write_text(
        "".join(f"{line}\n" for line in result_lines[:4]) + result_lines[4][:40], encoding="utf-8"
    )
    (crashed / EVENTS).write_text(
        "".join(f"{line}\n" for line in [*full_events[: cut + 1], sixth_first]) + sixth_first[:25],
        encoding="utf-8",
    )

    store, resumed_config = RunStore.open_for_resume(crashed)
    assert resumed_config.digest() == config_from_mapping(config).digest()
    assert [r.episode_id for r in store.records()] == kept_ids
    assert (crashed / RESULTS).read_text(encoding="utf-8") == "".join(
        f"{line}\n" for line in result_lines[:4]
    )
    events = _events(crashed)
    episodes = {e["episode_id"] for e in events if e["episode_id"] is not None}
    assert episodes == set(kept_ids)  # episode 5 and 6's orphan events are gone
    finished = [e["episode_id"] for e in events if e["kind"] == "episode_result"]
    assert finished == kept_ids
    # every event of a finished episode is kept, byte for byte, and so are the run-level ones
    expected = [
        line
        for line in full_events[: cut + 1]
        if json.loads(line).get("episode_id") in (None, *kept_ids)
        and json.loads(line)["kind"] != "run_finished"
    ]
    assert _lines(crashed / EVENTS) == expected
    assert sum(e["kind"] == "plan_written" for e in events) == 3  # one per model, kept

    # and finishing the repaired run gives the uninterrupted run's results, byte for byte
    asyncio.run(Runner(resumed_config, store).run())
    assert (crashed / RESULTS).read_text(encoding="utf-8") == full_results
    after = _events(crashed)
    assert sum(e["kind"] == "plan_written" for e in after) == 3  # plans reused, not rewritten
    assert json.loads((crashed / SUMMARY).read_text())["episodes"] == len(result_lines)


def test_crash_between_a_plan_and_its_plan_written_event_logs_no_context_twice(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, sampling={"k": 2, "played_games": 100, "bootstrap": 100})
    full, _ = run_in_process(config)
    full_events = _lines(full / EVENTS)
    # the driver dies right after logging the first plan context's action
    cut = next(i for i, line in enumerate(full_events) if json.loads(line)["kind"] == "action")
    assert json.loads(full_events[cut])["context_id"].endswith("/plan/main")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / CONFIG).write_bytes((full / CONFIG).read_bytes())
    (crashed / EVENTS).write_text("".join(f"{line}\n" for line in full_events[: cut + 1]))

    store, resumed_config = RunStore.open_for_resume(crashed)
    asyncio.run(Runner(resumed_config, store).run())
    assert (crashed / RESULTS).read_bytes() == (full / RESULTS).read_bytes()
    events = _events(crashed)
    assert sum(e["kind"] == "plan_written" for e in events) == 3
    for kind in ("context_started", "action"):
        contexts = Counter(e["context_id"] for e in events if e["kind"] == kind)
        assert max(contexts.values()) == 1, f"{kind} logged twice: {contexts.most_common(1)}"


# --- SIGKILL the driver halfway, resume --------------------------------------------------------


@pytest.mark.slow
def test_sigkilled_run_resumes_to_identical_results(
    ray_setup: dict[str, Any], tmp_path: Path
) -> None:
    out: Path = ray_setup["out"]
    reference: Path = ray_setup["reference"]
    before = set(out.iterdir())
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen(
        cli_command("run", str(ray_setup["file"]), "--quiet"),
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    run_dir: Path | None = None
    killed_halfway = False
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if run_dir is None:
                new = set(out.iterdir()) - before
                run_dir = new.pop() if new else None
            if run_dir is not None and _complete_lines(run_dir / RESULTS) >= TOTAL // 2:
                proc.send_signal(signal.SIGKILL)
                killed_halfway = True
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and not killed_halfway:
            proc.kill()
        proc.wait(timeout=30)
        log.close()
    output = (tmp_path / "killed.log").read_text()
    assert killed_halfway, (
        f"the run ended or stalled before halfway (rc {proc.returncode}):\n{output}"
    )
    assert proc.returncode == -signal.SIGKILL, output
    assert run_dir is not None
    at_kill = _complete_lines(run_dir / RESULTS)
    assert TOTAL // 2 <= at_kill < TOTAL, "the run was not interrupted halfway"
    assert not (run_dir / SUMMARY).exists()

    resumed = subprocess.run(
        cli_command("run", "--resume", str(run_dir), "--quiet"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr

    # results: the uninterrupted run's bytes, each episode once, in plan order
    assert (run_dir / RESULTS).read_bytes() == (reference / RESULTS).read_bytes()
    results = [json.loads(line) for line in _lines(run_dir / RESULTS)]
    plan = [spec.episode_id for spec in episode_plan(config_from_mapping(ray_setup["config"]))]
    assert [r["episode_id"] for r in results] == plan

    # summary: identical but for the run id
    summary = json.loads((run_dir / SUMMARY).read_text())
    expected = json.loads((reference / SUMMARY).read_text())
    assert summary["run_id"] == run_dir.name != expected["run_id"]
    assert summary["episodes"] == expected["episodes"] == TOTAL
    assert summary["models"] == expected["models"]
    assert {k: v for k, v in summary.items() if k != "run_id"} == {
        k: v for k, v in expected.items() if k != "run_id"
    }

    # events: every line whole and valid; no episode, context or plan recorded twice
    events, reference_events = _events(run_dir), _events(reference)
    finished = Counter(e["episode_id"] for e in events if e["kind"] == "episode_result")
    assert set(finished) == set(plan) and max(finished.values()) == 1
    for kind in ("context_started", "action"):
        contexts = Counter(e["context_id"] for e in events if e["kind"] == kind)
        assert max(contexts.values()) == 1, f"{kind} duplicated: {contexts.most_common(1)}"
        assert len(contexts) == sum(e["kind"] == kind for e in reference_events), kind
    assert Counter(e["kind"] for e in events)["plan_written"] == 3
    # each distinct prompt once, though its first context may sit in a dropped episode
    prompts = Counter(e["prompt_sha256"] for e in events if e["kind"] == "prompt")
    assert max(prompts.values()) == 1
    assert set(prompts) == {e["prompt_sha256"] for e in events if e["kind"] == "context_started"}
    starts = [e for e in events if e["kind"] == "run_started"]
    assert [s["resumed"] for s in starts] == [False, True]
    assert starts[1]["episodes_done"] == at_kill
    assert [e["kind"] for e in events].count("run_finished") == 1


# --- kill an agent actor mid-run --------------------------------------------------------------


@pytest.mark.slow
def test_killed_actor_restarts_and_results_are_unchanged(ray_setup: dict[str, Any]) -> None:
    import ray
    from ray._private import state as ray_state

    config = ray_setup["config"]
    kill_after = TOTAL // 4
    store = RunStore.create(config_from_mapping(config))
    name = f"{store.run_id}/actor-0"
    seen = {"done": 0, "killed_at": -1}

    def hook(record: Any) -> None:
        seen["done"] += 1
        if seen["done"] == kill_after:
            # runs on the event loop thread: ray.kill only sends the request
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=False)
            seen["killed_at"] = seen["done"]

    asyncio.run(Runner(config_from_mapping(config), store, on_episode=hook).run())

    assert seen["killed_at"] == kill_after < TOTAL - 4 * BATCH, "no kill while work remained"
    assert (store.path / RESULTS).read_bytes() == (ray_setup["reference"] / RESULTS).read_bytes()

    # the kill happened: the actor restarted once, and its new incarnation served later episodes
    table = [a for a in ray_state.actors().values() if a["Name"] == name]
    assert len(table) == 1
    assert table[0]["NumRestarts"] >= 1, table[0]
    events = _events(store.path)
    order = [e["episode_id"] for e in events if e["kind"] == "episode_result"]
    late = set(order[kill_after + 2 * 2 * BATCH :])  # dispatched after the kill
    assert any(
        e["kind"] == "action" and e["worker"] == "actor-0" and e["episode_id"] in late
        for e in events
    )
    summary = json.loads((store.path / SUMMARY).read_text())
    assert summary["models"] == json.loads((ray_setup["reference"] / SUMMARY).read_text())["models"]


def test_resume_refuses_an_edited_config_or_changed_templates(tmp_path: Path) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text("There are $rounds rounds in total. The first $audited rounds are audited.")
    data = small_config(
        tmp_path,
        models=["honest"],
        games=[{"name": "upfront_auditing", "templates": {"upfront_auditing.rules": str(rules)}}],
        sampling={"k": 4, "played_games": 50, "bootstrap": 100},
    )
    config = config_from_mapping(data)
    store = RunStore.create(config)
    asyncio.run(Runner(config, store).run())

    rules.write_text("Changed rules: $rounds rounds, $audited audited.")
    store, config = RunStore.open_for_resume(store.path)
    with pytest.raises(RunError, match="prompt templates changed"):
        asyncio.run(Runner(config, store).run())

    cfg = store.path / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seed: 7", "seed: 8"))
    with pytest.raises(RunDirError, match="the config was edited"):
        RunStore.open_for_resume(store.path)
