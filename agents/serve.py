"""`sandbox serve`: an organism as an OpenAI-compatible HTTP endpoint on loopback.

Implements `GET /v1/models` and `POST /v1/chat/completions` (non-streaming) with the standard
library's threaded HTTP server. A request's `seed` seeds the organism's sampling exactly as the
scripted backend does, so a run through the `openai` backend against this server reproduces the
in-process organism's results (given the same organism params: `--organism-params`); it also
lets other eval harnesses run our organisms.

Structured output: a request with a `response_format` in a form the server takes (`structured`:
by default both `json_schema` and `json_object`) gets the organism's answer as the JSON object
`{"answer": <the choice, or the score as a number>}` read from its last `ANSWER:` line (its reply
unchanged when it has none); a form it does not take is answered 500, as llama-cpp-python's
server answers `json_schema`. So the backend's `structured_output: auto` can be tested against
each kind of endpoint.

Faults, to test clients against an unreliable endpoint: `latency_ms` delays every chat completion
(handler threads overlap, so concurrent requests wait together), and `fail_rate` fails each chat
completion with that probability: HTTP 500 or 429 (with `Retry-After: <retry_after_s>`, by default
0) in equal shares, and
one failure in ten a reset connection (closed without an answer). The failure draw comes from its
own `random.Random` (seeded by `fault_seed`), never from the organism's sampling, so an answered
request's content is exactly what its seed gives without faults.
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from agents.backends.scripted import organism_completion
from agents.organisms import ORGANISMS, Organism
from sandbox.core.context import Message

STRUCTURED_FORMS = ("json_schema", "json_object")
"""The `response_format` types a server may take."""

RESET_SHARE = 0.1
"""The share of injected failures that are reset connections; the rest are 500 and 429 evenly."""

_ANSWER_LINE = re.compile(r"^\W*answer\W*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE | re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")  # ASCII only, as the parser reads


def as_structured(text: str) -> str:
    """The reply an endpoint constrained to the answer schema gives: `{"answer": ...}` from the
    last `ANSWER:` line (a number as a number); the text unchanged when it has no such line."""
    found = _ANSWER_LINE.findall(text)
    if not found:
        return text
    said = found[-1].strip("`*_\"' \t")
    value: str | float = float(said) if _NUMBER.fullmatch(said) else said
    return json.dumps({"answer": value})


class OrganismServer(ThreadingHTTPServer):
    daemon_threads = True
    # many clients connect at once (a backend at max_concurrency 128): the default listen backlog
    # of 5 refuses them
    request_queue_size = 1024

    def __init__(
        self,
        organism_name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        params: Mapping[str, Any] | None = None,
        structured: Sequence[str] = STRUCTURED_FORMS,
        latency_ms: float = 0.0,
        fail_rate: float = 0.0,
        fault_seed: int | None = None,
        retry_after_s: float = 0.0,
    ) -> None:
        unknown = set(structured) - set(STRUCTURED_FORMS)
        if unknown:
            raise ValueError(f"unknown structured-output forms {sorted(unknown)}")
        if not latency_ms >= 0:
            raise ValueError(f"latency_ms must be at least 0, got {latency_ms!r}")
        if not 0 <= fail_rate <= 1:
            raise ValueError(f"fail_rate must be between 0 and 1, got {fail_rate!r}")
        self.structured = tuple(structured)
        self.latency_s = latency_ms / 1000
        self.fail_rate = fail_rate
        if not retry_after_s >= 0:
            raise ValueError(f"retry_after_s must be at least 0, got {retry_after_s!r}")
        self.retry_after_s = retry_after_s
        self._faults = random.Random(fault_seed)
        self._faults_lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        """Faults injected so far, by kind ("500", "429", "reset")."""
        self.answered: Counter[int] = Counter()
        """Chat completions answered so far, by request seed (a context's call is asked
        twice when its seed is counted twice)."""
        self.organism_name = organism_name
        self.organism: Organism = ORGANISMS.build(organism_name, params or {})
        self.created = int(time.time())
        super().__init__((host, port), _Handler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def draw_fault(self) -> str | None:
        """This request's fault: None (answer it), "500", "429" or "reset"."""
        with self._faults_lock:
            if self.fail_rate == 0 or self._faults.random() >= self.fail_rate:
                return None
            draw = self._faults.random()
            if draw < RESET_SHARE:
                kind = "reset"
            else:
                kind = "500" if draw < RESET_SHARE + (1 - RESET_SHARE) / 2 else "429"
            self.injected[kind] += 1
        return kind

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="organism-server", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: OrganismServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes; with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers on a kept-alive connection (40 ms on Linux)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(
        self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self,
        status: int,
        message: str,
        param: str | None = None,
        kind: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._send(
            status,
            {"error": {"message": message, "type": kind, "param": param, "code": None}},
            headers,
        )

    def _reset(self) -> None:
        """Drop the connection unanswered: an RST (linger 0), as a crashed proxy would."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the socket closes only once no file made from it is open
        self.connection.close()

    def _fault(self) -> bool:
        """Wait the server's latency, then inject its fault if one is drawn; True if one was."""
        if self.server.latency_s:
            time.sleep(self.server.latency_s)
        fault = self.server.draw_fault()
        if fault == "reset":
            self._reset()
        elif fault == "429":
            self._error(
                429,
                "injected fault: rate limited",
                kind="rate_limit_error",
                headers={"Retry-After": f"{self.server.retry_after_s:g}"},
            )
        elif fault == "500":
            self._error(500, "injected fault: server error", kind="server_error")
        return fault is not None

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(
                200,
                {
                    "object": "list",
                    "data": [
                        {
                            "id": self.server.organism_name,
                            "object": "model",
                            "created": self.server.created,
                            "owned_by": "coordination-sandbox",
                        }
                    ],
                },
            )
        else:
            self._error(404, f"no route GET {self.path}")

    def do_POST(self) -> None:
        # the body is read before anything is answered: on a kept-alive connection, a body left
        # unread would be taken for the next request
        declared = self.headers.get("Content-Length", "0").strip()
        if not declared.isascii() or not declared.isdigit():
            # not a length in digits ("many", "-1", "+5", "1_000"): where this body ends is
            # unknown (and `rfile.read(-1)` would wait for the client to close), so the answer
            # is sent at once and the connection closes after it
            self._error(400, f"bad Content-Length: {declared!r}", headers={"Connection": "close"})
            return
        raw = self.rfile.read(int(declared))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route POST {self.path}")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            self._error(400, f"request body is not JSON: {exc}")
            return
        if not isinstance(body, dict):
            self._error(400, "request body must be a JSON object")
            return
        if self._fault():
            return
        model = body.get("model")
        if model != self.server.organism_name:
            self._error(
                404,
                f"model {model!r} not served here; this server serves "
                f"{self.server.organism_name!r}",
                "model",
            )
            return
        if body.get("stream"):
            self._error(400, "streaming is not supported", "stream")
            return
        try:
            messages = _messages(body.get("messages"))
        except (ValidationError, TypeError, ValueError) as exc:
            self._error(400, f"bad messages: {exc}", "messages")
            return
        form = body.get("response_format")
        kind = form.get("type") if isinstance(form, dict) else None
        if kind not in (None, "text") and kind not in self.server.structured:
            self._error(500, f"response_format {kind!r} is not supported here", "response_format")
            return
        seed = body.get("seed")
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        if not isinstance(seed, int) or isinstance(seed, bool):
            self._error(400, f"seed must be an integer, got {seed!r}", "seed")
            return
        try:
            completion = organism_completion(self.server.organism, model, messages, seed)
        except Exception as exc:  # an organism bug must answer, not drop the connection
            self._error(500, f"organism failed: {type(exc).__name__}: {exc}")
            return
        with self.server._faults_lock:
            self.server.answered[seed] += 1
        self._send(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": (
                                completion.text
                                if kind in (None, "text")
                                else as_structured(completion.text)
                            ),
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": completion.usage.prompt_tokens,
                    "completion_tokens": completion.usage.completion_tokens,
                    "total_tokens": completion.usage.prompt_tokens
                    + completion.usage.completion_tokens,
                },
            },
        )


def _messages(raw: object) -> list[Message]:
    """OpenAI chat messages to ours: text-part lists are joined, `developer` is a system turn."""
    if not isinstance(raw, list):
        raise TypeError(f"messages must be a list, got {type(raw).__name__}")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise TypeError(f"each message must be an object, got {type(item).__name__}")
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        role = "system" if item.get("role") == "developer" else item.get("role")
        out.append(Message.model_validate({"role": role, "content": content or ""}))
    return out


def serve_forever(
    organism: str,
    host: str,
    port: int,
    params: Mapping[str, Any] | None = None,
    structured: Sequence[str] = STRUCTURED_FORMS,
    latency_ms: float = 0.0,
    fail_rate: float = 0.0,
    fault_seed: int | None = None,
) -> None:
    server = OrganismServer(
        organism, host, port, params, structured, latency_ms, fail_rate, fault_seed
    )
    faults = ""
    if latency_ms or fail_rate:
        faults = f" (latency {latency_ms:g} ms, fail rate {fail_rate:g})"
    print(
        f"serving organism {organism!r} at {server.base_url}{faults}", file=sys.stderr, flush=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
