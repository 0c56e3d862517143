"""What an episode is to the runner: a spec, an `async` driver, and the outcome it returns.

A driver plays one episode by asking for contexts through `ask` (the run's dispatcher) as many
times as it needs, step by step where one role reads another's output, and returns the record to
commit with every exchange it made. Memoryless games are one driver kind (`sandbox.run.drivers`);
control protocols are another. Drivers never see the engine, so they never import Ray.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from sandbox.core.context import Affordances, Context, ContextOutcome, Rendered, Role
from sandbox.core.events import Record
from sandbox.core.seeding import derive_seed

Ask = Callable[[Sequence[Context]], Awaitable[list[ContextOutcome]]]
"""Contexts in, their outcomes out, in the same order."""


@dataclass(frozen=True, slots=True)
class RunIds:
    """What every driver of one run shares: the run's id (named in the events a driver
    records), its seed (every context's and every draw's seed derives from it) and its number of
    agent copies (which copy a context is dealt to)."""

    run_id: str
    run_seed: int
    copies: int


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    """One episode of the run's plan: which model, which game (by id), which sample."""

    model: str
    game: str
    index: int

    @property
    def episode_id(self) -> str:
        return f"{self.model}/{self.game}/{self.index:05d}"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One context and what came back, in the order the driver made them."""

    context: Context
    outcome: ContextOutcome


@dataclass(frozen=True, slots=True)
class EpisodeOutcome:
    """What the runner commits for an episode: its exchanges' events, then the driver's own
    `events` (a protocol's monitor scores, decisions, audits), then its record."""

    record: Record
    exchanges: tuple[Exchange, ...]
    events: tuple[BaseModel, ...] = ()


class EpisodeDriver(Protocol):
    async def __call__(self, spec: EpisodeSpec, ask: Ask) -> EpisodeOutcome:
        """Play the episode `spec`, asking for contexts through `ask`."""
        ...


def agent_for(context_id: str, copies: int) -> str:
    """The agent copy a context is dealt to: fixed by its id, so a rerun deals it alike."""
    return f"copy-{derive_seed('agent', context_id) % copies}"


def build_context(
    *,
    context_id: str,
    episode_id: str,
    model: str,
    game: str,
    observation: str,
    rendered: Rendered,
    affordances: Affordances,
    run_seed: int,
    copies: int,
    role: Role = "policy",
) -> Context:
    """A rendered text made into a context: dealt to a copy and seeded by its id alone."""
    return Context(
        context_id=context_id,
        episode_id=episode_id,
        agent_id=agent_for(context_id, copies),
        model=model,
        role=role,
        game=game,
        observation=observation,
        messages=rendered.messages,
        answer=rendered.answer,
        affordances=affordances,
        seed=derive_seed(run_seed, "sample", context_id),
        think_prompt=rendered.think_prompt,
        after_think_prompt=rendered.after_think_prompt,
        reask_prompt=rendered.reask_prompt,
    )
