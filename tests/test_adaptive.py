"""Adaptive stopping (`sampling.stopping: adaptive`, `sandbox.run.stopping`): the same verdicts
as a fixed run from fewer contexts, deterministic stopping points (scheduling, resume, a served
model), and an unsettled cell read as inconclusive at its `k_max`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import config_from_mapping
from sandbox.core.events import EpisodeRecord
from sandbox.core.results import GameScore, Summary
from sandbox.record.runstore import EVENTS, RESULTS
from sandbox.review.display import stopping_text
from sandbox.run.runner import RunError, build_environments, resume_run
from sandbox.run.stopping import Sequencer, final_reading
from tests.conftest import openai_backend, run_in_process, serving, small_config

MODELS = ["honest", "stateless_strategist", "focal_colluder"]
GAMES = [
    {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}},
    {"name": "schelling", "params": {"option_set": "salient", "contexts": 3}},
]


def _config(tmp_path: Path, stopping: str = "adaptive", **sampling: Any) -> dict[str, Any]:
    adaptive = {"stopping": stopping, "k_max": 600} if stopping == "adaptive" else {}
    return small_config(
        tmp_path,
        models=MODELS,
        games=GAMES,
        sampling={
            "k": 300,
            "played_games": 200,
            "bootstrap": 200,
            "batch_episodes": 16,
            **adaptive,
            **sampling,
        },
    )


@pytest.fixture(scope="module")
def fixed_and_adaptive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Summary]]:
    tmp = tmp_path_factory.mktemp("adaptive")
    return {
        "fixed": run_in_process(_config(tmp / "fixed", "fixed")),
        "adaptive": run_in_process(_config(tmp / "adaptive")),
    }


def _records(run: Path) -> list[EpisodeRecord]:
    lines = (run / RESULTS).read_text(encoding="utf-8").splitlines()
    return [EpisodeRecord.model_validate_json(line) for line in lines]


def _contexts_logged(run: Path) -> int:
    with (run / EVENTS).open(encoding="utf-8") as log:
        return sum(json.loads(line)["kind"] == "context_started" for line in log)


def test_the_verdicts_equal_the_fixed_runs_from_fewer_contexts(
    fixed_and_adaptive: dict[str, tuple[Path, Summary]],
) -> None:
    (fixed_dir, fixed), (adaptive_dir, adaptive) = fixed_and_adaptive.values()
    for model in MODELS:
        for game in ("upfront_auditing", "schelling"):
            want = fixed.models[model].games[game]
            got = adaptive.models[model].games[game]
            assert isinstance(want, GameScore) and isinstance(got, GameScore)
            assert want.verdict != "inconclusive", "the fixed run decides every cell"
            assert got.verdict == want.verdict, (model, game)
        assert adaptive.models[model].measured_profile == fixed.models[model].measured_profile
    stopping = adaptive.stopping
    assert stopping is not None and fixed.stopping is None
    assert all(c.stopped == "settled" for c in stopping.cells)
    # what the summary says it used is what the log holds, and far less than the fixed run
    assert stopping.contexts == _contexts_logged(adaptive_dir)
    assert stopping.contexts_fixed == _contexts_logged(fixed_dir)
    assert stopping.contexts_k_max == 2 * stopping.contexts_fixed
    assert stopping.contexts < 0.5 * stopping.contexts_fixed
    assert stopping.saved == pytest.approx(1 - stopping.contexts / stopping.contexts_k_max)
    fewer = 1 - stopping.contexts / stopping.contexts_fixed
    assert f"({fewer:.0%} fewer)" in stopping_text(adaptive)


def test_each_cell_stops_at_the_first_round_its_sequence_settles(
    fixed_and_adaptive: dict[str, tuple[Path, Summary]],
) -> None:
    """Each cell's episodes are a whole number of rounds, its reading at its last round is
    settled and at the round before it was not (stopping late wastes calls; early, errs)."""
    run, summary = fixed_and_adaptive["adaptive"]
    config = config_from_mapping(json.loads(json.dumps(_config(run.parent.parent))))
    envs = build_environments(config)
    records = _records(run)
    assert summary.stopping is not None
    for cell in summary.stopping.cells:
        own = [r for r in records if (r.model, r.game) == (cell.model, cell.game)]
        assert [r.index for r in own] == list(range(cell.episodes))
        assert cell.episodes % config.sampling.round == 0
        last = final_reading(config, envs[cell.game], own)
        assert last is not None and last.verdict == cell.verdict
        assert (last.low, last.high) == (cell.low, cell.high)
        before = final_reading(config, envs[cell.game], own[: -config.sampling.round])
        assert before is not None and before.verdict is None, (cell.model, cell.game)


def test_stopping_points_do_not_depend_on_scheduling(
    tmp_path: Path, fixed_and_adaptive: dict[str, tuple[Path, Summary]]
) -> None:
    """Other batch sizes and windows (another interleaving of episodes at the engine) give the
    same bytes: rounds are queued at commit time, and commits follow the queue."""
    run, _ = fixed_and_adaptive["adaptive"]
    other, _ = run_in_process(_config(tmp_path, batch_episodes=3, in_flight_batches=5))
    assert (other / RESULTS).read_bytes() == (run / RESULTS).read_bytes()


def test_a_resumed_adaptive_run_continues_the_same_sequence(
    tmp_path: Path, fixed_and_adaptive: dict[str, tuple[Path, Summary]]
) -> None:
    run, _ = fixed_and_adaptive["adaptive"]
    total = len(_records(run))
    seen = 0

    def stop_midway(record: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == total // 2:
            raise KeyboardInterrupt

    with pytest.raises((RunError, KeyboardInterrupt)):
        run_in_process(_config(tmp_path), on_episode=stop_midway)
    (stopped,) = (tmp_path / "runs").iterdir()
    assert 0 < len(_records(stopped)) < total
    resumed, _ = resume_run(stopped)
    assert (resumed / RESULTS).read_bytes() == (run / RESULTS).read_bytes()


def _record(model: str, game: str, index: int) -> EpisodeRecord:
    return EpisodeRecord(
        episode_id=f"{model}/{game}/{index:05d}",
        index=index,
        model=model,
        game=game,
        samples=[],
        usage={"prompt_tokens": 0, "completion_tokens": 0},
    )


def test_a_resume_refuses_records_no_sequence_of_the_config_holds(tmp_path: Path) -> None:
    """A committed episode past its cell's k_max, or of a model or game the config does not
    have, means the record does not belong to this config: refused, never merged."""
    config = config_from_mapping(_config(tmp_path))
    sequencer = Sequencer(config, build_environments(config))
    for stray in (
        _record("honest", "upfront_auditing", 600),
        _record("random", "upfront_auditing", 0),
        _record("honest", "plan_consistency", 0),
    ):
        with pytest.raises(ValueError, match="not in this run's sequence"):
            sequencer.resume([stray])


def test_a_resume_takes_records_past_a_re_asked_episode_in_their_place(tmp_path: Path) -> None:
    """A stop un-commits episodes with error outcomes, so a resumed run's records can have a
    hole: the walk stops there, and the records beyond it wait in `recorded` to be taken in
    sequence (not asked again)."""
    config = config_from_mapping(_config(tmp_path))
    first = Sequencer(config, build_environments(config)).first()
    done = [_record(s.model, s.game, s.index) for s in first[:3] + first[4:8]]
    order, queue, recorded = Sequencer(config, build_environments(config)).resume(done)
    assert order == first[:3]
    assert queue[0] == first[3]
    assert set(recorded) == {s.episode_id for s in first[4:8]}


def test_an_unsettled_cell_reads_inconclusive_at_k_max(tmp_path: Path) -> None:
    """Ten episodes cannot place the strategist's calibrated attack rate on either side of the
    bar: the cell stops at k_max, and its verdict is inconclusive even where the ordinary
    interval of the same samples would have read solved or not."""
    data = _config(tmp_path, k_max=10)
    data["models"] = ["stateless_strategist"]
    data["games"] = GAMES[:1]
    _, summary = run_in_process(data)
    assert summary.stopping is not None
    (cell,) = summary.stopping.cells
    assert (cell.stopped, cell.episodes, cell.verdict) == ("k_max", 10, "inconclusive")
    game = summary.models["stateless_strategist"].games["upfront_auditing"]
    assert isinstance(game, GameScore) and game.verdict == "inconclusive"
    assert summary.models["stateless_strategist"].measured_profile == {
        "cross_context": "inconclusive"
    }


def test_over_the_openai_backend_every_context_asked_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against `sandbox serve` (through a counting hop), the adaptive run asks exactly the
    contexts it records (no round overshoots its stop) and its results equal in-process. The
    focal colluder settles both games within a few rounds, each at another round."""
    from tests.test_served_deployment import CountingProxy

    monkeypatch.setenv("ADAPTIVE_KEY", "not-a-secret")
    data = _config(tmp_path / "local")
    data["models"] = ["focal_colluder"]
    local, _ = run_in_process(data)
    with serving("focal_colluder") as server:
        proxy = CountingProxy(server.base_url)
        try:
            served = _config(tmp_path / "served")
            served["models"] = ["focal_colluder"]
            served["backend"] = openai_backend(proxy.base_url, "ADAPTIVE_KEY")
            remote, summary = run_in_process(served)
        finally:
            proxy.shutdown()
            proxy.server_close()
    assert (remote / RESULTS).read_bytes() == (local / RESULTS).read_bytes()
    assert summary.stopping is not None
    assert sum(proxy.answered.values()) == _contexts_logged(remote) == summary.stopping.contexts


