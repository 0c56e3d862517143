"""A run through a failing endpoint against the same run through a clean one.

Starts two `sandbox serve --organism stateless_strategist` subprocesses, one clean and one
failing `--fail-rate` of its calls (500, 429 with `Retry-After: 0`, reset connections), and runs
one config through each with the `openai` backend at its default retry settings (about
`--contexts` calls: the XC suite's `upfront_auditing` and `plan_consistency`, four copies on the
local Ray instance). Prints, for each: exit status, wall time, contexts, retries and error
outcomes from `summary.json`; and whether `results.jsonl` is byte-identical. The issue's bar: with
20% of calls failing, the run completes in one go with results identical to the clean run's.

    python bench/faults.py [--fail-rate 0.2] [--contexts 1600] [--fault-seed 1]

Exits 0 whatever the numbers (a benchmark, not a test); 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "stateless_strategist"


def serve(fail_rate: float, fault_seed: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "sandbox.cli", "serve", "--organism", MODEL, "--port", "0"]
    if fail_rate:
        cmd += ["--fail-rate", str(fail_rate), "--fault-seed", str(fault_seed)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"at (http://\S+/v1)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"sandbox serve did not start: {line!r}")
    return proc, match.group(1)


def run(base_url: str, contexts: int, out: Path) -> tuple[int, float, Path | None]:
    """`sandbox run` of the XC config's first two games against `base_url`: (exit, s, dir)."""
    k = max(1, contexts // 2)
    cmd = [
        sys.executable,
        "-m",
        "sandbox.cli",
        "run",
        "configs/xc.yaml",
        "--quiet",
        "models=[stateless_strategist]",
        "backend.name=openai",
        f"backend.params.base_url={base_url}",
        "backend.params.api_key_env=BENCH_KEY",
        f"sampling.k={k}",
        "sampling.played_games=200",
        "sampling.bootstrap=200",
        "agents.copies=4",
        f"run.output_dir={out}",
        "games=[{name: upfront_auditing, params: {rounds: 20, audited: 2}}, "
        "{name: plan_consistency}]",
    ]
    env = {**os.environ, "BENCH_KEY": "unused", "RAY_AUTH_MODE": "disabled"}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    runs = sorted(out.iterdir()) if out.exists() else []
    return done.returncode, seconds, runs[-1] if runs else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--contexts", type=int, default=1600)
    parser.add_argument("--fault-seed", type=int, default=1)
    args = parser.parse_args()
    if not 0 <= args.fail_rate <= 1 or args.contexts < 2:
        parser.error("--fail-rate must be in [0, 1] and --contexts at least 2")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, rate in (("clean", 0.0), ("faulty", args.fail_rate)):
            proc, url = serve(rate, args.fault_seed)
            try:
                code, seconds, path = run(url, args.contexts, Path(tmp) / name)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            usage = {}
            if path is not None and (path / "summary.json").is_file():
                summary = json.loads((path / "summary.json").read_text())
                usage = summary["usage_by_model"].get(MODEL, {})
            results = (path / "results.jsonl").read_bytes() if path is not None else b""
            rows.append((name, rate, code, seconds, usage, results))
    print(
        f"{'endpoint':<8} {'fail':>5} {'exit':>4} {'wall s':>7} {'contexts':>8} "
        f"{'retries':>7} {'errors':>6}"
    )
    for name, rate, code, seconds, usage, _ in rows:
        print(
            f"{name:<8} {rate:>5.2f} {code:>4} {seconds:>7.1f} {usage.get('contexts', 0):>8} "
            f"{usage.get('retries', 0):>7} {usage.get('errors', 0):>6}"
        )
    same = rows[0][5] == rows[1][5] and rows[0][5] != b""
    print(f"results.jsonl byte-identical: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
