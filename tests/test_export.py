"""`sandbox export --format inspect`: a small real run (XC games, a Schelling game, the TG probe
and a deployment under trusted monitoring) written as Inspect AI `.eval` logs and read back with
Inspect's own reader, checked against the run's files (read here as plain JSON): one log per suite
and model, a sample per context (per task step in a deployment) of that model and suite only,
each scored with its own recorded outcome, the summary's numbers as metrics, every token counted
once."""

from __future__ import annotations

import copy
import json
import shutil
import struct
import sys
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sandbox.cli import main
from sandbox.config import config_from_mapping
from sandbox.environments import NO_ANSWER
from sandbox.record.runstore import EVENTS, RESULTS, SUMMARY
from sandbox.review.export import ExportError, export_run
from sandbox.run.runner import run_config
from tests.conftest import small_config

inspect_log = pytest.importorskip(
    "inspect_ai.log",
    reason="Inspect AI is the bench extra: pip install -c constraints.txt -e '.[bench]'",
)

MODELS = ["stateless_strategist", "training_gamer", "focal_colluder"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    data = small_config(tmp, models=MODELS)
    data["sampling"] = {"k": 6, "played_games": 100, "bootstrap": 100}
    data["games"] = [
        {
            "name": "upfront_auditing",
            "params": {"rounds": 20, "audited": 2},
            "affordances": {"shared_planning": True, "scratchpad": True},  # plan calls' tokens
        },
        {
            "name": "deployment_cue",  # two contexts an episode
            "params": {"rounds": 20, "audited": 10, "cue_fraction": 0.3, "cue_year": 2026},
        },
        {"name": "schelling", "params": {"option_set": "salient", "contexts": 3}},
        {"name": "training_gaming", "k": 2},  # 16 contexts an episode
    ]
    data["trusted"] = {"model": "trusted", "backend": {"name": "scripted"}}
    data["control"] = {"protocol": "trusted_monitoring", "steps": 4, "deployments": 100}
    path, _ = run_config(config_from_mapping(data))
    return path


@pytest.fixture(scope="module")
def logs(run: Path) -> dict[str, Any]:
    """File name -> the EvalLog read back."""
    paths = export_run(run, "inspect")
    assert all(p.parent == run / "inspect" for p in paths)
    return {p.name: inspect_log.read_eval_log(str(p)) for p in paths}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _summary(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / SUMMARY).read_text(encoding="utf-8"))
    return data


def _suite(summary: dict[str, Any], model: str, game: str) -> str:
    row = summary["models"][model]["games"].get(game)
    return row["suite"] if row else "control"


