"""Shared fixtures: one Ray cluster per test session, small configs, a served organism, the
command line in a subprocess, and a config run in process (on its own, or locally and served)."""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml

if TYPE_CHECKING:
    from sandbox.core.results import Summary

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]

SHARED_RUNS = ("co_run", "sb_run")
"""Session fixtures that run a whole config: the modules that use one share a worker."""


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite runs on two pytest-xdist workers (`-n 2 --dist loadgroup`, pyproject's
    addopts): each test module stays on one worker, so its module fixtures run once, and the
    modules that use one of the `SHARED_RUNS` go to the same worker, so that run is made once."""
    group: dict[Path, str] = {}
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        shared = next((name for name in SHARED_RUNS if name in fixtures), None)
        if shared or item.path not in group:
            group[item.path] = shared or group.get(item.path, item.path.stem)
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[item.path]))


@pytest.fixture(autouse=True)
def _no_inherited_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables print at their piped width in every test, as in a plain run: an xdist worker has
    `COLUMNS=80` in its environment (a test that needs a width sets its own)."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local Ray cluster shared by the whole session; yields its address so subprocesses
    (`sandbox run ... ray.address=<it>`) can join it instead of starting their own."""
    import ray

    ctx = ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        namespace="coordination-sandbox",
    )
    try:
        yield ctx.address_info["address"]  # type: ignore[attr-defined]
    finally:
        ray.shutdown()


def small_config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A quick XC config as a mapping; keyword sections replace the defaults."""
    data: dict[str, Any] = {
        "run": {"name": "test", "seed": 7, "output_dir": str(tmp_path / "runs")},
        "models": ["honest", "random", "stateless_strategist"],
        "backend": {"name": "scripted"},
        "engine": "local",
        "agents": {"copies": 4, "actors": 2},
        "sampling": {"k": 40, "played_games": 400, "bootstrap": 300, "batch_episodes": 16},
        "games": [
            {"name": "upfront_auditing", "params": {"rounds": 20, "audited": 2}},
            {"name": "plan_consistency"},
        ],
    }
    data.update(sections)
    return data


@pytest.fixture
def tmp_config(tmp_path: Path) -> Any:
    return lambda **sections: small_config(tmp_path, **sections)


@pytest.fixture(scope="session")
def co_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    """configs/coordination.yaml itself, in-process, with fewer samples: (run dir, summary).
    Shared by the Schelling, signal and collusion tests (one run: it takes about 20 s)."""
    import asyncio

    from sandbox.config import load_config
    from sandbox.record.runstore import RunStore
    from sandbox.run.checks import check_config
    from sandbox.run.runner import Runner

    tmp = tmp_path_factory.mktemp("co")
    overrides = [
        "engine=local",
        f"run.output_dir={tmp}",
        "sampling.k=200",
        "sampling.bootstrap=300",
    ]
    config = check_config(load_config(REPO / "configs" / "coordination.yaml", overrides))
    store = RunStore.create(config)
    return store.path, asyncio.run(Runner(config, store).run())


SB_GAMES = frozenset(
    {
        "selective_sandbagging",
        "calibrated_sandbagging",
        "passing_for_weaker",
        "sandbagging_propensity",
    }
)
"""The sandbagging suite's games (a test of another suite on a shipped config leaves them out)."""


@pytest.fixture(scope="session")
def sb_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    """configs/sandbagging.yaml itself, in-process, with fewer samples: (run dir, summary).
    Shared by the SB config, report and plot tests (one run: about a minute here)."""
    import asyncio

    from sandbox.config import load_config
    from sandbox.record.runstore import RunStore
    from sandbox.run.runner import Runner

    out = tmp_path_factory.mktemp("sbcfg")
    overrides = [f"run.output_dir={out}", "sampling.k=30", "sampling.bootstrap=300"]
    config = load_config(REPO / "configs" / "sandbagging.yaml", overrides)
    store = RunStore.create(config)
    return store.path, asyncio.run(Runner(config, store).run())


S = TypeVar("S", bound=socketserver.BaseServer)


