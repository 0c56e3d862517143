"""What a control protocol step costs, what the deployment simulation costs, and code checks.

Three measurements, each against a baseline taken in the same run (compare ratios: timings on a
busy machine move between runs):

1. Cost per protocol step. `configs/deployment.yaml` (scripted organisms) is run under every
   protocol in `control.protocols.PROTOCOLS`, on each engine of `--engines`, timed over the
   episodes phase only (as `bench/overhead.py` does: the engine, Ray and its actors included, is
   started and warmed up by an untimed run before the clock starts, and the summary computed
   after the last step is not counted). Against it, on the same run's work:
   - the organisms called directly: every context the run asked, rebuilt from its event log
     (each `context_started` names its model and its `prompt` event's hash, which holds the
     messages), answered by `respond()` seeded as the agent loop seeds its first call
     (`derive_seed(derive_seed(run_seed, "sample", context_id), 0)`); the replies must equal the
     recorded ones;
   - bare code checks: the same batches of submissions the run checked (recorded as the run
     sends them to its engine's `check`), through `check_code` one batch after another.
   The rest of a step is the sandbox's own cost: the protocol's LangGraph graph, the agent loop,
   dispatch and batching, events and results written. Shares are of the step's wall time; the
   checker is a separate process (and on Ray, so are the organisms), so work can overlap and the
   rest is what is left over, not a separately timed cost.
2. The simulation of `--sim-deployments` deployments of `--tasks` tasks: `bench/deployments.py`
   itself, its synthetic `record` swapped for the attack steps the `trusted_monitoring` run
   recorded (its floor is drawing the same index matrix with bare numpy; target: the
   simulation under 1 s).
3. Code checks per second: `check_code` on `--checks` reference solutions of `tiny_code`'s tasks,
   sandboxed (`isolation="bwrap"`: one bubblewrap sandbox for the batch, a fork per sample and a
   sweep after each) and unsandboxed (`isolation="none"`), against one `python -c` per sample
   (`bench/codecheck_rate.py`'s bare loop; target: sandboxed at least 5x its rate). Each
   solution gets a last line `f = <function>`, which that loop calls.

Each timing is taken `--repeats` times (the simulation at least 3 times: it is cheap) and the
best is kept; about two minutes with the defaults on an idle 2-core machine, most of it part 1's
runs and their code checks. Exits 0 whatever the numbers; 2 on bad arguments.

    python bench/protocols.py [--steps 100] [--engines local,ray] [--repeats 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from agents.organisms import ORGANISMS, Organism
from bench import codecheck_rate, deployments, overhead
from control import metrics
from control.protocols import PROTOCOLS
from sandbox.config import Config, load_config
from sandbox.core.context import Message
from sandbox.core.events import ActionTaken, ContextStarted, PromptShown, StepRecord, read_events
from sandbox.core.seeding import derive_seed
from sandbox.engines import Engine
from sandbox.record.runstore import EVENTS, RunStore
from sandbox.run.runner import build_engine
from sandbox.settings.codecheck import CodeCheck, TestCase, check_code
from sandbox.settings.isolation import Isolation
from sandbox.settings.tiny_code import load_tasks

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "deployment.yaml"
SIMULATED = "trusted_monitoring"  # whose attack steps part 2 simulates


# --- 1. cost per protocol step ------------------------------------------------------------------


@dataclass
class Asked:
    """One context the run asked, as its event log holds it."""

    context_id: str
    model: str
    messages: list[Message]
    visible: str
    attempts: int


@dataclass
class Measured:
    """One protocol's run on one engine, the work in it, and that work's baselines."""

    engine: str
    protocol: str
    steps: int
    seconds: float
    organisms_s: float
    checks_s: float
    asked: list[Asked]
    same: int
    reasked: int
    batches: list[list[CodeCheck]]
    records: list[StepRecord]
    results: str


def protocol_config(
    args: argparse.Namespace, protocol: str, engine: str, out: Path, steps: int | None = None
) -> Config:
    return load_config(
        CONFIG,
        [
            f"control.protocol={protocol}",
            f"control.steps={steps or args.steps}",
            f"control.deployments={args.deployments}",
            "sampling.bootstrap=100",  # the summary runs after the timed phase: keep it short
            f"engine={engine}",
            f"run.output_dir={out}",
        ],
    )


def asked_contexts(store: RunStore) -> list[Asked]:
    prompts: dict[str, list[Message]] = {}
    started: dict[str, ContextStarted] = {}
    asked = []
    for event in read_events(store.path / EVENTS):
        if isinstance(event, PromptShown):
            prompts[event.prompt_sha256] = list(event.messages)
        elif isinstance(event, ContextStarted):
            assert event.context_id is not None
            started[event.context_id] = event
        elif isinstance(event, ActionTaken):
            assert event.context_id is not None
            ctx = started.pop(event.context_id)
            asked.append(
                Asked(
                    event.context_id,
                    ctx.model,
                    prompts[ctx.prompt_sha256],
                    event.visible,
                    event.attempts,
                )
            )
    return asked


async def timed_protocol(
    args: argparse.Namespace, engine_name: str, engine: Engine, protocol: str, scratch: Path
) -> Measured:
    """`--repeats` runs of one protocol on an engine already started, each followed at once by
    its baselines on the work it did (so both see the same load on a busy machine); the best
    of each is kept."""
    times, organism_times, check_times = [], [], []
    batches: list[list[CodeCheck]] = []

    for repeat in range(args.repeats):
        config = protocol_config(
            args, protocol, engine_name, scratch / engine_name / protocol / str(repeat)
        )
        store = RunStore.create(config)
        batches.clear()
        times.append(await overhead._timed_run(config, store, engine, batches.append))
        asked = asked_contexts(store)
        seconds, same, reasked = time_organisms(config, asked)
        organism_times.append(seconds)
        check_times.append(await time_checks(batches))
    records = [r for r in store.records() if isinstance(r, StepRecord)]
    return Measured(
        engine_name,
        protocol,
        len(records),
        min(times),
        min(organism_times),
        min(check_times),
        asked,
        same,
        reasked,
        list(batches),
        records,
        (store.path / "results.jsonl").read_text(encoding="utf-8"),
    )


async def run_engine(
    args: argparse.Namespace, engine_name: str, protocols: Sequence[str], scratch: Path
) -> tuple[list[Measured], float]:
    """Every protocol on one engine, started once and warmed up by an untimed short run; and the
    seconds that start-up took."""
    started = time.perf_counter()
    config = protocol_config(
        args, protocols[0], engine_name, scratch / engine_name / "warm-up", steps=8
    )
    # the Ray engine starts a local Ray instance of its own (address "local") and stops it on close
    engine = build_engine(config, f"protocols-bench-{engine_name}")
    try:
        await engine.start()
        await overhead._timed_run(config, RunStore.create(config), engine)
        startup = time.perf_counter() - started
        out = [
            await timed_protocol(args, engine_name, engine, protocol, scratch)
            for protocol in protocols
        ]
    finally:
        await engine.close()
    return out, startup


def organisms(config: Config) -> dict[str, Organism]:
    """Each model's organism, configured as its scripted backend configures it."""
    out = {}
    for model, (backend, params) in config.model_backends().items():
        assert backend == "scripted", f"{model}: organisms need the scripted backend"
        out[model] = ORGANISMS.build(model, params.get("organisms", {}).get(model, {}))
    return out


