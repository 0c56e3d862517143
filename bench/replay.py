"""Replay speed: a finished deployment re-evaluated under each other protocol, against the run.

Runs a config once (`sandbox run`, default `configs/deployment.yaml`, under its own protocol),
then `sandbox replay`s it under every other registered protocol, each command in its own
process, timed from start to exit. A replay answers every context its source answered from the
source's log and reuses every code check of the same task, code and trigger, so it pays only for
what the new protocol decides anew: the trusted model's solutions and edits, resamples, another
monitor, and the checks of code the source never checked. Prints, per replay, its time, its
ratio to the original run's, the contexts asked anew and the checks run anew. Target: every
replay at most 20% of the original run's time. Exits 0 whatever the numbers; 2 on bad arguments.

    .venv/bin/python bench/replay.py [--config configs/deployment.yaml] [override ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from control.protocols import PROTOCOLS
from sandbox.config import load_config
from sandbox.core.context import CACHED
from sandbox.core.events import ProtocolDecision
from sandbox.record.runstore import EVENTS, SUMMARY

TARGET = 0.20
"""The most a replay may take, as a share of the original run's time."""


def timed(*args: str) -> float:
    """Seconds for one `sandbox` command, run to its exit in its own process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sandbox.cli", *args, "--quiet"], check=True)
    return time.perf_counter() - started


def new_run(runs: Path, before: set[str]) -> Path:
    (path,) = [p for p in runs.iterdir() if p.name not in before]
    return path


def checks_run(run: Path) -> tuple[int, int]:
    """(code checks run, code checks reused from the source) in a run's log."""
    ran = reused = 0
    for line in (run / EVENTS).open(encoding="utf-8"):
        if '"protocol_decision"' not in line:
            continue
        for check in ProtocolDecision.model_validate_json(line).checks:
            if check.node == CACHED:
                reused += 1
            elif check.node is not None:
                ran += 1
    return ran, reused


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/replay.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--config", type=Path, default=Path("configs/deployment.yaml"))
    parser.add_argument("overrides", nargs="*", help="key.path=value, for the original run")
    args = parser.parse_args(argv)
    config = load_config(args.config, list(args.overrides))
    if config.control is None:
        parser.error(f"{args.config} has no deployment (no `control` section) to replay")
    own = config.control.protocol.name
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        overrides = [*args.overrides, f"run.output_dir={runs}"]
        original_s = timed("run", str(args.config), *overrides)
        source = new_run(runs, set())
        ran, _ = checks_run(source)
        print(f"original run under {own}: {original_s:.1f} s ({ran} code checks run)")
        print(f"{'replay under':<22} {'time':>8} {'of run':>7} {'new contexts':>32} {'checks':>14}")
        worst = 0.0
        for protocol in sorted(p for p in PROTOCOLS if p != own):
            before = {p.name for p in runs.iterdir()}
            seconds = timed("replay", str(source), f"control.protocol={protocol}")
            replay = new_run(runs, before)
            summary = json.loads((replay / SUMMARY).read_text(encoding="utf-8"))
            asked = summary["replay"]["new_contexts"]
            ran, reused = checks_run(replay)
            ratio = seconds / original_s
            worst = max(worst, ratio)
            asked_text = ", ".join(f"{k} {v}" for k, v in sorted(asked.items())) or "none"
            print(
                f"{protocol:<22} {seconds:>6.1f} s {ratio:>7.2f} {asked_text:>32} "
                f"{f'{ran} run, {reused} kept':>14}"
            )
        verdict = "holds" if worst <= TARGET else "missed"
        print(f"slowest replay: {worst:.2f} of the original run (target <= {TARGET}): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
