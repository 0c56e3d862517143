"""The scripted backend: an organism called in-process, seeded per call like a sampled model.

Its params configure the organisms it serves, by name:
`backend: {name: scripted, params: {organisms: {attacker: {attack_rate: 0.1}}}}`; each entry is
checked against that organism's params model when the config is, and an organism not named there
gets its defaults.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from agents.backends.base import Backend, Completion, CompletionParams
from agents.backends.registry import BACKENDS
from agents.organisms import ORGANISMS, Organism
from sandbox.core.context import Message, Usage
from sandbox.core.registry import RegistryError


class ScriptedParams(BaseModel):
    """`organisms`: params for the organisms this backend serves, by organism name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisms: dict[str, dict[str, Any]] = {}

    @field_validator("organisms")
    @classmethod
    def _organism_params(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, params in value.items():
            try:
                ORGANISMS.validate_params(name, params)
            except RegistryError as exc:
                raise ValueError(str(exc)) from None
        return value


def count_tokens(text: str) -> int:
    """A whitespace token count: organisms have no tokenizer, but usage should still add up."""
    return len(text.split())


def organism_completion(
    organism: Organism, model: str, messages: Sequence[Message], seed: int
) -> Completion:
    """One organism reply, token-counted. Shared by this backend and `sandbox serve`, so both
    paths produce the same text for the same seed."""
    text = organism.respond(messages, random.Random(seed))
    usage = Usage(
        prompt_tokens=sum(count_tokens(m.content) for m in messages),
        completion_tokens=count_tokens(text),
    )
    return Completion(text=text, usage=usage, model=model)


class ScriptedBackend:
    """Calls the organism named by `model`."""

    def __init__(self, model: str, params: dict[str, Any] | None = None) -> None:
        self.model = model
        self._organism = ORGANISMS.build(model, params or {})

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        return organism_completion(self._organism, self.model, messages, params.seed)

    async def aclose(self) -> None:
        return None


@BACKENDS.register("scripted", ScriptedParams)
def scripted(params: ScriptedParams, model: str) -> Backend:
    """Organisms in-process; `model` is the organism name, configured by `params.organisms`."""
    return ScriptedBackend(model, params.organisms.get(model, {}))
