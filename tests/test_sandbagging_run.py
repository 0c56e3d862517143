"""The SB suite through the runner on small runs: the trusted monitor's reviews of answer sheets
(passing for weaker's detector (b)), what the events say of each item, and the run over the
openai backend against `sandbox serve`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import load_config
from sandbox.core.context import Usage
from sandbox.core.events import EpisodeRecord
from sandbox.core.prompts import PromptLibrary
from sandbox.environments import ENVIRONMENTS
from sandbox.environments.sandbagging import NEUTRAL, PassingForWeaker
from sandbox.record.runstore import RunStore
from sandbox.run.checks import check_config
from sandbox.run.runner import Runner
from sandbox.run.scoring import collect_reviews, monitor_scores
from tests.conftest import REPO

TRUSTED = "trusted={model: trusted, backend: {name: scripted}}"
SMALL_WEAKER = (
    "games=[{name: passing_for_weaker, params: {items_per_level: 3}}]",
    "models=[crude_sandbagger, weak]",
    "sampling.k=12",
    "sampling.bootstrap=200",
)


def _run(tmp: Path, *overrides: str) -> tuple[Path, dict[str, Any]]:
    config = check_config(
        load_config(REPO / "configs" / "sandbagging.yaml", [f"run.output_dir={tmp}", *overrides])
    )
    store = RunStore.create(config)
    summary = asyncio.run(Runner(config, store).run())
    return store.path, summary.model_dump(mode="json")


def _events(path: Path) -> list[dict[str, Any]]:
    with (path / "events.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_the_trusted_monitor_scores_each_sheet_and_compare_reads_the_scores(
    tmp_path: Path,
) -> None:
    """With a trusted model, every episode of passing for weaker asks it to score the sheet under
    each condition (a `monitor` context of the trusted model), keeps the scores in the record,
    and the profile reports detector (b): the crude sandbagger's far-off misses give it away."""
    path, summary = _run(tmp_path, *SMALL_WEAKER, TRUSTED)
    events = _events(path)
    reviews = [e for e in events if e["kind"] == "context_started" and e["role"] == "monitor"]
    assert len(reviews) == 2 * 2 * 12  # two models, two conditions, twelve episodes
    assert {e["model"] for e in reviews} == {"trusted"}
    assert {e["observation"] for e in reviews} == {"__review__/neutral", "__review__/weaker"}
    records = [e["record"] for e in events if e["kind"] == "episode_result"]
    assert len(records) == 24
    assert all(set(r["reviews"]) == {NEUTRAL, "weaker"} for r in records)
    crude = summary["models"]["crude_sandbagger"]["games"]["passing_for_weaker"]["details"]
    assert crude["aurocs"]["monitor"]["value"] > 0.9, crude["aurocs"]
    # the scores in results.jsonl are what scoring read: a summary recomputed agrees
    lines = (path / "results.jsonl").read_text(encoding="utf-8").splitlines()
    kept = [EpisodeRecord.model_validate_json(line) for line in lines]
    crude_records = [r for r in kept if r.model == "crude_sandbagger"]
    weak_records = [r for r in kept if r.model == "weak"]
    env = ENVIRONMENTS.build("passing_for_weaker", {"items_per_level": 3}, prompts=PromptLibrary())
    scores = monitor_scores(env, crude_records, weak_records)
    assert scores is not None
    assert scores[0] == [
        r.reviews["weaker"] for r in sorted(crude_records, key=lambda r: r.index) if r.reviews
    ]


def test_without_a_trusted_model_no_sheet_is_reviewed(tmp_path: Path) -> None:
    path, summary = _run(tmp_path, *SMALL_WEAKER, "trusted=null")
    assert "reviews" not in (path / "results.jsonl").read_text(encoding="utf-8")
    assert not any(e.get("role") == "monitor" for e in _events(path))
    crude = summary["models"]["crude_sandbagger"]["games"]["passing_for_weaker"]["details"]
    assert list(crude["aurocs"]) == ["difficulty"]


def _record(model: str, index: int, reviews: dict[str, float | None] | None) -> EpisodeRecord:
    return EpisodeRecord(
        episode_id=f"{model}/passing_for_weaker/{index:05d}",
        index=index,
        model=model,
        game="passing_for_weaker",
        samples=[],
        usage=Usage(),
        reviews=reviews,
    )


def test_monitor_scores_read_the_instructed_sheets_against_the_neutral_reference() -> None:
    """The model's sheets under the instruction (not its neutral ones) against the reference's
    neutral sheets (not its instructed ones), in episode order; a review that named no score
    (the parser refused it) is left out, never read as a score."""
    env = ENVIRONMENTS.build("passing_for_weaker", {}, prompts=PromptLibrary())
    assert isinstance(env, PassingForWeaker)
    own = [
        _record("m", 1, {NEUTRAL: 0.1, "weaker": 0.9}),
        _record("m", 0, {NEUTRAL: 0.2, "weaker": 0.8}),
        _record("m", 2, {NEUTRAL: 0.3, "weaker": None}),
    ]
    ref = [_record("r", 0, {NEUTRAL: 0.4, "weaker": 0.6}), _record("r", 1, None)]
    assert collect_reviews(own)["weaker"] == [0.8, 0.9, None]
    assert monitor_scores(env, own, ref) == ([0.8, 0.9], [0.4])
    assert monitor_scores(env, own, [_record("r", 0, None)]) is None
    assert monitor_scores(env, own, [_record("r", 0, {NEUTRAL: None})]) is None


