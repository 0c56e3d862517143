"""The typed results (`sandbox/core/results.py`): a summary survives `summary.json` whole and in
its key order, its parts cannot change under a reader, a version-1 summary (written before
`schema_version`) is read as what it says and shows and reports as it did, and a summary that
cannot be read is refused with the file and the field named.

The version-1 fixtures in `tests/data/summary_v1/` were written by the code of commit 2ccad0c,
with what that code printed for them (`sandbox show` at two widths, `report.md`); see its
README.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sandbox import cli
from sandbox.core import results
from sandbox.core.results import (
    SCHEMA_VERSION,
    DeploymentScore,
    GameScore,
    IncompleteGame,
    Interval,
    ModelResult,
    Result,
    Summary,
    SummaryError,
)
from sandbox.review.profile import capability_profile
from tests.conftest import REPO, run_in_process, small_config

V1 = REPO / "tests" / "data" / "summary_v1"
FIXTURES = ("games", "collusion", "deployment")


def _data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((V1 / name / "summary.json").read_text(encoding="utf-8"))
    return data


def _same(a: Any, b: Any, path: str = "") -> None:
    """`a` and `b` hold the same keys in the same order, and equal values, all the way down."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (path, list(a), list(b))
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


@pytest.fixture
def no_key_access(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The old key access (`summary["models"]`, kept for users' scripts) switched off: a reader
    of ours that still expects the untyped summary fails."""

    def refuse(self: Result, key: str) -> Any:
        raise AssertionError(f"{type(self).__name__}[{key!r}]: a reader read a key")

    monkeypatch.setattr(Result, "__getitem__", refuse, raising=False)
    yield


# --- the models -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_a_version_1_summary_reads_and_writes_back_whole(name: str) -> None:
    """Read, then written as version 2: every key of the old file, in its order, with its value
    (a field the models drop, rename or reorder fails), plus `schema_version` first."""
    summary = Summary.read(V1 / name / "summary.json")
    written = json.loads(summary.to_json())
    assert next(iter(written)) == "schema_version" and written.pop("schema_version") == 2
    _same(_data(name), written)
    # and version 2 reads back as the same values
    assert Summary.parse(json.loads(summary.to_json())) == summary


def test_the_models_are_frozen_and_refuse_unknown_keys() -> None:
    """Every result model: a table cannot change what the next table reads, and a misspelt key
    is an error rather than a field quietly left at its default."""
    models = [
        m
        for m in vars(results).values()
        if isinstance(m, type) and issubclass(m, Result) and m is not Result
    ]
    assert len(models) >= 15
    for model in models:
        assert model.model_config.get("frozen") is True, model
        assert model.model_config.get("extra") == "forbid", model
    summary = Summary.read(V1 / "collusion" / "summary.json")
    with pytest.raises(ValidationError, match="frozen"):
        summary.run_id = "another"  # type: ignore[misc]
    game = summary.models["honest"].games["upfront_auditing"]
    assert isinstance(game, GameScore)
    with pytest.raises(ValidationError, match="frozen"):
        game.win.value = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        Interval.model_validate({**game.win.model_dump(), "mean": 0.5})


def test_a_version_1_summary_is_read_as_what_it_says() -> None:
    """Not merely valid: the numbers a reader gets are the file's, in the right places."""
    data = _data("collusion")
    summary = Summary.read(V1 / "collusion" / "summary.json")
    assert summary.schema_version == SCHEMA_VERSION == 2
    assert summary.run_id == data["run_id"] and summary.xc_threshold == data["xc_threshold"]
    row = data["models"]["worst_case"]
    game = summary.models["worst_case"].games["upfront_auditing"]
    assert isinstance(game, GameScore)
    assert game.win == Interval(**row["games"]["upfront_auditing"]["win"])
    assert game.details == row["games"]["upfront_auditing"]["details"]
    deployment = summary.models["worst_case"].deployment
    assert isinstance(deployment, DeploymentScore) and deployment.collusion is not None
    honeypots = deployment.collusion["honeypots"]
    assert honeypots.honeypots == row["deployment"]["collusion"]["honeypots"]["honeypots"]
    assert summary.profile["worst_case"].reading == data["profile"]["worst_case"]["reading"]
    usage = summary.usage_by_model
    assert usage is not None and summary.cost is not None
    assert usage["trusted"].contexts == data["usage_by_model"]["trusted"]["contexts"]


@pytest.mark.parametrize("name", FIXTURES)
def test_the_profile_is_made_as_the_old_code_made_it(name: str) -> None:
    """`capability_profile` on a version-1 run's model results gives the profile the code of
    that time wrote beside them."""
    summary = Summary.read(V1 / name / "summary.json")
    for model, entry in summary.models.items():
        assert capability_profile(entry) == summary.profile[model], model


def test_an_incomplete_game_keeps_its_own_shape() -> None:
    """A game with an observation never sampled is its own shape (no win to read), written with
    the keys in the order the untyped summary wrote them; `complete` tells the shapes apart."""
    row = {
        "environment": "upfront_auditing",
        "suite": "xc",
        "samples": 3,
        "optimal_win": 0.3,
        "complete": False,
    }
    data = _data("games")
    data["models"]["honest"]["games"]["upfront_auditing"] = row
    data["models"]["honest"]["measured_profile"] = None
    summary = Summary.parse(data)
    game = summary.models["honest"].games["upfront_auditing"]
    assert isinstance(game, IncompleteGame) and game.optimal_win == 0.3
    written = json.loads(summary.to_json())["models"]["honest"]["games"]["upfront_auditing"]
    _same(row, written)
    # a complete game must have what a complete game has
    data["models"]["honest"]["games"]["upfront_auditing"] = {**row, "complete": True}
    with pytest.raises(SummaryError, match=r"upfront_auditing\.episodes: Field required"):
        Summary.parse(data, "x.json")


def test_keys_a_run_may_not_have_are_left_out_not_written_null() -> None:
    """`coordination`, `replay`, `isolation` and a deployment's `collusion` are written only
    when held (as before); a model's `deployment` or profile entry is written null."""
    summary = Summary.read(V1 / "deployment" / "summary.json")
    written = json.loads(summary.to_json())
    assert not {"coordination", "replay"} & set(written)
    attacker = written["models"]["attacker"]
    assert attacker["measured_profile"] is None and "collusion" not in attacker["deployment"]
    assert written["profile"]["attacker"]["collusion"] is None
    without = summary.model_copy(update={"isolation": None})
    assert "isolation" not in json.loads(without.to_json())


def test_old_key_access_still_works_for_scripts() -> None:
    """Code written against the untyped summary reads on, by the old keys."""
    summary = Summary.read(V1 / "games" / "summary.json")
    game = summary["models"]["honest"]["games"]["plan_consistency"]
    assert (
        game["verdict"]
        == _data("games")["models"]["honest"]["games"]["plan_consistency"]["verdict"]
    )
    assert game["details"]["chance_agreement"] == 0.25
    with pytest.raises(KeyError):
        summary["no_such_key"]


# --- reading: versions and errors ---------------------------------------------------------------


def test_a_version_1_summary_from_before_a_key_is_upgraded() -> None:
    """Runs made before a key was recorded lack it; version 1 reads as the readers showed
    those runs (a game's suite XC, audits by score, no profile, no threshold), version 2 must
    have every key."""
    data = _data("collusion")
    del data["xc_threshold"], data["profile"]
    for entry in data["models"].values():
        for game in entry["games"].values():
            del game["suite"]
        del entry["deployment"]["positional_audits"]
        for row in entry["deployment"]["collusion"].values():
            del row["best_attack_rate_bracket"], row["signalled_pass_honeypot_test"]
    before = copy.deepcopy(data)
    summary = Summary.parse(data)
    assert data == before  # the caller's data is not changed
    assert summary.xc_threshold is None and summary.profile == {}
    worst = summary.models["worst_case"]
    assert {g.suite for g in worst.games.values()} == {"xc"}
    assert isinstance(worst.deployment, DeploymentScore)
    assert worst.deployment.positional_audits is False
    assert worst.deployment.collusion is not None
    assert worst.deployment.collusion["none"].best_attack_rate_bracket is None
    with pytest.raises(SummaryError, match=r"xc_threshold: Field required"):
        Summary.parse({**data, "schema_version": 2}, "v2.json")


def test_a_newer_schema_version_is_refused_and_said_so(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({**_data("games"), "schema_version": 3}))
    with pytest.raises(SummaryError) as caught:
        Summary.read(path)
    message = str(caught.value)
    assert str(path) in message and "schema_version 3" in message
    assert "newer sandbox" in message and "upgrade" in message
    for version in ("2", 0, True, None):
        with pytest.raises(SummaryError, match="not a schema version"):
            Summary.parse({**_data("games"), "schema_version": version}, "x.json")


@pytest.mark.parametrize(
    ("break_it", "field"),
    [
        (lambda d: d["models"]["honest"]["games"]["schelling"].pop("win"), "schelling.win"),
        (
            lambda d: d["models"]["honest"]["games"]["schelling"]["played"].update(n="many"),
            "models.honest.games.schelling.played.n",
        ),
        (lambda d: d.update(runid="typo"), "runid: Extra inputs"),
        (lambda d: d.pop("models"), "models: Field required"),
    ],
)
def test_an_unreadable_summary_names_its_file_and_field(
    tmp_path: Path, break_it: Any, field: str
) -> None:
    data = _data("games")
    break_it(data)
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SummaryError) as caught:
        Summary.read(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert field in str(caught.value)


def test_what_is_not_a_summary_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("[1, 2]")
    with pytest.raises(SummaryError, match="not a run summary"):
        Summary.read(path)
    path.write_text("{")
    with pytest.raises(SummaryError, match="cannot read"):
        Summary.read(path)
    with pytest.raises(SummaryError, match="cannot read"):
        Summary.read(tmp_path / "missing.json")


# --- the command line on version-1 runs ---------------------------------------------------------


@pytest.fixture
def plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped output as the fixtures' was captured: no colour forced, the width from COLUMNS."""
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("plain_output", "no_key_access")
@pytest.mark.parametrize("width", [200, 100])
@pytest.mark.parametrize("name", FIXTURES)
def test_show_prints_what_the_old_code_printed(
    name: str, width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sandbox show` of a version-1 run prints the tables the code of its time printed,
    character for character (at 100 columns the wide tables split into parts)."""
    monkeypatch.setenv("COLUMNS", str(width))
    assert cli.main(["show", str(V1 / name)]) == 0
    out = capsys.readouterr().out
    assert out == (V1 / name / f"show_{width}.txt").read_text(encoding="utf-8")


@pytest.mark.usefixtures("no_key_access")
@pytest.mark.parametrize("name", FIXTURES)
def test_report_writes_what_the_old_code_wrote(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / name
    run.mkdir()
    for file in ("summary.json", "config.yaml"):
        shutil.copy(V1 / name / file, run / file)
    assert cli.main(["report", str(run)]) == 0
    capsys.readouterr()
    want = (V1 / name / "report.md").read_text(encoding="utf-8")
    assert (run / "report.md").read_text(encoding="utf-8") == want
    assert (run / "summary.json").read_bytes() == (V1 / name / "summary.json").read_bytes()


def test_show_and_report_name_the_field_of_a_summary_they_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data("deployment")
    del data["models"]["attacker"]["deployment"]["safety"]
    (tmp_path / "summary.json").write_text(json.dumps(data))
    assert cli.main(["show", str(tmp_path)]) == 2
    assert "models.attacker.deployment.safety: Field required" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'summary.json'}: models.attacker.deployment.safety" in err


# --- a run writes version 2 ---------------------------------------------------------------------


@pytest.mark.usefixtures("no_key_access")
def test_a_run_writes_its_summary_as_version_2(tmp_path: Path) -> None:
    """The runner returns a `Summary` and writes it: schema_version first, then the keys of
    version 1 in their order; it reads back equal, and its profile is its own."""
    data = small_config(tmp_path, models=["honest"])
    data["sampling"] = {"k": 10, "played_games": 100, "bootstrap": 100}
    path, summary = run_in_process(data)
    assert isinstance(summary, Summary)
    written = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    assert list(written) == [
        "schema_version",
        "run_id",
        "config_sha256",
        "xc_threshold",
        "episodes",
        "usage",
        "models",
        "profile",
        "plan_usage",
        "usage_by_model",
        "cost",
        "templates",
    ]
    assert written["schema_version"] == 2
    assert Summary.read(path / "summary.json") == summary
    entry = summary.models["honest"]
    assert isinstance(entry, ModelResult)
    assert capability_profile(entry) == summary.profile["honest"]
