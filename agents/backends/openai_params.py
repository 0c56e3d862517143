"""The OpenAI backend's registry entry: its params, and a factory that imports the SDK-backed
implementation (`agents.backends.openai_backend`) only when a run builds the backend.

The entry lives apart from the implementation because importing `openai` costs about 0.4 s,
paid by every process that imports `agents.backends` (every run, replay and Ray worker), while
most of them only ever build the scripted backend. Config checks and the docs need only the name
and the params model, which this module registers without touching the SDK.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.backends.base import Backend
from agents.backends.registry import BACKENDS


class OpenAIParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(None, description="endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="NAME of the variable holding the key")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(
        8, ge=0, description="retries of a call on connection errors, timeouts, 408, 409, 429, 5xx"
    )
    retry_backoff_s: float = Field(
        0.5, ge=0, description="first backoff (doubling, with jitter) when no Retry-After is given"
    )
    retry_backoff_max_s: float = Field(8.0, ge=0, description="the longest backoff")
    retry_after_max_s: float = Field(
        120.0, ge=0, description="a longer Retry-After fails the call instead of waiting"
    )
    max_concurrency: int = Field(8, ge=1, description="calls in flight per backend instance")
    temperature: float | None = Field(None, ge=0, description="overrides the context's default")
    max_tokens: int | None = Field(512, ge=1)
    structured_output: Literal["off", "json_schema", "json_object", "auto"] = Field(
        "off",
        description="ask the endpoint to keep answers to their JSON schema: off, json_schema "
        "(OpenAI), json_object (llama.cpp), or auto (probe once, keep what works)",
    )


@BACKENDS.register("openai", OpenAIParams)
def openai_backend(params: OpenAIParams, model: str) -> Backend:
    """Any OpenAI-compatible endpoint via AsyncOpenAI (counted retries honouring Retry-After,
    timeout, bounded concurrency)."""
    # imported here, on first build: see the module's docstring
    from agents.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(params, model)
