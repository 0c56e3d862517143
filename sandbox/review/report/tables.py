"""The report's tables, from `summary.json` and `config.yaml` (pure: the `Summary` and the parsed
config in, tables out).

The tables the terminal prints (capability profile, TG cells, deployments, collusion) are taken
from `sandbox.review.display` itself, so a report never words or rounds a number differently from
what `sandbox run` and `sandbox show` print. The rest are the report's own: per-suite game tables,
and what a reader needs to trust and reproduce the numbers (seed, models, token use, retries, parse
failures).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table as RichTable

from sandbox.core.results import DeploymentScore, GameScore, ModelUsage, Summary
from sandbox.review.display import GAME_COLUMNS, Display, game_cells, rate_text, stopping_text
from sandbox.review.report.model import Table

MISSING = "-"
"""A value the summary does not hold (an older run, a key not recorded)."""


def from_rich(table: RichTable | None, id_: str) -> Table | None:
    """A terminal table as a report table: same title, headers, cells and caption."""
    if table is None:
        return None
    columns = tuple(str(c.header) for c in table.columns)
    cells = [[str(cell) for cell in column.cells] for column in table.columns]
    rows = tuple(tuple(row) for row in zip(*cells, strict=True))
    caption = "" if table.caption is None else str(table.caption)
    return Table(id_, str(table.title or ""), columns, rows, caption)


def profile_table(summary: Summary) -> Table | None:
    return from_rich(Display.capability_profile_table(summary), "profile")


def deployments_table(summary: Summary) -> Table | None:
    return from_rich(Display.deployments_table(summary), "deployments")


def collusion_table(summary: Summary) -> Table | None:
    return from_rich(Display.collusion_table(summary), "collusion")


def games_table(summary: Summary, suite: str, title: str) -> Table | None:
    """Every (model, game) of one suite: win against the optimum, played games, the
    measurement behind it, the verdict; the columns of `sandbox run`'s games table."""
    rows = []
    for model, entry in summary.models.items():
        for gid, g in entry.games.items():
            if g.suite != suite:
                continue
            if not g.complete:
                rows.append((model, gid, "incomplete", f"{g.optimal_win:.3f}", *[""] * 5))
                continue
            rows.append((model, gid, *game_cells(g)))
    if not rows:
        return None
    columns = GAME_COLUMNS
    caption = (
        "win: the empirical policy's win probability with its interval; played games: games "
        "played from the same samples (agree: the two intervals overlap)"
    )
    threshold = summary.xc_threshold
    if threshold is not None and suite == "xc":
        caption += (
            f"; verdict: solved when the whole win interval is at or above {threshold:g} x "
            "optimal, not solved when wholly below"
        )
    return Table(f"games-{suite}", title, columns, tuple(rows), caption)


def tg_cells_table(summary: Summary) -> Table | None:
    """The TG probe per model and cell: the table `sandbox run` prints (`Display.tg_table`):
    the gap with its interval, the adjusted interval and the cell's verdict, each cue's
    compliance."""
    return from_rich(Display.tg_table(summary), "tg-cells")


def sb_games_table(summary: Summary) -> Table | None:
    """The SB games per model: each game's own verdict and the measure it reads, the table
    `sandbox run` prints (`Display.sb_table`)."""
    return from_rich(Display.sb_table(summary), "sb-games")


def run_table(summary: Summary, config: Mapping[str, Any]) -> Table:
    """What the run was: enough to rerun it and to know it is this run."""
    run = config.get("run") or {}
    trusted = config.get("trusted") or {}
    backend = config.get("backend") or {}
    engine = config.get("engine") or {}
    sampling = config.get("sampling") or {}
    control = config.get("control") or {}
    rows = [
        ("run id", summary.run_id),
        ("config SHA-256", summary.config_sha256),
        ("seed", str(run.get("seed", MISSING))),
        ("models", ", ".join(map(str, config.get("models") or [])) or MISSING),
        ("backend", _named(backend)),
        ("trusted model", str(trusted.get("model", MISSING)) if trusted else MISSING),
        ("engine", _named(engine)),
        ("games", ", ".join(_game_id(g) for g in config.get("games") or []) or MISSING),
        ("control protocol", _named(control.get("protocol")) if control else MISSING),
        ("samples per observation (k)", str(sampling.get("k", MISSING))),
        ("confidence", str(sampling.get("confidence", MISSING))),
        ("episodes", str(summary.episodes)),
    ]
    if control:
        rows.append(("code isolation", _isolation(summary)))
    if summary.replay is not None:
        rows.append(("replay of", summary.replay.source_run))
    caption = (
        "the same config and seed give the same results.jsonl: sandbox run <run dir>/config.yaml"
    )
    return Table("run", "The run", ("", "value"), tuple(rows), caption)


def _isolation(summary: Summary) -> str:
    """How the run's code checks ran: a reader must see at once that `none` was no sandbox."""
    isolation = summary.isolation
    if isolation is None:
        return "not recorded (a run made before code checks were sandboxed)"
    if isolation == "none":
        return "none: unsandboxed (settings.isolation: none)"
    return str(isolation)


