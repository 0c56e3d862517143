"""Contexts per second through the `openai` backend against `sandbox serve` with latency.

Starts `sandbox serve --organism honest --latency-ms L` in a subprocess (its own interpreter, so
its handler threads do not share this process's GIL), then, for each concurrency C (the
backend's `max_concurrency`), runs `--waves` x C rendered `upfront_auditing` contexts and
compares contexts per second with the bound C / latency, where latency is the round trip of one
call measured in the same run (the median of `--probes` sequential calls through the SDK). Each
concurrency is timed on two paths over the same contexts, `--repeats` times each, interleaved
(the table shows medians):

- `agent copy`: `AgentCopy.run_batch`, the LangGraph agent loop and the backend, every context
  handed over at once (the copy admits 2 x C into its loop, the backend's semaphore holds C
  calls in flight): what one agent copy (a Ray actor, or the local engine's copy) does with a
  batch, in a process set up as the actor's is (its heap frozen out of the collector's full
  passes once the copy is built);
- `backend alone`: the backend's `complete()` on the same contexts' messages, C in flight, no
  agent loop: what the SDK and the server reach by themselves.

For each it reports the client's CPU time per context (this process) and the server's (read from
/proc for the server subprocess), to show where the time goes. Last, the full `Runner` with the
local engine on `--runner-contexts` contexts: that engine runs contexts one at a time, so it is
bound by 1 / latency whatever the concurrency.

Target: at least 90% of the bound at concurrency 32. Exits 0 whatever the numbers; 2 on bad
arguments.

    python bench/throughput.py [--latency-ms 100] [--concurrency 8,32,128] [--waves 20]
                               [--repeats 3]            # about 65 s

Measured on the 2-core development machine shared with other sessions (load average 0.7-1.5;
round trip 103-105 ms for 100 ms of latency), `.venv/bin/python bench/throughput.py`:

| path | C | contexts | contexts/s | bound/s | of bound | client CPU ms/ctx | server CPU ms/ctx |
|---|---|---|---|---|---|---|---|
| agent copy | 8 | 160 | 78 | 79 | 99% | 1.64 | 0.25 |
| backend alone | 8 | 160 | 78 | 79 | 99% | 0.79 | 0.31 |
| agent copy | 32 | 640 | 297 | 316 | 94% | 1.69 | 0.30 |
| backend alone | 32 | 640 | 304 | 316 | 96% | 0.84 | 0.28 |
| agent copy | 128 | 2560 | 477 | 1264 | 38% | 2.04 | 0.18 |
| backend alone | 128 | 2560 | 829 | 1264 | 66% | 1.00 | 0.16 |
| Runner, local engine | 32 | 30 | 9.5 | 316 | 3% | - | - |

The target is met: 94-95% at 32 in three runs (95% too with the collector left as it is). Before
(commit dea5e94), the agent copy reached 64-73% at 32 (2.8-3.3 ms of client CPU a context) and
80% measured this way. What moved it:

- the backend posts through the SDK's client (`client.post`, the request `create()` sends) and
  reads the reply's JSON itself: `create()`'s walk over its typed params and its response
  models cost about 0.6 ms a call (1.4 -> 0.8 ms, the `backend alone` rows);
- the agent copy admits twice its backend's call slots of contexts into the loop: gathered all
  at once, a batch first ran every context's graph up to its call (a burst of loop work ahead
  of the first answers) and kept every graph's state alive for the collector to rescan (one full
  pass: 150 ms with the whole loop stalled);
- the graph's v2 output (no per-step updates stream): 0.05-0.1 ms a context;
- a keep-alive pool of at least C connections (the SDK's keeps 100, so at 128 calls reconnected).

Connections are reused (tests/test_http_reuse.py: one connection for sequential calls, at most C for
C in flight; `sandbox serve` now reads a refused request's body before answering, which left unread
was taken for the next request on the connection); the server (threads sleeping out the latency,
0.2-0.3 ms of CPU a call in its own process) is not the limit. At 128 the client is: one asyncio
thread, and the bound leaves it 0.8 ms a context, less than the SDK alone spends. A profile of the
agent copy at 128 puts 39% of the client's time in httpcore's pool assigning requests to
connections, 26% in probing, for every request, each of its idle kept-alive connections (about 57:
anyio's socket attributes, `getpeername`, a `poll`), and 16% of self time in LangGraph (the loop
alone: 0.6 ms a context). The SDK's aiohttp transport (`openai.DefaultAioHttpClient`, the
`openai[aiohttp]` extra, not a dependency here) measured 0.55 instead of 1.0-1.2 ms a call at 128
(backend alone 87%, agent copy 54%); past that, more client processes (Ray actors, each with its own
backend).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.backends import BACKENDS
from agents.backends.base import CompletionParams
from agents.copy import AgentCopy
from bench.overhead import rendered_contexts  # the runner's own rendering, as overhead uses
from sandbox.config import Config, config_from_mapping
from sandbox.core.context import Context
from sandbox.record.runstore import RunStore
from sandbox.run.runner import Runner

ORGANISM = "honest"
GAME = {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}}
KEY_ENV = "SANDBOX_BENCH_API_KEY"
TARGET_CONCURRENCY = 32
TARGET_SHARE = 0.9


def bench_config(contexts: int, base_url: str, concurrency: int, output_dir: Path) -> Config:
    """One game with one observation, so `k` episodes are `contexts` contexts."""
    return config_from_mapping(
        {
            "run": {"name": "throughput", "seed": 0, "output_dir": str(output_dir)},
            "models": [ORGANISM],
            "backend": {
                "name": "openai",
                "params": {
                    "base_url": base_url,
                    "api_key_env": KEY_ENV,
                    "max_concurrency": concurrency,
                    "max_retries": 0,
                },
            },
            "engine": "local",
            "sampling": {"k": contexts, "bootstrap": 100, "played_games": 1},
            "games": [GAME],
        }
    )


# --- the server ---------------------------------------------------------------------------------


class Server:
    """`sandbox serve` in a subprocess on a free port."""

    def __init__(self, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.cli",
                "serve",
                "--organism",
                ORGANISM,
                "--port",
                "0",
                "--latency-ms",
                str(latency_ms),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        if " at " not in line:
            self.close()
            raise RuntimeError(f"sandbox serve did not start: {line!r}")
        self.base_url = line.split(" at ", 1)[1].split()[0]

    def cpu_s(self) -> float:
        """The server process's CPU time so far (user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# --- the measurements ---------------------------------------------------------------------------


