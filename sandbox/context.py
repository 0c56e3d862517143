"""Contexts: the single, independent conversation one agent copy sees.

A context is everything a copy gets: the messages and which affordances were granted. Nothing
else crosses into a copy, and nothing a copy does survives the context, which is what makes a
game's observations memoryless and its empirical policy well defined.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Affordances(BaseModel):
    """Help a game may grant each context (after the Subversion Strategy Eval).

    - `randomness`: a fresh uniform random number in each context, with a line saying how to use it.
    - `shared_planning`: one call writes a plan before the game; every context then sees that plan.
    - `optimal_plan`: the game's optimal strategy is stated in the rules.
    - `scratchpad`: the copy reasons in a hidden scratchpad before it answers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    randomness: bool = False
    shared_planning: bool = False
    optimal_plan: bool = False
    scratchpad: bool = False


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class Context(BaseModel):
    """One independent conversation for one agent copy.

    `seed` drives the model's own sampling (passed to the backend as the request seed), so a
    context replays identically; `observation` names which of the game's distinct observations
    this context samples, so its action can be pooled into the empirical policy.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_id: str
    episode_id: str
    agent_id: str
    model: str
    game: str
    observation: str
    messages: tuple[Message, ...]
    choices: tuple[str, ...]
    affordances: Affordances = Field(default_factory=Affordances)
    seed: int
    think_prompt: str | None = None
    """Asked before the answer when a scratchpad is granted; None otherwise."""
    after_think_prompt: str = ""
    reask_prompt: str = ""
    """Sent after a reply that does not parse, before the copy tries again."""


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Action(BaseModel):
    """A copy's answer to one context.

    `visible` is what a monitor would see; `scratchpad` is hidden reasoning (empty unless granted);
    `choice` is the parsed answer, `None` when every attempt failed to parse (`parse_ok` false).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_id: str
    visible: str
    scratchpad: str = ""
    choice: str | None
    parse_ok: bool
    attempts: int
    usage: Usage = Field(default_factory=Usage)
