"""What the sandbox costs per context, beyond the model call.

Measures, in one run and over the same rendered contexts (`stateless_strategist` on
`upfront_auditing`, the scripted backend):

- the organism called directly in a loop: the model call alone, the floor;
- the LangGraph agent loop alone, in-process (`AgentLoop.run`, one context after another);
- the full stack: the real `Runner` with the Ray engine (`--actors` actors serving `--copies`
  copies), the LangGraph loop in the actors and every event and result line written to a run
  directory. Timed over the episodes phase only: Ray and its actors are started and warmed up
  before the clock starts, and the summary computed after the last episode is not counted;
- Inspect AI's `mockllm` (`generate()` then `includes()`) on the same number of samples, when the
  optional `bench` extra (`inspect-ai`) is installed; skipped otherwise.

Each is timed `--repeats` times and the best time is kept. Prints a table and the two targets:
the full stack at most 2 ms per context, and at least 5 times faster per sample than Inspect.
Exits 0 whatever the numbers; 2 on bad arguments.

    python bench/overhead.py [--contexts 2000] [--copies 4] [--actors 2] [--repeats 3]
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
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.backends import BACKENDS, Backend
from agents.loop import AgentLoop
from agents.organisms import ORGANISMS
from agents.parsing import parse_answer
from sandbox.config import Config, config_from_mapping
from sandbox.core.context import Context, ContextOutcome
from sandbox.core.seeding import derive_seed
from sandbox.engines import Engine
from sandbox.engines.base import CheckBatch, CheckJob
from sandbox.engines.ray_engine import NAMESPACE
from sandbox.record.runstore import RunStore
from sandbox.run.drivers import GameDriver
from sandbox.run.runner import Runner, build_engine, episode_plan

ORGANISM = "stateless_strategist"
GAME = {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}}
TARGET_MS = 2.0
TARGET_RATIO = 5.0


def bench_config(contexts: int, copies: int, actors: int, output_dir: Path) -> Config:
    """One game with one observation, so `k` episodes are `contexts` contexts. The summary's
    bootstrap and played games are kept small: they run after the timed phase."""
    return config_from_mapping(
        {
            "run": {"name": "overhead", "seed": 0, "output_dir": str(output_dir)},
            "models": [ORGANISM],
            "backend": {"name": "scripted"},
            "engine": "ray",
            "agents": {"copies": copies, "actors": actors},
            "sampling": {"k": contexts, "bootstrap": 100, "played_games": 1},
            "games": [GAME],
        }
    )


class _NoEngine:
    """Stands in where a runner only renders contexts."""

    async def start(self) -> None:
        return None

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        raise RuntimeError("this runner only renders contexts")

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        raise RuntimeError("this runner only renders contexts")

    def check_slots(self) -> int:
        return 1

    async def close(self) -> None:
        return None


class _Started:
    """An engine already started and warmed up, shared by the timed runs: the runner's `start`
    and `close` do nothing, so the timed phase holds no process or actor start-up."""

    def __init__(self, inner: Engine, on_check: Callable[[list[Any]], None] | None = None) -> None:
        """`on_check` sees each batch of code checks the run sends (`bench/protocols.py`)."""
        self._inner = inner
        self.on_check = on_check

    async def start(self) -> None:
        return None

    async def run(self, contexts: Sequence[Context]) -> list[ContextOutcome]:
        return await self._inner.run(contexts)

    async def check(self, job: CheckJob, checks: Sequence[Any]) -> CheckBatch[Any]:
        if self.on_check is not None:
            self.on_check(list(checks))
        return await self._inner.check(job, checks)

    def check_slots(self) -> int:
        return self._inner.check_slots()

    async def close(self) -> None:
        return None


def rendered_contexts(config: Config) -> list[Context]:
    """The contexts a run of `config` sends, rendered by the runner itself."""
    runner = Runner(config, RunStore(config.run.output_dir / "unused"), engine=_NoEngine())
    drivers = runner.drivers({})
    contexts = []
    for spec in episode_plan(config):
        driver = drivers[spec.game]
        assert isinstance(driver, GameDriver)
        contexts.extend(driver.contexts(spec, {}))
    return contexts


# --- the measurements ---------------------------------------------------------------------------


def time_organism(contexts: Sequence[Context]) -> tuple[float, list[str | float | None]]:
    """The organism alone, seeded as the agent loop seeds its first call, so its replies are
    the ones the full stack records."""
    organism = ORGANISMS.build(ORGANISM)
    organism.respond(contexts[0].messages, random.Random(0))  # its per-game cache, once
    started = time.perf_counter()
    replies = [
        organism.respond(ctx.messages, random.Random(derive_seed(ctx.seed, 0))) for ctx in contexts
    ]
    elapsed = time.perf_counter() - started
    return elapsed, [
        parse_answer(text, ctx.answer) for text, ctx in zip(replies, contexts, strict=True)
    ]


def time_loop(contexts: Sequence[Context]) -> tuple[float, list[str | None]]:
    """The LangGraph loop in-process, one context after another, with the scripted backend."""
    backends: dict[str, Backend] = {}

    def backend_for(model: str) -> Backend:
        return backends.setdefault(model, BACKENDS.build("scripted", {}, model=model))

    loop = AgentLoop(backend_for)

    async def run_all() -> tuple[float, list[str | None]]:
        await loop.run(contexts[0])  # first-call costs (imports, caches), once
        started = time.perf_counter()
        actions = [await loop.run(ctx) for ctx in contexts]
        return time.perf_counter() - started, [a.choice for a in actions]

    return asyncio.run(run_all())


async def time_full_stack(
    config: Config, repeats: int
) -> tuple[list[float], float, list[str | None]]:
    """Seconds of the episodes phase of `repeats` runs, seconds of start-up (Ray, the actors and
    a warm-up batch) before them, and the choices the last run recorded, in context order."""
    import ray

    started = time.perf_counter()
    # a Ray instance of our own, even where another is running on this machine, set up as the
    # engine sets up the one it starts
    ray.init(
        address="local",
        namespace=NAMESPACE,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=True,
    )
    engine = build_engine(config, f"{config.run.name}-bench")
    try:
        await engine.start()
        warm = rendered_contexts(config)[: 8 * config.agents.copies]
        await engine.run(warm)  # every actor up, its loop compiled and its caches filled
        startup = time.perf_counter() - started
        times: list[float] = []
        store = None
        for _ in range(repeats):
            store = RunStore.create(config)
            times.append(await _timed_run(config, store, engine))
    finally:
        await engine.close()
        ray.shutdown()
    assert store is not None
    records = sorted(store.records(), key=lambda r: r.index)
    return times, startup, [s.choice for r in records for s in r.samples]


async def _timed_run(
    config: Config,
    store: RunStore,
    engine: Engine,
    on_check: Callable[[list[Any]], None] | None = None,
) -> float:
    marks: list[float] = []
    runner = Runner(
        config,
        store,
        engine=_Started(engine, on_check),
        on_progress=lambda done, total: marks.append(time.perf_counter()),
    )
    await runner.run()
    # marks[0]: the run has started, nothing is dispatched; marks[-1]: the last episode committed
    return marks[-1] - marks[0]


def time_inspect(contexts: Sequence[Context], log_dir: Path) -> float | str:
    """Seconds for Inspect's mockllm to generate and score one sample per context, or why not."""
    try:
        from inspect_ai import Task
        from inspect_ai import eval as inspect_eval
        from inspect_ai.dataset import Sample
        from inspect_ai.model import (
            ChatMessageSystem,
            ChatMessageUser,
            ModelOutput,
            ModelUsage,
            get_model,
        )
        from inspect_ai.scorer import includes
        from inspect_ai.solver import generate
    except ImportError as exc:
        return (
            f"skipped: inspect-ai is not installed ({exc.name}); "
            "pip install -c constraints.txt -e '.[bench]'"
        )

    def mock_output(messages: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        # a fixed reply with usage counted as the scripted backend counts it (mockllm's default
        # counts tokens with a tiktoken vocabulary it fetches over the network)
        output = ModelOutput.from_content(model="mockllm", content="ANSWER: WAIT")
        prompt = sum(len(m.text.split()) for m in messages)
        output.usage = ModelUsage(input_tokens=prompt, output_tokens=2, total_tokens=prompt + 2)
        return output

    samples = [
        Sample(
            input=[
                ChatMessageSystem(content=ctx.messages[0].content),
                ChatMessageUser(content=ctx.messages[1].content),
            ],
            target="WAIT",
            id=i,
        )
        for i, ctx in enumerate(contexts)
    ]
    task = Task(dataset=samples, solver=generate(), scorer=includes(), name="overhead")
    model = get_model("mockllm/model", custom_outputs=mock_output)
    started = time.perf_counter()
    logs = inspect_eval(task, model=model, log_dir=str(log_dir), display="none", log_level="error")
    elapsed = time.perf_counter() - started
    log = logs[0]
    if log.status != "success":
        return f"failed: {log.error.message if log.error else log.status}"
    return elapsed


# --- the report ----------------------------------------------------------------------------------


def _row(label: str, ms: float | None, floor: float, note: str = "") -> str:
    if ms is None:
        return f"{label:<44} {'-':>10}  {'-':>10}  {note}".rstrip()
    return f"{label:<44} {ms:>10.3f}  {ms / floor:>9.1f}x  {note}".rstrip()


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/overhead.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--contexts", type=int, default=2000, help="contexts (= Inspect samples)")
    parser.add_argument("--copies", type=int, default=4, help="logical agent copies")
    parser.add_argument("--actors", type=int, default=2, help="Ray actors serving the copies")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timings of each sandbox path; the best is kept"
    )
    parser.add_argument(
        "--inspect-repeats", type=int, default=1, help="timings of Inspect (about 15 ms a sample)"
    )
    parser.add_argument("--no-inspect", action="store_true", help="skip the Inspect comparison")
    args = parser.parse_args(argv)
    if min(args.contexts, args.copies, args.actors, args.repeats, args.inspect_repeats) < 1:
        parser.error("every count must be >= 1")

    with tempfile.TemporaryDirectory(prefix="overhead-") as scratch:
        config = bench_config(args.contexts, args.copies, args.actors, Path(scratch) / "runs")
        contexts = rendered_contexts(config)
        n = len(contexts)

        organism_s, loop_s = [], []
        organism_choices: list[str | float | None] = []
        loop_choices: list[str | None] = []
        for _ in range(args.repeats):
            seconds, organism_choices = time_organism(contexts)
            organism_s.append(seconds)
            seconds, loop_choices = time_loop(contexts)
            loop_s.append(seconds)

        inspect: float | str = "skipped (--no-inspect)"
        if not args.no_inspect:
            log_dir = Path(scratch) / "inspect-logs"
            warm = time_inspect(contexts[:10], log_dir)  # imports and first-eval set-up, once
            inspect = warm
            if not isinstance(warm, str):
                runs = [time_inspect(contexts, log_dir) for _ in range(args.inspect_repeats)]
                failed = [r for r in runs if isinstance(r, str)]
                inspect = failed[0] if failed else min(r for r in runs if not isinstance(r, str))

        full_s, startup, full_choices = asyncio.run(time_full_stack(config, args.repeats))

    per = {
        "organism": min(organism_s) / n * 1e3,
        "loop": min(loop_s) / n * 1e3,
        "full": min(full_s) / n * 1e3,
    }
    inspect_ms = inspect / n * 1e3 if isinstance(inspect, float) else None
    floor = per["organism"]
    sampling = config.sampling
    print(
        f"Per-context cost: {n} contexts of {ORGANISM} on {GAME['name']}, scripted backend, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"full stack: Ray engine, {args.copies} copies on {args.actors} actors, batches of "
        f"{sampling.batch_episodes} episodes, {sampling.in_flight_batches} in flight, every "
        f"event written; best of {args.repeats}"
    )
    print()
    print(f"{'':<44} {'ms/context':>10}  {'vs organism':>10}")
    print(_row("organism called directly", per["organism"], floor))
    print(_row("LangGraph loop alone, in-process", per["loop"], floor))
    print(_row("full stack: Ray + LangGraph + events", per["full"], floor))
    if inspect_ms is not None:
        note = f"(best of {args.inspect_repeats})" if args.inspect_repeats > 1 else "(one run)"
        print(_row("Inspect AI mockllm: generate + score", inspect_ms, floor, note))
    else:
        print(_row("Inspect AI mockllm: generate + score", None, floor, str(inspect)))
    print()
    print(f"start-up before the timed runs, not counted: {startup:.1f} s (Ray, actors, warm-up)")
    same = sum(
        a == b == c for a, b, c in zip(organism_choices, loop_choices, full_choices, strict=False)
    )
    print(
        f"same choices from the organism, the loop and the full stack: {same} of {n}"
        + ("" if same == n == len(full_choices) else "  MISMATCH")
    )
    print()
    print(
        f"target: full stack <= {TARGET_MS:g} ms per context: {per['full']:.3f} ms "
        f"{_verdict(per['full'] <= TARGET_MS)}"
    )
    if inspect_ms is not None:
        ratio = inspect_ms / per["full"]
        print(
            f"target: >= {TARGET_RATIO:g}x faster per sample than Inspect: {ratio:.1f}x "
            f"{_verdict(ratio >= TARGET_RATIO)}"
        )
    else:
        print(f"target: >= {TARGET_RATIO:g}x faster per sample than Inspect: not measured")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
