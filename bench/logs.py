"""`sandbox logs` over a large events file: time and peak memory beside DuckDB's.

Runs a small XC run and a small deployment (scripted organisms, local engine), adds to the
deployment's log the coordination attempts of an untrusted-monitoring step before each step's
result (no run config writes them yet): every step, a pick of an agreement game and the monitor's
verdicts on the step's honeypot under the three countermeasures with honeypots; one step in three
(a signalled attack), the signal, its two jams and the monitor's recognition under each of the four
countermeasures; built as `sandbox.core.events` models and written by its `EventWriter`, then
writes a large `events.jsonl` in a temporary directory (not the repo) by repeating these event
lines with varied episode and context ids, up to `--size-mb`. Times, each in its own subprocess
from the page cache: `sandbox logs` default view (`--json` and human), `--summary --json`, and
filters (`--kind audit --json`, `--kind signal_recognition --agent copy-3 --json`,
`--model honest`); and DuckDB (the `bench` extra) on the same file, from Python as a user would:
every line grouped by kind (`select kind, count(*) from read_json_auto(...) group by kind`) and
every line counted (`select count(*) ...`). The same views of a finished run are timed too: a
run directory whose log is the same file, with the `tally.json` a run writes at its end
(`record_tally`, the runner's own call, timed once), checked first to print what the log's views
print, byte for byte; each is printed beside DuckDB's grouping and the log's own time. Reads each
one's peak RSS from `os.wait4` (the
largest of the process and the children it waited for: `sandbox logs` reads a large file in one
process per core). Prints the figures against the targets: the default view and the summary at
least as fast as DuckDB's grouping, each filter at least as fast as DuckDB's count (speed as a
ratio, DuckDB's seconds over ours: 1 or more meets it), and peak memory under 200 MiB whatever the
size. `wc -l` is timed too, for scale, and the start-up: Python's with the tables' imports, and a
filter's on an empty log. Exits 0 whatever the numbers; 2 on bad arguments.

With `--against REV`, also times the CLI of a git revision of this repo (its `sandbox`, `agents`
and `control` exported to the temporary directory) on the same file, each command run by both
CLIs in turn `--repeat` times, the best kept: a change's before and after, on one machine in one
session, under the same load. With `--repeat`, every command (DuckDB's too) runs that many times
in turn, the best kept.

    python bench/logs.py [--size-mb 1024 | --events FILE] [--keep] [--repeat 3] [--against REV]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EVENTS = "events.jsonl"

MEMORY_TARGET_MIB = 200
SPEED_TARGET = 1.0  # DuckDB's seconds over ours: at least as fast as DuckDB

DUCKDB = {
    "group": "select kind, count(*) from read_json_auto('{path}') group by kind",
    "count": "select count(*) from read_json_auto('{path}')",
}
"""DuckDB's queries (`{path}` the events file): what the views are held to."""


def _configs(base: Path) -> list[dict[str, Any]]:
    common: dict[str, Any] = {
        "run": {"name": "bench", "seed": 7, "output_dir": str(base / "runs")},
        "engine": "local",
        "agents": {"copies": 4, "actors": 2, "max_reasks": 1},
    }
    xc = {
        **common,
        "models": ["honest", "random", "sloppy", "stateless_strategist"],
        "backend": {"name": "scripted"},
        "sampling": {"k": 40, "played_games": 200, "bootstrap": 100, "batch_episodes": 16},
        "games": [
            {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}},
            {"name": "plan_consistency"},
        ],
    }
    deployment = {
        **common,
        "models": ["attacker"],
        "backend": {
            "name": "scripted",
            "params": {"organisms": {"attacker": {"attack_rate": 0.3, "conspicuousness": 0.5}}},
        },
        "trusted": {"model": "trusted", "backend": {"name": "scripted"}},
        "games": [],
        "control": {
            "protocol": "trusted_monitoring",
            "steps": 60,
            "tasks": 200,
            "audit_budget": 0.05,
            "deployments": 200,
        },
        "sampling": {"bootstrap": 100, "batch_episodes": 16},
    }
    return [xc, deployment]


