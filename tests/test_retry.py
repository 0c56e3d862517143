"""The openai backend's own retries: which faults it retries, how long it waits (the server's
`Retry-After`, `0` included, else backoff with jitter), and the count it reports."""

from __future__ import annotations

import json
import threading
import time
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agents.backends.base import BackendError, CompletionParams
from agents.backends.openai_backend import OpenAIBackend, OpenAIParams
from agents.backends.retry import RetryPolicy, retry_after_seconds
from sandbox.core.context import Message
from tests.conftest import running

KEY_ENV = "SANDBOX_TEST_API_KEY"

# --- the policy (pure) ----------------------------------------------------------------------


def test_backoff_doubles_to_its_cap_with_jitter_below() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=3.0, backoff_jitter=0.25)
    assert [policy.delay(n, None, 0.0) for n in range(4)] == [0.5, 1.0, 2.0, 3.0]
    # the jitter only shortens a wait, by at most a quarter
    assert policy.delay(1, None, 0.999) == pytest.approx(0.75, abs=1e-3)
    assert policy.delay(10_000, None, 0.0) == 3.0  # no overflow far down the line


def test_retry_after_is_honoured_zero_included_and_spread_above() -> None:
    policy = RetryPolicy(initial_s=0.5, after_jitter=0.25, max_after_s=60)
    assert policy.delay(3, 0.0, 0.9) == 0.0  # the SDK would back off 4 s here
    assert policy.delay(0, 2.0, 0.0) == 2.0  # never earlier than asked
    assert policy.delay(0, 2.0, 0.999) == pytest.approx(2.5, abs=1e-3)
    assert policy.delay(0, 61.0, 0.0) is None  # longer than we wait: fail now
    assert policy.delay(0, -5.0, 0.0) == 0.0  # a date in the past


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # ms wins
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # past: now
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "1e999"}, float("inf")),  # too long, not "none"
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], seconds: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(headers, now=now) == seconds


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(backoff_jitter=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        RetryPolicy(max_retries=-1)


# --- over HTTP, through the SDK -------------------------------------------------------------


NOT_JSON = 299
"""A scripted reply: 200 with a body that is not JSON (a proxy's error page)."""


class _Script(ThreadingHTTPServer):
    """Answers each chat completion with the next scripted (status, headers), then 200s."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.arrivals: list[float] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Script

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.arrivals.append(time.monotonic())
            status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        if status == NOT_JSON:
            data = b"<html>upstream hiccup</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if status == 200:
            body: dict[str, Any] = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ANSWER: A"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
        else:
            body = {"error": {"message": f"scripted {status}", "type": "x", "code": None}}
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def scripted(script: list[tuple[int, dict[str, str]]]) -> AbstractContextManager[_Script]:
    return running(_Script(script))


def _backend(server: _Script, **params: Any) -> OpenAIBackend:
    host, port = server.server_address[:2]
    return OpenAIBackend(
        OpenAIParams(base_url=f"http://{host!s}:{port}/v1", api_key_env=KEY_ENV, **params), "m"
    )


async def _complete(
    server: _Script, schema: dict[str, Any] | None = None, **params: Any
) -> tuple[Any, float]:
    backend = _backend(server, **params)
    started = time.monotonic()
    try:
        result: Any = await backend.complete(
            [Message(role="user", content="hi")], CompletionParams(seed=1, answer_schema=schema)
        )
    except BackendError as exc:
        result = exc
    finally:
        await backend.aclose()
    return result, time.monotonic() - started


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


async def test_retry_after_is_waited_and_the_retries_counted() -> None:
    with scripted([(429, {"Retry-After": "1"}), (503, {"Retry-After": "1"})]) as server:
        completion, _ = await _complete(server)
    assert completion.text == "ANSWER: A" and completion.retries == 2
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert len(gaps) == 2 and all(1.0 <= g < 1.25 + 0.5 for g in gaps), gaps


async def test_retry_after_zero_retries_at_once() -> None:
    with scripted([(429, {"Retry-After": "0"})] * 3) as server:
        completion, elapsed = await _complete(server)
    assert completion.retries == 3
    assert elapsed < 1.0  # the SDK's own retries would back off 0.5 + 1 + 2 s


async def test_without_retry_after_the_backoff_doubles() -> None:
    with scripted([(500, {})] * 2) as server:
        completion, _ = await _complete(server, retry_backoff_s=0.2)
    assert completion.retries == 2
    first, second = (b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False))
    assert 0.15 <= first < 0.2 + 0.2 and 0.3 <= second < 0.4 + 0.2, (first, second)


async def test_a_call_out_of_retries_fails_with_its_count() -> None:
    with scripted([(500, {})] * 5) as server:
        error, _ = await _complete(server, max_retries=2, retry_backoff_s=0.01)
    assert isinstance(error, BackendError) and error.retries == 2
    assert "after 2 retries" in str(error) and "InternalServerError" in str(error)
    assert len(server.arrivals) == 3


@pytest.mark.parametrize(
    "script",
    [
        [(400, {})],  # the request itself is wrong: another try gives the same
        [(401, {})],
        [(429, {"Retry-After": "3600"})],  # a quota reset an hour away: report, don't sleep
    ],
)
async def test_what_is_not_retried(script: list[tuple[int, dict[str, str]]]) -> None:
    with scripted(script) as server:
        error, elapsed = await _complete(server)
    assert isinstance(error, BackendError) and error.retries == 0
    assert len(server.arrivals) == 1 and elapsed < 1.0


def test_a_backend_error_keeps_its_retries_across_pickling() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(BackendError("boom", retries=4)))
    assert isinstance(error, BackendError) and error.retries == 4 and str(error) == "boom"


SCHEMA = {"type": "object", "properties": {"answer": {"enum": ["A", "B"]}}}


@pytest.mark.parametrize(
    ("script", "form", "retries"),
    [
        ([], "json_schema", 0),
        # passing faults while probing: the form is still decided by the endpoint, not the fault
        ([(429, {"Retry-After": "0"})], "json_schema", 1),
        ([(500, {}), (500, {})], "json_schema", 2),
        # three 500s in a row refuse a form, as llama.cpp refuses json_schema
        ([(500, {})] * 3, "json_object", 2),
        ([(400, {}), (503, {"Retry-After": "0"})], "json_object", 1),
        ([(400, {}), (422, {})], None, 0),  # no form taken: plain text
    ],
)
async def test_auto_probes_forms_through_passing_faults(
    script: list[tuple[int, dict[str, str]]], form: str | None, retries: int
) -> None:
    with scripted(script) as server:
        completion, _ = await _complete(
            server, SCHEMA, structured_output="auto", retry_backoff_s=0.01
        )
    assert not isinstance(completion, BackendError), completion
    assert (completion.structured, completion.retries) == (form, retries)


async def test_a_body_that_is_not_json_is_a_fault_retried() -> None:
    with scripted([(NOT_JSON, {})]) as server:
        completion, _ = await _complete(server, retry_backoff_s=0.01)
    assert completion.text == "ANSWER: A" and completion.retries == 1
    with scripted([(NOT_JSON, {})] * 3) as server:
        error, _ = await _complete(server, retry_backoff_s=0.01, max_retries=1)
    assert isinstance(error, BackendError) and error.retries == 1


async def test_an_error_outcome_keeps_its_earlier_calls_usage_and_retries() -> None:
    """A context whose scratchpad call was answered (after a retry) and whose answer call
    then failed: its error outcome still counts the tokens and retries it paid for."""
    from agents.loop import AgentLoop
    from sandbox.core.context import Affordances
    from tests.test_agent_loop import _context

    script = [(503, {"Retry-After": "0"}), (200, {}), *[(500, {})] * 3]
    with scripted(script) as server:
        backend = _backend(server, max_retries=2, retry_backoff_s=0.01)
        try:
            loop = AgentLoop(lambda model: backend)
            action = await loop.run(_context("m", Affordances(scratchpad=True)))
        finally:
            await backend.aclose()
    assert action.error is not None and "after 2 retries" in action.error
    assert (action.usage.prompt_tokens, action.usage.completion_tokens) == (3, 2)
    assert action.retries == 1 + 2
