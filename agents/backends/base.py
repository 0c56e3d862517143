"""The backend interface: one async call from messages to a completion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from sandbox.context import Message, Usage


class CompletionParams(BaseModel):
    """Sampling settings of one call. `seed` makes a call reproducible where the backend allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    temperature: float = Field(1.0, ge=0.0)
    max_tokens: int | None = Field(None, ge=1)


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    usage: Usage = Field(default_factory=Usage)
    model: str


class BackendError(RuntimeError):
    """A backend could not produce a completion (after its own retries)."""


@runtime_checkable
class Backend(Protocol):
    """`async complete(messages, params) -> Completion`, for one model."""

    model: str

    async def complete(
        self, messages: Sequence[Message], params: CompletionParams
    ) -> Completion: ...

    async def aclose(self) -> None: ...
