"""The scripted backend: an organism called in-process, seeded per call like a sampled model."""

from __future__ import annotations

import random
from collections.abc import Sequence

from agents.backends.base import Backend, Completion, CompletionParams
from agents.backends.registry import BACKENDS
from agents.organisms import ORGANISMS, Organism
from sandbox.context import Message, Usage
from sandbox.registry import NoParams


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

    def __init__(self, model: str) -> None:
        self.model = model
        self._organism = ORGANISMS.build(model)

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        return organism_completion(self._organism, self.model, messages, params.seed)

    async def aclose(self) -> None:
        return None


@BACKENDS.register("scripted", NoParams)
def scripted(params: NoParams, model: str) -> Backend:
    """Organisms in-process; `model` is the organism name."""
    return ScriptedBackend(model)
