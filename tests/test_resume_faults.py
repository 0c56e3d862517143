"""Endpoint faults across a resume: a stopped run keeps every answer it got (committed or not),
its resume asks no context's call twice, error outcomes are asked once more, and the finished
run is the clean run, byte for byte. The endpoint is `sandbox serve`'s server over real HTTP,
counting the calls it answered by their seeds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.serve import OrganismServer
from sandbox.cli import main
from sandbox.record.cache import ANSWERS, AnsweredContext
from sandbox.record.runstore import EVENTS, RESULTS, SUMMARY, RunStore
from sandbox.run.runner import RunError, resume_run
from tests.conftest import openai_backend, run_in_process, running, serving, small_config

KEY_ENV = "SANDBOX_TEST_API_KEY"
MODEL = "stateless_strategist"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OrganismServer]:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    with serving(MODEL, fault_seed=3) as server:
        yield server


ADAPTIVE = {"stopping": "adaptive", "k_max": 30, "round": 10}
"""Adaptive stopping (docs/adaptive-stopping.md): rounds queued as episodes commit."""


def _config(tmp_path: Path, name: str, server: OrganismServer, **sampling: Any) -> dict[str, Any]:
    return small_config(
        tmp_path / name,
        models=[MODEL],
        games=[
            {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}},
            {"name": "plan_consistency", "affordances": {"shared_planning": True}},
            # two contexts an episode: one can fail while the other is answered
            {"name": "deployment_cue"},
        ],
        sampling={
            "k": 30,
            "played_games": 100,
            "bootstrap": 100,
            "batch_episodes": 8,
            "in_flight_batches": 3,
            **sampling,
        },
        backend=openai_backend(server.base_url, KEY_ENV, max_retries=0),
    )


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / EVENTS).open(encoding="utf-8")]


def _clean(tmp_path: Path, server: OrganismServer, **sampling: Any) -> tuple[str, dict[str, Any]]:
    """A clean run's results and usage; the server's count of answers is reset after it."""
    path, _ = run_in_process(_config(tmp_path, "clean", server, **sampling))
    usage = json.loads((path / SUMMARY).read_text())["usage_by_model"][MODEL]
    server.answered.clear()
    return (path / RESULTS).read_text(), usage


@pytest.mark.parametrize("sampling", [{}, ADAPTIVE], ids=["fixed", "adaptive"])
def test_a_stopped_run_keeps_its_answers_and_its_resume_asks_none_twice(
    tmp_path: Path, server: OrganismServer, sampling: dict[str, Any]
) -> None:
    """Under adaptive stopping too: the re-asked episodes are played in their place in the
    sequence, the records past them taken as they come."""
    expected, clean_usage = _clean(tmp_path, server, **sampling)

    seen: list[str] = []

    def endpoint_dies(record: Any) -> None:
        seen.append(record.episode_id)
        if len(seen) == 12:
            # most calls from now on fail (500, 429 or a reset): the run stops with answered
            # episodes waiting behind failed ones (three batches of 8 in flight: which calls
            # fail depends on the order concurrent batches reach the server, but a 24-episode
            # window always holds some answered ones)
            server.fail_rate = 0.7

    with pytest.raises(RunError, match="contexts failed after their retries"):
        run_in_process(_config(tmp_path, "stopped", server, **sampling), on_episode=endpoint_dies)
    (path,) = (tmp_path / "stopped" / "runs").iterdir()
    events = _events(path)
    assert [e["kind"] for e in events].count("run_stopped") == 1
    committed = {e["context_id"] for e in events if e["kind"] == "action"}
    kept = [
        AnsweredContext.model_validate_json(line)
        for line in (path / ANSWERS).read_text().splitlines()
    ]
    uncommitted = [a for a in kept if a.outcome.action.context_id not in committed]
    # the stop caught answered contexts of unfinished episodes, and kept them
    assert uncommitted, "the run stopped with no answered, uncommitted context: nothing tested"
    assert all(a.outcome.action.error is None for a in kept)
    # ... and the committed episodes with error outcomes are asked again by the resume
    failed = {e["episode_id"] for e in events if e["kind"] == "action" and e["error"]}
    assert failed

    server.fail_rate = 0.0  # the endpoint is back
    resume_run(path)
    assert (path / RESULTS).read_text() == expected
    twice = {seed: n for seed, n in server.answered.items() if n > 1}
    assert not twice, f"calls asked twice: {twice}"
    assert not (path / ANSWERS).exists()  # finished: every answer is in the event log
    usage = json.loads((path / SUMMARY).read_text())["usage_by_model"][MODEL]
    # every paid call counted once: the same contexts and tokens as the clean run, no errors
    for key in ("contexts", "prompt_tokens", "completion_tokens", "errors"):
        assert usage[key] == clean_usage[key], key
    resumed = [e for e in _events(path) if e["kind"] == "action" and e["worker"] == "resumed"]
    assert {e["context_id"] for e in resumed} >= {a.outcome.action.context_id for a in uncommitted}


def test_a_finished_run_s_error_outcomes_are_asked_once_more_on_resume(
    tmp_path: Path, server: OrganismServer, capsys: pytest.CaptureFixture[str]
) -> None:
    expected, _ = _clean(tmp_path, server)
    server.fail_rate = 0.25
    data = _config(tmp_path, "flaky", server)
    # a run that stops when 12 contexts in a row fail (a dead endpoint), not at 25%: at 25% a run
    # of 12 has probability 6e-8 at each of the ~180 contexts (a window of 5, 1e-3, stopped about
    # one run in eight, depending on the order concurrent calls reached the server)
    data["agents"] = {**data["agents"], "max_error_share": 1.0, "error_window": 12}
    path, _ = run_in_process(data)
    store = RunStore(path)
    assert store.finished()
    errors = json.loads((path / SUMMARY).read_text())["usage_by_model"][MODEL]["errors"]
    redo = store.error_episodes()
    assert errors > 0 and redo
    asked_before = sum(server.answered.values())

    # a partly failed episode: its answered context is reused, not asked again
    events = _events(path)
    failed = {e["context_id"] for e in events if e["kind"] == "action" and e["error"]}
    partly = {
        e["episode_id"]
        for e in events
        if e["kind"] == "action" and e["episode_id"] in redo and e["context_id"] not in failed
    }
    assert partly, "no episode with an answered context beside a failed one: nothing tested"

    # the endpoint is still down: the attempt fails and the finished run stays as it was
    finished = {n: (path / n).read_bytes() for n in (RESULTS, SUMMARY, EVENTS)}
    server.fail_rate = 1.0
    assert main(["run", "--resume", str(path), "--quiet"]) == 1
    assert "is the finished run it was" in capsys.readouterr().err
    assert {n: (path / n).read_bytes() for n in finished} == finished
    assert store.finished() and store.error_episodes() == redo

    server.fail_rate = 0.0
    assert main(["run", "--resume", str(path), "--quiet"]) == 0
    assert f"asking the error outcomes of {len(redo)} episodes again" in capsys.readouterr().err
    assert store.finished() and not store.error_episodes()
    assert (path / RESULTS).read_text() == expected
    # the resume asked exactly the failed contexts' calls: none answered before was asked again
    twice = {seed: n for seed, n in server.answered.items() if n > 1}
    assert not twice, f"calls asked twice: {twice}"
    summary = json.loads((path / SUMMARY).read_text())
    assert summary["usage_by_model"][MODEL]["errors"] == 0
    assert sum(server.answered.values()) > asked_before


def test_kept_answers_survive_a_damaged_file(tmp_path: Path) -> None:
    """A torn last line (a crash mid-write) and a damaged line are skipped: those contexts are
    asked again; every whole answer is reused, as answered by the resumed run."""
    from sandbox.core.context import Action, ContextOutcome
    from sandbox.record.cache import RESUMED, RequestCache

    def answer(key: str, choice: str) -> str:
        action = Action(
            context_id=f"c-{key}", visible=choice, choice=choice, parse_ok=True, attempts=1
        )
        outcome = ContextOutcome(action=action, node_id="n", worker="actor-0")
        return AnsweredContext(request_sha256=key, outcome=outcome).line()

    path = tmp_path / ANSWERS
    path.write_text(
        f"{answer('a', 'GO')}\n{{not json\n{answer('b', 'WAIT')}\n{answer('c', 'GO')[:-9]}",
        encoding="utf-8",
    )
    cache = RequestCache.from_answers(path)
    assert len(cache) == 2 and cache.get("c") is None
    found = {k: cache.get(k) for k in ("a", "b")}
    assert {k: (o.action.choice, o.worker) for k, o in found.items() if o} == {
        "a": ("GO", RESUMED),
        "b": ("WAIT", RESUMED),
    }
    assert len(RequestCache.from_answers(tmp_path / "missing.jsonl")) == 0


class _FailsFirst(OrganismServer):
    """Answers 500 to its first `n` chat completions, then serves normally."""

    def __init__(self, n: int) -> None:
        super().__init__(MODEL, "127.0.0.1", 0)
        self.left = n

    def draw_fault(self) -> str | None:
        with self._faults_lock:
            if self.left > 0:
                self.left -= 1
                self.injected["500"] += 1
                return "500"
        return None


def test_a_failed_shared_plan_is_no_plan_and_its_episodes_are_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner's call fails once: the episodes waiting on it record error outcomes without
    asking (no call, so no usage), the failure itself is logged and counted, the next episode
    asks the planner again, and a resume redoes the unasked episodes to the clean run's bytes."""
    monkeypatch.setenv(KEY_ENV, "sk-test")
    with running(_FailsFirst(1)) as server:
        data = _config(tmp_path, "plan", server)
        data["games"] = [{"name": "plan_consistency", "affordances": {"shared_planning": True}}]
        data["agents"] = {**data["agents"], "max_error_share": 0.99}
        path, _ = run_in_process(data)
        events = _events(path)
        planner = [e for e in events if e["kind"] == "action" and e["episode_id"] is None]
        assert [bool(e["error"]) for e in planner] == [True, False]  # failed, then asked again
        unasked = [e for e in events if e["kind"] == "action" and e["worker"] == "unasked"]
        assert unasked and all("shared plan" in e["error"] for e in unasked)
        usage = json.loads((path / SUMMARY).read_text())["usage_by_model"][MODEL]
        # a context counts once, by its last record: the planner's ended answered, and the
        # unasked contexts made no call
        assert usage["errors"] == 0
        assert usage["contexts"] == sum(server.answered.values())

        server.answered.clear()
        assert main(["run", "--resume", str(path), "--quiet"]) == 0
        assert sum(server.answered.values()) == len(unasked)  # those alone, now asked
        resumed = (path / RESULTS).read_text()
    with serving(MODEL) as clean_server:
        data = _config(tmp_path, "clean-plan", clean_server)
        data["games"] = [{"name": "plan_consistency", "affordances": {"shared_planning": True}}]
        assert resumed == (run_in_process(data)[0] / RESULTS).read_text()


def test_a_resumed_replay_counts_no_answer_of_its_source_as_paid(tmp_path: Path) -> None:
    """A replay answers from its source's log (no call, no usage); stopped and resumed, it
    still answers those from the source, not as calls of its own."""
    data = small_config(tmp_path, models=[MODEL], sampling={"k": 20, "batch_episodes": 4})
    source, _ = run_in_process(data)
    assert main(["replay", str(source), "--quiet"]) == 0
    (replay,) = [p for p in source.parent.iterdir() if p != source]
    before = json.loads((replay / SUMMARY).read_text())
    assert before["usage_by_model"] == {}
    lines = (replay / RESULTS).read_text().splitlines(keepends=True)
    (replay / RESULTS).write_text("".join(lines[:-5]))  # as if it stopped 5 episodes short
    (replay / SUMMARY).unlink()
    assert main(["run", "--resume", str(replay), "--quiet"]) == 0
    after = json.loads((replay / SUMMARY).read_text())
    assert after["usage_by_model"] == {} and after["cost"]["unpriced"] == []
    assert (replay / RESULTS).read_text() == (source / RESULTS).read_text()