def test_a_fixed_config_keeps_its_digest(tmp_path: Path) -> None:
    """The new sampling keys are absent from a fixed run's resolved config, so runs recorded
    before them resume and compare as before; an adaptive run's config names them."""
    fixed = config_from_mapping(small_config(tmp_path)).resolved()
    assert not {"stopping", "k_max", "round"} & set(fixed["sampling"])
    assert all("k_max" not in g for g in fixed["games"])
    adaptive = config_from_mapping(_config(tmp_path)).resolved()
    assert adaptive["sampling"]["stopping"] == "adaptive"


def test_the_report_shows_each_cells_stop_and_the_calls_saved(
    fixed_and_adaptive: dict[str, tuple[Path, Summary]],
) -> None:
    from sandbox.review.report.build import build_report

    def stopping_tables(summary: Summary) -> list[Any]:
        report = build_report(summary, {})
        return [t for s in report.sections for t in s.tables if t.id == "stopping"]

    assert stopping_tables(fixed_and_adaptive["fixed"][1]) == []
    _, summary = fixed_and_adaptive["adaptive"]
    (table,) = stopping_tables(summary)
    assert summary.stopping is not None
    assert len(table.rows) == len(summary.stopping.cells) == len(MODELS) * len(GAMES)
    for row, cell in zip(table.rows, summary.stopping.cells, strict=True):
        assert row[:3] == (cell.model, cell.game, f"{cell.episodes} / {cell.k_max}")
        assert row[4:6] == ("settled", cell.verdict)
    assert stopping_text(summary) in table.caption


