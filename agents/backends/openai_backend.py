"""The OpenAI backend: any OpenAI-compatible chat-completions endpoint through the real SDK.

The API key is read from the environment variable the config *names* (`api_key_env`); the value is
never stored in the config, in events, or under `runs/`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict, Field

from agents.backends.base import Backend, BackendError, Completion, CompletionParams
from agents.backends.registry import BACKENDS
from sandbox.context import Message, Usage


class OpenAIParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(None, description="endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="NAME of the variable holding the key")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, description="SDK retries on connection errors, 429 and 5xx")
    max_concurrency: int = Field(8, ge=1, description="calls in flight per backend instance")
    temperature: float | None = Field(None, ge=0, description="overrides the context's default")
    max_tokens: int | None = Field(512, ge=1)


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
            max_retries=params.max_retries,
        )
        self._slots = asyncio.Semaphore(params.max_concurrency)

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        temperature = (
            self.params.temperature if self.params.temperature is not None else params.temperature
        )
        async with self._slots:
            try:
                response = await self._client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                    seed=params.seed,
                    temperature=temperature,
                    max_tokens=params.max_tokens or self.params.max_tokens,
                )
            except openai.OpenAIError as exc:
                where = self.params.base_url or "the default OpenAI endpoint"
                raise BackendError(
                    f"openai backend: model {self.model!r} at {where} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        if not response.choices:
            raise BackendError(f"openai backend: model {self.model!r} returned no choices")
        text = response.choices[0].message.content or ""
        usage = Usage(
            prompt_tokens=response.usage.prompt_tokens if response.usage else 0,
            completion_tokens=response.usage.completion_tokens if response.usage else 0,
        )
        return Completion(text=text, usage=usage, model=response.model or self.model)

    async def aclose(self) -> None:
        await self._client.close()


@BACKENDS.register("openai", OpenAIParams)
def openai_backend(params: OpenAIParams, model: str) -> Backend:
    """Any OpenAI-compatible endpoint via AsyncOpenAI (retries, timeout, bounded concurrency)."""
    return OpenAIBackend(params, model)
