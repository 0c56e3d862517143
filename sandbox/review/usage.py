"""Token usage per model, tallied from a run's events, and its estimated cost.

Pure: the lines of `events.jsonl` in, plain dicts out. Every model call is in an `action` (a
context's calls, re-asks and scratchpad included) or a `plan_written` event (a shared plan), each
with its model and its token usage, so the tally covers the untrusted models, the trusted model
(monitoring, editing, paraphrasing, judging) and a resumed run's earlier part alike. A context
is counted once, by its id: an action repeated in the log (an episode redone after a crash or
for an error outcome) by its last record, and a shared plan's context, which has both an
`action` and a `plan_written` event, once; a replay's answers taken from its source run's log
(`worker: cache`) cost nothing and are not counted, nor are contexts never asked (`worker:
unasked`: the error outcomes of episodes whose shared plan failed). `retries` counts the
backend's retries of the calls (endpoint faults ridden out, or not: an error outcome's too).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.core.context import CACHED, UNASKED

_NEEDLES = (
    b'"kind": "action"',
    b'"kind":"action"',
    b'"kind": "plan_written"',
    b'"kind":"plan_written"',
)


def usage_by_model(lines: Iterable[bytes]) -> dict[str, dict[str, int]]:
    """Per model: contexts (and plans), those that ended as error outcomes (the backend failed
    after its retries), the backend's retries, prompt and completion tokens."""
    seen: dict[str, tuple[str, int, int, bool, int]] = {}
    uncalled: set[str] = set()  # contexts answered with no call: a replay's, or never asked
    for line in lines:
        if not any(n in line for n in _NEEDLES):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("kind") not in ("action", "plan_written"):
            continue
        key = str(event.get("context_id"))
        if event.get("worker") in (CACHED, UNASKED):
            uncalled.add(key)  # a replay's answer from its source's log, or a context not asked
            continue
        if event.get("kind") == "plan_written" and (key in seen or key in uncalled):
            continue  # the plan's own action event holds the same call (or none was made)
        usage = event.get("usage") or {}
        retries = int(event.get("retries", 0))
        seen[key] = (
            str(event.get("model")),
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            event.get("error") is not None,
            retries,
        )
    out: dict[str, dict[str, int]] = {}
    for model, prompt, completion, failed, retries in seen.values():
        row = out.setdefault(
            model,
            {"contexts": 0, "errors": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0},
        )
        row["contexts"] += 1
        row["errors"] += failed
        row["retries"] += retries
        row["prompt_tokens"] += prompt
        row["completion_tokens"] += completion
    return dict(sorted(out.items()))


def estimated_cost(
    usage: Mapping[str, Mapping[str, int]], prices: Mapping[str, Any]
) -> dict[str, Any]:
    """USD per priced model and in total; `unpriced` names the models with usage and no price
    (their cost is not in the total)."""
    per_model: dict[str, float] = {}
    for model, row in usage.items():
        price = prices.get(model)
        if price is None:
            continue
        per_model[model] = round(
            row["prompt_tokens"] * price.prompt_per_mtok / 1e6
            + row["completion_tokens"] * price.completion_per_mtok / 1e6,
            6,
        )
    return {
        "usd": per_model,
        "total_usd": round(sum(per_model.values()), 6),
        "unpriced": sorted(m for m in usage if m not in prices),
    }
