"""The openai backend's HTTP: kept-alive connections, the request `chat.completions.create`
would send, the reply read from its JSON; and an agent copy's bound on contexts in its loop."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from openai import AsyncOpenAI

from agents.backends.base import BackendError, CompletionParams
from agents.backends.openai_backend import OpenAIBackend, OpenAIParams
from agents.copy import ADMITTED_PER_CALL_SLOT, AgentCopy
from agents.serve import OrganismServer
from sandbox.core.context import ChoiceAnswer, Context, Message
from tests.conftest import running

KEY_ENV = "SANDBOX_TEST_API_KEY"
MESSAGES = [Message(role="system", content="be brief"), Message(role="user", content="hi")]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


class _Counting(OrganismServer):
    """`sandbox serve`'s server, counting the connections it accepts."""

    def __init__(self, latency_ms: float) -> None:
        super().__init__("honest", latency_ms=latency_ms)
        self.connections = 0
        self._count_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            self.connections += 1
        super().process_request(request, client_address)


def counting(latency_ms: float = 0.0) -> AbstractContextManager[_Counting]:
    return running(_Counting(latency_ms))


def _backend(base_url: str, **params: Any) -> OpenAIBackend:
    return OpenAIBackend(
        OpenAIParams(base_url=base_url, api_key_env=KEY_ENV, max_retries=0, **params), "honest"
    )


async def _calls(backend: OpenAIBackend, n: int, rounds: int) -> None:
    """`rounds` times, `n` calls at once (every connection idle in between)."""
    try:
        for _ in range(rounds):
            await asyncio.gather(
                *(backend.complete(MESSAGES, CompletionParams(seed=seed)) for seed in range(n))
            )
    finally:
        await backend.aclose()


async def test_sequential_calls_share_one_connection() -> None:
    with counting() as server:
        backend = _backend(server.base_url)
        try:
            for seed in range(20):
                await backend.complete(MESSAGES, CompletionParams(seed=seed))
        finally:
            await backend.aclose()
        assert server.connections == 1


@pytest.mark.parametrize("concurrency", [4, 130])
async def test_concurrent_calls_keep_a_connection_per_slot(concurrency: int) -> None:
    """Above the SDK's default keep-alive pool (100), calls would reconnect without ours."""
    with counting(latency_ms=50) as server:
        await _calls(_backend(server.base_url, max_concurrency=concurrency), concurrency, 3)
        assert sum(server.answered.values()) == 3 * concurrency
        assert server.connections <= concurrency


# --- what goes over the wire, and what is read back ----------------------------------------


