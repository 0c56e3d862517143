"""`sandbox` command line: run (or resume) a config, show a finished run's table, write its
report (`report.md` and a self-contained `report.html`), review a run's events (`logs`), export
a run to another tool's format, serve an organism over HTTP.

`sandbox run` (and `replay`, and `--resume`) ends by writing the run's report and printing
where it is. The report is derived from `summary.json` alone, so a report that fails is an
error message, not a failed run: the exit code stays 0 (the run is complete and kept) and
`sandbox report RUN_DIR` writes it again.

Exit codes: 0 done, 1 the run failed (finished episodes are kept; resume it), 2 bad config,
override, argument or run directory (nothing is created or changed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sandbox.config import Config
    from sandbox.record.runstore import RunStore

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

T = TypeVar("T")


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
    run.set_defaults(usage_error=run.error)
    replay = sub.add_parser(
        "replay",
        help="re-evaluate a finished run under other settings, asking no model what it answered",
    )
    replay.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the source run")
    replay.add_argument(
        "overrides", nargs="*", help="key.path=value, e.g. control.protocol=defer_to_trusted"
    )
    replay.add_argument("--quiet", action="store_true", help="no progress bar or table")
    show = sub.add_parser("show", help="print a finished run's tables from its summary.json")
    show.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="runs/<run_id>")
    report = sub.add_parser(
        "report", help="write a finished run's report.md and self-contained report.html"
    )
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="runs/<run_id>")
    logs = sub.add_parser(
        "logs", help="review a run's events: filter them, one episode's timeline, or a summary"
    )
    logs.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="runs/<run_id>")
    logs.add_argument("--kind", action="append", default=[], help="an event kind (repeatable)")
    logs.add_argument("--agent", help="an agent id, e.g. copy-0")
    logs.add_argument("--model", help="a model (an episode result's record's model)")
    logs.add_argument("--game", help="a game id")
    logs.add_argument("--episode", help="an episode id")
    logs.add_argument("--domain", help="an SB item's domain (item_answer events): hazard, general")
    logs.add_argument(
        "--difficulty", type=int, help="an SB item's difficulty, its level (item_answer events)"
    )
    logs.add_argument(
        "--correct",
        choices=["yes", "no"],
        help="SB items answered right (yes) or wrong (no) (item_answer events)",
    )
    logs.add_argument("--timeline", metavar="EPISODE", help="one episode's events in order")
    logs.add_argument("--json", action="store_true", help="JSON lines (events as stored)")
    logs.add_argument("--limit", type=int, help="at most N events")
    logs.add_argument(
        "--summary",
        action="store_true",
        help="the default view, then a summary per model and game (reads every line: slower)",
    )
    logs.add_argument(
        "--sql",
        metavar="QUERY",
        help="a SQL query on the events as the table `events`, with DuckDB (the sql extra)",
    )
    export = sub.add_parser(
        "export", help="write a finished run in another tool's log format (Inspect AI's .eval)"
    )
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="runs/<run_id>")
    export.add_argument(
        "--format", dest="fmt", required=True, choices=["inspect"], help="the log format"
    )
    export.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write (default: RUN_DIR/<format>/)"
    )
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    serve = sub.add_parser("serve", help="serve an organism as an OpenAI-compatible endpoint")
    serve.add_argument("--organism", required=True, help="a registered organism name")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument(
        "--organism-params",
        default="{}",
        metavar="JSON",
        help="the organism's params as a JSON object, e.g. '{\"attack_rate\": 0.1}'",
    )
    serve.add_argument(
        "--structured",
        default="json_schema,json_object",
        metavar="FORMS",
        help="response_format types taken, comma-separated (json_schema, json_object; '' for "
        "none); others are answered 500. Default: both",
    )
    serve.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="N",
        help="each chat completion waits N ms before answering (concurrent requests overlap)",
    )
    serve.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="each chat completion fails with probability P: HTTP 500 or 429 (Retry-After: 0), "
        "1 failure in 10 a reset connection",
    )
    serve.add_argument(
        "--fault-seed",
        type=int,
        metavar="N",
        help="seeds the failure draws (independent of the organism's sampling); default random",
    )
    return parser


def _error(message: str) -> None:
    print(f"sandbox: error: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from sandbox.config import ConfigError, load_config
    from sandbox.record.runstore import FINISHED, RunDirError, RunStore
    from sandbox.run.checks import check_config

    if args.resume is not None:
        if args.config is not None or args.overrides:
            args.usage_error("--resume takes no config or overrides: the run's own is used")
    elif args.config is None:
        args.usage_error("give a config file (e.g. configs/quickstart.yaml) or --resume RUN_DIR")
    reopened = False  # a finished run reopened to ask its error outcomes again
    try:
        if args.resume is not None:
            store, config = RunStore.open(args.resume)
            if (store.path / FINISHED).is_dir():
                store.restore_finished()  # an earlier reopening never ended: start from there
            redo = store.error_episodes()  # asked once more by each resume
            if store.finished() and not redo:
                print(
                    f"run {store.run_id} is complete; nothing to do "
                    f"(its tables: sandbox show {store.path})",
                    file=sys.stderr,
                )
                return 0
            check_config(config)
            if redo:
                print(f"asking the error outcomes of {len(redo)} episodes again", file=sys.stderr)
            if store.finished():
                store.keep_finished()
                reopened = True
            store.repair()
            replaying = _replay_of(store)
        else:
            missing = _missing_config(args.config)
            if missing is not None:
                _error(f"bad config: {missing}")
                return EXIT_USAGE
            config = check_config(load_config(args.config, args.overrides))
            store, replaying = None, {}
    except RunDirError as exc:
        _error(f"--resume: {exc}")
        return EXIT_USAGE
    except ConfigError as exc:
        _error(f"bad config: {exc}")
        return EXIT_USAGE

    code = _execute(config, store, quiet=args.quiet, **replaying)
    if reopened and store is not None:
        if code == 0:
            store.drop_finished()
        else:
            store.restore_finished()
            _error(
                f"{store.path} is the finished run it was (its error outcomes as before; the "
                "answers this attempt got are kept for the next --resume)"
            )
    return code


def _missing_config(path: Path) -> str | None:
    """Why `path` names no config, with the nearest config file beside it (a mistyped
    `configs/quickstart.yml` gets "did you mean 'configs/quickstart.yaml'?"); None when it is
    a file."""
    import difflib

    if path.is_file():
        return None
    if path.is_dir():
        return f"{path} is a directory, not a config file"
    folder = path.parent
    if not folder.is_dir():
        return f"no such config {path} (there is no directory {folder})"
    names = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    if not names:
        return f"no such config {path} (no .yaml or .yml file in {folder})"
    # matched by stem: a shared folder or suffix would make any two paths look alike
    stems = {Path(name).stem: name for name in reversed(names)}
    close = difflib.get_close_matches(path.stem, list(stems), n=1, cutoff=0.6)
    if close:
        return f"no such config {path}; did you mean {folder / stems[close[0]]}?"
    return f"no such config {path}; the configs in {folder}: {', '.join(names)}"


def _replay_of(store: RunStore) -> dict[str, Any]:
    """A resumed replay goes on answering from its source's log (and its own)."""
    from sandbox.record.cache import RequestCache
    from sandbox.record.runstore import EVENTS, RunDirError

    started = store.started()
    if started is None or started.source_path is None:
        return {}
    source = Path(started.source_path)
    if not (source / EVENTS).is_file():
        raise RunDirError(f"this replay's source run is gone: no {source / EVENTS}")
    cache = RequestCache.from_events(source / EVENTS, store.path / EVENTS)
    return {"cache": cache, "source": source}