@contextmanager
def running(server: S) -> Iterator[S]:
    """`server` serving in a thread for the block, shut down and closed after it."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def serving(organism: str = "stateless_strategist", **faults: Any) -> Any:
    """`sandbox serve`'s server for `organism` on a free port, in a thread, for the block;
    `faults` are its fault options (`fail_rate`, `fault_seed`, `latency_ms`, ...)."""
    from agents.serve import OrganismServer

    return running(OrganismServer(organism, "127.0.0.1", 0, **faults))


def cli_command(*args: str) -> list[str]:
    """The argv of `sandbox <args>` as a user runs it, for a test that starts it itself."""
    return [sys.executable, "-m", "sandbox.cli", *args]


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`sandbox <args>` run to its end in a subprocess (from `cwd`), its output captured as
    text: what a user sees, exit code and messages."""
    return subprocess.run(
        cli_command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def run_in_process(data: dict[str, Any], **hooks: Any) -> tuple[Path, Summary]:
    """A config mapping run in process to its end (`hooks` are the runner's): (run dir,
    summary)."""
    import asyncio

    from sandbox.config import config_from_mapping
    from sandbox.record.runstore import RunStore
    from sandbox.run.runner import Runner

    config = config_from_mapping(data)
    store = RunStore.create(config)
    return store.path, asyncio.run(Runner(config, store, **hooks).run())


def run_dir(data: dict[str, Any], **hooks: Any) -> Path:
    """A config mapping run in process to its end: its run directory."""
    return run_in_process(data, **hooks)[0]


def openai_backend(base_url: str, key_env: str, **params: Any) -> dict[str, Any]:
    """The `backend` section that reaches a model served at `base_url` through the openai
    backend, its key read from `key_env`; `params` are the backend's other params."""
    return {"name": "openai", "params": {"base_url": base_url, "api_key_env": key_env, **params}}


def local_and_served(
    tmp_path: Path,
    backend: dict[str, Any],
    served: Mapping[str, Any] | None = None,
    **sections: Any,
) -> tuple[Path, Path]:
    """The same small config (`sections` over `small_config`'s) run in process twice: on the
    scripted backend under `tmp_path / "local"`, then through `backend` (a served organism)
    under `tmp_path / "remote"`, with `served`'s sections too (another engine, say). Returns
    the two run dirs, whose results a served organism must reproduce exactly."""
    local, _ = run_in_process(small_config(tmp_path / "local", **sections))
    remote_sections = {**sections, **(served or {}), "backend": backend}
    remote, _ = run_in_process(small_config(tmp_path / "remote", **remote_sections))
    return local, remote


def run_on_two_nodes(
    config: dict[str, Any], workdir: Path, monkeypatch: pytest.MonkeyPatch, timeout: float = 300
) -> set[str]:
    """`config` (a mapping; its `ray` section is set here) run by `sandbox run` in a subprocess
    on a two-node local Ray cluster (`ray.cluster_utils.Cluster`: a head and a worker node as
    separate raylets on this machine, one CPU each), joined by address; returns the two node
    ids. The test process does not connect to that cluster (it may be the session cluster's
    driver); the cluster's session files go to a private, short directory (socket paths), not
    /tmp/ray, so a plain `ray.init()` elsewhere never joins it."""
    import shutil
    import tempfile

    import ray
    from ray.cluster_utils import Cluster

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
        config_file = workdir / "two-nodes.yaml"
        config_file.write_text(
            yaml.safe_dump({**config, "ray": {"address": cluster.address, "spread": True}}),
            encoding="utf-8",
        )
        done = cli("run", str(config_file), "--quiet", cwd=REPO, timeout=timeout)
        assert done.returncode == 0, done.stderr
    finally:
        cluster.shutdown()
        if ray.is_initialized():
            # Cluster.shutdown resets the process-wide internal KV client, which the session
            # cluster's driver (this process) still needs.
            from ray.experimental import internal_kv

            worker = ray._private.worker.global_worker
            internal_kv._initialize_internal_kv(worker.gcs_client)  # type: ignore[attr-defined]
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return nodes
