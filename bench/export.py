"""`sandbox export --format inspect` beside Inspect AI's own log writer, per 1,000 samples.

Makes a finished run (`sandbox run --quiet`, default `configs/quickstart.yaml`: 9,500 episodes,
27,500 samples in 15 logs), or takes one with `--run`. Times the command a user types,
`sandbox export RUN --format inspect --quiet`, in its own process from start to exit (imports
included), with its peak memory (`os.wait4`). Then, in this process after both have been
imported: the export (`export_run`: reading the run, building the samples, writing every
`.eval` log), and Inspect AI writing the same logs itself: as many `EvalLog`s, with as many
samples each (its writer's time grows with a log's sample count, so the layout is kept), built
from Inspect's own types (`EvalSample`, its chat messages, `ModelOutput`, `Score`) with messages
and metadata of the sizes the export wrote (measured on up to 50 of each log's samples), written
by `inspect_ai.log.write_eval_log`; only the write is timed, not the building.

Prints each one's seconds per 1,000 samples, the ratio of the export's to Inspect's against the
target (at most 2: no slower than twice Inspect's own writer), and the command's time and peak
memory; for the quickstart, also against its target (under a tenth of the 579 s it took before
issue 19). Exits 0 whatever the numbers; 2 on bad arguments.

    .venv/bin/python bench/export.py [--config configs/quickstart.yaml] [override ...]
    .venv/bin/python bench/export.py --run runs/<run_id>
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET = 2.0
"""The most the export may take per sample, as a multiple of Inspect's own writer's time."""

QUICKSTART = Path("configs/quickstart.yaml")
QUICKSTART_BEFORE_S = 579.0
"""The quickstart's export before issue 19 (measured on the issue's 2-core machine)."""

SHAPES_PER_LOG = 50

CLI = (sys.executable, "-m", "sandbox.cli")

PROSE = (
    "the a round game copy answer choice protocol monitor audit context episode plan model signal "
    "option observation score trusted policy deployment cue year attack wait go reasoning first "
    "scratchpad tokens second each every never once win lose probability"
)
WORDS = PROSE.split()
"""The filler of Inspect's samples: words, so they compress as prompts do."""


@dataclass(frozen=True)
class Shape:
    """One exported sample's sizes: its input's and its added messages' lengths (role, chars),
    its metadata's JSON length."""

    input: tuple[tuple[str, int], ...]
    added: tuple[tuple[str, int], ...]
    metadata: int


def shapes(path: Path) -> tuple[int, list[Shape]]:
    """A written log's sample count, and the shapes of up to `SHAPES_PER_LOG` of its samples
    (spread over the log). Reads the zip's members directly (importing Inspect AI taught
    `zipfile` zstd)."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.startswith("samples/")]
        step = max(1, len(names) // SHAPES_PER_LOG)
        out = []
        for name in names[::step][:SHAPES_PER_LOG]:
            sample = json.loads(archive.read(name))
            given = sample["input"] if isinstance(sample["input"], list) else []
            messages = [(m["role"], len(m["content"])) for m in sample["messages"]]
            out.append(
                Shape(
                    tuple((m["role"], len(m["content"])) for m in given),
                    tuple(messages[len(given) :]),
                    len(json.dumps(sample["metadata"])),
                )
            )
    return len(names), out


def text(rng: random.Random, length: int) -> str:
    """Words up to `length` characters: prose-like, as compressible as a prompt."""
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def inspect_log(name: str, count: int, log_shapes: list[Shape], rng: random.Random) -> Any:
    """An `EvalLog` of `count` samples built from Inspect's own types, cycling `log_shapes`."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSample, EvalSpec
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageUser,
        ModelOutput,
        ModelUsage,
    )
    from inspect_ai.scorer import Score

    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser}
    model = "scripted/bench"

    def message(role: str, length: int) -> Any:
        if role == "assistant":
            return ChatMessageAssistant(content=text(rng, length), model=model)
        return kinds[role](content=text(rng, length))

    samples = []
    for i in range(count):
        shape = log_shapes[i % len(log_shapes)]
        given = [message(role, length) for role, length in shape.input]
        added = [message(role, length) for role, length in shape.added]
        answer = added[-1].text if added else ""
        samples.append(
            EvalSample(
                id=f"{name}/{i:06d}",
                epoch=1,
                input=given or text(rng, 8),
                target="",
                messages=[*given, *added],
                output=ModelOutput.from_content(model=model, content=answer),
                scores={"choice": Score(value="GO", answer="GO")},
                metadata={"filler": text(rng, max(0, shape.metadata - 14))},
                model_usage={
                    model: ModelUsage(input_tokens=100, output_tokens=8, total_tokens=108)
                },
            )
        )
    return EvalLog(
        status="success",
        eval=EvalSpec(
            created="2026-01-01T00:00:00+00:00",
            task=name,
            dataset=EvalDataset(name=name, samples=count, sample_ids=[s.id for s in samples]),
            model=model,
            config=EvalConfig(epochs=1),
        ),
        samples=samples,
    )


