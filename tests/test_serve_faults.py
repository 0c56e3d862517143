"""`sandbox serve --latency-ms/--fail-rate`: injected faults, their independence from the
organism's sampling, overlapping latency, and a run through the `openai` backend that rides them
out with its retries."""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.serve import OrganismServer
from sandbox.record.runstore import RESULTS
from tests.conftest import cli, openai_backend, run_in_process, serving, small_config

KEY_ENV = "SANDBOX_TEST_API_KEY"
MESSAGES = [
    {"role": "system", "content": "You are one of several copies of an agent."},
    {"role": "user", "content": "Choose one. Options: A, B. End with a line ANSWER: <option>."},
]


def post(server: OrganismServer, seed: int, model: str = "stateless_strategist") -> Any:
    """One chat completion on a fresh connection: (status, headers, body), or the exception a
    dropped connection raises."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        body = json.dumps({"model": model, "messages": MESSAGES, "seed": seed})
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.headers), json.loads(response.read())
    except (ConnectionError, http.client.HTTPException) as exc:
        return exc
    finally:
        conn.close()


def test_faults_come_at_the_rate_in_every_kind_and_leave_answers_unchanged() -> None:
    n, rate = 200, 0.5
    with serving() as clean:
        expected = {seed: post(clean, seed) for seed in range(n)}
    with serving(fail_rate=rate, fault_seed=3) as faulty:
        got = {seed: post(faulty, seed) for seed in range(n)}
    kinds: Counter[str] = Counter()
    for seed, outcome in got.items():
        if isinstance(outcome, Exception):
            kinds["reset"] += 1
            continue
        status, headers, body = outcome
        if status == 200:
            kinds["ok"] += 1
            # the fault draw never touches the organism's seeded sampling
            assert body["choices"] == expected[seed][2]["choices"], seed
            continue
        kinds[str(status)] += 1
        assert status in (429, 500), outcome
        assert "injected fault" in body["error"]["message"]
        if status == 429:
            assert headers.get("Retry-After") == "0", headers
    failed = n - kinds["ok"]
    # 4.5 standard deviations of a binomial(200, 0.5): a fair server fails this about 1 in 10^5
    assert abs(failed - n * rate) <= 4.5 * math.sqrt(n * rate * (1 - rate)), kinds
    assert kinds["500"] > 0 and kinds["429"] > 0 and kinds["reset"] > 0, kinds
    # resets are about 1 failure in 10, the rest split between 500 and 429
    assert kinds["reset"] < kinds["500"] and kinds["reset"] < kinds["429"], kinds
    assert set(kinds) <= {"ok", "500", "429", "reset"}, kinds
    assert faulty.injected == {k: v for k, v in kinds.items() if k != "ok"}


def test_fault_draws_repeat_for_a_fault_seed() -> None:
    def statuses() -> list[object]:
        with serving(fail_rate=0.5, fault_seed=11) as server:
            return [
                "reset" if isinstance(o, Exception) else o[0]
                for o in (post(server, seed) for seed in range(40))
            ]

    first = statuses()
    assert first == statuses()
    assert 200 in first and len(set(first)) > 1


def test_no_faults_at_rate_zero_and_all_at_rate_one() -> None:
    with serving(fail_rate=0.0) as server:
        assert all(post(server, seed)[0] == 200 for seed in range(30))
    with serving(fail_rate=1.0, fault_seed=0) as server:
        outcomes = [post(server, seed) for seed in range(30)]
        assert not any(not isinstance(o, Exception) and o[0] == 200 for o in outcomes)


def test_latency_delays_each_request_and_concurrent_requests_overlap() -> None:
    latency_s, clients = 0.2, 8
    with serving(latency_ms=latency_s * 1000) as server:
        post(server, 0)  # first-call costs (the organism's caches) out of the timing
        took: list[float] = []
        statuses: list[int] = []
        lock = threading.Lock()

        def one(seed: int) -> None:
            started = time.perf_counter()
            outcome = post(server, seed)
            with lock:
                took.append(time.perf_counter() - started)
                statuses.append(outcome[0])

        threads = [threading.Thread(target=one, args=(seed,)) for seed in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    assert statuses == [200] * clients
    assert min(took) >= latency_s
    # served one after another they would take clients x latency (1.6 s)
    assert wall < clients * latency_s / 2, (wall, took)


@pytest.mark.parametrize(
    "kwargs",
    [{"latency_ms": -1}, {"fail_rate": 1.5}, {"fail_rate": -0.1}, {"latency_ms": math.nan}],
)
def test_bad_fault_params_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OrganismServer("honest", "127.0.0.1", 0, **kwargs)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--latency-ms", "-5"], "--latency-ms"),
        (["--latency-ms", "inf"], "--latency-ms"),
        (["--fail-rate", "2"], "--fail-rate"),
        (["--fail-rate", "nan"], "--fail-rate"),
        (["--fail-rate", "lots"], "--fail-rate"),
    ],
)
def test_serve_refuses_bad_fault_flags(flags: list[str], message: str) -> None:
    done = cli("serve", "--organism", "honest", "--port", "0", *flags, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_a_run_rides_out_a_failing_endpoint_with_identical_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    games = [
        {"name": "upfront_auditing"},
        {"name": "plan_consistency", "affordances": {"randomness": True}},
    ]
    sampling = {"k": 15, "played_games": 100, "bootstrap": 100, "batch_episodes": 8}

    def run(name: str, server: OrganismServer) -> Path:
        path, _ = run_in_process(
            small_config(
                tmp_path / name,
                models=["stateless_strategist"],
                games=games,
                sampling=sampling,
                backend=openai_backend(server.base_url, KEY_ENV, timeout_s=10),
            )
        )
        return path

    with serving() as clean:
        expected = (run("clean", clean) / RESULTS).read_text()
    with serving(fail_rate=0.2, fault_seed=5) as faulty:
        path = run("faulty", faulty)
        got = (path / RESULTS).read_text()
        injected = dict(faulty.injected)
    # the run met every kind of fault (a fixed fault seed: this holds run after run)
    assert set(injected) == {"500", "429", "reset"}, injected
    assert expected.count("\n") == 30
    assert got == expected  # with the backend's default retry settings
    # every fault cost exactly one retry, each counted once in the summary
    usage = json.loads((path / "summary.json").read_text())["usage_by_model"]
    assert usage["stateless_strategist"]["retries"] == sum(injected.values())
    assert usage["stateless_strategist"]["errors"] == 0