async def _interruptible(run: Coroutine[Any, Any, T]) -> T:
    """`run`, stopped by Ctrl-C (SIGINT) as a cancellation: its cleanup (`finally` blocks: the
    engine closed, Ray shut down) runs whole, and a second Ctrl-C while it does is ignored
    rather than breaking into it (which left Ray to print its task failures and a traceback).
    Raises KeyboardInterrupt once the run has stopped."""
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None, "a coroutine runs in a task"
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals
        return await run
    try:
        return await run
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if interrupted:  # from here to the exit, a Ctrl-C changes nothing: the run is stopped
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _contexts_text(counts: Mapping[str, int]) -> str:
    """Contexts per role in words: "120 (policy 80, monitor 40)", or "none"."""
    total = sum(counts.values())
    if not total:
        return "none"
    roles = ", ".join(f"{role} {n}" for role, n in counts.items() if n)
    return f"{total} ({roles})"


def _execute(
    config: Config, store: RunStore | None, quiet: bool, run_id: str | None = None, **runner: Any
) -> int:
    """Run `config` into `store` (a new run directory when None, named `run_id` when given), with
    a progress bar, the tables at the end and how long it took."""
    import asyncio

    from sandbox.record.runstore import RunStore
    from sandbox.review.display import Display, elapsed_text, stopping_text
    from sandbox.run.runner import RunError, Runner

    if store is None:
        try:
            store = RunStore.create(config, run_id)
        except OSError as exc:
            _error(f"bad config: run.output_dir: cannot create a run directory: {exc}")
            return EXIT_USAGE
    display = Display(enabled=not quiet)
    print(f"run {store.run_id} -> {store.path}", file=sys.stderr)
    started = time.monotonic()
    try:
        with display.progress() as on_progress:
            summary = asyncio.run(
                _interruptible(Runner(config, store, on_progress=on_progress, **runner).run())
            )
    except RunError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error(f"interrupted; finished episodes are saved: sandbox run --resume {store.path}")
        return EXIT_INTERRUPTED
    elapsed = time.monotonic() - started
    display.table(summary)
    _report_after_run(store.path)
    replay = summary.replay
    if replay is not None:
        print(
            f"replayed {replay.source_run}: contexts answered from its log: "
            f"{_contexts_text(replay.cached_contexts)}; asked anew: "
            f"{_contexts_text(replay.new_contexts)}",
            file=sys.stderr,
        )
    if summary.stopping is not None:
        print(stopping_text(summary), file=sys.stderr)
    print(f"finished in {elapsed_text(elapsed)}; wrote {store.path}", file=sys.stderr)
    return 0