def test_adaptive_keys_in_a_fixed_run_are_refused_by_name(tmp_path: Path) -> None:
    from sandbox.config import ConfigError

    data = small_config(tmp_path, sampling={"k": 10, "k_max": 50})
    with pytest.raises(ConfigError, match=r"sampling\.k_max: read only with"):
        config_from_mapping(data)
    data = small_config(tmp_path)
    data["games"][1]["k_max"] = 50
    with pytest.raises(ConfigError, match=r"games\.1\.k_max: read only with"):
        config_from_mapping(data)


def test_a_replay_asks_the_same_episodes_answered_from_the_log(
    fixed_and_adaptive: dict[str, tuple[Path, Summary]],
) -> None:
    from sandbox.cli import main

    run, summary = fixed_and_adaptive["adaptive"]
    before = {p.name for p in run.parent.iterdir()}
    assert main(["replay", str(run), "--quiet"]) == 0
    (replay,) = [p for p in run.parent.iterdir() if p.name not in before]
    assert (replay / RESULTS).read_bytes() == (run / RESULTS).read_bytes()
    replayed = Summary.read(replay / "summary.json")
    assert replayed.replay is not None and replayed.replay.new_contexts == {}
    assert replayed.stopping == summary.stopping


def test_show_prints_what_adaptive_stopping_saved(
    fixed_and_adaptive: dict[str, tuple[Path, Summary]], capsys: pytest.CaptureFixture[str]
) -> None:
    from sandbox.cli import main

    run, summary = fixed_and_adaptive["adaptive"]
    assert main(["show", str(run)]) == 0
    assert stopping_text(summary) in capsys.readouterr().out
    assert main(["show", str(fixed_and_adaptive["fixed"][0])]) == 0
    assert "adaptive stopping" not in capsys.readouterr().out


def test_the_context_budget_counts_k_max(tmp_path: Path) -> None:
    """An adaptive run may play every cell to its k_max: the budget check counts that, and
    names the keys that drive it."""
    from sandbox.config import ConfigError
    from sandbox.run.checks import check_config, planned_contexts

    data = _config(tmp_path)
    config = config_from_mapping(data)
    # upfront auditing: one observation; Schelling: one; 3 models at k_max 600
    assert planned_contexts(config) == 3 * (600 + 600)
    data["run"]["max_contexts"] = 3_000
    with pytest.raises(ConfigError, match=r"3,600 contexts.*sampling\.k_max"):
        check_config(config_from_mapping(data))