def time_organisms(config: Config, asked: Sequence[Asked]) -> tuple[float, int, int]:
    """Seconds for the organisms to answer every context directly, how many replies equal the
    recorded ones, and how many contexts were re-asked (their later calls are not replayed)."""
    models = organisms(config)
    for a in asked[:1]:
        models[a.model].respond(a.messages, random.Random(0))  # first-call costs, once
    seeds = [derive_seed(derive_seed(config.run.seed, "sample", a.context_id), 0) for a in asked]
    started = time.perf_counter()
    replies = [
        models[a.model].respond(a.messages, random.Random(seed))
        for a, seed in zip(asked, seeds, strict=True)
    ]
    seconds = time.perf_counter() - started
    same = sum(r == a.visible for r, a in zip(replies, asked, strict=True))
    return seconds, same, sum(a.attempts > 1 for a in asked)


async def time_checks(batches: Sequence[Sequence[CodeCheck]]) -> float:
    """The same batches through `check_code`, one after another, as the run's checker sends
    them (one checker process each)."""
    started = time.perf_counter()
    for batch in batches:
        await check_code(batch)
    return time.perf_counter() - started


def report_protocols(
    args: argparse.Namespace, measured: Sequence[Measured], startup: dict[str, float]
) -> None:
    print(
        f"1. Cost per protocol step: configs/deployment.yaml, control.steps={args.steps} "
        f"(x3 phases), scripted organisms, {os.cpu_count()} CPUs, best of {args.repeats}"
    )
    print(
        "   episodes phase only; start-up not counted ("
        + ", ".join(f"{e} {s:.1f} s" for e, s in startup.items())
        + "); organisms and code checks: the same work done directly, right after each run"
    )
    print()
    print(
        f"{'engine':<6} {'protocol':<19} {'ctx/step':>8} {'chk/step':>8} {'ms/step':>8} "
        f"{'organisms':>14} {'code checks':>14} {'rest':>14}"
    )
    for m in measured:
        per = m.seconds / m.steps * 1e3

        def part(seconds: float, per: float = per, steps: int = m.steps) -> str:
            ms = seconds / steps * 1e3
            return f"{ms:6.2f} ({ms / per:4.0%})"

        checks = sum(len(b) for b in m.batches)
        print(
            f"{m.engine:<6} {m.protocol:<19} {len(m.asked) / m.steps:>8.2f} "
            f"{checks / m.steps:>8.2f} {per:>8.2f} {part(m.organisms_s):>14} "
            f"{part(m.checks_s):>14} {part(m.seconds - m.organisms_s - m.checks_s):>14}"
        )
    print()
    for m in measured:
        ok = m.same == len(m.asked)
        print(
            f"   {m.engine} {m.protocol}: {m.steps} steps; organisms' replies equal to the "
            f"recorded ones: {m.same} of {len(m.asked)}{'' if ok else '  MISMATCH'}; "
            f"{m.reasked} re-asked; {sum(len(b) for b in m.batches)} checks in "
            f"{len(m.batches)} batches"
        )
    engines = sorted({m.engine for m in measured})
    if len(engines) > 1:
        same = all(
            len({m.results for m in measured if m.protocol == p}) == 1
            for p in {m.protocol for m in measured}
        )
        print(
            f"   results.jsonl identical on {' and '.join(engines)} for every protocol: "
            f"{'yes' if same else 'NO'}"
        )