class _Recording(ThreadingHTTPServer):
    """Records each request's headers and JSON body; answers `reply` (a JSON value)."""

    def __init__(self, reply: Any) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.reply = reply
        self.requests: list[tuple[dict[str, str], Any]] = []


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _Recording
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        data = json.dumps(self.server.reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def recording(reply: Any) -> AbstractContextManager[_Recording]:
    return running(_Recording(reply))


def _url(server: _Recording) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/v1"


REPLY = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "served-name",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ANSWER: A"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
# headers that differ between any two requests
PER_REQUEST = {"idempotency-key", "x-stainless-retry-count", "x-stainless-read-timeout"}


@pytest.mark.parametrize(
    ("params", "structured"), [({}, "off"), ({"max_tokens": None}, "json_object")]
)
async def test_the_request_is_the_one_create_sends(params: dict[str, Any], structured: str) -> None:
    schema = {"type": "object", "properties": {"answer": {"enum": ["A", "B"]}}}
    with recording(REPLY) as server:
        backend = _backend(_url(server), temperature=0.5, structured_output=structured, **params)
        try:
            done = await backend.complete(MESSAGES, CompletionParams(seed=7, answer_schema=schema))
        finally:
            await backend.aclose()
        client = AsyncOpenAI(base_url=_url(server), api_key="sk-test", max_retries=0)
        extra: dict[str, Any] = {}
        if structured == "json_object":
            extra["response_format"] = {"type": "json_object", "schema": schema}
        try:
            await client.chat.completions.create(
                model="honest",
                messages=[{"role": m.role, "content": m.content} for m in MESSAGES],  # type: ignore[misc]
                seed=7,
                temperature=0.5,
                max_tokens=params.get("max_tokens", 512),
                **extra,
            )
        finally:
            await client.close()
    (ours, our_body), (sdk, sdk_body) = server.requests
    assert our_body == sdk_body
    assert {k: v for k, v in ours.items() if k not in PER_REQUEST} == {
        k: v for k, v in sdk.items() if k not in PER_REQUEST
    }
    assert ours["authorization"] == "Bearer sk-test"
    assert (done.text, done.model, done.usage.prompt_tokens, done.usage.completion_tokens) == (
        "ANSWER: A",
        "served-name",
        3,
        2,
    )
    assert done.structured == (None if structured == "off" else structured)


@pytest.mark.parametrize(
    ("reply", "read"),
    [
        ({"choices": [{"message": {"content": None}}]}, ("", "honest", 0, 0)),
        (
            {"choices": [{"message": {"content": "hi"}}], "model": "", "usage": None},
            ("hi", "honest", 0, 0),
        ),
    ],
)
async def test_a_sparse_reply_reads_as_the_sdk_read_it(
    reply: dict[str, Any], read: tuple[Any, ...]
) -> None:
    with recording(reply) as server:
        backend = _backend(_url(server))
        try:
            done = await backend.complete(MESSAGES, CompletionParams(seed=1))
        finally:
            await backend.aclose()
    assert (done.text, done.model, done.usage.prompt_tokens, done.usage.completion_tokens) == read


@pytest.mark.parametrize("reply", [{"choices": []}, {"object": "x"}, None, "text", [1]])
async def test_a_reply_without_choices_is_a_backend_error(reply: Any) -> None:
    with recording(reply) as server:
        backend = _backend(_url(server))
        try:
            with pytest.raises(BackendError, match="returned no choices"):
                await backend.complete(MESSAGES, CompletionParams(seed=1))
        finally:
            await backend.aclose()


# --- the agent copy's admission ------------------------------------------------------------


def _context(i: int) -> Context:
    return Context(
        context_id=f"c{i}",
        episode_id="e",
        agent_id="copy-0",
        model="honest",
        game="ua",
        observation="round",
        messages=(Message(role="user", content="Pick A or B. End with ANSWER: <choice>"),),
        answer=ChoiceAnswer(choices=("A", "B")),
        seed=i,
    )


async def test_a_copy_keeps_twice_the_call_slots_of_contexts_in_its_loop() -> None:
    slots = 3
    with counting(latency_ms=20) as server:
        copy = AgentCopy(
            {
                "honest": (
                    "openai",
                    {"base_url": server.base_url, "api_key_env": KEY_ENV, "max_concurrency": slots},
                )
            },
            max_reasks=0,
        )
        inside, most = 0, 0
        run = copy._loop.run

        async def counted(context: Context) -> Any:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            try:
                return await run(context)
            finally:
                inside -= 1

        copy._loop.run = counted  # type: ignore[method-assign]
        try:
            outcomes = await copy.run_batch([_context(i) for i in range(30)])
        finally:
            await copy.aclose()
    assert most == ADMITTED_PER_CALL_SLOT * slots
    assert [o.action.context_id for o in outcomes] == [f"c{i}" for i in range(30)]
    assert all(o.action.error is None for o in outcomes)
    assert server.connections <= slots


# --- sandbox serve keeps a connection usable after any answer ------------------------------


def test_serve_answers_on_one_connection_after_a_refused_request() -> None:
    """A refused request's body is read before the answer: left unread, it would be taken for
    the next request on the kept-alive connection."""
    import http.client

    chat = {"model": "honest", "messages": [{"role": "user", "content": "hi"}], "seed": 1}
    with counting() as server:
        host, port = server.server_address[:2]
        connection = http.client.HTTPConnection(str(host), port, timeout=10)
        try:
            for path, body, status in [
                ("/v1/nope", {"x": 1}, 404),
                ("/v1/chat/completions", chat, 200),
                ("/v1/chat/completions", {**chat, "model": "other"}, 404),
                ("/v1/chat/completions", chat, 200),
            ]:
                connection.request("POST", path, body=json.dumps(body))
                answer = connection.getresponse()
                answer.read()
                assert answer.status == status, path
        finally:
            connection.close()
        assert server.connections == 1


def test_serve_closes_a_connection_whose_body_it_cannot_find() -> None:
    import http.client

    with counting() as server:
        host, port = server.server_address[:2]
        connection = http.client.HTTPConnection(str(host), port, timeout=10)
        try:
            connection.putrequest("POST", "/v1/chat/completions")
            connection.putheader("Content-Length", "many")
            connection.endheaders()
            answer = connection.getresponse()
            assert answer.status == 400
            assert answer.getheader("Connection") == "close"
        finally:
            connection.close()


@pytest.mark.parametrize("declared", ["-1", "-0", "+5", "1_0", "0x10", " ", "5.0"])
def test_serve_answers_a_bad_content_length_at_once_and_closes(declared: str) -> None:
    """A length that is not digits (a negative one: `rfile.read(-1)` would wait for the client
    to close) is answered 400 at once, the connection closed: read to its end within the
    socket's timeout while the client keeps its side open."""
    import socket

    with counting() as server:
        host, port = server.server_address[:2]
        with socket.create_connection((str(host), port), timeout=5) as client:
            client.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n"
                b"Content-Length: " + declared.encode() + b"\r\n\r\n{}"
            )
            answer = b""
            while chunk := client.recv(4096):  # ends only when the server closes
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400"), head
    assert b"Connection: close" in head
    assert "Content-Length" in json.loads(body)["error"]["message"]
