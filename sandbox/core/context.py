"""Contexts: the single, independent conversation one agent copy sees, and what comes back.

A context is everything a copy gets: its role, the model that answers it, the messages, the form
its answer must take, and which affordances were granted. Nothing else crosses into a copy, and
nothing a copy does survives the context, which is what makes a game's observations memoryless
and its empirical policy well defined.

These are the types every layer shares (games and protocols build contexts, agents answer them,
engines carry them, the runner records them), so this module imports nothing of the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["policy", "monitor", "trusted", "planner", "judge"]
"""What a context is for: the policy acting in a game or task, a monitor scoring another
context's output, the trusted model editing or replacing it, a planner writing a shared plan, or
a judge (the trusted model) reading another context's reasoning."""


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


class ChoiceAnswer(BaseModel):
    """Pick one of `choices`, named on the last `ANSWER:` line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["choice"] = "choice"
    choices: tuple[str, ...] = Field(min_length=1)


class ScoreAnswer(BaseModel):
    """Give a number in [low, high] on the last `ANSWER:` line (a monitor's suspicion)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["score"] = "score"
    low: float = 0.0
    high: float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> ScoreAnswer:
        if not self.low < self.high:
            raise ValueError(f"a score range needs low < high, got [{self.low}, {self.high}]")
        return self


class FreeTextAnswer(BaseModel):
    """Any non-blank text is the answer (a shared plan, an edited solution)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["free_text"] = "free_text"


AnswerFormat = Annotated[ChoiceAnswer | ScoreAnswer | FreeTextAnswer, Field(discriminator="kind")]
"""The form a context's answer must take; `agents.parsing.parse_answer` reads all three."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """The prompt texts of one context and the form of its answer, before a driver attaches ids
    and seeds (`sandbox.core.episode.build_context`)."""

    messages: tuple[Message, ...]
    answer: AnswerFormat
    think_prompt: str | None
    after_think_prompt: str
    reask_prompt: str


class Context(BaseModel):
    """One independent conversation for one agent copy.

    `model` names the model that answers it (each model has its backend; copies route by it),
    `role` what the context is for. `seed` drives the model's own sampling (passed to the
    backend as the request seed), so a context replays identically; `observation` names which of
    the game's distinct observations this context samples, so its action can be pooled into the
    empirical policy.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_id: str
    episode_id: str
    agent_id: str
    model: str
    role: Role = "policy"
    game: str
    observation: str
    messages: tuple[Message, ...]
    answer: AnswerFormat
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

    `visible` is what a monitor would see; `scratchpad` is hidden reasoning (empty unless granted).
    The parsed answer is `choice` (choice format) or `score` (score format); free text is
    `visible` itself. Both are `None` when every attempt failed to parse (`parse_ok` false).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_id: str
    visible: str
    scratchpad: str = ""
    choice: str | None
    score: float | None = None
    parse_ok: bool
    attempts: int
    usage: Usage = Field(default_factory=Usage)
    structured: str | None = None
    """The structured-output form the endpoint was asked for (`json_schema`, `json_object`),
    None when the answer was asked as plain text."""
    retries: int = 0
    """Calls of this context the backend tried again after a fault (not re-asks: those are
    `attempts`); never part of what scoring or `results.jsonl` sees."""
    error: str | None = None
    """Why the context has no answer when its backend failed after its own retries (an
    endpoint fault, not the model's output): a recorded error outcome, counted apart from parse
    failures; None when the backend answered."""


CACHED = "cache"
"""The `worker` of an answer a replay took from its source run's log: no call was made."""
RESUMED = "resumed"
"""The `worker` of an answer a resumed run took from its own earlier part (a call it paid for)."""
UNASKED = "unasked"
"""The `worker` of an error outcome recorded without asking the context (its plan failed)."""


class ContextOutcome(BaseModel):
    """An action plus where it was produced (for the event log, never for scoring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    node_id: str
    worker: str
