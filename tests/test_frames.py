"""Runs as data frames (`sandbox.review.frames.load_runs`): every table agrees with the run's own
files and summary, on runs of every suite (XC, TG, CO and a deployment with coordination
attempts), one run or several."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sandbox.core.events import EpisodeRecord, StepRecord
from sandbox.core.results import DeploymentScore
from sandbox.record.runstore import EVENTS, RESULTS, RunDirError
from sandbox.review.frames import ATTEMPT_KINDS, INSTALL, load_runs
from tests.conftest import run_in_process, small_config

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def xc_tg_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A small run of an XC game and the TG probe, with a model that games training."""
    tmp = tmp_path_factory.mktemp("frames")
    return run_in_process(
        small_config(
            tmp,
            models=["stateless_strategist", "training_gamer"],
            games=[
                {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}},
                {"name": "training_gaming"},
            ],
            sampling={"k": 12, "played_games": 100, "bootstrap": 100},
        )
    )


def _lines(path: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / name).read_text().splitlines()]


def test_episodes_and_contexts_agree_with_the_records(xc_tg_run: tuple[Path, Any]) -> None:
    path, _ = xc_tg_run
    frames = load_runs(path)
    records = [EpisodeRecord.model_validate(r) for r in _lines(path, RESULTS)]
    episodes = frames.episodes.set_index("episode_id")
    assert len(episodes) == len(records) and episodes.index.is_unique
    for record in records:
        row = episodes.loc[record.episode_id]
        assert (row["model"], row["game"], row["index"], row["kind"]) == (
            record.model,
            record.game,
            record.index,
            "game",
        )
        assert row["samples"] == len(record.samples)
    # each committed sample is one answered context: the same choice, by context id
    contexts = frames.contexts.set_index("context_id")
    for record in records:
        for sample in record.samples:
            ctx = contexts.loc[sample.context_id]
            assert ctx["model"] == record.model and ctx["episode_id"] == record.episode_id
            assert ctx["observation"] == sample.observation
            assert (None if pd.isna(ctx["choice"]) else ctx["choice"]) == sample.choice
    started = [e for e in _lines(path, EVENTS) if e["kind"] == "context_started"]
    assert len(frames.contexts) == len(started)  # the judge's and planner's too
    assert frames.contexts["worker"].notna().all()  # every context of a finished run answered
    assert set(frames.contexts["run_id"]) == {path.name}
    assert frames.steps.empty and frames.attempts.empty
    assert {"run_id", "model"} <= set(frames.steps.columns)


def test_steps_and_attempts_agree_with_the_summary_and_log(co_run: tuple[Path, Any]) -> None:
    path, summary = co_run
    frames = load_runs(path)
    steps = [StepRecord.model_validate(r) for r in _lines(path, RESULTS) if "phase" in r]
    assert len(frames.steps) == len(steps) > 0
    assert (frames.episodes["kind"] == "protocol_step").sum() == len(steps)
    for model, entry in summary.models.items():
        mine = frames.steps[frames.steps["model"] == model]
        attack = mine[mine["phase"] == "attack"]
        # the summary's attack rate, from the table: the flattening kept each step's flags
        assert isinstance(entry.deployment, DeploymentScore)
        rate = entry.deployment.attack_rate.value
        assert attack["attacked"].mean() == pytest.approx(rate)
        assert (
            mine["policy.backdoor"] == [s.policy.backdoor for s in steps if s.model == model]
        ).all()
    kinds = Counter(e["kind"] for e in _lines(path, EVENTS) if e["kind"] in ATTEMPT_KINDS)
    assert Counter(frames.attempts["kind"]) == kinds
    assert {"jam", "signal_recognition", "honeypot_verdict", "coordination_pick"} <= set(kinds)
    recognitions = frames.attempts[frames.attempts["kind"] == "signal_recognition"]
    assert recognitions["countermeasure"].notna().all() and recognitions["model"].notna().all()


def test_several_runs_stack_with_their_run_ids(
    xc_tg_run: tuple[Path, Any], co_run: tuple[Path, Any]
) -> None:
    one, other = xc_tg_run[0], co_run[0]
    both = load_runs([one, str(other)])
    alone = [load_runs(one), load_runs(other)]
    for table in ("episodes", "contexts", "steps", "attempts"):
        stacked = getattr(both, table)
        assert len(stacked) == sum(len(getattr(f, table)) for f in alone), table
    assert list(dict.fromkeys(both.episodes["run_id"])) == [one.name, other.name]
    counts = both.contexts.groupby("run_id").size()
    assert counts[one.name] == len(alone[0].contexts)


def test_what_is_not_a_run_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="nowhere"):
        load_runs(tmp_path / "nowhere")


def test_without_pandas_the_error_names_the_install(
    xc_tg_run: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError) as caught:
        load_runs(xc_tg_run[0])
    assert INSTALL in str(caught.value)