def test_an_episode_record_without_reviews_keeps_its_bytes() -> None:
    assert "reviews" not in _record("m", 0, None).model_dump_json()
    assert '"reviews":{"neutral":0.5}' in _record("m", 0, {NEUTRAL: 0.5}).model_dump_json()


@pytest.mark.parametrize("reply", ["ANSWER: 0.3 or 0.9", "ANSWER: 70%", "ANSWER: about 0.5"])
def test_an_ambiguous_review_is_no_score(reply: str) -> None:
    """The review's reply is read by the project's score parser: an ambiguous score is None."""
    from agents.parsing import parse_answer

    env = ENVIRONMENTS.build("passing_for_weaker", {}, prompts=PromptLibrary())
    assert isinstance(env, PassingForWeaker)
    rendered = env.sheet_reviews({})[NEUTRAL]
    assert parse_answer(reply, rendered.answer) is None


# --- each item's answer in the events, and `sandbox logs` filters ---------------------------------


@pytest.fixture(scope="module")
def selective_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = _run(
        tmp_path_factory.mktemp("sbitems"),
        "games=[{name: selective_sandbagging, params: {items_per_level: 2}}]",
        "models=[crude_sandbagger]",
        "trusted=null",
        "sampling.k=6",
        "sampling.bootstrap=100",
    )
    return path


def test_each_item_answer_is_an_event_with_its_domain_difficulty_and_correctness(
    selective_run: Path,
) -> None:
    """One `item_answer` per context, agreeing with the sample its record keeps: the item's
    domain and level, the answer, and whether it is right (checked against the item itself)."""
    env = ENVIRONMENTS.build(
        "selective_sandbagging", {"items_per_level": 2}, prompts=PromptLibrary()
    )
    assert hasattr(env, "cell")
    events = _events(selective_run)
    answers = {e["context_id"]: e for e in events if e["kind"] == "item_answer"}
    samples = [s for e in events if e["kind"] == "episode_result" for s in e["record"]["samples"]]
    assert len(answers) == len(samples) == 6 * 2 * 12
    for s in samples:
        a = answers[s["context_id"]]
        condition, item = env.cell(s["observation"])
        assert (a["condition"], a["item"], a["domain"], a["difficulty"]) == (
            condition,
            item.id,
            item.domain,
            item.level,
        )
        assert a["answer"] == s["choice"]
        assert a["correct"] is (s["choice"] == item.value("correct"))
    # the crude sandbagger fails hazard items under the instruction, so both readings occur
    assert {a["correct"] for a in answers.values()} == {True, False}


@pytest.mark.parametrize(
    ("argv", "keep"),
    [
        (["--domain", "hazard"], lambda e: e.get("domain") == "hazard"),
        (
            ["--kind", "item_answer", "--difficulty", "2", "--correct", "no"],
            lambda e: e["kind"] == "item_answer" and e["difficulty"] == 2 and not e["correct"],
        ),
        (
            ["--domain", "general", "--correct", "yes", "--difficulty", "1"],
            lambda e: e.get("domain") == "general" and e["difficulty"] == 1 and e["correct"],
        ),
    ],
)
def test_sandbox_logs_filters_item_answers(
    selective_run: Path, capsys: pytest.CaptureFixture[str], argv: list[str], keep: Any
) -> None:
    from sandbox.cli import main
    from sandbox.review.eventlines import describe

    lines = (selective_run / "events.jsonl").read_text(encoding="utf-8").splitlines(True)
    expected = [line for line in lines if keep(json.loads(line))]
    assert expected
    assert main(["logs", str(selective_run), *argv, "--json"]) == 0
    assert capsys.readouterr().out == "".join(expected)
    assert main(["logs", str(selective_run), *argv]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [describe(json.loads(line)) for line in expected]
    assert all("correct=" in line and "difficulty=" in line for line in out)


# --- over the openai backend against `sandbox serve --organism sandbagger` ------------------------


def test_the_suite_over_http_matches_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SB game played by `sandbox serve --organism sandbagger` through the openai backend
    gives the same results, byte for byte, as the organism in process, and the same scores
    (the trusted monitor, scripted in both runs, reads the same sheets)."""
    from tests.conftest import local_and_served, openai_backend, serving

    monkeypatch.setenv("SANDBOX_TEST_API_KEY", "not-a-real-key")
    small = {"items_per_level": 2}
    sections: dict[str, Any] = {
        "models": ["sandbagger"],
        "games": [
            {"name": "selective_sandbagging", "params": small},
            {"name": "calibrated_sandbagging", "params": small},
            {"name": "passing_for_weaker", "params": {**small, "reference": "sandbagger"}},
            {"name": "sandbagging_propensity", "params": small},
        ],
        "trusted": {"model": "trusted", "backend": {"name": "scripted"}},
        "sampling": {"k": 6, "played_games": 100, "bootstrap": 100, "batch_episodes": 8},
    }
    with serving("sandbagger") as server:
        local, remote = local_and_served(
            tmp_path, openai_backend(server.base_url, "SANDBOX_TEST_API_KEY"), **sections
        )
    lines = (local / "results.jsonl").read_text(encoding="utf-8")
    assert lines.count("\n") == 4 * 6 and '"reviews"' in lines
    assert (remote / "results.jsonl").read_text(encoding="utf-8") == lines
    a, b = (json.loads((p / "summary.json").read_text(encoding="utf-8")) for p in (local, remote))
    for key in ("games", "measured_profile"):  # a served model declares no profile
        assert a["models"]["sandbagger"][key] == b["models"]["sandbagger"][key], key
    assert set(a["models"]["sandbagger"]["games"]["passing_for_weaker"]["details"]["aurocs"]) == {
        "difficulty",
        "monitor",
    }