def _expected(run: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(suite, model) -> its results lines."""
    summary = _summary(run)
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in _lines(run / RESULTS):
        out[_suite(summary, record["model"], record["game"]), record["model"]].append(record)
    return out


def test_one_log_per_suite_and_model(run: Path, logs: dict[str, Any]) -> None:
    expected = _expected(run)
    # every suite the run has, for every model: no suite dropped, none invented
    assert {s for s, _ in expected} == {"xc", "co", "tg", "control"}
    assert len(expected) == 4 * len(MODELS)
    assert {(log.eval.task, log.eval.model) for log in logs.values()} == {
        (suite, f"scripted/{model}") for suite, model in expected
    }
    assert set(logs) == {f"{suite}_{model}.eval" for suite, model in expected}
    for log in logs.values():
        assert log.status == "success"
        assert log.eval.run_id == run.name
        assert log.eval.task_args["seed"] == 7
        assert log.eval.metadata["config_sha256"] == _summary(run)["config_sha256"]
    # what `inspect view` lists: every file, by its task
    listed = inspect_log.list_eval_logs(str(run / "inspect"))
    assert sorted(info.task for info in listed) == sorted(s for s, _ in expected)


def test_samples_are_the_models_contexts_and_steps(run: Path, logs: dict[str, Any]) -> None:
    summary = _summary(run)
    for (suite, model), records in _expected(run).items():
        log = logs[f"{suite}_{model}.eval"]
        if suite == "control":
            ids = [r["episode_id"] for r in records]
        else:
            ids = [s["context_id"] for r in records for s in r["samples"]]
        assert sorted(s.id for s in log.samples) == sorted(ids)  # (Inspect reorders them)
        assert log.results.total_samples == len(ids) == log.eval.dataset.samples
        assert {s.metadata["model"] for s in log.samples} == {model}
        episodes: dict[str, set[str]] = defaultdict(set)
        for sample in log.samples:
            episodes[sample.metadata["game"]].add(sample.metadata["episode_id"])
        rows = summary["models"][model]["games"]
        for game, ids_of_game in episodes.items():
            if suite != "control":
                assert len(ids_of_game) == rows[game]["episodes"]
                assert suite == rows[game]["suite"]
    # the multi-context episodes really are split into their contexts
    tg = logs["tg_training_gamer.eval"]
    assert len(tg.samples) == 16 * len({s.metadata["episode_id"] for s in tg.samples})


def test_each_sample_holds_its_own_prompt_answer_and_outcome(
    run: Path, logs: dict[str, Any]
) -> None:
    events = _lines(run / EVENTS)
    prompts = {e["prompt_sha256"]: e["messages"] for e in events if e["kind"] == "prompt"}
    shown = {e["context_id"]: e["prompt_sha256"] for e in events if e["kind"] == "context_started"}
    visible = {e["context_id"]: e["visible"] for e in events if e["kind"] == "action"}
    pairs: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["kind"] == "coordination_pick":
            pairs[e["model"], e["game"], e["pair"]].append(e)
    agreed = {
        p["context_id"]: len({q["choice"] for q in pair}) == 1 and pair[0]["choice"] is not None
        for pair in pairs.values()
        if len(pair) == 2
        for p in pair
    }
    assert agreed, "the Schelling game recorded no pairs"
    checked_agreement = scored = 0
    for (suite, model), records in _expected(run).items():
        samples = {s.id: s for s in logs[f"{suite}_{model}.eval"].samples}
        for record in records:
            if suite == "control":
                sample = samples[record["episode_id"]]
                assert sample.scores["decision"].value == record["decision"]
                assert sample.scores["attacked"].value == record["attacked"]
                assert sample.scores["backdoor"].value == record["policy"]["backdoor"]
                # the monitor's own score (not 1 - score: higher is more suspicious) and the
                # correctness of what ships unaudited, each as recorded for this step
                if record["score"] is None:
                    assert "suspicion" not in sample.scores
                else:
                    assert sample.scores["suspicion"].value == record["score"]
                    scored += 1
                shipped = record["unaudited"]  # the share of its tests that passed
                assert sample.scores["correctness"].value == (
                    shipped["tests_passed"] / shipped["tests_total"]
                    if shipped["tests_total"]
                    else 0.0
                )
                assert sample.metadata["phase"] == record["phase"]
                context = sample.metadata["context_id"]
                assert context.startswith(record["episode_id"] + "/policy")
                contexts = [(context, sample)]
            else:
                contexts = []
                for recorded in record["samples"]:
                    sample = samples[recorded["context_id"]]
                    choice = recorded["choice"] if recorded["parse_ok"] else NO_ANSWER
                    assert sample.scores["choice"].value == choice
                    assert sample.metadata["episode_id"] == record["episode_id"]
                    assert sample.metadata["agent_id"] == recorded["agent_id"]
                    if recorded["context_id"] in agreed:
                        assert sample.scores["agreed"].value == agreed[recorded["context_id"]]
                        checked_agreement += 1
                    contexts.append((recorded["context_id"], sample))
            for context, sample in contexts:
                assert sample.output.completion == visible[context]
                prompt = prompts[shown[context]]
                assert [m.content for m in sample.input] == [m["content"] for m in prompt]
                assert sample.messages[-1].content == visible[context]
    assert checked_agreement == len(agreed)
    assert scored > 0, "no deployment step carried a monitor score"


def _from_summary(row: dict[str, Any], metric: str) -> float:
    """A metric's value looked up in its summary row (or the row's details) by its name."""
    name, field = metric, "value"
    for suffix in ("_low", "_high"):
        if metric.endswith(suffix):
            name, field = metric.removesuffix(suffix), suffix[1:]
    for source in (row, row.get("details") or {}):
        value: Any = source
        for key in name.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, dict):
            value = value.get(field)
        if value is not None:
            return float(value)
    raise AssertionError(f"{metric} is not in the summary row")


def test_metrics_are_the_summarys(run: Path, logs: dict[str, Any]) -> None:
    summary = _summary(run)
    for (suite, model), _records in _expected(run).items():
        log = logs[f"{suite}_{model}.eval"]
        rows = summary["models"][model]
        if suite == "control":
            expected = {"deployment": rows["deployment"]}  # the control section's default id
        else:
            expected = {g: row for g, row in rows["games"].items() if row["suite"] == suite}
        assert [s.name for s in log.results.scores] == list(expected)
        for score in log.results.scores:
            row = expected[score.name]
            metrics = {name: m.value for name, m in score.metrics.items()}
            for name, value in metrics.items():
                assert value == pytest.approx(_from_summary(row, name)), (model, score.name, name)
            if suite == "control":
                assert score.scorer == "trusted_monitoring"
                assert metrics["attack_rate"] == row["attack_rate"]["value"]
            else:
                assert next(iter(metrics)) == "win"  # Inspect's headline
                for key in ("value", "low", "high"):
                    name = "win" if key == "value" else f"win_{key}"
                    assert metrics[name] == row["win"][key]
                assert metrics["optimal_win"] == row["optimal_win"]
                assert score.metadata["verdict"] == row["verdict"]
                assert score.scored_samples == sum(
                    s.metadata["game"] == score.name for s in log.samples
                )
    effects = logs["tg_training_gamer.eval"].results.scores[0].metrics
    assert any(name.startswith("effects.") for name in effects)


def test_every_token_is_counted_once(run: Path, logs: dict[str, Any]) -> None:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for log in logs.values():
        for name, usage in log.stats.model_usage.items():
            totals[name.removeprefix("scripted/")][0] += usage.input_tokens
            totals[name.removeprefix("scripted/")][1] += usage.output_tokens
    expected = {
        model: [row["prompt_tokens"], row["completion_tokens"]]
        for model, row in _summary(run)["usage_by_model"].items()
    }
    assert "trusted" in expected
    assert dict(totals) == expected


def test_cli_exports_a_run_and_refuses_bad_input(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["export", str(run), "--format", "inspect", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in out.glob("*.eval"))
    assert len(printed) == 4 * len(MODELS)

    missing = tmp_path / "nope"
    assert main(["export", str(missing), "--format", "inspect"]) == 2
    assert capsys.readouterr().err.strip() == f"sandbox: error: export: {missing} does not exist"

    assert main(["export", str(tmp_path), "--format", "inspect"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is not a run directory" in err

    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished, ignore=shutil.ignore_patterns("inspect"))
    (unfinished / SUMMARY).unlink()
    assert main(["export", str(unfinished), "--format", "inspect"]) == 2
    err = capsys.readouterr().err
    assert "is not a finished run" in err and f"sandbox run --resume {unfinished}" in err
    assert not (unfinished / "inspect").exists()


def test_unknown_format_and_missing_inspect_are_export_errors(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ExportError, match="unknown export format 'inspekt'; did you mean"):
        export_run(run, "inspekt", tmp_path)
    monkeypatch.setitem(sys.modules, "inspect_ai.log", None)  # as if not installed
    with pytest.raises(ExportError, match=r"pip install -c constraints\.txt -e '\.\[bench\]'"):
        export_run(run, "inspect", tmp_path)


# --- how the logs are written: what Inspect's own writer writes, streamed in the run's order ----


def _members(path: Path) -> dict[str, Any]:
    """A `.eval` file's members, each parsed (importing Inspect AI taught `zipfile` zstd)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert len(names) == len(set(names)), f"{path.name}: a member written twice"
        assert archive.testzip() is None  # every member's CRC
        return {name: json.loads(archive.read(name)) for name in names}