def _params(context: Context) -> CompletionParams:
    return CompletionParams(seed=context.seed, temperature=1.0)


async def round_trip(config: Config, contexts: Sequence[Context], probes: int) -> float:
    """The median seconds of one call, alone, through the backend."""
    backend = BACKENDS.build("openai", config.backend.params, model=ORGANISM)
    try:
        times = []
        for context in contexts[:probes]:
            started = time.perf_counter()
            await backend.complete(context.messages, _params(context))
            times.append(time.perf_counter() - started)
    finally:
        await backend.aclose()
    return statistics.median(times)


async def time_copy(config: Config, contexts: Sequence[Context]) -> tuple[float, float]:
    """Wall and CPU seconds of one agent copy's batch (warmed up on a few contexts first).

    The process is set up as a Ray actor's is once its copy is built
    (`sandbox/engines/ray_engine.py`): what lives then is frozen out of the collector's full
    passes, which would otherwise rescan every imported module's objects (150 ms a pass here)."""
    copy = AgentCopy(config.model_backends(), config.agents.max_reasks)
    try:
        await copy.run_batch(contexts[:4])
        gc.collect()
        gc.freeze()
        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = await copy.run_batch(contexts)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        gc.unfreeze()
        await copy.aclose()
    parsed = sum(o.action.choice is not None for o in outcomes)
    if parsed != len(contexts):
        print(f"  warning: {len(contexts) - parsed} of {len(contexts)} contexts not parsed")
    return wall, cpu


async def time_backend(config: Config, contexts: Sequence[Context]) -> tuple[float, float]:
    """Wall and CPU seconds of the backend alone on the same contexts' messages."""
    backend = BACKENDS.build("openai", config.backend.params, model=ORGANISM)
    try:
        await asyncio.gather(*(backend.complete(c.messages, _params(c)) for c in contexts[:4]))
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(backend.complete(c.messages, _params(c)) for c in contexts))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await backend.aclose()
    return wall, cpu


