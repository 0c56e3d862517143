"""A suite run by address on a two-node local Ray cluster places copies on both nodes.

`ray.cluster_utils.Cluster` starts a head and a worker node as separate raylets on this machine;
the test process does not connect to it (it may already be the session cluster's driver), the
`sandbox run` subprocess does, through `ray.address`.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from sandbox.config import config_from_mapping
from sandbox.record.runstore import EVENTS, RESULTS, SUMMARY, RunStore
from sandbox.run.runner import Runner
from tests.conftest import run_on_two_nodes, small_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_node_cluster_runs_a_suite_by_address_on_both_nodes(
    ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    # 8 actors: Ray forwards the creation of a zero-resource actor to a random node, so SPREAD
    # does not balance `num_cpus=0` actors and 2 or 4 of them can all land on one node.
    sections = {
        "agents": {"copies": 16, "actors": 8},
        "sampling": {"k": 10, "played_games": 100, "bootstrap": 100, "batch_episodes": 8},
    }
    nodes = run_on_two_nodes(
        small_config(tmp_path, engine="ray", **sections), tmp_path, monkeypatch, timeout=120
    )

    (run_dir,) = (tmp_path / "runs").iterdir()
    events = [json.loads(line) for line in (run_dir / EVENTS).read_text().splitlines()]
    actions = [e for e in events if e["kind"] == "action"]
    per_node = Counter(e["node_id"] for e in actions)
    # the run used this cluster: not the session's, nor a local one of its own
    assert per_node and set(per_node) <= nodes, f"actions by node {dict(per_node)} vs {nodes}"

    # placement never reaches the results: the local engine gives the same bytes
    local_config = config_from_mapping(small_config(tmp_path / "local", engine="local", **sections))
    store = RunStore.create(local_config)
    asyncio.run(Runner(local_config, store).run())
    assert (run_dir / RESULTS).read_bytes() == (store.path / RESULTS).read_bytes()
    summary = json.loads((run_dir / SUMMARY).read_text())
    assert summary["episodes"] == 3 * 2 * 10
    assert summary["models"] == json.loads((store.path / SUMMARY).read_text())["models"]

    # the session cluster is still usable by the tests that follow
    assert ray.is_initialized()
    assert ray.get(ray.put(41)) + 1 == 42

    # copies on both nodes: the engine deals its actors over the alive nodes in turn
    assert set(per_node) == nodes
