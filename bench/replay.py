"""Replay speed: a finished deployment re-evaluated under each other protocol, against the run.

Runs a config once (`sandbox run`, default `configs/deployment.yaml`, under its own protocol and
engine), then `sandbox replay`s it under every other registered protocol twice, each command in
its own process, timed from start to exit: on the run's own engine (Ray, for that config), and
with `engine=local` (in process: no Ray started, for backends that run in process, as the
scripted organisms do). A replay answers every context its source answered from the source's
log and reuses every code check of the same task, code and trigger, so it pays only for what the
new protocol decides anew: the trusted model's solutions and edits, resamples, another monitor,
and the checks of code the source never checked. Prints, per replay, both times, their ratios to
the original run's, whether the two wrote the same `results.jsonl` (byte for byte), the contexts
asked anew and the checks run anew. Target: every replay at most 20% of the original run's time.
Exits 0 whatever the numbers (1 if the two engines' results differ); 2 on bad arguments.

    .venv/bin/python bench/replay.py [--config configs/deployment.yaml] [override ...]
"""

from __future__ import annotations

import argparse
import filecmp
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
from sandbox.record.runstore import EVENTS, RESULTS, SUMMARY

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
        engine = config.engine.name
        print(
            f"original run under {own} on the {engine} engine: {original_s:.1f} s "
            f"({ran} code checks run)"
        )
        print(
            f"{'replay under':<22} {engine:>8} {'of run':>7} {'local':>8} {'of run':>7} "
            f"{'same':>5} {'new contexts':>32} {'checks':>14}"
        )
        worst = {engine: 0.0, "local": 0.0}
        differ = []
        for protocol in sorted(p for p in PROTOCOLS if p != own):
            swap = f"control.protocol={protocol}"
            before = {p.name for p in runs.iterdir()}
            seconds = timed("replay", str(source), swap)
            replay = new_run(runs, before)
            before = {p.name for p in runs.iterdir()}
            local_s = timed("replay", str(source), swap, "engine=local")
            local = new_run(runs, before)
            same = filecmp.cmp(replay / RESULTS, local / RESULTS, shallow=False)
            if not same:
                differ.append(protocol)
            summary = json.loads((replay / SUMMARY).read_text(encoding="utf-8"))
            asked = summary["replay"]["new_contexts"]
            ran, reused = checks_run(replay)
            ratio, local_ratio = seconds / original_s, local_s / original_s
            worst = {engine: max(worst[engine], ratio), "local": max(worst["local"], local_ratio)}
            asked_text = ", ".join(f"{k} {v}" for k, v in sorted(asked.items())) or "none"
            print(
                f"{protocol:<22} {seconds:>6.1f} s {ratio:>7.2f} {local_s:>6.1f} s "
                f"{local_ratio:>7.2f} {'yes' if same else 'NO':>5} {asked_text:>32} "
                f"{f'{ran} run, {reused} kept':>14}"
            )
        for engine, ratio in worst.items():
            verdict = "holds" if ratio <= TARGET else "missed"
            print(
                f"slowest replay, {engine} engine: {ratio:.2f} of the original run "
                f"(target <= {TARGET}): {verdict}"
            )
        if differ:
            print(f"results.jsonl differ between the engines under: {', '.join(differ)}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
