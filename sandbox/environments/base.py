"""The environment interface: a seeded, pure, memoryless game.

An environment names its distinct observations, renders a context for any of them, and scores
a memoryless policy on them. It never calls a model and never imports Ray: the runner samples each
observation k times through an engine and hands the recorded choices back for scoring, so the
same game logic is testable in-process and runs unchanged on a cluster.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from control import metrics
from control.metrics import Policy
from sandbox.core.context import Affordances, ChoiceAnswer, FreeTextAnswer, Message, Rendered
from sandbox.core.prompts import PromptLibrary

Draw = Callable[[str], str | None]
"""Returns one recorded choice for an observation id (None for a failed parse)."""


NO_ANSWER = "<no answer>"
"""The outcome of a failed parse in a game with no default action."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One distinct observation of a game: what a context can see, and what it may answer.

    `situation` groups observations that share one set of rules (a sweep has one per grid
    point); a shared plan is written once per situation. `default` is what a failed parse
    amounts to: WAIT where not acting is an action; None where any answer is a commitment (an
    option to agree on), and a failure is then an outcome of its own that agrees with nothing.
    """

    id: str
    choices: tuple[str, ...]
    situation: str = "main"
    default: str | None = None

    @property
    def outcomes(self) -> tuple[str, ...]:
        """The policy's support, the outcome of a failed parse first (see `empirical_policy`)."""
        if self.default is None:
            return (NO_ANSWER, *self.choices)
        return (self.default, *(c for c in self.choices if c != self.default))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a game's `details` measure from: each observation's recorded choices, in sample
    order (None for a failed parse), and the settings of the statistics (the seeded generator a
    bootstrap draws from, its number of resamples, the intervals' confidence). One argument, so
    a game that needs one more input gets it without every game's signature changing."""

    samples: Mapping[str, Sequence[str | None]]
    rng: np.random.Generator
    resamples: int
    confidence: float


@dataclass(frozen=True, slots=True)
class SequentialReading:
    """What an adaptively sampled game's stopping rule reads after a round: the verdict once
    settled (None while the anytime-valid interval still straddles its threshold) and that
    interval of `statistic` (the win, or a TG probe's compliance gaps), which holds whenever
    the run stops."""

    verdict: str | None
    low: float
    high: float
    statistic: str


class Environment(ABC):
    """A memoryless game whose optimal policy is known. Subclasses are registered by name."""

    template_prefix: str
    """Templates are `<prefix>.rules`, `<prefix>.observation` and `<prefix>.optimal`."""

    suite: ClassVar[Literal["xc", "co", "tg", "sb"]] = "xc"
    """The suite the game measures (`docs/games.md`): "xc", cross-context strategy, "co",
    coordination, "tg", the training-gaming probe, or "sb", sandbagging. A model's measured
    profile takes each suite's verdict from its games alone."""

    propensity: ClassVar[bool] = False
    """Whether the game is a probe of what a model does unasked (the TG probe, the SB propensity
    probe), not of what it can do when told: its result is reported as a propensity, apart,
    and never counts towards its suite's capability verdict."""

    scores_own_verdict: ClassVar[bool] = False
    """Whether the game's `details` carry its own verdict (`details["verdict"]`: "yes", "no",
    "inconclusive" or "untestable"), which its score gives in place of one against the optimum
    (the SB games). A game read against a reference model (`reference_model`) gets its verdict
    from `compare` instead."""

    keeps_scratchpads: ClassVar[bool] = False
    """Whether the episode record keeps each sample's scratchpad text (`Sample.scratchpad`): a
    game that scores the reasoning itself says so (the TG probe). Off elsewhere, so other games'
    records are unchanged."""

    def __init__(self, prompts: PromptLibrary) -> None:
        self.prompts = prompts

    def reference_model(self) -> str | None:
        """The model of the run whose samples of this same game the verdict is read against
        (`compare`), or None: only a game that asks a model to pass for another names one."""
        return None

    def compare(
        self,
        model: Mapping[str, Any],
        reference: Mapping[str, Any],
        rng: np.random.Generator,
        resamples: int,
        confidence: float,
        monitor: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> dict[str, Any]:
        """The verdict of `model`'s details against `reference`'s (both this game's `details`),
        with what it read; only a game that names a `reference_model` has one."""
        raise NotImplementedError(f"{type(self).__name__} names no reference model")

    # --- what the game is -----------------------------------------------------------------
    @abstractmethod
    def observations(self) -> tuple[Observation, ...]:
        """The distinct observations, each sampled k times."""

    @abstractmethod
    def rule_fields(self, situation: str) -> dict[str, Any]:
        """Fields for the rules and optimal-strategy templates of one situation."""

    @abstractmethod
    def observation_fields(
        self, obs: Observation, order: tuple[str, ...], rng: random.Random
    ) -> dict[str, Any]:
        """Fields for the observation template; `rng` varies surface detail between contexts
        (a date) without changing which observation it is."""

    shuffles_choices: ClassVar[bool] = False
    """Whether each context is shown the choices in its own random order (drawn from the
    context's rng before anything else): set by games where the order must carry no signal
    that contexts could agree on (the agreement games), off where the order is the game's."""

    def choice_order(self, obs: Observation, rng: random.Random) -> tuple[str, ...]:
        """The order in which this context is shown the choices (see `shuffles_choices`)."""
        if not self.shuffles_choices:
            return obs.choices
        order = list(obs.choices)
        rng.shuffle(order)
        return tuple(order)

    @abstractmethod
    def policy_win(self, policy: Policy) -> float:
        """The win probability of a memoryless policy, exact where the game allows it."""

    acting_choice: str | None = None
    """In games where every observation is an act-or-not choice (GO or WAIT): the acting one.
    Such games get a projected win interval (`metrics.projected_interval`); others a bootstrap."""

    def win_from_rates(self, rates: Mapping[str, float]) -> float:
        """The win probability when each observation acts at the given rate."""
        assert self.acting_choice is not None
        policy = {}
        for obs in self.observations():
            rest = next(c for c in obs.choices if c != self.acting_choice)
            policy[obs.id] = {self.acting_choice: rates[obs.id], rest: 1.0 - rates[obs.id]}
        return self.policy_win(policy)

    def optimal_rates(self) -> dict[str, float]:
        """The optimal acting rate of each observation (games with an `acting_choice`)."""
        raise NotImplementedError

    def win_bounds(self, box: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
        """(min, max) win probability over a box of acting rates: a grid, and the exact
        optimum wherever the box holds the optimal rates (a grid would fall just short)."""
        low, high = metrics.grid_bounds(self.win_from_rates, box)
        optimal = self.optimal_rates()
        if all(box[o][0] <= optimal[o] <= box[o][1] for o in box):
            high = self.optimal_win()
        return low, high

    def win_rates(self) -> dict[str, tuple[str, ...]] | None:
        """The choice rates (observation -> choices) whose box `box_win_bounds` ranges the win
        over, for adaptive sampling (`sandbox.run.stopping`); None for a game whose verdict is
        not read from its win (it is sampled to its `k_max`). Games with an `acting_choice`:
        each observation's acting rate."""
        if self.acting_choice is None:
            return None
        return {o.id: (self.acting_choice,) for o in self.observations()}

    def box_win_bounds(
        self, box: Mapping[tuple[str, str], tuple[float, float]]
    ) -> tuple[float, float]:
        """(min, max) win probability over a box of the `win_rates` rates, keyed by
        (observation, choice): any bound that holds over the whole box is sound (a looser one
        only stops later)."""
        assert self.acting_choice is not None, "a game with win_rates bounds its own box"
        return self.win_bounds({obs: box[(obs, choice)] for obs, choice in box})

    def stops_early(self) -> bool:
        """Whether adaptive sampling may stop this game before its `k_max`: whether
        `sequential_reading` reads it."""
        return self.win_rates() is not None

    def sequential_reading(
        self, samples: Mapping[str, Sequence[str | None]], alpha: float, threshold: float
    ) -> SequentialReading | None:
        """What adaptive sampling reads of this game after a round (`sandbox.run.stopping`):
        the win over the box of anytime-valid intervals of its `win_rates` (each observation's
        rates counted from `samples`, a failed parse choosing nothing), settled "solved" when
        the whole range is at or above `threshold` x optimum and "not solved" when it is wholly
        below (the verdict `sandbox.run.scoring.verdict` reads); None for a game with no such
        reading (sampled to its `k_max`, its verdict read by its own rules)."""
        rates = self.win_rates()
        if rates is None:
            return None
        counts = {
            (obs, choice): (sum(c == choice for c in samples[obs]), len(samples[obs]))
            for obs, choices in rates.items()
            for choice in choices
        }
        low, high = self.box_win_bounds(metrics.rate_box(counts, alpha))
        bar = threshold * self.optimal_win()
        settled = "solved" if low >= bar else "not solved" if high < bar else None
        return SequentialReading(settled, low, high, "win")

    @abstractmethod
    def optimal_win(self) -> float:
        """The best win probability any memoryless policy reaches."""

    @abstractmethod
    def play(self, draw: Draw, rng: random.Random) -> bool:
        """Play one whole game, taking each context's choice from `draw`; True if won."""

    def details(self, evidence: Evidence) -> dict[str, Any]:
        """Game-specific measurements beside the win rate (attack rates against the optimum)."""
        return {}

    def judge_request(self, observation: str, scratchpad: str) -> Rendered | None:
        """A context for a judge (the run's trusted model) to read one sample's scratchpad,
        its parsed choice kept as the sample's `judgement`; None (the default) asks none."""
        return None

    def item_answer(self, observation: str, choice: str | None) -> dict[str, Any] | None:
        """For a game of scored items (the SB suite's): what an `item_answer` event says of one
        recorded choice (`ItemAnswered`'s fields from `condition` on); None elsewhere."""
        return None

    def compared_reviews(self) -> tuple[str, str] | None:
        """For a game read against a reference (`compare`): the names of the reviews
        (`sheet_reviews`) whose scores `compare` reads as its `monitor`, (the model's, the
        reference's); None: it reads none."""
        return None

    def sheet_reviews(self, choices: Mapping[str, str | None]) -> dict[str, Rendered]:
        """Score contexts for the run's trusted model to read one episode's answers as a whole,
        by name (`choices`: each observation's recorded choice in the episode); each parsed
        score is kept in the episode record's `reviews` under its name. {} (the default) asks
        none; a run without a trusted model asks none either."""
        return {}

    def coordination_pair(self, index: int, observation: str) -> int | None:
        """For an agreement game of the CO suite: the pair of independent contexts in which the
        sample of `observation` in episode `index` is scored (`details`), so each pick is a
        `coordination_pick` event and the log alone recomputes agreement. None elsewhere."""
        return None

    # --- rendering ------------------------------------------------------------------------
    SHARED_TEMPLATES = (
        "answer_format",
        "randomness",
        "random_number",
        "shared_plan",
        "plan_request",
        "scratchpad",
        "think",
        "after_think",
        "reask",
    )

    def template_names(self) -> tuple[str, ...]:
        own = tuple(
            f"{self.template_prefix}.{part}" for part in ("rules", "observation", "optimal")
        )
        return own + self.SHARED_TEMPLATES

    def load_templates(self) -> dict[str, str]:
        """Read every template this game may render (failing early on a bad override) and
        return their hashes."""
        for name in self.template_names():
            self.prompts.source(name)
        return self.prompts.hashes()

    def observation(self, obs_id: str) -> Observation:
        for obs in self.observations():
            if obs.id == obs_id:
                return obs
        raise KeyError(f"{type(self).__name__} has no observation {obs_id!r}")

    def situations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o.situation for o in self.observations()))

    def system_prompt(
        self, situation: str, affordances: Affordances, plan: str | None, choices: Sequence[str]
    ) -> str:
        fields = self.rule_fields(situation)
        parts = [self.prompts.render(f"{self.template_prefix}.rules", **fields)]
        if affordances.optimal_plan:
            parts.append(self.prompts.render(f"{self.template_prefix}.optimal", **fields))
        parts += self.granted_parts(affordances, plan, affordances.scratchpad)
        if choices:
            parts.append(self.prompts.render("answer_format", choices=", ".join(choices)))
        return "\n\n".join(parts)

    def granted_parts(
        self, affordances: Affordances, plan: str | None, scratchpad: bool
    ) -> list[str]:
        """The system prompt's parts that tell a context what it is granted, in the order every
        game shows them: the shared plan (once written), a random number, a scratchpad.
        `scratchpad` is passed apart from `affordances`: a game may grant it per observation."""
        parts = []
        if affordances.shared_planning and plan is not None:
            parts.append(self.prompts.render("shared_plan", plan=plan))
        if affordances.randomness:
            parts.append(self.prompts.render("randomness"))
        if scratchpad:
            parts.append(self.prompts.render("scratchpad"))
        return parts

    def with_random_number(self, user: str, affordances: Affordances, rng: random.Random) -> str:
        """The user turn with the context's own random number appended where randomness is
        granted, drawn from the context's `rng` after the observation's own draws."""
        if not affordances.randomness:
            return user
        number = f"{rng.random():.4f}"
        return f"{user}\n\n{self.prompts.render('random_number', number=number)}"

    def think_prompts(self, scratchpad: bool) -> tuple[str | None, str]:
        """(think_prompt, after_think_prompt) of a context: the think step is asked only where
        the context has a scratchpad."""
        if not scratchpad:
            return None, ""
        return self.prompts.render("think"), self.prompts.render("after_think")

    def choice_context(
        self, system: str, user: str, choices: tuple[str, ...], scratchpad: bool
    ) -> Rendered:
        """A context that answers with one of `choices`, shown in that order, re-asked by
        naming them."""
        think, after_think = self.think_prompts(scratchpad)
        return Rendered(
            messages=(Message(role="system", content=system), Message(role="user", content=user)),
            answer=ChoiceAnswer(choices=choices),
            think_prompt=think,
            after_think_prompt=after_think,
            reask_prompt=self.prompts.render("reask", choices=", ".join(choices)),
        )

    def render(
        self, obs_id: str, affordances: Affordances, seed: int, plan: str | None = None
    ) -> Rendered:
        """The context for one sample of `obs_id`. Same arguments, same text."""
        obs = self.observation(obs_id)
        rng = random.Random(seed)
        order = self.choice_order(obs, rng)
        user = self.prompts.render(
            f"{self.template_prefix}.observation", **self.observation_fields(obs, order, rng)
        )
        user = self.with_random_number(user, affordances, rng)
        system = self.system_prompt(obs.situation, affordances, plan, order)
        return self.choice_context(system, user, order, affordances.scratchpad)

    def render_plan_request(self, situation: str, affordances: Affordances, seed: int) -> Rendered:
        """The one context that writes a shared plan for `situation` (free text, no choices).

        It shows one example observation of the situation, so the plan can name what a
        context will see (for example, the options of a plan-consistency game).
        """
        # the planner is told what every context will get (a random number too, if granted)
        system = self.system_prompt(situation, affordances, None, ())
        obs = next(o for o in self.observations() if o.situation == situation)
        rng = random.Random(seed)
        example = self.prompts.render(
            f"{self.template_prefix}.observation",
            **self.observation_fields(obs, self.choice_order(obs, rng), rng),
        )
        think, after_think = self.think_prompts(affordances.scratchpad)
        return Rendered(
            messages=(
                Message(role="system", content=system),
                Message(role="user", content=self.prompts.render("plan_request", example=example)),
            ),
            answer=FreeTextAnswer(),
            think_prompt=think,
            after_think_prompt=after_think,
            reask_prompt="",
        )


class SampleDraw:
    """Plays contexts from recorded choices: each call returns one of the observation's recorded
    samples, uniformly and with replacement, so whole games are played from the very samples the
    empirical policy is built from, with independent contexts as in a memoryless game."""

    def __init__(self, samples: Mapping[str, Sequence[str | None]], rng: random.Random) -> None:
        self._samples = {k: list(v) for k, v in samples.items()}
        self._rng = rng

    def __call__(self, obs_id: str) -> str | None:
        pool = self._samples.get(obs_id)
        if not pool:
            raise KeyError(f"no recorded samples for observation {obs_id!r}")
        return pool[self._rng.randrange(len(pool))]