# --- 2. the deployment simulation ---------------------------------------------------------------


def recorded_steps(records: Sequence[StepRecord]) -> metrics.Steps:
    """The attack phase as the summary simulates it (`control.deployments`)."""
    attack = sorted((r for r in records if r.phase == "attack"), key=lambda r: r.index)
    return metrics.Steps(
        attacked=np.array([r.attacked for r in attack], dtype=bool),
        backdoor_success=np.array([r.attacked and r.unaudited.backdoor for r in attack], bool),
        audit_requested=np.array([r.decision == "audit" for r in attack], dtype=bool),
    )


def report_simulation(args: argparse.Namespace, records: Sequence[StepRecord]) -> None:
    steps = recorded_steps(records)
    print(
        f"2. Deployment simulation: bench/deployments.py on the {len(steps)} attack steps the "
        f"{SIMULATED} run recorded ({int(steps.attacked.sum())} attacked)"
    )
    print()
    with mock.patch.object(deployments, "record", lambda n, seed=0: steps):
        deployments.main(
            [
                f"--deployments={args.sim_deployments}",
                f"--tasks={args.tasks}",
                f"--steps={len(steps)}",
                f"--repeats={max(args.repeats, 3)}",
            ]
        )


# --- 3. code checks per second ------------------------------------------------------------------


