"""A suite run by address on a two-node local Ray cluster places copies on both nodes.

`ray.cluster_utils.Cluster` starts a head and a worker node as separate raylets on this machine;
the test process does not connect to it (it may already be the session cluster's driver), the
`sandbox run` subprocess does, through `ray.address`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import yaml

from sandbox.config import config_from_mapping
from sandbox.runner import Runner
from sandbox.runstore import EVENTS, RESULTS, SUMMARY, RunStore
from tests.conftest import small_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_node_cluster_runs_a_suite_by_address_on_both_nodes(
    ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    # 8 actors: Ray forwards the creation of a zero-resource actor to a random node, so SPREAD
    # does not balance `num_cpus=0` actors and 2 or 4 of them can all land on one node.
    sections = {
        "agents": {"copies": 16, "actors": 8},
        "sampling": {"k": 10, "played_games": 100, "bootstrap": 100, "batch_episodes": 8},
    }
    # The cluster's session files, and the `ray_current_cluster` file that a plain `ray.init()`
    # would connect to, go to a private (short: socket paths) directory, not /tmp/ray.
    ray_tmp = tempfile.mkdtemp(prefix="rc-", dir="/tmp" if Path("/tmp").is_dir() else None)
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        nodes = {node.node_id for node in cluster.list_all_nodes()}
        assert len(nodes) == 2

        config = small_config(
            tmp_path,
            engine="ray",
            ray={"address": cluster.address, "spread": True},
            **sections,
        )
        config_file = tmp_path / "cluster.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "sandbox.cli", "run", str(config_file), "--quiet"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    finally:
        cluster.shutdown()
        if ray.is_initialized():
            # Cluster.shutdown resets the process-wide internal KV client, which the session
            # cluster's driver (this process) still needs.
            from ray.experimental import internal_kv

            internal_kv._initialize_internal_kv(ray._private.worker.global_worker.gcs_client)
        shutil.rmtree(ray_tmp, ignore_errors=True)

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