async def time_runner(config: Config) -> float:
    """Seconds of a whole run (the local engine), start to summary."""
    store = RunStore.create(config)
    started = time.perf_counter()
    await Runner(config, store).run()
    return time.perf_counter() - started


def _row(
    path: str, c: int, n: int, runs: Sequence[tuple[float, float, float]], bound: float
) -> tuple[str, ...]:
    """A table row: the medians over `runs` (wall, client CPU, server CPU seconds)."""
    rate = statistics.median(n / wall for wall, _, _ in runs)
    return (
        path,
        str(c),
        str(n),
        f"{rate:.0f}",
        f"{bound:.0f}",
        f"{rate / bound:.0%}",
        f"{statistics.median(cpu for _, cpu, _ in runs) / n * 1000:.2f}",
        f"{statistics.median(served for _, _, served in runs) / n * 1000:.2f}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", default="8,32,128", help="comma-separated")
    parser.add_argument("--waves", type=int, default=20, help="contexts = waves x concurrency")
    parser.add_argument("--probes", type=int, default=20, help="sequential calls for latency")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; medians shown")
    parser.add_argument("--runner-contexts", type=int, default=30, help="0 skips the Runner")
    args = parser.parse_args(argv)
    try:
        levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--concurrency: not a list of integers: {args.concurrency!r}")
    if not levels or min(levels) < 1:
        parser.error("--concurrency: each level must be at least 1")
    if not 0 < args.latency_ms < 60_000:
        parser.error("--latency-ms must be above 0 and below 60000")
    if args.waves < 1 or args.probes < 1 or args.repeats < 1 or args.runner_contexts < 0:
        parser.error(
            "--waves, --probes and --repeats must be at least 1, --runner-contexts at least 0"
        )

    os.environ.setdefault(KEY_ENV, "sk-bench")
    server = Server(args.latency_ms)
    rows: list[tuple[str, ...]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            most = max(levels) * args.waves
            base = bench_config(most, server.base_url, 1, Path(tmp))
            contexts = rendered_contexts(base)
            latency = asyncio.run(round_trip(base, contexts, args.probes))
            print(
                f"server {server.base_url}, latency {args.latency_ms:g} ms set, "
                f"{latency * 1000:.1f} ms measured round trip (median of {args.probes})"
            )
            for c in levels:
                config = bench_config(most, server.base_url, c, Path(tmp))
                batch = contexts[: c * args.waves]
                bound = c / latency
                paths = {"agent copy": time_copy, "backend alone": time_backend}
                runs: dict[str, list[tuple[float, float, float]]] = {p: [] for p in paths}
                for _ in range(args.repeats):  # interleaved: both paths meet the same noise
                    for path, timer in paths.items():
                        served = server.cpu_s()
                        wall, cpu = asyncio.run(timer(config, batch))
                        runs[path].append((wall, cpu, server.cpu_s() - served))
                        row = _row(path, c, len(batch), runs[path][-1:], bound)
                        print("  " + " | ".join(row), flush=True)
                for path in paths:
                    rows.append(_row(path, c, len(batch), runs[path], bound))
            if args.runner_contexts:
                c = TARGET_CONCURRENCY
                config = bench_config(args.runner_contexts, server.base_url, c, Path(tmp))
                wall = asyncio.run(time_runner(config))
                rate, bound = args.runner_contexts / wall, c / latency
                rows.append(
                    (
                        *("Runner, local engine", str(c), str(args.runner_contexts)),
                        *(f"{rate:.1f}", f"{bound:.0f}", f"{rate / bound:.0%}", "-", "-"),
                    )
                )
    finally:
        server.close()

    header = (
        "path",
        "concurrency",
        "contexts",
        "contexts/s",
        "bound/s",
        "of bound",
        "client CPU ms/ctx",
        "server CPU ms/ctx",
    )
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    at_target = [r for r in rows if r[0] == "agent copy" and r[1] == str(TARGET_CONCURRENCY)]
    if at_target:
        share = float(at_target[0][5].rstrip("%")) / 100
        verdict = "met" if share >= TARGET_SHARE else "missed"
        print(
            f"\ntarget: agent copy at concurrency {TARGET_CONCURRENCY} reaches "
            f"{TARGET_SHARE:.0%} of the bound: {share:.0%}, {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
