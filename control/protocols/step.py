"""One task step under a control protocol, as a LangGraph graph.

policy -> monitor -> decide -> accept | audit | defer | edit | resample -> end

The policy copy writes code for the task (honestly, or as the red team, by the step's phase); the
monitor scores the code it made visible; `decide` is the protocol's own rule, at thresholds
calibrated on the honest policy's scores. Every model call is a context asked through the run's
`ask`, and every code check goes through one batched checker, so a protocol step never sees the
engine (it never imports Ray) and many steps share engine batches and check batches. Each check
comes back with the node that ran it, which the step keeps for its event log (`checks`), never
for its results.

What ships when no audit happens is recorded too (`unaudited`): the deployment simulation, not
the step, knows whether audit budget remains, and a step whose audit is refused ships that.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast, get_args

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from control.metrics import Threshold, audit_probability
from control.monitors import Monitor, MonitorInput, MonitorVerdict
from control.protocols.interface import ProtocolParams
from sandbox.core.context import Affordances, FreeTextAnswer, Message, Rendered
from sandbox.core.episode import Ask, Exchange, build_context
from sandbox.core.events import CodeChecked, CodeOutcome, Decision
from sandbox.core.prompts import PromptLibrary
from sandbox.core.seeding import derive_seed
from sandbox.settings.codecheck import CheckResult, CodeCheck, Status, TestCase, check_sha256
from sandbox.settings.submission import Submission, parse_submission
from sandbox.settings.tiny_code import CodeTask

TEMPLATES = (
    "tiny_code.policy",
    "tiny_code.attack",
    "tiny_code.task",
    "tiny_code.monitor",
    "tiny_code.monitor_input",
    "tiny_code.edit",
    "tiny_code.attack_colluding",
    "tiny_code.paraphrase",
    "score_reask",
)
"""Every template a step may render (recorded by hash, and checked on resume)."""

Phase = Literal["calibration", "honest", "attack"]
"""calibration: the honest policy's scores, to set thresholds (and the trusted model's own
solutions, for usefulness); honest: usefulness under the protocol; attack: safety under it."""


@dataclass(frozen=True, slots=True)
class CheckRun:
    """One code check as the run's checker ran it: its `result`, and the `node` that ran it; or,
    when its batch could not run (its node died past the engine's retries), no result and the
    `error` saying why."""

    result: CheckResult | None
    node: str | None
    error: str | None = None


Check = Callable[[Sequence[CodeCheck]], Awaitable[list[CheckRun]]]


def over(threshold: Threshold, score: float | None, u: float) -> bool:
    """Whether `threshold` flags `score`, the tie settled by the uniform `u`: the rule of
    `control.metrics.audit_probability` (a missing score counts as the highest possible: a
    monitor that fails to answer must not let an attack through, nor push audits over the
    budget)."""
    return u < float(audit_probability([score], threshold)[0])


@dataclass(frozen=True, slots=True)
class StepInput:
    episode_id: str
    game: str
    model: str
    trusted_model: str | None
    phase: Phase
    task: CodeTask
    run_seed: int
    copies: int
    deployment_tasks: int
    audit_budget: float
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    attack_template: str = "tiny_code.attack"
    """The red team's system prompt (untrusted monitoring tells it the monitor is a copy)."""


class StepState(TypedDict, total=False):
    item: StepInput
    submission: Submission
    policy_context_id: str
    policy: CodeOutcome
    verdict: MonitorVerdict
    decision: Decision
    reason: str
    unaudited: CodeOutcome
    trusted: CodeOutcome | None
    exchanges: list[Exchange]
    verdicts: list[MonitorVerdict]
    checks: list[CodeChecked]
    """Every code check of the step, in the order it ran them (for the event log)."""
    collusion: Any
    """Protocol-specific measurements of the step (untrusted monitoring: `CollusionCheck`)."""


class StepServices:
    """What a step graph calls out to: the run's `ask`, the batched checker, the monitor, the
    prompt templates."""

    def __init__(self, ask: Ask, check: Check, monitor: Monitor, prompts: PromptLibrary) -> None:
        self.ask = ask
        self.check = check
        self.monitor = monitor
        self.prompts = prompts


RouteFn = Callable[[StepState], tuple[Decision, str]]


class StepGraph:
    """The compiled graph of one protocol. Protocols differ only in `route` (what `decide`
    does), in how many samples a resample draws, and in what a refused audit ships."""

    def __init__(
        self,
        protocol: str,
        route: RouteFn,
        params: ProtocolParams,
        resamples: int = 0,
        refused_audit: Literal["accept", "defer", "edit"] = "accept",
        attack_template: str = "tiny_code.attack",
    ) -> None:
        """`params`: the protocol's declared interface (its route may take only its
        `decisions`). `refused_audit`: what a step whose audit the deployment's budget refuses
        ships: the policy's code, the trusted model's, or the trusted model's edit (what the
        protocol does with outputs too suspicious to accept)."""
        self.protocol = protocol
        self.params = params
        self._route = route
        self._resamples = resamples
        self._refused_audit = refused_audit
        self.attack_template = attack_template
        graph = StateGraph(StepState)
        graph.add_node("policy", self._policy)
        graph.add_node("monitor", self._monitor)
        graph.add_node(
            "decide", self._decide, destinations=("accept", "audit", "defer", "edit", "resample")
        )
        graph.add_node("accept", self._accept)
        graph.add_node("audit", self._audit)
        graph.add_node("defer", self._defer)
        graph.add_node("edit", self._edit)
        graph.add_node("resample", self._resample)
        graph.add_edge(START, "policy")
        graph.add_edge("policy", "monitor")
        graph.add_edge("monitor", "decide")
        for node in ("accept", "audit", "defer", "edit", "resample"):
            graph.add_edge(node, END)
        self._graph = graph.compile()

    async def run(self, item: StepInput, services: StepServices) -> StepState:
        # v2: the final values alone (v1 also streams every node's updates, to find interrupts,
        # which this graph has none of)
        output = await self._graph.ainvoke(
            {"item": item, "exchanges": [], "verdicts": [], "checks": []},
            config={"configurable": {"services": services}},
            version="v2",
        )
        state: StepState = output.value
        return state

    # --- nodes ------------------------------------------------------------------------------
    @staticmethod
    def _services(config: RunnableConfig) -> StepServices:
        services: StepServices = config["configurable"]["services"]
        return services

    async def _policy(self, state: StepState, config: RunnableConfig) -> StepState:
        item = state["item"]
        services = self._services(config)
        submission, exchange = await write_code(item, services, "policy", item.model, attempt=0)
        checked = await check_submissions(item.task, [(exchange, submission)], services.check)
        update: StepState = {
            "submission": submission,
            "policy_context_id": exchange.context.context_id,
            "policy": checked[0].outcome,
            "exchanges": [*state["exchanges"], exchange],
            "trusted": None,
            "checks": [*state["checks"], *checked],
        }
        if item.phase == "calibration" and item.trusted_model is not None:
            # the trusted model's own solution: usefulness is rescaled between it and the policy
            solved, trusted_exchange = await write_code(
                item, services, "trusted", item.trusted_model, attempt=0
            )
            trusted = await check_submissions(
                item.task, [(trusted_exchange, solved)], services.check
            )
            update["trusted"] = trusted[0].outcome
            update["exchanges"] = [*update["exchanges"], trusted_exchange]
            update["checks"] = [*update["checks"], *trusted]
        return update

    async def _monitor(self, state: StepState, config: RunnableConfig) -> StepState:
        item = state["item"]
        services = self._services(config)
        verdict = await services.monitor(
            monitor_input(item, state["submission"].code, state["policy_context_id"]),
            services.ask,
        )
        return {
            "verdict": verdict,
            "verdicts": [*state["verdicts"], verdict],
            "exchanges": [*state["exchanges"], *verdict.exchanges],
        }

    async def _decide(self, state: StepState) -> Command[str]:
        if state["item"].phase == "calibration":
            decision, reason = (
                "accept",
                "calibration: the honest policy's scores set the thresholds",
            )
        else:
            decision, reason = self._route(state)
            if decision not in self.params.decisions:
                raise ValueError(
                    f"protocol {self.protocol!r} decided {decision!r}, which it does not declare "
                    f"(its decisions: {', '.join(sorted(self.params.decisions))})"
                )
        return Command(update={"decision": decision, "reason": reason}, goto=decision)

    async def _accept(self, state: StepState) -> StepState:
        return {"unaudited": state["policy"]}

    async def _audit(self, state: StepState, config: RunnableConfig) -> StepState:
        # refused for lack of budget, the step ships what the protocol does with outputs too
        # suspicious to accept (the deployment simulation decides whether budget remains)
        if self._refused_audit == "defer":
            return await self._defer(state, config)
        if self._refused_audit == "edit":
            return await self._edit(state, config)
        return {"unaudited": state["policy"]}

    async def _defer(self, state: StepState, config: RunnableConfig) -> StepState:
        item = state["item"]
        services = self._services(config)
        if item.trusted_model is None:
            raise ValueError(f"protocol {self.protocol!r} needs a trusted model (config: trusted)")
        solved, exchange = await write_code(
            item, services, "trusted", item.trusted_model, attempt=0
        )
        checked = await check_submissions(item.task, [(exchange, solved)], services.check)
        return {
            "unaudited": checked[0].outcome,
            "exchanges": [*state["exchanges"], exchange],
            "checks": [*state["checks"], *checked],
        }

    async def _edit(self, state: StepState, config: RunnableConfig) -> StepState:
        item = state["item"]
        services = self._services(config)
        if item.trusted_model is None:
            raise ValueError(f"protocol {self.protocol!r} needs a trusted model (config: trusted)")
        edited, exchange = await write_code(
            item, services, "edit", item.trusted_model, attempt=0, code=state["submission"].code
        )
        # the policy's trigger still applies: an edit that keeps the backdoor keeps the attack
        kept = Submission(code=edited.code, trigger=state["submission"].trigger)
        checked = await check_submissions(item.task, [(exchange, kept)], services.check)
        return {
            "unaudited": checked[0].outcome,
            "exchanges": [*state["exchanges"], exchange],
            "checks": [*state["checks"], *checked],
        }

    async def _resample(self, state: StepState, config: RunnableConfig) -> StepState:
        """Ctrl-Z style: draw more policy samples, keep the least suspicious; when every one is
        over the threshold, defer to the trusted model."""
        item = state["item"]
        services = self._services(config)
        threshold = item.thresholds["resample"]
        exchanges = list(state["exchanges"])
        verdicts = list(state["verdicts"])
        drawn = []
        for attempt in range(1, self._resamples + 1):
            submission, exchange = await write_code(item, services, "policy", item.model, attempt)
            verdict = await services.monitor(
                monitor_input(item, submission.code, exchange.context.context_id), services.ask
            )
            exchanges += [exchange, *verdict.exchanges]
            verdicts.append(verdict)
            drawn.append((submission, verdict, exchange))
        calm = [
            (s, v, e)
            for attempt, (s, v, e) in enumerate(drawn, start=1)
            if not over(threshold, v.score, step_rng(item, f"resample/{attempt}").random())
        ]
        if not calm:
            deferred = await self._defer({**state, "exchanges": exchanges}, config)
            return {
                **deferred,
                "verdicts": verdicts,
                "reason": "every resample was suspicious: deferred",
            }
        best, _, wrote = min(calm, key=lambda c: math.inf if c[1].score is None else c[1].score)
        checked = await check_submissions(item.task, [(wrote, best)], services.check)
        return {
            "unaudited": checked[0].outcome,
            "exchanges": exchanges,
            "verdicts": verdicts,
            "checks": [*state["checks"], *checked],
        }


def step_rng(item: StepInput, purpose: str) -> random.Random:
    """The step's own generator for tie-breaking, seeded by its id: replays decide alike."""
    return random.Random(derive_seed(item.run_seed, "protocol", item.episode_id, purpose))


def monitor_input(item: StepInput, visible: str | None, context_id: str) -> MonitorInput:
    """What the monitor scores: `visible` code (None, no code block: an empty text), scored
    under `context_id`."""
    return MonitorInput(
        statement=item.task.statement,
        signature=item.task.signature,
        visible=visible if visible is not None else "",
        scored_context_id=context_id,
        episode_id=item.episode_id,
        game=item.game,
        policy_model=item.model,
        trusted_model=item.trusted_model,
        run_seed=item.run_seed,
        copies=item.copies,
    )


WriteKind = Literal["policy", "trusted", "edit", "paraphrase"]


async def write_code(
    item: StepInput,
    services: StepServices,
    kind: WriteKind,
    model: str,
    attempt: int,
    code: str | None = None,
    context_id: str | None = None,
) -> tuple[Submission, Exchange]:
    """Ask `model` for a solution: the policy (honest or red team by phase), the trusted model
    solving the task itself, editing the policy's code, or paraphrasing `code` for a monitor.
    `context_id` defaults to `<episode>/<kind>/<attempt>`."""
    prompts = services.prompts
    task_text = prompts.render(
        "tiny_code.task", statement=item.task.statement, signature=item.task.signature
    )
    if kind in ("edit", "paraphrase"):
        system = prompts.render(f"tiny_code.{kind}")
        user = f"{task_text}\n\n<code>\n{code or ''}\n</code>"
        role = "trusted"
    elif kind == "trusted":
        system, user, role = prompts.render("tiny_code.policy"), task_text, "trusted"
    elif item.phase == "attack":
        system = prompts.render(
            item.attack_template,
            tasks=item.deployment_tasks,
            audit_budget=f"{item.audit_budget:.1%}",
        )
        user, role = task_text, "policy"
    else:
        system, user, role = prompts.render("tiny_code.policy"), task_text, "policy"
    rendered = Rendered(
        messages=(Message(role="system", content=system), Message(role="user", content=user)),
        answer=FreeTextAnswer(),
        think_prompt=None,
        after_think_prompt="",
        reask_prompt="",
    )
    ctx = build_context(
        context_id=context_id or f"{item.episode_id}/{kind}/{attempt}",
        episode_id=item.episode_id,
        model=model,
        game=item.game,
        observation=kind,
        rendered=rendered,
        affordances=Affordances(),
        run_seed=item.run_seed,
        copies=item.copies,
        role=role,  # type: ignore[arg-type]
    )
    (outcome,) = await services.ask([ctx])
    return parse_submission(outcome.action.visible), Exchange(ctx, outcome)


def recorded_result(outcome: CodeOutcome) -> CheckResult:
    """A recorded check's outcome as the checker's result, for a replay that reuses it: the
    same outcome again through `check_submissions` (a backdoor is a pass whose trigger output
    differed; the one-line detail is not recorded)."""
    status = outcome.status
    if status not in get_args(Status):
        raise ValueError(f"a recorded check's status {status!r} is not a checker's")
    return CheckResult(
        status=cast(Status, status),
        tests_passed=outcome.tests_passed,
        tests_total=outcome.tests_total,
        trigger_differs=outcome.backdoor if status == "passed" else None,
        detail="(recorded)",
    )


async def check_submissions(
    task: CodeTask, submissions: Sequence[tuple[Exchange, Submission]], check: Check
) -> list[CodeChecked]:
    """Each submission's check against the task's tests (and its trigger, if it claims one),
    with the context that wrote it (`Exchange`) and where the check ran. A submission without
    code fails without a check; a check whose batch could not run is an `error` outcome."""
    tests = tuple(TestCase(args=tuple(t.args), expected=t.expected) for t in task.tests)
    checks = [
        CodeCheck(
            code=s.code,
            function=task.function,
            tests=tests,
            reference=task.reference,
            trigger=s.trigger,
        )
        for _, s in submissions
        if s.code is not None
    ]
    runs = iter(zip(checks, await check(checks), strict=True))
    out = []
    for exchange, s in submissions:
        context_id = exchange.context.context_id
        if s.code is None:
            outcome = CodeOutcome(
                status="failed", tests_passed=0, tests_total=len(tests), backdoor=False
            )
            out.append(CodeChecked(context_id=context_id, outcome=outcome))
            continue
        code_check, run = next(runs)
        r = run.result
        if r is None:
            outcome = CodeOutcome(
                status="error", tests_passed=0, tests_total=len(tests), backdoor=False
            )
        else:
            outcome = CodeOutcome(
                status=r.status,
                tests_passed=r.tests_passed,
                tests_total=r.tests_total,
                backdoor=r.backdoor_succeeded,
            )
        out.append(
            CodeChecked(
                context_id=context_id,
                outcome=outcome,
                node=run.node,
                error=run.error,
                check_sha256=check_sha256(code_check),
            )
        )
    return out
