"""Token usage per model from the events, and the estimated cost (`sandbox/review/usage.py`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sandbox.config import Price, config_from_mapping
from sandbox.record.runstore import EVENTS, RunStore
from sandbox.review.usage import estimated_cost, usage_by_model
from sandbox.run.runner import Runner
from tests.conftest import small_config


def _line(
    kind: str, context: str, model: str, prompt: int, completion: int, compact: bool
) -> bytes:
    event = {
        "kind": kind,
        "context_id": context,
        "model": model,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }
    sep = (",", ":") if compact else (", ", ": ")
    return (json.dumps(event, separators=sep) + "\n").encode()


def test_usage_is_tallied_per_model_once_per_context() -> None:
    lines = [
        _line("action", "c1", "big", 100, 10, False),
        _line("action", "c1", "big", 100, 10, False),  # an episode redone after a crash
        _line("action", "c2", "big", 50, 5, True),
        _line("plan_written", "p1", "big", 7, 3, False),
        _line("action", "c3", "small", 20, 2, False),
        b'{"kind": "context_started", "context_id": "c4", "model": "big"}\n',
        # a replay's answer from its source run's log: no call was made
        b'{"kind": "action", "context_id": "c5", "model": "big", "worker": "cache", '
        b'"usage": {"prompt_tokens": 9, "completion_tokens": 9}}\n',
        b"not json\n",
    ]
    lines.append(
        b'{"kind": "action", "context_id": "c6", "model": "small", "error": "HTTP 500", '
        b'"retries": 3, "usage": {"prompt_tokens": 0, "completion_tokens": 0}}\n'
    )
    # a shared plan: its action event and its plan_written event are one call
    lines.append(
        b'{"kind": "action", "context_id": "p2", "model": "small", "retries": 1, '
        b'"usage": {"prompt_tokens": 0, "completion_tokens": 0}}\n'
    )
    lines.append(
        b'{"kind": "plan_written", "context_id": "p2", "model": "small", '
        b'"usage": {"prompt_tokens": 0, "completion_tokens": 0}}\n'
    )
    # a replay's plan from its source's log: neither its action nor its plan_written was paid
    lines.append(
        b'{"kind": "action", "context_id": "p3", "model": "small", "worker": "cache", '
        b'"usage": {"prompt_tokens": 50, "completion_tokens": 5}}\n'
    )
    lines.append(
        b'{"kind": "plan_written", "context_id": "p3", "model": "small", '
        b'"usage": {"prompt_tokens": 50, "completion_tokens": 5}}\n'
    )
    # a context never asked (its episode's plan failed): no call
    lines.append(
        b'{"kind": "action", "context_id": "c7", "model": "small", "worker": "unasked", '
        b'"error": "plan failed", "usage": {"prompt_tokens": 0, "completion_tokens": 0}}\n'
    )
    assert usage_by_model(lines) == {
        "big": {
            "contexts": 3,
            "errors": 0,
            "retries": 0,
            "prompt_tokens": 157,
            "completion_tokens": 18,
        },
        "small": {
            "contexts": 3,
            "errors": 1,
            "retries": 4,
            "prompt_tokens": 20,
            "completion_tokens": 2,
        },
    }


def test_estimated_cost() -> None:
    usage = {
        "big": {"contexts": 3, "prompt_tokens": 2_000_000, "completion_tokens": 500_000},
        "free": {"contexts": 1, "prompt_tokens": 10, "completion_tokens": 1},
    }
    cost = estimated_cost(usage, {"big": Price(prompt_per_mtok=0.15, completion_per_mtok=0.6)})
    assert cost == {"usd": {"big": 0.6}, "total_usd": 0.6, "unpriced": ["free"]}


def test_a_run_reports_usage_and_cost(tmp_path: Path) -> None:
    data = small_config(tmp_path, models=["honest", "random"])
    data["report"] = {"prices": {"honest": {"prompt_per_mtok": 1.0, "completion_per_mtok": 2.0}}}
    config = config_from_mapping(data)
    store = RunStore.create(config)
    summary = asyncio.run(Runner(config, store).run())
    by_model = summary["usage_by_model"]
    assert set(by_model) == {"honest", "random"}
    total = {
        k: sum(row[k] for row in by_model.values()) for k in ("prompt_tokens", "completion_tokens")
    }
    plan = summary["plan_usage"]
    assert total == {
        k: summary["usage"][k] + plan[k] for k in ("prompt_tokens", "completion_tokens")
    }
    honest = by_model["honest"]
    assert honest["contexts"] == 40 * 2  # k = 40 episodes of two one-observation games
    assert honest["prompt_tokens"] > 0 and honest["completion_tokens"] > 0
    expected = honest["prompt_tokens"] / 1e6 + 2 * honest["completion_tokens"] / 1e6
    assert summary["cost"]["usd"]["honest"] == pytest.approx(expected)
    assert summary["cost"]["unpriced"] == ("random",)
    with (store.path / EVENTS).open("rb") as log:
        assert usage_by_model(log) == {m: u.model_dump() for m, u in by_model.items()}
