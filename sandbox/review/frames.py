"""Runs as pandas data frames, for notebooks: `load_runs(["runs/a", "runs/b"])`.

One call reads one run directory or many into four tables, each row carrying its `run_id` and
`model`, so runs and models compare with a `groupby`:

- `episodes`: one row per committed episode (`results.jsonl`): a memoryless game's episode
  (`kind` "game", with its samples' count and parse failures) or a protocol's task step (`kind`
  "protocol_step"), with its token usage.
- `contexts`: one row per context the run started (`context_started`), with its answer (the
  `action` event: choice, score, parse flag, attempts, visible text, scratchpad, tokens, where it
  ran); a context still in flight when the run stopped has no answer (NaN there).
- `steps`: one row per protocol task step, its nested outcomes flattened with dots
  (`policy.backdoor`, `collusion.survived.paraphrase`).
- `attempts`: one row per coordination event (`coordination_pick`, `signal_inserted`, `jam`,
  `signal_recognition`, `honeypot_verdict`; `kind` says which), fields flattened likewise.

Everything is read from the run's own files, as `sandbox show` and `sandbox logs` read them:
episodes from their committed records (the first line of each episode, a torn last line left
out), the rest from `events.jsonl`, each event validated against its model before it becomes a
row. pandas is an optional extra: `pip install -c constraints.txt -e '.[frames]'`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.core.events import (
    COORDINATION_TYPES,
    EVENT_ADAPTER,
    ActionTaken,
    ContextStarted,
    EpisodeRecord,
    RunStarted,
    StepRecord,
    complete_lines,
    kind_of,
)
from sandbox.record.runstore import EVENTS, RunStore

if TYPE_CHECKING:
    import pandas as pd

INSTALL = "pip install -c constraints.txt -e '.[frames]'"
"""The install command for the optional dependency, named by the error when it is missing."""

TABLES = ("episodes", "contexts", "steps", "attempts")

ATTEMPT_KINDS = frozenset(kind_of(t) for t in COORDINATION_TYPES)
_WANTED = ATTEMPT_KINDS | {kind_of(ContextStarted), kind_of(ActionTaken), kind_of(RunStarted)}
_WANTED_BYTES = tuple(f'"{kind}"'.encode() for kind in _WANTED)


@dataclass(frozen=True)
class RunFrames:
    """The four tables of one or more runs (see the module's docstring)."""

    episodes: pd.DataFrame
    contexts: pd.DataFrame
    steps: pd.DataFrame
    attempts: pd.DataFrame


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(f"data frames need pandas, an optional extra: {INSTALL}") from exc
    return pandas


def load_runs(paths: str | Path | Iterable[str | Path]) -> RunFrames:
    """One run directory, or several, as data frames; rows of each run in its own order, runs
    in the order given. Raises `RunDirError` (naming the path) for what is not a run."""
    pd = _pandas()
    if isinstance(paths, str | Path):
        paths = [paths]
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for path in paths:
        for name, table in _run_rows(Path(path)).items():
            rows[name].extend(table)
    return RunFrames(
        **{
            name: pd.json_normalize(table) if table else pd.DataFrame({"run_id": [], "model": []})
            for name, table in rows.items()
        }
    )


def _run_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    store, _ = RunStore.open(path)
    events = list(_events(path / EVENTS))
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    run_id = started.run_id if started is not None else store.run_id
    episodes: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for record in store.records():
        episodes.append({"run_id": run_id, **_episode_row(record)})
        if isinstance(record, StepRecord):
            steps.append({"run_id": run_id, **record.model_dump(mode="json", exclude={"kind"})})
    answers = {e.context_id: e for e in events if isinstance(e, ActionTaken)}
    contexts = [
        {"run_id": run_id, **_context_row(e, answers.get(e.context_id))}
        for e in events
        if isinstance(e, ContextStarted)
    ]
    attempts = [
        {"run_id": run_id, **e.model_dump(mode="json", exclude={"run_id", "ts"})}
        for e in events
        if getattr(e, "kind", None) in ATTEMPT_KINDS
    ]
    return {"episodes": episodes, "contexts": contexts, "steps": steps, "attempts": attempts}


def _events(path: Path) -> Iterator[Any]:
    """The events this module reads, validated; a line of another kind (a prompt's messages,
    an episode's result) is passed over before it is parsed."""
    for line in complete_lines(path):
        if any(kind in line for kind in _WANTED_BYTES):
            data = json.loads(line)
            if data.get("kind") in _WANTED:
                yield EVENT_ADAPTER.validate_python(data)


def _episode_row(record: EpisodeRecord | StepRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "episode_id": record.episode_id,
        "model": record.model,
        "game": record.game,
        "index": record.index,
        "kind": "game" if isinstance(record, EpisodeRecord) else "protocol_step",
        "prompt_tokens": record.usage.prompt_tokens,
        "completion_tokens": record.usage.completion_tokens,
    }
    if isinstance(record, EpisodeRecord):
        row["samples"] = len(record.samples)
        row["parse_failures"] = sum(not s.parse_ok for s in record.samples)
    return row


def _context_row(started: ContextStarted, action: ActionTaken | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": started.model,
        "game": started.game,
        "episode_id": started.episode_id,
        "context_id": started.context_id,
        "agent_id": started.agent_id,
        "role": started.role,
        "observation": started.observation,
    }
    if action is not None:
        row.update(
            choice=action.choice,
            score=action.score,
            parse_ok=action.parse_ok,
            attempts=action.attempts,
            retries=action.retries,
            error=action.error,
            worker=action.worker,
            node_id=action.node_id,
            prompt_tokens=action.usage.prompt_tokens,
            completion_tokens=action.usage.completion_tokens,
            visible=action.visible,
            scratchpad=action.scratchpad,
        )
    return row