def _report_after_run(run_dir: Path) -> None:
    """The finished run's report; a failure is reported, never raised: the run is kept whole
    and its report can be written again (`sandbox report`)."""
    try:
        from sandbox.review.report import write_report

        files = write_report(run_dir)
    except Exception as exc:
        _error(
            f"report: {type(exc).__name__}: {exc}; the run is complete: write the report "
            f"again with `sandbox report {run_dir}`"
        )
        return
    print(f"report: {files.html} (and {files.markdown.name})", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    """A finished run's report from its summary.json and config.yaml: no Ray, no model call."""
    from sandbox.review.report import ReportError, write_report

    try:
        files = write_report(args.run_dir)
    except ReportError as exc:
        _error(f"report: {exc}")
        return EXIT_USAGE
    print(files.markdown)
    print(files.html)
    return 0


def _replay(args: argparse.Namespace) -> int:
    """A finished run re-evaluated under overrides (another protocol, threshold or monitor):
    every context the source run answered is answered from its event log, so only contexts it
    never asked (a resample, a new monitor) reach a model."""
    from sandbox.config import ConfigError, config_from_mapping
    from sandbox.record.cache import RequestCache
    from sandbox.record.runstore import EVENTS, RunDirError, RunStore, replay_run_id
    from sandbox.run.checks import check_config

    try:
        source, config = RunStore.open(args.run_dir)
        if not source.finished():
            raise RunDirError(
                f"{args.run_dir} has not finished: finish it first (sandbox run --resume "
                f"{args.run_dir})"
            )
        config = check_config(config_from_mapping(config.resolved(), args.overrides))
    except RunDirError as exc:
        _error(f"replay: {exc}")
        return EXIT_USAGE
    except ConfigError as exc:
        _error(f"bad config: {exc}")
        return EXIT_USAGE
    cache = RequestCache.from_events(source.path / EVENTS)
    run_id = replay_run_id(source.run_id, config)
    return _execute(config, None, args.quiet, run_id, cache=cache, source=source.path)


def _show(args: argparse.Namespace) -> int:
    """The tables `sandbox run` printed, from summary.json alone (of any schema version
    `Summary.read` knows): no Ray, no model calls."""
    from sandbox.core.results import Summary, SummaryError
    from sandbox.record.runstore import SUMMARY
    from sandbox.review.display import Display, stopping_text

    path = args.run_dir / SUMMARY
    if not args.run_dir.is_dir():
        _error(f"{args.run_dir} does not exist")
        return EXIT_USAGE
    if not path.is_file():
        _error(
            f"{args.run_dir} has no {SUMMARY}: the run has not finished "
            f"(finish it with `sandbox run --resume {args.run_dir}`)"
        )
        return EXIT_USAGE
    try:
        summary = Summary.read(path)
    except SummaryError as exc:
        _error(str(exc))
        return EXIT_USAGE
    Display().table(summary)
    if summary.stopping is not None:
        print(stopping_text(summary))
    return 0


def _logs(args: argparse.Namespace) -> int:
    """Filtered events, one episode's timeline, or the coordination tables (and, with --summary,
    a summary per model and game), streamed from events.jsonl (no Ray, no model calls; works on a
    run still being written); or, with --sql, a query on the events as a table. A reader that
    closes the pipe early (`| head`) ends it quietly, with exit 0: it has what it asked for."""
    # the lines and filters alone (no event models: a filter starts fast); the tables and
    # --sql import `sandbox.review.logs`
    from sandbox.review import eventlines
    from sandbox.review.eventlines import EVENTS

    try:
        path = args.run_dir / EVENTS
        if not args.run_dir.is_dir():
            _error(f"{args.run_dir} does not exist")
            return EXIT_USAGE
        if not path.is_file():
            _error(f"{args.run_dir} has no {EVENTS}: not a run directory")
            return EXIT_USAGE
        if args.sql is not None:
            others = [args.kind, args.agent, args.model, args.game, args.episode, args.timeline]
            others += [args.domain, args.difficulty is not None, args.correct]
            if any(o for o in others) or args.summary or args.limit is not None:
                _error("--sql: on its own (filter and limit in the query: where, limit)")
                return EXIT_USAGE
            from sandbox.review import logs

            try:
                columns, found = logs.query(path, args.sql)
            except logs.QueryError as exc:
                _error(f"--sql: {exc}")
                return EXIT_USAGE
            if args.json:
                for values in found:
                    row = dict(zip(columns, values, strict=True))
                    print(json.dumps(row, ensure_ascii=False, default=str))
            else:
                from rich.table import Table

                table = Table(caption=f"{len(found)} rows")
                for column in columns:
                    table.add_column(column, overflow="fold")
                for values in found:
                    table.add_row(*("NULL" if v is None else str(v) for v in values))
                _print_table(table)
            return 0
        problem = eventlines.kind_error(args.kind)
        if problem is not None:
            _error(f"--kind: {problem}")
            return EXIT_USAGE
        if args.limit is not None and args.limit < 0:
            _error("--limit: must be 0 or more")
            return EXIT_USAGE
        episode = args.timeline if args.timeline is not None else args.episode
        if args.timeline is not None and args.episode is not None and args.episode != args.timeline:
            _error("--timeline and --episode name different episodes")
            return EXIT_USAGE
        flt = eventlines.Filter(
            kinds=frozenset(args.kind),
            agent=args.agent,
            model=args.model,
            game=args.game,
            episode=episode,
            domain=args.domain,
            difficulty=args.difficulty,
            correct=None if args.correct is None else args.correct == "yes",
        )
        if not flt.active():
            from sandbox.review import logs

            tables = logs.run_tables(args.run_dir, args.summary)
            if args.json:
                for name, rows in tables.items():
                    for row in rows:
                        print(json.dumps({"table": name} | row, ensure_ascii=False))
            else:
                _coordination_tables(tables)
                if args.summary:
                    _summary_table(tables["summary"])
                else:
                    print("a summary per model and game (it reads every line): --summary")
            return 0
        if args.summary:
            _error("--summary: only in the default view (no filter)")
            return EXIT_USAGE
        if not args.json and args.timeline is None:
            # human lines, written a block's at a time (most read in place: `describe_file`)
            left = args.limit
            for texts in eventlines.describe_file(path, flt):
                if left is not None:
                    texts, left = texts[:left], left - min(left, len(texts))
                if texts:
                    sys.stdout.write("\n".join(texts) + "\n")
                if left == 0:
                    break
            sys.stdout.flush()  # a closed pipe is found here, not at exit
            return 0
        selected = eventlines.select_file(path, flt)
        shown: list[dict[str, Any]] = []
        count = 0
        for line, event in selected:
            if args.limit is not None and count >= args.limit:
                break
            count += 1
            if args.json:
                sys.stdout.write(line.decode("utf-8") + "\n")
            else:
                shown.append(event)  # one episode: bounded; its prompts are looked up below
        if args.timeline is not None and count == 0:
            ids = eventlines.episode_ids(
                eventlines.lines_with(eventlines.file_blocks(path), [b'"episode_result"'])
            )
            if args.timeline not in ids:
                _error(f"--timeline: {eventlines.unknown_episode(args.timeline, ids, path)}")
                return EXIT_USAGE
        if shown:
            shas = {str(e["prompt_sha256"]) for e in shown if e.get("kind") == "context_started"}
            needles = [json.dumps(sha).encode() for sha in shas]
            prompts = (
                eventlines.prompt_texts(
                    eventlines.lines_with(eventlines.file_blocks(path), needles), shas
                )
                if shas
                else {}
            )
            for event in shown:
                print(eventlines.describe(event, prompts))
        sys.stdout.flush()  # a closed pipe is found here, not at exit
        return 0
    except BrokenPipeError:
        # what is left unwritten goes nowhere: the interpreter's last flush would fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):
            return 0  # rich's console ends a closed pipe so, its output already sent nowhere
        raise


def _print_table(table: Any) -> None:
    """A `sandbox logs` table on stdout, at the width `sandbox show` uses, names whole."""
    from rich.console import Console

    from sandbox.review.display import fit, output_width

    console = Console(width=output_width())
    for part in fit(console, table):
        console.print(part)


def _coordination_tables(tables: dict[str, list[dict[str, Any]]]) -> None:
    from rich.table import Table

    if not tables["agreement"] and not tables["collusion"]:
        print("no coordination events in this run")
        return
    if tables["collusion"]:
        table = Table(title="collusion under untrusted monitoring, per model and countermeasure")
        for column in (
            "model",
            "game",
            "countermeasure",
            "attempted",
            "recognized",
            "caught by honeypots",
            "jammed",
            "succeeded",
        ):
            table.add_column(column)
        for row in tables["collusion"]:
            table.add_row(
                row["model"],
                row["game"],
                row["countermeasure"],
                str(row["attempted"]),
                str(row["recognized"]),
                f"{row['honeypots_passed']} of {row['honeypots']}" if row["honeypots"] else "-",
                str(row["jammed"]),
                str(row["succeeded"]),
            )
        _print_table(table)
    if tables["agreement"]:
        table = Table(title="agreement games: pairs of independent contexts")
        for column in ("model", "game", "picks", "pairs", "agreed", "agreement"):
            table.add_column(column)
        for row in tables["agreement"]:
            rate = row["agreement"]
            table.add_row(
                row["model"],
                row["game"],
                str(row["picks"]),
                str(row["pairs"]),
                str(row["agreed"]),
                "-" if rate is None else f"{rate:.3f}",
            )
        _print_table(table)


def _summary_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="events per model and game")
    for column in (
        "model",
        "game",
        "episodes",
        "contexts",
        "parse fails",
        "monitor scores (missing)",
        "decisions",
        "audits caught / clean",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["model"],
            row["game"],
            str(row["episodes"]),
            str(row["contexts"]),
            str(row["parse_failures"]),
            f"{row['monitor_scores']} ({row['monitor_missing']})",
            ", ".join(f"{k} {v}" for k, v in row["decisions"].items()) or "-",
            f"{row['audits_caught']} / {row['audits_clean']}",
        )
    _print_table(table)