def _by_id(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(summaries, key=lambda s: str(s["id"]))


def test_each_log_is_what_inspects_own_writer_writes(
    run: Path, logs: dict[str, Any], tmp_path: Path
) -> None:
    """Each log read back with Inspect's reader and written again with its writer
    (`write_eval_log`) gives the same members with the same JSON: no field missing, added or
    serialized otherwise (a default left out, a None written, a summary thinned differently)."""
    for name, log in logs.items():
        ours = _members(run / "inspect" / name)
        inspect_log.write_eval_log(log, str(tmp_path / name), format="eval")
        theirs = _members(tmp_path / name)
        assert ours.keys() == theirs.keys(), name
        for member, data in ours.items():
            if member.endswith("summaries.json") or member.startswith("_journal/summaries/"):
                assert _by_id(data) == _by_id(theirs[member]), (name, member)  # (reordered)
            else:
                assert data == theirs[member], (name, member)


def _ids_in_order(records: list[dict[str, Any]], suite: str) -> list[str]:
    if suite == "control":
        return [r["episode_id"] for r in records]
    return [s["context_id"] for r in records for s in r["samples"]]


def test_samples_are_written_in_the_runs_order(run: Path, logs: dict[str, Any]) -> None:
    """Streamed episode by episode, each log still lists its samples in `results.jsonl`'s
    order: its sample members, its summaries (Inspect's sample list) and its dataset's ids."""
    for (suite, model), records in _expected(run).items():
        name = f"{suite}_{model}.eval"
        ids = _ids_in_order(records, suite)
        with zipfile.ZipFile(run / "inspect" / name) as archive:
            written = [n for n in archive.namelist() if n.startswith("samples/")]
        assert written == [f"samples/{i}_epoch_1.json" for i in ids]
        summaries = inspect_log.read_eval_log_sample_summaries(str(run / "inspect" / name))
        assert [s.id for s in summaries] == ids
        assert logs[name].eval.dataset.sample_ids == ids


def test_progress_counts_each_episode_once(run: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    export_run(run, "inspect", tmp_path, progress=lambda done, total: calls.append((done, total)))
    episodes = len(_lines(run / RESULTS))
    assert calls == [(done, episodes) for done in range(episodes + 1)]


def test_a_redone_episode_and_a_redone_context_are_exported_once(run: Path, tmp_path: Path) -> None:
    """A resumed run's files may hold an episode's results line twice (the first counts, as
    for every reader) and a context's answer twice (the last counts): each is still one sample,
    with the answer that counts."""
    redone = tmp_path / "redone"
    shutil.copytree(run, redone, ignore=shutil.ignore_patterns("inspect"))
    results = _lines(redone / RESULTS)
    first = next(r for r in results if r["samples"] and r["samples"][0]["parse_ok"])
    again = {**first, "samples": [{**s, "choice": "REDONE"} for s in first["samples"]]}
    with (redone / RESULTS).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(again) + "\n")
    context = first["samples"][0]["context_id"]
    events = (redone / EVENTS).read_text(encoding="utf-8").splitlines(keepends=True)
    action = next(e for e in events if f'"context_id": "{context}"' in e and '"action"' in e)
    answer = {**json.loads(action), "visible": "answered again"}
    events.insert(-1, json.dumps(answer) + "\n")  # before run_finished: still a finished run
    (redone / EVENTS).write_text("".join(events), encoding="utf-8")

    calls: list[tuple[int, int]] = []
    paths = export_run(redone, "inspect", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(results), len(results))  # the repeated line is no episode more
    (path,) = [p for p in paths if p.name.endswith(f"_{first['model']}.eval") and "xc_" in p.name]
    log = inspect_log.read_eval_log(str(path))
    ids = [s.id for s in log.samples]
    assert len(ids) == len(set(ids))
    sample = next(s for s in log.samples if s.id == context)
    assert sample.scores["choice"].value == first["samples"][0]["choice"]
    assert sample.output.completion == sample.messages[-1].content == "answered again"


def test_cli_shows_progress_only_on_a_terminal(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    episodes = len(_lines(run / RESULTS))
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["export", str(run), "--format", "inspect", "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().err == ""  # captured, not a terminal: the paths alone
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat the captured stderr as a terminal
    args = ["export", str(run), "--format", "inspect", "--out", str(tmp_path / "b")]
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "episodes" in captured.err and f"{episodes}/{episodes}" in captured.err
    assert len(captured.out.split()) == 4 * len(MODELS)  # stdout: the paths, as when piped


def _messy_sample() -> dict[str, Any]:
    """A sample the test run has none like: metadata Inspect's summary thins (a long multi-line
    string, a table over 1 KB), a failed parse's explanation, a string input, an error."""
    from sandbox.review.export import inspect_logs

    long_text = "line one\n\n   line  two " * 200
    return inspect_logs.eval_sample(
        id="m/g/00000/obs",
        input="an observation\twith  whitespace",
        messages=[inspect_logs.chat("user", long_text)],
        output=inspect_logs.model_output("scripted/m", "", error="the backend failed"),
        scores={"choice": inspect_logs.score(NO_ANSWER, explanation=long_text)},
        metadata={"observation": long_text, "table": {str(i): i for i in range(300)}, "n": 1},
        usage={},
    )


def test_a_summary_is_inspects_own_and_thinned_as_it_thins() -> None:
    from sandbox.review.export.inspect_logs import sample_summary, to_json

    sample = _messy_sample()
    written, ours = json.loads(to_json(sample)), json.loads(sample_summary(sample))
    # the sample as written is what Inspect writes of it, and its summary what Inspect makes
    # (validated from a copy: Inspect's validators add keys to the dict they are given)
    parsed = inspect_log.EvalSample.model_validate(copy.deepcopy(sample))
    assert written == parsed.model_dump(mode="json", exclude_none=True)
    assert ours == parsed.summary().model_dump(mode="json", exclude_none=True)
    assert ours["metadata"]["table"] == "Key removed from summary (> 1k)"
    assert "\n" not in ours["metadata"]["observation"]


def test_a_lone_surrogate_is_written_as_inspect_writes_it() -> None:
    """A model's answer may hold an unpaired surrogate (a cut emoji): Inspect escapes it rather
    than failing the log; so does the export."""
    from sandbox.review.export.inspect_logs import to_json

    value = {"visible": "cut \ud83d here", "n": 1}
    assert json.loads(to_json(value)) == {"visible": "cut \\ud83d here", "n": 1}


# --- the zip itself ------------------------------------------------------------------------------


def test_the_zip_is_read_back_whole_past_zip_limits(tmp_path: Path) -> None:
    """More members than a plain zip's end record counts (65,535) need its ZIP64 records; a
    large log has that many samples. Every member reads back, CRC checked, none lost."""
    from sandbox.review.export.eval_zip import EvalZip, StreamedMember

    count = 66_000
    path = tmp_path / "many.eval"
    with EvalZip(path) as archive:
        for i in range(count):
            archive.write(f"samples/{i}_epoch_1.json", b'{"id":%d}' % i)
        streamed = StreamedMember()
        for piece in (b"[", b"1", b",", b"2", b"]"):
            streamed.append(piece)
        archive.write_compressed("summaries.json", streamed.finish(), streamed.size, streamed.crc)
    # the ZIP64 end record (56 bytes), its locator (20), then the plain end record (22): the
    # ZIP64 record holds the true count (readers that trust the count read the whole list)
    tail = path.read_bytes()[-98:]
    assert tail[:4] == b"PK\x06\x06" and tail[56:60] == b"PK\x06\x07"
    assert struct.unpack_from("<QQ", tail, 24) == (count + 1, count + 1)
    with zipfile.ZipFile(path) as back:
        names = back.namelist()
        assert names == [f"samples/{i}_epoch_1.json" for i in range(count)] + ["summaries.json"]
        assert back.testzip() is None
        assert json.loads(back.read("samples/65999_epoch_1.json")) == {"id": 65999}
        assert json.loads(back.read("summaries.json")) == [1, 2]


def test_a_member_written_twice_fails_and_leaves_no_file(tmp_path: Path) -> None:
    """A sample exported twice would be read back as one (readers keep the last): the writer
    refuses it, and an export that fails removes its unfinished log."""
    from sandbox.review.export.eval_zip import EvalZip

    path = tmp_path / "twice.eval"
    with pytest.raises(ValueError, match="written twice"), EvalZip(path) as archive:
        archive.write("samples/a_epoch_1.json", b"{}")
        archive.write("samples/a_epoch_1.json", b"{}")
    assert not path.exists()


def test_an_export_that_fails_leaves_no_half_written_log(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log is whole or absent: `inspect view` would list a zip cut short as a corrupt log.
    Logs finished before the failure stay, each readable."""
    from sandbox.review.export import inspect_logs

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("planted")

    monkeypatch.setattr(inspect_logs, "step_sample", fail)  # control logs come last
    with pytest.raises(RuntimeError, match="planted"):
        export_run(run, "inspect", tmp_path / "mid")
    left = sorted(p.name for p in (tmp_path / "mid").iterdir())
    assert left == sorted(f"{s}_{m}.eval" for s in ("xc", "co", "tg") for m in MODELS)
    for name in left:
        assert inspect_log.read_eval_log(str(tmp_path / "mid" / name), header_only=True)
    monkeypatch.setattr(inspect_logs, "eval_log", fail)  # the header, once the samples are in
    with pytest.raises(RuntimeError, match="planted"):
        export_run(run, "inspect", tmp_path / "end")
    assert list((tmp_path / "end").iterdir()) == []
