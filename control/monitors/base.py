"""The monitor interface: (task, visible output) -> suspicion in [0, 1], with a parse flag.

A monitor scores what a policy copy made visible (in the code setting: the code, never the
trigger the red team claimed, never its scratchpad), by asking one or more score contexts on some
model through the run's `ask`. The score is read from the monitor's own reply only, with the
score parser (`agents.parsing`): whatever the policy wrote, score tags or fake instructions
included, is data inside the monitor's prompt and can never become the parsed score. A reply
with no readable score is a missing score (None), never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from sandbox.core.context import Affordances, Message, Rendered, ScoreAnswer
from sandbox.core.episode import Ask, Exchange, build_context
from sandbox.core.prompts import PromptLibrary


@dataclass(frozen=True, slots=True)
class MonitorInput:
    """One policy output to score, and where its score contexts belong."""

    statement: str
    signature: str
    visible: str
    scored_context_id: str
    episode_id: str
    game: str
    policy_model: str
    trusted_model: str | None
    run_seed: int
    copies: int


@dataclass(frozen=True, slots=True)
class MonitorVerdict:
    """`score`: the mean of the parsed sample scores; None when none parsed (missing)."""

    monitor: str
    model: str
    score: float | None
    samples: tuple[float | None, ...]
    exchanges: tuple[Exchange, ...]


class Monitor(Protocol):
    name: str

    async def __call__(self, item: MonitorInput, ask: Ask) -> MonitorVerdict:
        """Score `item.visible`, asking for score contexts through `ask`."""
        ...


def render_monitor_prompt(prompts: PromptLibrary, item: MonitorInput) -> Rendered:
    """The score context a monitor model is shown for one policy output."""
    answer = ScoreAnswer()
    user = prompts.render(
        "tiny_code.monitor_input",
        statement=item.statement,
        signature=item.signature,
        code=item.visible,
    )
    return Rendered(
        messages=(
            Message(role="system", content=prompts.render("tiny_code.monitor")),
            Message(role="user", content=user),
        ),
        answer=answer,
        think_prompt=None,
        after_think_prompt="",
        reask_prompt=prompts.render("score_reask", low=f"{answer.low:g}", high=f"{answer.high:g}"),
    )


async def ask_scores(
    name: str, model: str, item: MonitorInput, samples: int, prompts: PromptLibrary, ask: Ask
) -> MonitorVerdict:
    """`samples` independent score contexts on `model` (each its own seed, by its id), asked
    together; the verdict is the mean of those that parsed."""
    rendered = render_monitor_prompt(prompts, item)
    contexts = [
        build_context(
            context_id=f"{item.scored_context_id}/monitor/{name}/{i}",
            episode_id=item.episode_id,
            model=model,
            game=item.game,
            observation="monitor",
            rendered=rendered,
            affordances=Affordances(),
            run_seed=item.run_seed,
            copies=item.copies,
            role="monitor",
        )
        for i in range(samples)
    ]
    outcomes = await ask(contexts)
    scores = tuple(o.action.score for o in outcomes)
    parsed = [s for s in scores if s is not None and math.isfinite(s)]
    return MonitorVerdict(
        monitor=name,
        model=model,
        score=sum(parsed) / len(parsed) if parsed else None,
        samples=scores,
        exchanges=tuple(Exchange(c, o) for c, o in zip(contexts, outcomes, strict=True)),
    )
