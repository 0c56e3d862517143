"""A finished run's tables read from its `tally.json` (`sandbox.review.logs.record_tally`): what
`sandbox logs` prints from it is what it prints from the log, byte for byte, and a tally that
does not fit the log as it stands (appended, edited, replaced) or cannot be read is never
trusted: the tables are computed from the log instead."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from sandbox.cli import main
from sandbox.core.results import Summary
from sandbox.record.runstore import EVENTS
from sandbox.review import logs as logs_module
from sandbox.review.logs import (
    TALLY,
    log_fingerprint,
    record_tally,
    sampled_spans,
    summary_tables,
)
from tests.conftest import run_dir, small_config

VIEWS = [["--json"], ["--json", "--summary"], [], ["--summary"]]
"""The default view and `--summary`, as JSON lines and as tables."""


@pytest.fixture(scope="module")
def xc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small XC run with parse failures (sloppy, babbler) and no coordination attempts."""
    tmp = tmp_path_factory.mktemp("tally")
    data = small_config(tmp, agents={"copies": 4, "actors": 2, "max_reasks": 1})
    data["models"] = ["honest", "sloppy", "babbler"]
    return run_dir(data)


@pytest.fixture(params=["coordination", "xc"])
def finished(request: pytest.FixtureRequest) -> Path:
    """configs/coordination.yaml (agreement games, collusion under untrusted monitoring, a
    deployment's decisions and audits), and a small XC run."""
    if request.param == "coordination":
        co_run: tuple[Path, Summary] = request.getfixturevalue("co_run")
        return co_run[0]
    path: Path = request.getfixturevalue("xc_run")
    return path


def shown(capsys: pytest.CaptureFixture[str], run: Path, view: list[str]) -> tuple[int, str, str]:
    code = main(["logs", str(run), *view])
    out, err = capsys.readouterr()
    return code, out, err


def copied(run: Path, to: Path) -> Path:
    """The run directory copied with its files' times (`cp -p`): its tally still fits."""
    shutil.copytree(run, to)
    return to


def log_only(run: Path, to: Path) -> Path:
    """A directory holding the run's log alone: `sandbox logs` computes from it."""
    to.mkdir()
    shutil.copy2(run / EVENTS, to / EVENTS)
    return to


def planted(run: Path) -> dict[str, Any]:
    """Give the run's tally tables the log does not hold (a summary row of a model no run has,
    its SHA-256 updated to match), keeping its fingerprint: `sandbox logs` shows that row only
    when it reads the tally. Returns the tally as planted."""
    data = json.loads((run / TALLY).read_text(encoding="utf-8"))
    row = dict(data["tables"]["summary"][0]) | {"model": "planted-by-test", "episodes": 12345}
    data["tables"]["summary"].append(row)
    data["tables_sha256"] = logs_module._tables_sha256(data["tables"])
    (run / TALLY).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return data


def test_a_finished_run_records_its_tables_and_its_log_as_it_ended(finished: Path) -> None:
    data = json.loads((finished / TALLY).read_text(encoding="utf-8"))
    log = finished / EVENTS
    # taken after the run's last event: a log that ends with run_finished
    assert log.read_bytes().splitlines()[-1].startswith(b'{"ts"')
    assert json.loads(log.read_bytes().splitlines()[-1])["kind"] == "run_finished"
    assert data["log"] == log_fingerprint(log)
    assert data["log"]["size"] == log.stat().st_size
    assert data["tables"] == summary_tables(log)


