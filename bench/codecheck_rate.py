"""Code checks per second: `check_code` on a batch of honest samples against a bare loop.

Both run the same `--samples` honest submissions (a small function, 5 tests each) in the same
run:

- `check_code`: one checker process for the batch, a fork per sample, the limits, the audit hook
  and the driver-side verdicts;
- the bare loop: one `python -c` per sample (the code, then its tests with `assert`), run with
  `subprocess.run` one after another, with no limits or isolation at all: the floor of the naive
  design, one interpreter start per sample.

Each is timed `--repeats` times and the best time is kept. Prints both rates and their ratio.
Exits 0 whatever the numbers; 2 on bad arguments.

    python bench/codecheck_rate.py [--samples 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.settings.codecheck import CodeCheck, TestCase, check_code

REFERENCE = "def f(xs, k):\n    return sorted(x * k for x in xs)[:3]\n"


def samples(count: int) -> list[CodeCheck]:
    tests = tuple(
        TestCase(
            ([i, 3 - i, 7, -2, i * i], i % 4),
            sorted(x * (i % 4) for x in [i, 3 - i, 7, -2, i * i])[:3],
        )
        for i in range(5)
    )
    return [
        CodeCheck(
            code=(
                f"def f(xs, k):\n    out = [x * k for x in xs]  # sample {n}\n"
                "    return sorted(out)[:3]\n"
            ),
            function="f",
            tests=tests,
            reference=REFERENCE,
        )
        for n in range(count)
    ]


def bare_loop(checks: list[CodeCheck]) -> None:
    for check in checks:
        asserts = "".join(f"assert f(*{t.args!r}) == {t.expected!r}\n" for t in check.tests)
        subprocess.run([sys.executable, "-c", check.code + asserts], check=True)


def best(repeats: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.samples < 1 or args.repeats < 1:
        parser.error("--samples and --repeats must be positive")
    checks = samples(args.samples)

    def checked() -> None:
        results = asyncio.run(check_code(checks))
        assert all(r.status == "passed" for r in results), results[:3]

    ours = best(args.repeats, checked)
    bare = best(args.repeats, lambda: bare_loop(checks))
    print(f"{args.samples} honest samples, 5 tests each, best of {args.repeats}")
    print(f"  check_code:             {args.samples / ours:8.1f} checks/s  ({ours:.3f} s)")
    print(f"  python -c per sample:   {args.samples / bare:8.1f} checks/s  ({bare:.3f} s)")
    print(f"  ratio:                  {bare / ours:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