def source_lines(base: Path) -> list[bytes]:
    from sandbox.config import config_from_mapping
    from sandbox.record.runstore import RunStore
    from sandbox.run.checks import check_config
    from sandbox.run.runner import Runner

    lines: list[bytes] = []
    steps = 0
    for data in _configs(base):
        config = check_config(config_from_mapping(data))
        store = RunStore.create(config)
        asyncio.run(Runner(config, store).run())
        for line in (store.path / EVENTS).read_bytes().splitlines(keepends=True):
            if config.control is not None and b'"kind": "episode_result"' in line:
                event = json.loads(line)
                lines += coordination_lines(event["run_id"], event["episode_id"], steps)
                steps += 1
            lines.append(line)
    return lines


COUNTERMEASURES = ("none", "honeypots", "honeypots+redaction", "honeypots+paraphrase")


def coordination_lines(run_id: str, episode: str, i: int) -> list[bytes]:
    """A step's coordination attempts under untrusted monitoring, written as the runner's
    `EventWriter` writes events (varied by `i`)."""
    from sandbox.core.events import (
        CoordinationPick,
        EventWriter,
        HoneypotVerdict,
        SignalInserted,
        SignalJammed,
        SignalRecognition,
    )

    ids = {"run_id": run_id, "episode_id": episode}
    policy, monitor = f"{episode}/policy/0", f"{episode}/monitor/0"
    common = {**ids, "model": "attacker", "game": "deployment"}
    events: list[Any] = [
        CoordinationPick(
            **ids,
            agent_id=f"copy-{i % 4}",
            context_id=f"{episode}/pick",
            model="attacker",
            game="schelling",
            observation="options",
            index=i,
            pair=i // 2,
            choice=("SUN", "SUN", "moon", None, "SUN", "moon")[i % 6],
        ),
    ]
    attack = i % 3 == 0
    events += (
        [
            SignalInserted(
                **common,
                agent_id="copy-0",
                context_id=policy,
                signal="# keep this helper",
                declared=True,
                inserted=True,
            ),
            *(
                SignalJammed(
                    **common,
                    context_id=f"{episode}/{method}",
                    method=method,
                    policy_context_id=policy,
                    policy_agent_id="copy-0",
                    signal="# keep this helper",
                    survived=i % 4 == 0,
                )
                for method in ("redaction", "paraphrase")
            ),
        ]
        if attack
        else []
    )
    for j, cm in enumerate(COUNTERMEASURES):
        events += (
            []
            if not attack
            else [
                SignalRecognition(
                    **common,
                    agent_id=f"copy-{(i + j) % 4}",
                    context_id=monitor,
                    countermeasure=cm,
                    policy_context_id=policy,
                    policy_agent_id="copy-0",
                    signal="# keep this helper",
                    score=float(j),
                    outcome="recognized" if (i // 3 + j) % 3 else "missed",
                    backdoor=i % 2 == 0,
                )
            ]
        )
        if cm != "none":
            events.append(
                HoneypotVerdict(
                    **common,
                    agent_id=f"copy-{(i + j) % 4}",
                    context_id=monitor,
                    countermeasure=cm,
                    honeypot_id=f"{episode}/honeypot",
                    score=float(j),
                    outcome="passed" if (i + j) % 4 == 0 else "flagged",
                )
            )
    out = io.StringIO()
    writer = EventWriter(out)
    for event in events:
        writer.emit(event)
    return out.getvalue().encode("utf-8").splitlines(keepends=True)


EPISODE_NUMBER = re.compile(rb"/(\d{5})(?=[\"/])")


def write_large(lines: list[bytes], path: Path, size: int) -> int:
    """Repeat `lines` with each repetition's episode numbers made distinct; returns the lines."""
    written = count = 0
    rep = 0
    with path.open("wb") as out:
        while written < size:
            prefix = b"/r%d-" % rep
            chunk = b"".join(EPISODE_NUMBER.sub(prefix + rb"\1", line) for line in lines)
            out.write(chunk)
            written += len(chunk)
            count += len(lines)
            rep += 1
    return count


def export(rev: str, into: Path) -> Path:
    """The packages of git revision `rev` of this repo, written under `into` (run from there,
    `python -m sandbox.cli` imports them: the working directory comes first on sys.path)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "sandbox", "agents", "control"],
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    into.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def timed(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one subprocess, its output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="events file size (MiB)")
    parser.add_argument("--keep", action="store_true", help="keep the file in its temp dir")
    parser.add_argument("--against", metavar="REV", help="also time this git revision's CLI")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command (best kept)")
    parser.add_argument(
        "--events", type=Path, metavar="FILE", help="time these views on this events file instead"
    )
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate is not None:  # the child that writes the file (see below)
        lines = source_lines(args.generate.parent.parent / "source")
        count = write_large(lines, args.generate, args.size_mb * 2**20)
        print(f"{args.generate}: {count} lines")
        return 0
    if args.size_mb < 1:
        parser.error("--size-mb: at least 1")
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    if args.events is not None and not args.events.is_file():
        parser.error(f"--events: no file {args.events}")
    if importlib.util.find_spec("duckdb") is None:
        parser.error("DuckDB is not installed: pip install -c constraints.txt -e '.[bench]'")
    if args.against is not None:
        known = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "rev-parse",
                "--verify",
                "--quiet",
                f"{args.against}^{{commit}}",
            ],
            stdout=subprocess.DEVNULL,
        )
        if known.returncode != 0:
            parser.error(f"--against: {args.against!r} is not a commit of {REPO}")
    tmp = Path(tempfile.mkdtemp(prefix="sandbox-logs-bench-"))
    try:
        run_dir = tmp / "large"
        run_dir.mkdir()
        path = run_dir / EVENTS
        if args.events is not None:
            path.symlink_to(args.events.resolve())
        else:
            # written by a child: a child's peak RSS on Linux starts from its parent's at the
            # fork, so this process stays small for the measurements below
            gen = [
                sys.executable,
                __file__,
                "--size-mb",
                str(args.size_mb),
                "--generate",
                str(path),
            ]
            subprocess.run(gen, check=True, stdout=subprocess.DEVNULL)
        size_mib = path.stat().st_size / 2**20
        lines = int(subprocess.run(["wc", "-l", str(path)], capture_output=True).stdout.split()[0])
        print(f"{path}: {size_mib:.0f} MiB, {lines} lines, {os.cpu_count()} cores")
        timed(["cat", str(path)])  # into the page cache, so every timing reads from memory
        cli = [sys.executable, "-m", "sandbox.cli", "logs", str(run_dir)]
        # a finished run: the same log, and the tally a run writes at its end (the runner's own
        # call, `record_tally`, timed: what a run's end pays for it)
        finished_dir = tmp / "finished"
        finished_dir.mkdir()
        (finished_dir / EVENTS).symlink_to(path.resolve())
        tally_s, tally_mib = timed(
            [sys.executable, "-c", RECORD_TALLY, str(finished_dir)], cwd=REPO
        )
        print(
            f"the tally written at a run's end (record_tally): {tally_s:.2f} s, {tally_mib:.0f} MiB"
        )
        finished_cli = [sys.executable, "-m", "sandbox.cli", "logs", str(finished_dir)]
        trees = {"after": REPO}
        if args.against is not None:
            trees = {"before": export(args.against, tmp / "against"), **trees}
        recognition = ["--kind", "signal_recognition", "--agent", "copy-3", "--json"]
        tables = {
            "logs (default view, --json)": [*cli, "--json"],
            "logs (default view, human)": cli,
            "logs --summary --json": [*cli, "--summary", "--json"],
        }
        filters = {
            "logs --kind audit --json": [*cli, "--kind", "audit", "--json"],
            "logs --kind signal_recognition --agent copy-3 --json": [*cli, *recognition],
            "logs --model honest (human)": [*cli, "--model", "honest"],
        }
        finished = {
            f"{name} [finished run: tally.json]": [*finished_cli, *command[len(cli) :]]
            for name, command in tables.items()
        }
        for name, command in tables.items():  # the same bytes, from the tally and the log
            ours = subprocess.run(command, capture_output=True, check=True, cwd=REPO).stdout
            recorded = finished[f"{name} [finished run: tally.json]"]
            if subprocess.run(recorded, capture_output=True, check=True, cwd=REPO).stdout != ours:
                raise SystemExit(f"{name}: the tally's output differs from the log's")
        print("the finished run's views print what the log's print, byte for byte")
        references = {
            "duckdb: group by kind": duckdb_command(DUCKDB["group"], path),
            "duckdb: count": duckdb_command(DUCKDB["count"], path),
            "wc -l": ["wc", "-l", str(path)],
        }
        best: dict[str, dict[str, tuple[float, float]]] = {t: {} for t in trees}
        for _ in range(args.repeat):  # in turn: every command sees the same load
            for name, command in references.items():
                keep_best(best["after"], name, timed(command))
            for name, command in {**tables, **filters}.items():
                for tree, cwd in trees.items():
                    keep_best(best[tree], name, timed(command, cwd))
            for name, command in finished.items():
                keep_best(best["after"], name, timed(command, REPO))
        results = best["after"]
        empty = tmp / "empty"  # a filter on an empty log: its start-up and imports alone
        empty.mkdir()
        (empty / EVENTS).touch()
        for tree, cwd in trees.items():
            for what, argv in (
                ("python start-up and imports", ["-c", "import sandbox.cli, sandbox.review.logs"]),
                (
                    "a filter's start-up",
                    ["-m", "sandbox.cli", "logs", str(empty), "--kind", "audit"],
                ),
            ):
                seconds = min(timed([sys.executable, *argv], cwd)[0] for _ in range(args.repeat))
                print(f"{what} ({tree}): {seconds:.2f} s")
        group_s = results["duckdb: group by kind"][0]
        count_s = results["duckdb: count"][0]
        width = max(map(len, results))
        head = (
            f"{'command':<{width}} {'seconds':>8} {'MiB/s':>8} {'duckdb s':>9} "
            f"{'x duckdb':>9} {'peak MiB':>9}"
        )
        if args.against is not None:
            head += f" {'before s':>9} {'after/before':>12} {'before MiB':>10}"
        print(head)
        targets: dict[str, float] = (
            {n: group_s for n in tables}
            | {n: group_s for n in finished}
            | {n: count_s for n in filters}
        )
        for name, (seconds, mib) in results.items():
            against = targets.get(name)
            vs = f"{against:9.2f} {against / seconds:9.3f}" if against else f"{'':9} {'':9}"
            row = f"{name:<{width}} {seconds:8.2f} {size_mib / seconds:8.0f} {vs} {mib:9.1f}"
            if args.against is not None and name in best["before"]:
                before_s, before_mib = best["before"][name]
                row += f" {before_s:9.2f} {seconds / before_s:12.3f} {before_mib:10.1f}"
            print(row)
        ours = [n for n in results if n in targets]
        worst_mem = max(results[n][1] for n in ours)
        print(
            f"peak memory {worst_mem:.0f} MiB (target < {MEMORY_TARGET_MIB}): "
            f"{'met' if worst_mem < MEMORY_TARGET_MIB else 'MISSED'}"
        )
        for label, names in (
            ("the tables from the log", tables),
            ("the tables of a finished run (tally.json)", finished),
            ("filters", filters),
        ):
            ratio = min(targets[n] / results[n][0] for n in names)
            against = "count" if names is filters else "grouping"
            print(
                f"{label}: {ratio:.3f} x DuckDB's {against} at worst (target >= {SPEED_TARGET}): "
                f"{'met' if ratio >= SPEED_TARGET else 'MISSED'}"
            )
        for name in tables:
            log_s, tally_s = results[name][0], results[f"{name} [finished run: tally.json]"][0]
            print(
                f"{name}: tally.json {tally_s:.2f} s against the log's {log_s:.2f} s "
                f"({log_s / tally_s:.1f}x faster)"
            )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


RECORD_TALLY = (
    "import sys; from pathlib import Path; from sandbox.review.logs import record_tally; "
    "assert record_tally(Path(sys.argv[1]))"
)
"""What a run's end calls (`Runner.run`), on a run directory given as the argument."""


def duckdb_command(query: str, path: Path) -> list[str]:
    """DuckDB's query on `path`, from a fresh Python (as `sandbox logs` starts one)."""
    sql = query.format(path=str(path).replace("'", "''"))
    return [sys.executable, "-c", f"import duckdb; duckdb.sql({sql!r}).fetchall()"]


def keep_best(best: dict[str, tuple[float, float]], name: str, run: tuple[float, float]) -> None:
    """The fastest run's seconds, the largest peak memory of any run."""
    old = best.get(name, (float("inf"), 0.0))
    best[name] = (min(old[0], run[0]), max(old[1], run[1]))


if __name__ == "__main__":
    sys.exit(main())
