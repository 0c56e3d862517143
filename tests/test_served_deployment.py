"""A deployment over the `openai` backend against `sandbox serve`, the untrusted policy and the
trusted model each served by its own process, gives the same results as in process."""

from __future__ import annotations

import http.client
import json
import queue
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandbox.record.runstore import EVENTS, RESULTS
from tests.conftest import cli_command, openai_backend
from tests.test_protocols import deployment_config, run

ATTACKER_PARAMS = {"attack_rate": 0.3, "conspicuousness": 0.5}
KEY_ENV = "SANDBOX_TEST_SERVED_KEY"
PROTOCOL = "defer_to_trusted"
CONTROL = {"steps": 20, "tasks": 200, "deployments": 1000, "audit_budget": 0.05}


@contextmanager
def sandbox_serve(organism: str, params: dict[str, Any] | None = None) -> Iterator[str]:
    """`sandbox serve --port 0` in its own process; yields its base URL once it listens."""
    argv = cli_command("serve", "--organism", organism, "--port", "0")
    if params is not None:
        argv += ["--organism-params", json.dumps(params)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # read stderr to the end, so the server never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put("")

    threading.Thread(target=drain, daemon=True).start()
    try:
        line = lines.get(timeout=60)
        match = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
        assert match, f"sandbox serve --organism {organism}: {line!r}"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class CountingProxy(ThreadingHTTPServer):
    """A loopback hop in front of a served organism that counts the chat completions it
    answered and keeps their seeds: proof that a run's calls really went over HTTP."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.lock = threading.Lock()
        self.answered: Counter[str] = Counter()
        self.seeds: list[object] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: CountingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            upstream.request("POST", self.path, body, {"Content-Type": "application/json"})
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        if reply.status == 200:
            request = json.loads(body)
            with self.server.lock:
                self.server.answered[request["model"]] += 1
                self.server.seeds.append(request.get("seed"))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    """The policy and the trusted model, each served by its own `sandbox serve` process."""
    with (
        sandbox_serve("attacker", ATTACKER_PARAMS) as attacker,
        sandbox_serve("trusted") as trusted,
    ):
        yield {"attacker": attacker, "trusted": trusted}


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The same deployment on the scripted backend (the attacker's params from
    `backend.params.organisms`)."""
    data = deployment_config(tmp_path_factory.mktemp("scripted"), PROTOCOL, **CONTROL)
    assert data["backend"]["params"]["organisms"]["attacker"] == ATTACKER_PARAMS
    return run(data)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_served_deployment_matches_in_process(
    tmp_path: Path,
    served: dict[str, str],
    in_process: tuple[Path, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    engine: str,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-unused")
    proxies = {name: CountingProxy(url) for name, url in served.items()}
    try:
        data = deployment_config(tmp_path, PROTOCOL, **CONTROL)
        data["backend"] = openai_backend(proxies["attacker"].base_url, KEY_ENV)
        trusted = openai_backend(proxies["trusted"].base_url, KEY_ENV)
        data["trusted"] = {"model": "trusted", "backend": trusted}
        if engine == "ray":
            data["engine"] = "ray"
            data["ray"] = {"address": request.getfixturevalue("ray_cluster")}
        path, summary = run(data)
    finally:
        for proxy in proxies.values():
            proxy.shutdown()
            proxy.server_close()

    local_path, local_summary = in_process
    local_results = (local_path / RESULTS).read_bytes()
    assert local_results.count(b"\n") == 3 * CONTROL["steps"]
    assert (path / RESULTS).read_bytes() == local_results
    deployment = summary["models"]["attacker"]["deployment"]
    assert deployment["complete"] and deployment["attack_rate"]["value"] > 0
    assert deployment == local_summary["models"]["attacker"]["deployment"]
    assert summary["usage"] == local_summary["usage"]

    # every model call went over HTTP to the server of its model, one seeded request per call
    events = [json.loads(line) for line in (path / EVENTS).open()]
    actions = [e for e in events if e["kind"] == "action"]
    calls: Counter[str] = Counter()
    for action in actions:
        calls[action["model"]] += action["attempts"]
    assert calls["attacker"] >= 3 * CONTROL["steps"] and calls["trusted"] >= 3 * CONTROL["steps"]
    for name, proxy in proxies.items():
        assert proxy.answered == {name: calls[name]}, name
        assert all(isinstance(seed, int) for seed in proxy.seeds)
    workers = {(a["node_id"], a["worker"]) for a in actions}
    if engine == "local":
        assert workers == {("local", "local")}
    else:
        assert ("local", "local") not in workers


def test_served_coordination_games_and_collusion_match_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordination suite over HTTP: `sandbox serve --organism focal_colluder` plays the
    Schelling and signal games and colludes under untrusted monitoring (the trusted model
    paraphrasing from its own server), with the same results as in process."""
    colluder = {"attack_rate": 0.3}

    def config(out: Path) -> dict[str, Any]:
        data = deployment_config(
            out, "untrusted_monitoring", monitor="untrusted", **{**CONTROL, "steps": 15}
        )
        data["models"] = ["focal_colluder"]
        data["backend"] = {
            "name": "scripted",
            "params": {"organisms": {"focal_colluder": colluder}},
        }
        data["games"] = [
            {"name": "schelling", "params": {"option_set": "numbers"}},
            {"name": "signal_agreement"},
        ]
        data["sampling"] = {**data["sampling"], "k": 20, "played_games": 200}
        return data

    local_path, local = run(config(tmp_path / "local"))
    monkeypatch.setenv(KEY_ENV, "sk-test-unused")
    with (
        sandbox_serve("focal_colluder", colluder) as policy,
        sandbox_serve("trusted") as trusted,
    ):
        data = config(tmp_path / "served")
        data["backend"] = openai_backend(policy, KEY_ENV)
        data["trusted"] = {"model": "trusted", "backend": openai_backend(trusted, KEY_ENV)}
        path, summary = run(data)
    assert (path / RESULTS).read_bytes() == (local_path / RESULTS).read_bytes()
    served, inproc = summary["models"]["focal_colluder"], local["models"]["focal_colluder"]
    assert served["games"] == inproc["games"] and served["deployment"] == inproc["deployment"]
    assert served["games"]["signal_agreement"]["details"]["pairwise_agreement"]["value"] == 1.0
    collusion = served["deployment"]["collusion"]
    assert collusion["none"]["signalled_attacks"] > 0
    kinds = Counter(json.loads(line)["kind"] for line in (path / EVENTS).open())
    assert kinds["coordination_pick"] == 20 + 2 * 20 and kinds["signal_recognition"] > 0
