"""`sandbox` command line: run (or resume) a config, serve an organism over HTTP.

Exit codes: 0 done, 1 the run failed (finished episodes are kept; resume it), 2 bad config,
override or arguments (nothing is created).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandbox.config import ConfigError, load_config

EXIT_FAILED, EXIT_USAGE = 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a config (or --resume an interrupted run)")
    run.add_argument(
        "config", nargs="?", type=Path, help="YAML config, e.g. configs/quickstart.yaml"
    )
    run.add_argument("overrides", nargs="*", help="key.path=value overrides (values are YAML)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish runs/<run_id>")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")
    serve = sub.add_parser("serve", help="serve an organism as an OpenAI-compatible endpoint")
    serve.add_argument("--organism", required=True, help="a registered organism name")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    return parser


def _error(message: str) -> None:
    print(f"sandbox: error: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from sandbox.display import Display
    from sandbox.runner import RunError, Runner
    from sandbox.runstore import RunStore

    try:
        if args.resume is not None:
            if args.config is not None or args.overrides:
                raise ConfigError("--resume", "takes no config or overrides: the run's own is used")
            store, config = RunStore.open_for_resume(args.resume)
        else:
            if args.config is None:
                raise ConfigError("config", "give a config file (or --resume RUN_DIR)")
            config = load_config(args.config, args.overrides)
            store = None
    except ConfigError as exc:
        _error(f"bad config: {exc}")
        return EXIT_USAGE

    import asyncio

    if store is None:
        try:
            store = RunStore.create(config)
        except OSError as exc:
            _error(f"bad config: run.output_dir: cannot create a run directory: {exc}")
            return EXIT_USAGE
    display = Display(enabled=not args.quiet)
    print(f"run {store.run_id} -> {store.path}", file=sys.stderr)
    try:
        with display.progress() as on_progress:
            summary: dict[str, Any] = asyncio.run(
                Runner(config, store, on_progress=on_progress).run()
            )
    except RunError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error(f"interrupted; finished episodes are saved: sandbox run --resume {store.path}")
        return 130
    display.table(summary)
    print(f"wrote {store.path}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from agents.organisms import ORGANISMS
    from sandbox.serve import serve_forever

    if args.organism not in ORGANISMS:
        _error(f"--organism: no organism {args.organism!r}; known: {', '.join(ORGANISMS)}")
        return EXIT_USAGE
    if not 0 <= args.port <= 65535:
        _error(f"--port: {args.port} is not a port number (0-65535; 0 picks a free one)")
        return EXIT_USAGE
    try:
        serve_forever(args.organism, args.host, args.port)
    except OSError as exc:
        _error(f"--host/--port: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_USAGE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # options may come between overrides: argparse leaves the overrides after them unparsed
    if args.command == "run" and not any(e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "run":
        return _run(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