@pytest.mark.parametrize("view", VIEWS, ids=" ".join)
def test_the_tally_prints_what_the_log_prints_byte_for_byte(
    finished: Path,
    view: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    from_tally = shown(capsys, finished, view)
    from_log = shown(capsys, log_only(finished, tmp_path / "log"), view)
    assert from_tally == from_log
    assert from_tally[0] == 0
    if "--summary" in view:
        assert "private_colluder" in from_tally[1] or "sloppy" in from_tally[1]


def test_the_tally_is_read_when_the_log_is_unchanged(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tally whose fingerprint fits is what is shown (its planted row), with the summary and
    without it (the default view shows the tally's coordination tables only)."""
    run = copied(finished, tmp_path / "run")
    planted(run)
    _, out, _ = shown(capsys, run, ["--json", "--summary"])
    assert '"model": "planted-by-test", "game"' in out and '"episodes": 12345' in out
    _, out, _ = shown(capsys, run, ["--json"])
    assert '"table": "summary"' not in out
    assert out == shown(capsys, log_only(finished, tmp_path / "log"), ["--json"])[1]


def _computed(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sandbox logs` shows the tables computed from the log as it now stands (not the planted
    tally), and exits 0."""
    tables = summary_tables(run / EVENTS, processes=1)
    for view, names in (
        (["--json", "--summary"], ("agreement", "collusion", "summary")),
        (["--json"], ("agreement", "collusion")),
    ):
        code, out, err = shown(capsys, run, view)
        assert (code, err) == (0, "")
        assert out == "".join(
            json.dumps({"table": name} | row, ensure_ascii=False) + "\n"
            for name in names
            for row in tables[name]
        )
        assert "planted-by-test" not in out


def episodes(run: Path) -> int:
    return sum(r["episodes"] for r in summary_tables(run / EVENTS, processes=1)["summary"])


def test_a_line_appended_to_the_log_is_counted(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resumed run (or one still being written) adds lines after the tally: counted."""
    run = copied(finished, tmp_path / "run")
    planted(run)
    lines = (run / EVENTS).read_bytes().splitlines(keepends=True)
    result = next(line for line in lines if b'"kind": "episode_result"' in line)
    with (run / EVENTS).open("ab") as fh:
        fh.write(result.replace(b'"episode_id": "', b'"episode_id": "again/'))
    _computed(run, capsys)
    assert episodes(run) == episodes(finished) + 1


def test_a_byte_changed_in_the_middle_of_the_log_is_seen(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same size, one episode result's kind changed in the middle of the log: outside the
    sampled bytes where the log has more (an edit writes the file: its time changes), and inside
    them with the file's time set back."""
    for restore_time in (False, True):
        run = copied(finished, tmp_path / f"run-{restore_time}")
        planted(run)
        log = run / EVENTS
        stat = log.stat()
        data = bytearray(log.read_bytes())
        spans = sampled_spans(len(data))
        kinds = [m.start() + 9 for m in re.finditer(b'"kind": "episode_result"', data)]
        sampled = [k for k in kinds if any(a <= k < a + n for a, n in spans)]
        others = [k for k in kinds if k not in sampled]
        at = (sampled if restore_time or not others else others)[
            len(kinds) // 4 if len(spans) == 1 else 0
        ]
        data[at : at + 1] = b"E"  # "episode_result" -> "Episode_result": not counted
        log.write_bytes(bytes(data))
        assert log.stat().st_size == stat.st_size
        if restore_time:
            os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            assert log.stat().st_mtime_ns == stat.st_mtime_ns
        _computed(run, capsys)
        assert episodes(run) == episodes(finished) - 1


def test_the_fingerprint_sees_a_large_log_changed_in_place(tmp_path: Path) -> None:
    """Above 6 MiB the fingerprint hashes the head, the tail and 64 blocks between: an edit
    inside a sample is seen by its hash, whatever the file's time; one between the samples by
    the file's time (and not when that is set back: what the fingerprint cannot see); an append
    by the size."""
    log = tmp_path / EVENTS
    line = b'{"kind": "run_finished", "episodes": 1}\n'
    log.write_bytes(line * (10 * 2**20 // len(line)))
    then = log.stat().st_mtime_ns - 10**10  # ten seconds back: any write now moves it
    os.utime(log, ns=(then, then))
    first = log_fingerprint(log)
    size = first["size"]
    spans = sampled_spans(size)
    assert len(spans) == logs_module.SAMPLES + 2
    assert spans[0] == (0, 2**20) and spans[-1] == (size - 2**20, 2**20)

    def edited(at: int, keep_time: bool) -> dict[str, Any]:
        """The fingerprint with the byte at `at` changed (the file's time set back where
        `keep_time`); the log then restored as it was."""
        with log.open("r+b") as fh:
            fh.seek(at)
            old = fh.read(1)
            fh.seek(at)
            fh.write(b"X")
        if keep_time:
            os.utime(log, ns=(then, then))
        changed = log_fingerprint(log)
        with log.open("r+b") as fh:
            fh.seek(at)
            fh.write(old)
        os.utime(log, ns=(then, then))
        assert log_fingerprint(log) == first
        return changed

    for at in (10, spans[1][0] + 5, spans[40][0] + 1000, spans[-2][0], size - 5):
        assert edited(at, keep_time=True)["sampled_sha256"] != first["sampled_sha256"], at
    between = spans[10][0] + logs_module.SAMPLE_BLOCK + 100
    assert between < spans[11][0]
    changed = edited(between, keep_time=False)
    assert changed["sampled_sha256"] == first["sampled_sha256"]
    assert changed["mtime_ns"] != first["mtime_ns"]
    assert edited(between, keep_time=True) == first  # the limit the docs name
    with log.open("ab") as fh:
        fh.write(line)
    assert log_fingerprint(log)["size"] == size + len(line)


GARBAGE = {
    "not JSON": lambda data: b"\x00\xffnot json",
    "torn": lambda data: json.dumps(data).encode()[:-40],
    "empty": lambda data: b"",
    "a list": lambda data: b"[]",
    "tables a list": lambda data: json.dumps(data | {"tables": []}).encode(),
    "rows of strings": lambda data: json.dumps(
        data | {"tables": {"agreement": ["x"], "collusion": [], "summary": []}}
    ).encode(),
    "a table missing": lambda data: json.dumps(
        data | {"tables": {k: v for k, v in data["tables"].items() if k != "summary"}}
    ).encode(),
    "tables edited, not their hash": lambda data: json.dumps(
        data | {"tables": data["tables"] | {"summary": data["tables"]["summary"][:-1]}}
    ).encode(),
    "another layout": lambda data: json.dumps(data | {"tally_version": 99}).encode(),
    "other code": lambda data: json.dumps(data | {"code_sha256": "0" * 64}).encode(),
    "another log": lambda data: json.dumps(
        data | {"log": data["log"] | {"sampled_sha256": "0" * 64}}
    ).encode(),
    "no fingerprint": lambda data: json.dumps(
        {k: v for k, v in data.items() if k != "log"}
    ).encode(),
    "nested deep": lambda data: b"[" * 100_000,
}


@pytest.mark.parametrize("garbage", GARBAGE)
def test_a_tally_that_cannot_be_trusted_is_not_read(
    co_run: tuple[Path, Summary], garbage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copied(co_run[0], tmp_path / "run")
    data = planted(run)
    (run / TALLY).write_bytes(GARBAGE[garbage](data))
    assert logs_module.recorded_tables(run) is None
    _computed(run, capsys)


def test_no_tally_is_written_for_a_log_that_is_not_there(tmp_path: Path) -> None:
    assert record_tally(tmp_path) is False
    assert list(tmp_path.iterdir()) == []


def test_a_tally_that_cannot_be_written_leaves_the_log_to_be_read(
    xc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`record_tally` reports a tally it cannot write (here a directory where it would go)
    rather than raising into the run that called it; the log is then read."""
    run = log_only(xc_run, tmp_path / "run")
    (run / TALLY).mkdir()
    assert record_tally(run) is False
    assert logs_module.recorded_tables(run) is None
    _computed(run, capsys)