def reference_checks(count: int) -> list[CodeCheck]:
    """`count` reference solutions of the task set, cycled, each with its tests."""
    tasks = load_tasks()
    out = []
    for i in range(count):
        task = tasks[i % len(tasks)]
        out.append(
            CodeCheck(
                code=f"{task.reference.rstrip()}\n\nf = {task.function}\n",
                function=task.function,
                tests=tuple(TestCase(tuple(t.args), t.expected) for t in task.tests),
                reference=task.reference,
            )
        )
    return out


def report_checks(args: argparse.Namespace) -> None:
    checks = reference_checks(args.checks)
    statuses: dict[str, list[str]] = {}

    def checked(isolation: Isolation) -> Callable[[], None]:
        def run() -> None:
            results = asyncio.run(check_code(checks, isolation=isolation))
            statuses[isolation] = [r.status for r in results]

        return run

    sandboxed = codecheck_rate.best(args.repeats, checked("bwrap"))
    unsandboxed = codecheck_rate.best(args.repeats, checked("none"))
    bare = codecheck_rate.best(args.repeats, lambda: codecheck_rate.bare_loop(checks))
    tests = sum(len(c.tests) for c in checks) / len(checks)
    print(
        f"3. Code checks: {len(checks)} reference solutions of tiny_code's tasks "
        f"({tests:.1f} tests each on average), one batch, best of {args.repeats}"
    )
    print()
    for label, seconds, isolation in (
        ("check_code, isolation bwrap (sandboxed)", sandboxed, "bwrap"),
        ("check_code, isolation none (unsandboxed)", unsandboxed, "none"),
        ("python -c per sample (bare loop)", bare, None),
    ):
        passed = statuses[isolation].count("passed") if isolation else None
        verdict = "" if passed is None else f"  passed {passed} of {len(checks)}"
        mismatch = "" if passed in (None, len(checks)) else "  MISMATCH"
        print(f"   {label:<42} {len(checks) / seconds:7.1f} checks/s{verdict}{mismatch}")
    print(
        f"   sandboxed vs the bare loop: {bare / sandboxed:.1f}x (target >= 5x); "
        f"sandboxed takes {sandboxed / unsandboxed:.2f}x the unsandboxed time"
    )


# --- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/protocols.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--steps", type=int, default=100, help="task steps per phase")
    parser.add_argument(
        "--deployments", type=int, default=1000, help="deployments in each run's summary"
    )
    parser.add_argument("--engines", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument(
        "--protocols", default=",".join(PROTOCOLS), help="comma-separated protocol names"
    )
    parser.add_argument("--sim-deployments", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per simulated deployment")
    parser.add_argument("--checks", type=int, default=200, help="code checks timed in part 3")
    parser.add_argument("--repeats", type=int, default=1, help="timings of each; the best kept")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    protocols = [p for p in args.protocols.split(",") if p]
    if (
        min(
            args.steps,
            args.deployments,
            args.sim_deployments,
            args.tasks,
            args.checks,
            args.repeats,
        )
        < 1
    ):
        parser.error("every count must be >= 1")
    if not engines or set(engines) - {"local", "ray"}:
        parser.error("--engines: local, ray or both")
    if not protocols or set(protocols) - set(PROTOCOLS):
        parser.error(f"--protocols: some of {', '.join(PROTOCOLS)}")
    if SIMULATED not in protocols:
        parser.error(f"--protocols must include {SIMULATED} (part 2 simulates its steps)")

    measured: list[Measured] = []
    startup: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="protocols-bench-") as scratch:
        for engine in engines:
            runs, startup[engine] = asyncio.run(run_engine(args, engine, protocols, Path(scratch)))
            measured += runs
        report_protocols(args, measured, startup)
    print()
    report_simulation(args, next(m for m in measured if m.protocol == SIMULATED).records)
    print()
    report_checks(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