def command(run: Path, out: Path) -> tuple[float, float]:
    """`sandbox export RUN --format inspect --quiet` in its own process: (seconds, peak MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*CLI, "export", str(run), "--format", "inspect", "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"sandbox export failed (exit {process.returncode})")
    return seconds, usage.ru_maxrss / 1024


def make_run(config: Path, overrides: list[str], runs: Path) -> Path:
    print(f"making a run: sandbox run {config} {' '.join(overrides)} --quiet", flush=True)
    subprocess.run(
        [*CLI, "run", str(config), *overrides, f"run.output_dir={runs}", "--quiet"],
        check=True,
    )
    (path,) = list(runs.iterdir())
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/export.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--config", type=Path, default=QUICKSTART, help="the run to make")
    parser.add_argument("--run", type=Path, help="a finished run to export instead")
    parser.add_argument("overrides", nargs="*", help="key.path=value, for the run made")
    args = parser.parse_args(argv)
    if args.run is not None and (args.overrides or args.config != QUICKSTART):
        parser.error("--run exports a run as it is: no --config or overrides")
    if importlib.util.find_spec("inspect_ai") is None:
        parser.error("needs Inspect AI: pip install -c constraints.txt -e '.[bench]'")

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        run = args.run or make_run(args.config, list(args.overrides), work / "runs")
        # first, while this process is small: a child's peak memory counts the parent's pages
        # it was forked with, until it execs
        command_s, peak = command(run, work / "command")

        from inspect_ai.log import write_eval_log

        from sandbox.review.export import FinishedRun, export_run

        started = time.perf_counter()
        paths = export_run(run, "inspect", work / "ours")
        ours_s = time.perf_counter() - started
        layout = {p.stem: shapes(p) for p in paths}
        samples = sum(count for count, _ in layout.values())
        episodes = sum(1 for _ in FinishedRun.open(run).record_heads())
        print(f"run {run.name}: {episodes} episodes, {samples} samples in {len(paths)} logs")

        rng = random.Random(0)
        theirs_s = 0.0
        (work / "theirs").mkdir()
        for name, (count, log_shapes) in layout.items():
            log = inspect_log(name, count, log_shapes, rng)
            started = time.perf_counter()
            write_eval_log(log, str(work / "theirs" / f"{name}.eval"), format="eval")
            theirs_s += time.perf_counter() - started
            del log

    per = 1000 / samples
    print(f"{'writer':<38} {'seconds':>9} {'per 1,000 samples':>18}")
    for label, seconds in (
        ("sandbox export (export_run)", ours_s),
        ("Inspect AI write_eval_log, same logs", theirs_s),
    ):
        print(f"{label:<38} {seconds:>9.1f} {seconds * per:>16.2f} s")
    ratio = ours_s / theirs_s
    verdict = "met" if ratio <= TARGET else "missed"
    print(f"export / Inspect's own writer: {ratio:.2f} (target <= {TARGET}): {verdict}")
    print(
        f"the command, sandbox export RUN --format inspect --quiet: {command_s:.1f} s, "
        f"peak memory {peak:.0f} MiB"
    )
    if args.run is None and args.config == QUICKSTART and not args.overrides:
        target = QUICKSTART_BEFORE_S / 10
        verdict = "met" if command_s < target else "missed"
        print(
            f"quickstart: {command_s:.1f} s against {QUICKSTART_BEFORE_S:.0f} s before issue 19 "
            f"(target < {target:.1f} s, a tenth): {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
