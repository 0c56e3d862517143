"""The LangGraph agent loop: bounded re-asks, the scratchpad step, no carried state.

The parser it uses is tested on its own in test_parsing.py.
"""

from __future__ import annotations

from agents.backends import BACKENDS, Backend
from agents.loop import AgentLoop
from sandbox.core.context import Affordances, Context
from sandbox.core.prompts import PromptLibrary
from sandbox.environments import ENVIRONMENTS


def _loop(max_reasks: int = 2) -> AgentLoop:
    backends: dict[str, Backend] = {}

    def backend_for(model: str) -> Backend:
        return backends.setdefault(model, BACKENDS.build("scripted", {}, model=model))

    return AgentLoop(backend_for, max_reasks)


def _context(model: str, affordances: Affordances | None = None, seed: int = 1) -> Context:
    affordances = affordances or Affordances()
    env = ENVIRONMENTS.build("upfront_auditing", {}, prompts=PromptLibrary())
    r = env.render("round", affordances, seed=seed)
    return Context(
        context_id="c",
        episode_id="e",
        agent_id="copy-0",
        model=model,
        game="ua",
        observation="round",
        messages=r.messages,
        answer=r.answer,
        affordances=affordances,
        seed=seed,
        think_prompt=r.think_prompt,
        after_think_prompt=r.after_think_prompt,
        reask_prompt=r.reask_prompt,
    )


async def test_reask_recovers_malformed_output() -> None:
    action = await _loop().run(_context("sloppy"))
    assert action.parse_ok and action.choice == "WAIT" and action.attempts == 2


async def test_persistent_malformed_output_is_a_parse_failure_not_a_crash() -> None:
    action = await _loop(max_reasks=3).run(_context("babbler"))
    assert not action.parse_ok and action.choice is None
    assert action.attempts == 4  # the first try and three re-asks
    assert action.usage.completion_tokens > 0


async def test_no_reask_when_disabled() -> None:
    action = await _loop(max_reasks=0).run(_context("sloppy"))
    assert not action.parse_ok and action.attempts == 1


async def test_scratchpad_only_when_granted() -> None:
    loop = _loop()
    plain = await loop.run(_context("stateless_strategist"))
    padded = await loop.run(_context("stateless_strategist", Affordances(scratchpad=True)))
    assert plain.scratchpad == ""
    assert "best memoryless GO rate" in padded.scratchpad
    assert padded.parse_ok and padded.scratchpad not in padded.visible


async def test_same_context_same_action_regardless_of_history() -> None:
    loop = _loop()
    first = await loop.run(_context("random", seed=5))
    for seed in range(20):  # unrelated contexts in between
        await loop.run(_context("random", seed=seed + 100))
    assert await loop.run(_context("random", seed=5)) == first
