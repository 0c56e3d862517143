"""The runner: reproducibility across runs and engines, run files, events, shared plans."""

from __future__ import annotations

import json
from typing import Any

from sandbox.config import config_from_mapping
from sandbox.core.context import Context, FreeTextAnswer
from sandbox.core.episode import EpisodeSpec
from sandbox.core.events import EVENT_ADAPTER, SCHEMA_VERSION
from sandbox.record.cache import prompt_hash
from sandbox.record.runstore import CONFIG, EVENTS, RESULTS, SUMMARY, RunStore
from sandbox.review.logs import TALLY
from sandbox.run.drivers import GameDriver
from sandbox.run.runner import Runner
from tests.conftest import run_dir, small_config

GAMES = [
    {"name": "upfront_auditing"},
    {"name": "deployment_cue", "affordances": {"randomness": True}},
    {"name": "plan_consistency", "affordances": {"shared_planning": True}},
]


def test_same_seed_identical_results_on_ray_and_local(tmp_path, ray_cluster) -> None:
    ray_cfg = {"engine": "ray", "ray": {"address": ray_cluster}, "games": GAMES}
    a = run_dir(small_config(tmp_path / "a", **ray_cfg))
    b = run_dir(small_config(tmp_path / "b", **ray_cfg))
    local = run_dir(small_config(tmp_path / "c", games=GAMES))
    other_seed = run_dir(
        small_config(
            tmp_path / "d",
            games=GAMES,
            run={"name": "test", "seed": 8, "output_dir": str(tmp_path / "d" / "runs")},
        )
    )
    results = (a / RESULTS).read_text()
    assert results and (b / RESULTS).read_text() == results
    assert (local / RESULTS).read_text() == results
    assert (other_seed / RESULTS).read_text() != results
    summary_a = json.loads((a / SUMMARY).read_text())
    summary_c = json.loads((local / SUMMARY).read_text())
    assert summary_a["models"] == summary_c["models"]


def test_run_directory_and_events(tmp_path) -> None:
    path = run_dir(small_config(tmp_path, games=GAMES))
    assert {p.name for p in path.iterdir()} == {CONFIG, EVENTS, RESULTS, SUMMARY, TALLY}
    events = [EVENT_ADAPTER.validate_json(line) for line in (path / EVENTS).open()]
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert events[0].schema_version == SCHEMA_VERSION == 6  # type: ignore[union-attr]
    assert "upfront_auditing:upfront_auditing.rules" in events[0].templates  # type: ignore[union-attr]
    results = [json.loads(line) for line in (path / RESULTS).open()]
    assert kinds.count("episode_result") == len(results) == 3 * 3 * 40
    for e in events:
        assert e.run_id == path.name
        if e.kind in ("context_started", "action"):
            assert e.context_id and e.agent_id and e.agent_id.startswith("copy-")
            assert e.episode_id or e.context_id.endswith("/plan/main")
    agents = {e.agent_id for e in events if e.kind == "action"}
    assert agents == {f"copy-{i}" for i in range(4)}


def test_shared_plan_is_written_once_and_shown_to_every_context(tmp_path) -> None:
    path = run_dir(small_config(tmp_path, models=["stateless_strategist"], games=GAMES))
    events = [json.loads(line) for line in (path / EVENTS).open()]
    plans = [e for e in events if e["kind"] == "plan_written"]
    assert len(plans) == 1 and plans[0]["game"] == "plan_consistency"
    plan_action = next(
        e for e in events if e["kind"] == "action" and e["context_id"] == plans[0]["context_id"]
    )
    summary = json.loads((path / SUMMARY).read_text())
    assert summary["plan_usage"] == plan_action["usage"]
    assert summary["plan_usage"]["completion_tokens"] > 0
    assert "amber" in plans[0]["plan"]
    # every plan_consistency context carried that plan: the logged prompt of each shows it,
    # and its hash is that of the context rendered with the plan, not without
    plan = plans[0]["plan"]
    prompts = {e["prompt_sha256"]: e for e in events if e["kind"] == "prompt"}
    started = {
        e["context_id"]: e["prompt_sha256"]
        for e in events
        if e["kind"] == "context_started" and e["game"] == "plan_consistency" and e["episode_id"]
    }
    assert len(started) == 40
    for digest in started.values():
        assert f"<plan>\n{plan}\n</plan>" in prompts[digest]["messages"][0]["content"]
    config = config_from_mapping(
        small_config(tmp_path / "x", models=["stateless_strategist"], games=GAMES)
    )
    driver = Runner(config, RunStore.create(config)).drivers({})["plan_consistency"]
    assert isinstance(driver, GameDriver)
    for index in range(40):
        spec = EpisodeSpec("stateless_strategist", "plan_consistency", index)
        for with_plan in (True, False):
            for ctx in driver.contexts(spec, {"main": plan} if with_plan else {}):
                assert (prompt_hash(ctx) == started[ctx.context_id]) is with_plan


def test_the_log_holds_every_prompt_once(tmp_path) -> None:
    """Each distinct text a context saw is in the log once, before the first context that
    names its hash, and hashing the logged text gives that hash back."""
    path = run_dir(small_config(tmp_path, models=["stateless_strategist"], games=GAMES))
    events = [EVENT_ADAPTER.validate_json(line) for line in (path / EVENTS).open()]
    shown: dict[str, Any] = {}
    for e in events:
        if e.kind == "prompt":
            assert e.prompt_sha256 not in shown, "a prompt written twice"
            shown[e.prompt_sha256] = e
        elif e.kind == "context_started":
            assert e.prompt_sha256 in shown, "a context whose prompt is not in the log before it"
    starts = [e for e in events if e.kind == "context_started"]
    # upfront auditing renders one text for every sample; the deployment cue's random numbers
    # make each of its texts distinct, so the log grows only where the texts do
    upfront = {e.prompt_sha256 for e in starts if e.game == "upfront_auditing"}
    cue = [e.prompt_sha256 for e in starts if e.game == "deployment_cue"]
    assert len(upfront) == 1 and len(set(cue)) == len(cue) == 2 * 40
    assert len(shown) == len({e.prompt_sha256 for e in starts})
    for digest, prompt in shown.items():
        ctx = Context(
            context_id="c",
            episode_id="e",
            agent_id="a",
            model="m",
            game="g",
            observation="o",
            messages=tuple(prompt.messages),
            answer=FreeTextAnswer(),
            seed=0,
            think_prompt=prompt.think_prompt,
            after_think_prompt=prompt.after_think_prompt,
            reask_prompt=prompt.reask_prompt,
        )
        assert prompt_hash(ctx) == digest
    first = shown[next(iter(upfront))]
    assert "There are 20 rounds in total" in first.messages[0].content
    assert first.reask_prompt and first.think_prompt is None