def _named(entry: Any) -> str:
    """A registry entry as written in a config: a name, or `{name, params}`."""
    if entry is None:
        return MISSING
    if isinstance(entry, Mapping):
        params = entry.get("params") or {}
        return str(entry.get("name", MISSING)) + (f" {params}" if params else "")
    return str(entry)


def _game_id(game: Mapping[str, Any]) -> str:
    return str(game.get("id") or game.get("name"))


def usage_table(summary: Summary) -> Table:
    """Calls and tokens per model (the trusted model's included), retries and cost: what was
    paid for, from the events (`usage_by_model`), and its total beside the total cost.

    A column a run did not record (retries, before runs counted them) shows "-", in a model's
    row and in the total; a run without `usage_by_model` shows "-" throughout."""
    by_model = summary.usage_by_model
    cost = summary.cost
    usd = {} if cost is None else cost.usd
    rows = []
    for model, u in (by_model or {}).items():
        rows.append(
            (
                model,
                *(_count(getattr(u, key)) for key in _USAGE_KEYS),
                f"{usd[model]:.4f}" if model in usd else "unpriced",
            )
        )
    rows.append(
        (
            "all models",
            *(_total(by_model, key) for key in _USAGE_KEYS),
            MISSING if cost is None else f"{cost.total_usd:.4f}",
        )
    )
    plans = summary.plan_usage
    if plans is not None and (plans.prompt_tokens or plans.completion_tokens):
        rows.append(
            (
                "shared plans",
                MISSING,
                MISSING,
                MISSING,
                str(plans.prompt_tokens),
                str(plans.completion_tokens),
                MISSING,
            )
        )
    columns = (
        "model",
        "contexts",
        "errors",
        "retries",
        "prompt tokens",
        "completion tokens",
        "cost (USD)",
    )
    caption = (
        "what was paid for: per model, the contexts whose calls were made (re-asks, scratchpads "
        "and shared plans' calls included; a replay's answers from its source run's log are not "
        "counted); errors: contexts whose call still failed after the backend's retries; all "
        "models: the sums of the model rows, beside the total cost; cost: from report.prices "
        "(the total counts priced models only); shared plans: the plans' tokens, within their "
        "models' rows where their calls were made"
    )
    return Table("usage", "Token use, errors and retries", columns, tuple(rows), caption)


_USAGE_KEYS = ("contexts", "errors", "retries", "prompt_tokens", "completion_tokens")
"""The columns of `usage_by_model`'s rows, in the usage table's order."""


def _count(value: int | None) -> str:
    return MISSING if value is None else str(value)


def _total(by_model: Mapping[str, ModelUsage] | None, key: str) -> str:
    """One column's sum over the models; "-" where a model (or the run) did not record it."""
    if by_model is None:
        return MISSING
    counts: list[int | None] = [getattr(u, key) for u in by_model.values()]
    if any(c is None for c in counts):
        return MISSING
    return str(sum(c for c in counts if c is not None))


def parse_failures_table(summary: Summary) -> Table | None:
    """Per model and game, contexts whose answer could not be read (scored as WAIT, REFUSE or
    an outcome agreeing with nothing); per deployment, monitor scores missing."""
    rows = []
    for model, entry in summary.models.items():
        for gid, g in entry.games.items():
            if not isinstance(g, GameScore):
                continue
            rate, n = g.parse_failure_rate, g.samples
            rows.append((model, gid, str(n), str(round(rate * n)), rate_text(rate)))
        d = entry.deployment
        if isinstance(d, DeploymentScore):
            steps = sum(d.steps.values())
            rate = d.monitor_missing_rate
            name = f"{d.protocol} (monitor scores)"
            rows.append((model, name, str(steps), str(round(rate * steps)), rate_text(rate)))
    if not rows:
        return None
    columns = ("model", "game", "samples", "parse failures", "rate")
    return Table("parse-failures", "Parse failures", columns, tuple(rows))


def stopping_table(summary: Summary) -> Table | None:
    """Adaptive stopping, cell by cell: episodes played against `k_max`, why the cell stopped
    and the anytime-valid interval its verdict was read from; the caption says the contexts
    saved (`display.stopping_text`). None for a fixed run."""
    stopping = summary.stopping
    if stopping is None:
        return None
    rows = tuple(
        (
            c.model,
            c.game,
            f"{c.episodes} / {c.k_max}",
            f"{c.contexts:,}",
            c.stopped,
            c.verdict or MISSING,
            MISSING
            if c.low is None or c.high is None
            else f"{c.statistic} [{c.low:.3f}, {c.high:.3f}]",
        )
        for c in stopping.cells
    )
    columns = ("model", "game", "episodes / k_max", "contexts", "stopped", "verdict", "interval")
    caption = (
        f"{stopping_text(summary)}. Each settled verdict holds at error rate {stopping.alpha:g} "
        "whatever round it stopped at (docs/adaptive-stopping.md)"
    )
    return Table("stopping", "Adaptive stopping", columns, rows, caption)
