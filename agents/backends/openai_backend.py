"""The OpenAI backend: any OpenAI-compatible chat-completions endpoint through the real SDK.

The API key is read from the environment variable the config *names* (`api_key_env`); the value is
never stored in the config, in events, or under `runs/`.

Calls go through the SDK's client (its auth, headers, timeouts and errors), posted as
`chat.completions.create` posts them and read back from the reply's JSON, over a keep-alive pool
with a connection for each call in flight (`max_concurrency`).

Structured output (`structured_output`): a call that answers a choice or a score carries its JSON
schema (`CompletionParams.answer_schema`), and the endpoint can be asked to keep to it, which
small models need to produce a readable answer at all. Endpoints differ in how they take it:
`json_schema` is OpenAI's `{"type": "json_schema", "json_schema": {...}}`; `json_object` is
`{"type": "json_object", "schema": {...}}`, which llama-cpp-python's server takes (it answers 500
to the former). `auto` asks the first such call in `json_schema` form, then in `json_object`
form, each without retries, and keeps the first form the endpoint accepts (or none: plain text)
for the rest of the backend's life; the form used is recorded on each action (`structured`).
The text parser stays the fallback: an endpoint that ignores the request still answers in text.

Retries are the backend's own (`agents.backends.retry`; the SDK's are off): a connection error, a
timeout, 408, 409, 429 or 5xx is tried again up to `max_retries` times, after the server's
`Retry-After` when it names one and an exponential backoff with jitter when not. Each completion
carries how many retries it took (a failure, its `BackendError`), so a run counts them per model.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections.abc import Sequence
from typing import Any, Literal

import httpx2
import openai
from openai import AsyncOpenAI

from agents.backends.base import BackendError, Completion, CompletionParams
from agents.backends.openai_params import OpenAIParams
from agents.backends.retry import RETRYABLE_STATUS, RetryPolicy, retry_after_seconds
from sandbox.core.context import Message, Usage

DEFAULT_LIMITS = openai.DEFAULT_CONNECTION_LIMITS
CHAT_COMPLETIONS = "/chat/completions"
_CREATE_OPTIONS: Any = {"security": {"bearer_auth": True}}
"""The request options `chat.completions.create` posts with (auth by the bearer key)."""

StructuredForm = Literal["json_schema", "json_object"]
FORMS: tuple[StructuredForm, ...] = ("json_schema", "json_object")
PROBE_TRIES = 3
"""500s in a row that refuse a form: llama.cpp refuses a form with a 500, which an injected or
passing server fault also is (each retried after the policy's backoff, and counted)."""


def response_format(form: StructuredForm, schema: dict[str, Any]) -> dict[str, Any]:
    """The `response_format` of a chat-completions request asking for `schema` in `form`."""
    if form == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        }
    return {"type": "json_object", "schema": schema}


