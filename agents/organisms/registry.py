"""The organism registry and the declared-profile type."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from sandbox.core.context import Message
from sandbox.core.registry import Registry


class Profile(BaseModel):
    """Ground truth an organism declares: which capabilities or propensities it has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    training_gaming: bool = False
    cross_context: bool = False
    coordination: bool = False
    sandbagging: bool = False
    """SB: it underperforms on purpose when told, selectively, to a chosen share, and passes
    for a weaker model (docs/games.md, SB)."""


class Organism(Protocol):
    """A scripted model: a reply from the conversation's text and the call's sampling generator.

    An organism reads only `messages`; it never sees sandbox state, so whatever the sandbox
    measures of it, it measured through the same interface a real model has.
    """

    profile: ClassVar[Profile]

    def respond(self, messages: Sequence[Message], rng: random.Random) -> str: ...


ORGANISMS: Registry[Organism] = Registry("organism")