def _export(args: argparse.Namespace) -> int:
    """A finished run's samples and scores as another tool's logs (`sandbox.review.export`),
    with the run's progress bar of episodes written on a terminal (none when piped or quiet:
    only the paths written, on stdout)."""
    import contextlib
    from collections.abc import Callable

    from sandbox.review.display import Display
    from sandbox.review.export import ExportError, export_run

    display = Display(enabled=not args.quiet)
    display.enabled = display.enabled and display.console.is_terminal
    with contextlib.ExitStack() as bar:
        shown: list[Callable[[int, int], None]] = []

        def on_progress(done: int, total: int) -> None:
            if not shown:  # the bar starts once writing does: a refused run gets none
                shown.append(bar.enter_context(display.progress()))
            shown[0](done, total)

        try:
            paths = export_run(args.run_dir, args.fmt, args.out, progress=on_progress)
        except ExportError as exc:
            _error(f"export: {exc}")
            return EXIT_USAGE
    for path in paths:
        print(path)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import math

    from agents.organisms import ORGANISMS
    from agents.serve import serve_forever
    from sandbox.core.registry import RegistryError

    if args.organism not in ORGANISMS:
        _error(f"--organism: no organism {args.organism!r}; known: {', '.join(ORGANISMS)}")
        return EXIT_USAGE
    try:
        params = json.loads(args.organism_params)
    except json.JSONDecodeError as exc:
        _error(f"--organism-params: not JSON: {exc}")
        return EXIT_USAGE
    if not isinstance(params, dict):
        _error(f"--organism-params: expected a JSON object, got {type(params).__name__}")
        return EXIT_USAGE
    try:
        ORGANISMS.validate_params(args.organism, params)
    except RegistryError as exc:
        _error(f"--organism-params: {exc}")
        return EXIT_USAGE
    if not 0 <= args.port <= 65535:
        _error(f"--port: {args.port} is not a port number (0-65535; 0 picks a free one)")
        return EXIT_USAGE
    forms = tuple(f for f in args.structured.split(",") if f)
    unknown = [f for f in forms if f not in ("json_schema", "json_object")]
    if unknown:
        _error(f"--structured: unknown forms {unknown}; known: json_schema, json_object")
        return EXIT_USAGE
    if not 0 <= args.latency_ms < math.inf:
        _error(f"--latency-ms: {args.latency_ms:g} is not a delay (a number of ms, at least 0)")
        return EXIT_USAGE
    if not 0 <= args.fail_rate <= 1:
        _error(f"--fail-rate: {args.fail_rate:g} is not a probability (between 0 and 1)")
        return EXIT_USAGE
    try:
        serve_forever(
            args.organism,
            args.host,
            args.port,
            params,
            forms,
            args.latency_ms,
            args.fail_rate,
            args.fault_seed,
        )
    except OSError as exc:
        _error(f"--host/--port: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_USAGE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # options may come between overrides: argparse leaves the overrides after them unparsed
    if args.command in ("run", "replay") and not any(e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "run":
        return _run(args)
    if args.command == "show":
        return _show(args)
    if args.command == "report":
        return _report(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "logs":
        return _logs(args)
    if args.command == "export":
        return _export(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