class OpenAIBackend:
    def __init__(self, params: OpenAIParams, model: str) -> None:
        key = os.environ.get(params.api_key_env)
        if key is None:
            raise BackendError(
                f"openai backend: environment variable {params.api_key_env!r} is not set "
                "(backend.params.api_key_env names the variable that holds the API key)"
            )
        self.model = model
        self.params = params
        self._client = AsyncOpenAI(
            base_url=params.base_url,
            api_key=key,
            timeout=params.timeout_s,
            max_retries=0,  # ours: counted, and honouring Retry-After: 0
            # the SDK's own client and defaults, with a keep-alive pool that holds a connection
            # per call in flight (its default keeps 100: above that, calls reconnect)
            http_client=openai.DefaultAsyncHttpxClient(
                timeout=params.timeout_s,
                limits=httpx2.Limits(
                    max_connections=max(
                        DEFAULT_LIMITS.max_connections or 0, params.max_concurrency
                    ),
                    max_keepalive_connections=max(
                        DEFAULT_LIMITS.max_keepalive_connections or 0, params.max_concurrency
                    ),
                ),
            ),
        )
        self._retry = RetryPolicy(
            max_retries=params.max_retries,
            initial_s=params.retry_backoff_s,
            max_s=params.retry_backoff_max_s,
            max_after_s=params.retry_after_max_s,
        )
        self._jitter = random.Random()  # timing only: no answer depends on it
        self._slots = asyncio.Semaphore(params.max_concurrency)
        mode = params.structured_output
        self._form: StructuredForm | None = next((f for f in FORMS if f == mode), None)
        self._probed = mode != "auto"
        self._probe_lock = asyncio.Lock()

    async def _create(
        self, messages: Sequence[Message], params: CompletionParams, **extra: Any
    ) -> dict[str, Any]:
        """One chat completion: its JSON body as a dict (an empty one when the body is not an
        object). Posted through the SDK's client as `chat.completions.create` would post it
        (the same path, body, headers, auth and errors) but without its per-call costs: the
        request's walk over the params' typed dicts and the response's model construction,
        0.6 of the 1.4 ms of CPU a call took (bench/throughput.py)."""
        temperature = (
            self.params.temperature if self.params.temperature is not None else params.temperature
        )
        body = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "seed": params.seed,
            "temperature": temperature,
            "max_tokens": params.max_tokens or self.params.max_tokens,
            **extra,
        }
        # cast_to=object: the SDK decodes the JSON and hands it back as it is
        reply = await self._client.post(
            CHAT_COMPLETIONS, body=body, cast_to=object, options=_CREATE_OPTIONS
        )
        return reply if isinstance(reply, dict) else {}

    async def _create_retrying(
        self, messages: Sequence[Message], params: CompletionParams, **extra: Any
    ) -> tuple[dict[str, Any], int]:
        """`_create` with the retry policy: (response, retries taken). A call that still fails
        raises a `BackendError` carrying its retries. A reply whose body is not JSON is a
        server fault like a 5xx."""
        retry = 0
        while True:
            try:
                return await self._create(messages, params, **extra), retry
            except (openai.OpenAIError, ValueError) as exc:
                wait = self._wait_before_retry(exc, retry)
                if wait is None:
                    raise self._error(exc, retry) from None
            await asyncio.sleep(wait)
            retry += 1

    def _wait_before_retry(self, exc: Exception, retry: int) -> float | None:
        """Seconds to wait before retrying after `exc`, or None: not retryable, or retries
        spent, or the server asks for too long a wait."""
        if retry >= self._retry.max_retries:
            return None
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code not in RETRYABLE_STATUS:
                return None
            after = retry_after_seconds(dict(exc.response.headers))
        elif isinstance(exc, openai.APIConnectionError | ValueError):  # timeouts; a torn body
            after = None
        else:
            return None
        return self._retry.delay(retry, after, self._jitter.random())

    def _error(self, exc: Exception, retries: int) -> BackendError:
        where = self.params.base_url or "the default OpenAI endpoint"
        return BackendError(
            f"openai backend: model {self.model!r} at {where} failed after {retries} "
            f"retries: {type(exc).__name__}: {exc}",
            retries=retries,
        )

    async def _probe(
        self, messages: Sequence[Message], params: CompletionParams
    ) -> tuple[dict[str, Any] | None, int]:
        """`auto`: this call in each structured form until one is accepted; the form kept for
        every later call (None: plain text). Returns (the accepted response or None when no
        form was, retries taken); with None the caller asks in plain text. A 400 or 422 refuses
        a form; so do `PROBE_TRIES` 500s in a row (llama.cpp refuses a form with a 500, which a
        passing fault also is). Any other fault is retried under the retry policy, as any call
        is, so a fault never changes the form a call is asked in."""
        assert params.answer_schema is not None
        retries = 0
        for form in FORMS:
            failures = 0
            while True:
                try:
                    response = await self._create(
                        messages,
                        params,
                        response_format=response_format(form, params.answer_schema),
                    )
                except (openai.BadRequestError, openai.UnprocessableEntityError):
                    break  # this form is refused
                except (openai.OpenAIError, ValueError) as exc:
                    failures += isinstance(exc, openai.InternalServerError)
                    if failures >= PROBE_TRIES:
                        break  # a 500 each time: refused
                    wait = self._wait_before_retry(exc, retries)
                    if wait is None:
                        raise self._error(exc, retries) from None
                    await asyncio.sleep(wait)
                    retries += 1
                    continue
                self._form, self._probed = form, True
                return response, retries
        self._probed = True
        return None, retries

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        schema = params.answer_schema
        retries = 0
        async with self._slots:
            response = None
            if schema is not None and not self._probed:
                async with self._probe_lock:
                    if not self._probed:
                        response, retries = await self._probe(messages, params)
            form = self._form if schema is not None else None
            if response is None:
                extra = {}
                if form is not None and schema is not None:
                    extra["response_format"] = response_format(form, schema)
                response, more = await self._create_retrying(messages, params, **extra)
                retries += more
        return self._completion(response, form, retries)

    def _completion(
        self, response: dict[str, Any], form: StructuredForm | None, retries: int
    ) -> Completion:
        """A chat completion's JSON body read as `chat.completions.create`'s response was: the
        first choice's content, the usage (0 where absent), the model the endpoint names."""
        choices = response.get("choices")
        if not choices or not isinstance(choices, list):
            raise BackendError(
                f"openai backend: model {self.model!r} returned no choices", retries=retries
            )
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        usage = response.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        return Completion(
            text=content if isinstance(content, str) else "",
            usage=Usage(
                prompt_tokens=_count(usage.get("prompt_tokens")),
                completion_tokens=_count(usage.get("completion_tokens")),
            ),
            model=response.get("model") or self.model,
            structured=form,
            retries=retries,
        )

    async def aclose(self) -> None:
        await self._client.close()


def _count(value: Any) -> int:
    """A token count as the endpoint reported it; 0 where it reported none it could mean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(value)
