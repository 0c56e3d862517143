"""The backend interface: one async call from messages to a completion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from sandbox.core.context import Message, Usage


class CompletionParams(BaseModel):
    """Sampling settings of one call. `seed` makes a call reproducible where the backend allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    temperature: float = Field(1.0, ge=0.0)
    max_tokens: int | None = Field(None, ge=1)
    answer_schema: dict[str, Any] | None = Field(
        None,
        description="the JSON schema the answer must fit (`agents.parsing.answer_schema`); a "
        "backend with structured output constrains the reply to it, others ignore it",
    )


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    usage: Usage = Field(default_factory=Usage)
    model: str
    structured: str | None = Field(
        None, description="the structured-output form the endpoint was asked for, if any"
    )
    retries: int = Field(0, ge=0, description="failed tries before this answer (faults)")


class BackendError(RuntimeError):
    """A backend could not produce a completion (after its own retries, counted in
    `retries`); `usage` is what the context's earlier calls used (the agent loop sets it)."""

    def __init__(self, message: str, retries: int = 0, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.retries = retries
        self.usage = usage or Usage()

    def __reduce__(self) -> tuple[Any, ...]:
        # keeps `retries` and `usage` when the error crosses a process boundary (an actor's)
        return (type(self), (str(self), self.retries, self.usage))


@runtime_checkable
class Backend(Protocol):
    """`async complete(messages, params) -> Completion`, for one model."""

    model: str

    async def complete(
        self, messages: Sequence[Message], params: CompletionParams
    ) -> Completion: ...

    async def aclose(self) -> None: ...
