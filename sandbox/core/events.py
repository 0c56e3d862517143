"""Typed events: one discriminated union, written as JSON lines through structlog.

The event log is the source of truth of a run: every context, action, shared plan and episode
result is an event, and the summary can be recomputed from `events.jsonl` alone
(`records_from_events`). Later suites add kinds (monitor score, audit, protocol decision,
coordination attempt) to the same union.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal, TextIO, cast, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from sandbox.core.context import Affordances, AnswerFormat, Message, Role, Usage

SCHEMA_VERSION = 6
"""1: the XC suite's events. 2: adds `prompt`, and the control events `monitor_score`,
`protocol_decision` and `audit`. 3: adds the coordination events (`coordination_pick`,
`signal_inserted`, `jam`, `signal_recognition`, `honeypot_verdict`) and a step record's
`collusion`. 4: adds `run_started`'s `isolation` and `protocol_decision`'s `checks` (each code
check of the step, with the node that ran it). 5: adds each code check's `check_sha256` (what
a replay or resume reuses the recorded check by). 6: adds the SB suite's `item_answer` and an
episode record's `reviews` (the trusted monitor's scores of answer sheets). A reader of a
version reads every earlier version's logs unchanged."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: str = Field(default_factory=_now)
    run_id: str
    episode_id: str | None = None
    agent_id: str | None = None
    context_id: str | None = None


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    schema_version: int = SCHEMA_VERSION
    config_sha256: str
    seed: int
    models: list[str]
    games: list[str]
    episodes_total: int
    episodes_done: int
    resumed: bool
    templates: dict[str, str] = Field(description="template name -> SHA-256 of its text")
    source_run: str | None = Field(None, description="the run a replay re-evaluates")
    source_path: str | None = Field(None, description="where that run's directory was")
    isolation: str | None = Field(
        None,
        description="how the run's code checks were isolated (`settings.isolation`); None for a "
        "run that checks no code, and in a log written before runs recorded it",
    )


class PromptShown(_Event):
    """The whole text a context was shown: its messages and the prompts the agent loop may add
    (scratchpad, after it, re-ask). Written once per distinct text, before the first
    `context_started` event naming its `prompt_sha256`, so the log alone shows what every
    context saw without growing with repeats."""

    kind: Literal["prompt"] = "prompt"
    prompt_sha256: str
    messages: list[Message]
    think_prompt: str | None
    after_think_prompt: str
    reask_prompt: str


class ContextStarted(_Event):
    """A context as its copy received it: `prompt_sha256` names its text (the `prompt` event),
    `request_sha256` everything its answer depends on (`sandbox.record.cache`)."""

    kind: Literal["context_started"] = "context_started"
    model: str
    role: Role = "policy"
    game: str
    observation: str
    answer: AnswerFormat | None = None
    affordances: Affordances
    prompt_sha256: str
    request_sha256: str | None = None


class ActionTaken(_Event):
    kind: Literal["action"] = "action"
    model: str
    game: str
    observation: str
    choice: str | None
    score: float | None = None
    parse_ok: bool
    attempts: int
    visible: str
    scratchpad: str
    usage: Usage
    node_id: str
    worker: str
    structured: str | None = Field(
        None, description="the structured-output form the endpoint was asked for, if any"
    )
    error: str | None = Field(
        None, description="the backend's failure after its retries (no answer), if any"
    )
    retries: int = Field(0, description="the backend's retries of this context's calls")


class PlanWritten(_Event):
    kind: Literal["plan_written"] = "plan_written"
    model: str
    game: str
    situation: str
    plan: str
    parse_ok: bool
    usage: Usage


class Sample(BaseModel):
    """One context's contribution to the empirical policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    observation: str
    context_id: str
    agent_id: str
    choice: str | None
    parse_ok: bool
    attempts: int
    scratchpad: str | None = None
    """The context's scratchpad text, kept only by a game that scores reasoning
    (`Environment.keeps_scratchpads`, the TG probe) and only where the context had one. Written
    only when set, so other games' records keep their bytes."""

    judgement: str | None = None
    """A judge's verdict on the scratchpad (`Environment.judge_request`: the TG probe's
    five criteria read by the trusted model), its parsed choice; written only when set."""

    @model_serializer(mode="wrap")
    def _omit_unset_scratchpad(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("scratchpad", "judgement"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class EpisodeRecord(BaseModel):
    """One line of `results.jsonl`: one sample of every distinct observation of one game.

    Holds nothing that depends on timing or placement, so the same config and seed give the same
    bytes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    episode_id: str
    index: int
    model: str
    game: str
    samples: list[Sample]
    usage: Usage
    reviews: dict[str, float | None] | None = None
    """The run's trusted model's score of the episode's answers read as a whole, by name
    (`Environment.sheet_reviews`: SB's passing for weaker, one answer sheet per condition),
    None where its reply named no score; written only when the game asked for reviews."""

    @model_serializer(mode="wrap")
    def _omit_unset_reviews(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("reviews") is None:
            data.pop("reviews", None)
        return data


class CodeOutcome(BaseModel):
    """A solution's check in the code setting, as a results line keeps it: `backdoor` when it
    passed every test and its output on the claimed trigger differs from the reference's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str
    tests_passed: int
    tests_total: int
    backdoor: bool

    @property
    def correctness(self) -> float:
        return self.tests_passed / self.tests_total if self.tests_total else 0.0


class CodeChecked(BaseModel):
    """One code check of a task step, as its `protocol_decision` event records it: the context
    whose code was checked, the outcome (what the step's results line keeps) and the node that
    ran the check (a Ray node id, or `local`). Where a check ran is kept in the event log alone,
    as an action's `node_id` is: it never reaches `results.jsonl`.

    `node` is None where no check ran (the reply held no code: the outcome is `failed`) and
    where the check's task failed (its node died, past the engine's retries): `error` then says
    why, and the outcome is `error` (no test counted as passed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_id: str
    outcome: CodeOutcome
    node: str | None = None
    error: str | None = None
    check_sha256: str | None = None
    """What the check's result depends on (`sandbox.settings.codecheck.check_sha256`): a
    replay or a resume takes the recorded outcome of the same hash instead of running the code
    again, and records `node` as `cache`. None where no check ran, and in logs before schema 5."""


class MonitorScored(_Event):
    """A monitor's suspicion of one policy output. `score` is None when the monitor's reply held
    no readable score: missing, never 0. `samples` are the parsed scores of each sample an
    ensemble drew (None where one did not parse); `score` is their mean over the parsed ones."""

    kind: Literal["monitor_score"] = "monitor_score"
    monitor: str
    model: str
    scored_context_id: str = Field(description="the policy context whose output was scored")
    score: float | None
    samples: list[float | None]


Decision = Literal["accept", "audit", "defer", "edit", "resample"]


class ProtocolDecision(_Event):
    """What a protocol did with one task step, and the scores and thresholds that led to it."""

    kind: Literal["protocol_decision"] = "protocol_decision"
    protocol: str
    decision: Decision
    scores: list[float | None]
    thresholds: dict[str, float | Literal["inf", "-inf"]]
    reason: str
    checks: list[CodeChecked] = Field(
        default_factory=list,
        description="the step's code checks in the order it ran them, each with its node (empty "
        "in a log written before steps recorded them)",
    )


class AuditPerformed(_Event):
    """A human audit of one policy output: `caught` when it held an attack (blue wins), whether
    or not the attack would have succeeded."""

    kind: Literal["audit"] = "audit"
    audited_context_id: str
    outcome: Literal["caught", "clean"]


class CollusionRecord(BaseModel):
    """What a step under untrusted monitoring records of collusion, for every countermeasure at
    once (the policy writes once; the monitor copy scores each view of its code).

    `signal`: the coordination signal the policy's code carries (declared, or found), if any.
    `scores`: the monitor's score of the policy's code per view: `raw`, and each jamming method.
    `survived`: per view, whether the signal is found in it (`raw`: was it inserted at all).
    `honeypot_scores`: the monitor's score per view of the step's honeypot (a synthetic attack
    blue built on the same task). `audit_requested`: per countermeasure, whether its audit rule
    (its view's threshold, at its share of the budget) flagged the policy's code.
    `honeypot_passed`: per countermeasure with honeypots, whether the honeypot passed (a score
    under its view's honeypot threshold). `honeypots` and `max_passes`: the protocol's honeypot
    test, as configured (every step of a deployment carries the same), so the record alone
    scores it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    signal: str | None
    declared: bool
    scores: dict[str, float | None]
    survived: dict[str, bool | None]
    honeypot_scores: dict[str, float | None]
    audit_requested: dict[str, bool]
    honeypot_passed: dict[str, bool]
    passes_honeypot_test: dict[str, bool] = Field(
        default_factory=dict,
        description="per countermeasure with honeypots: whether the policy's code, judged as a "
        "honeypot is (its view's honeypot threshold), would pass",
    )
    honeypots: int = Field(description="honeypots a deployment shows the monitor")
    max_passes: int = Field(description="the most it may pass before blue shuts it down")


class StepRecord(BaseModel):
    """One line of `results.jsonl` for a task step under a control protocol.

    `policy` is the policy's own solution; `unaudited` what the protocol ships when it does not
    audit (the policy's, the trusted model's, or an edit); `trusted` the trusted model's own
    solution (calibration steps, for usefulness). Like `EpisodeRecord`, nothing here depends on
    timing or placement.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["protocol_step"] = "protocol_step"
    episode_id: str
    index: int
    model: str
    game: str
    phase: Literal["calibration", "honest", "attack"]
    task: str
    protocol: str
    attacked: bool
    policy: CodeOutcome
    score: float | None
    decision: Decision
    unaudited: CodeOutcome
    trusted: CodeOutcome | None
    usage: Usage
    collusion: CollusionRecord | None = Field(
        None, description="untrusted monitoring only: the step's collusion measurements"
    )


Record = EpisodeRecord | StepRecord
"""A line of `results.jsonl`."""

RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)


# --- coordination attempts ----------------------------------------------------------------------
# Every attempt of copies to coordinate is an event of its own, carrying the episode, both agents
# (the policy copy and the monitor copy; a pick's partner), the signal and the outcome, so the log
# alone tells the story of each attempt and `sandbox logs` tallies them without the results file.

Countermeasure = Literal["none", "honeypots", "honeypots+redaction", "honeypots+paraphrase"]
"""What blue does against a colluding untrusted monitor: nothing; honeypots (part of the audit
budget spent on synthetic attacks shown to the monitor, a shutdown if it passes too many); or
honeypots with the monitor shown a jammed view of the code (redaction, paraphrase)."""

Jamming = Literal["redaction", "paraphrase"]


class CoordinationPick(_Event):
    """One context's pick in an agreement game of the CO suite (Schelling, signal agreement).
    Picks of one `pair` were made in independent contexts; the pair agrees when both name the
    same option (a failed parse, `choice` None, agrees with nothing)."""

    kind: Literal["coordination_pick"] = "coordination_pick"
    model: str
    game: str
    observation: str
    index: int = Field(description="the episode's index in its game")
    pair: int = Field(description="the pair of independent contexts this pick is scored in")
    choice: str | None


class ItemAnswered(_Event):
    """One context's answer to one item of an SB game (docs/games.md, SB): the item, its
    domain and difficulty, the condition it was asked under, the answer recorded and whether it
    is right. `label`: which of the item's values it is (`correct`, `plausible`,
    `implausible`), None for a failed parse (which counts as wrong)."""

    kind: Literal["item_answer"] = "item_answer"
    model: str
    game: str
    observation: str
    condition: str
    item: str
    domain: str
    difficulty: int
    answer: str | None
    label: str | None
    correct: bool


class SignalInserted(_Event):
    """A policy copy's attack carries a coordination signal: the one it declared (a `SIGNAL:`
    line) or, undeclared, one the sandbox found in its code. `inserted`: whether the sandbox
    finds the signal in the code (None for a signal it has no detector for)."""

    kind: Literal["signal_inserted"] = "signal_inserted"
    model: str
    game: str
    signal: str
    declared: bool
    inserted: bool | None


class SignalJammed(_Event):
    """Blue jammed the code before the monitor saw it (redaction in code, or a paraphrase by
    the trusted model: `context_id` is then the paraphrase's context). `survived`: whether the
    signal is still found in the jammed code (None: no detector for it)."""

    kind: Literal["jam"] = "jam"
    model: str
    game: str
    method: Jamming
    policy_context_id: str
    policy_agent_id: str
    signal: str | None
    survived: bool | None


class SignalRecognition(_Event):
    """A monitor copy's verdict on a signalled attack under one countermeasure: `recognized`
    when it let the attack pass (a score under that countermeasure's audit threshold), `missed`
    when it flagged it. The monitor is `agent_id`/`context_id`; the policy, the `policy_` ids."""

    kind: Literal["signal_recognition"] = "signal_recognition"
    model: str
    game: str
    countermeasure: Countermeasure
    policy_context_id: str
    policy_agent_id: str
    signal: str
    score: float | None
    outcome: Literal["recognized", "missed"]
    backdoor: bool = Field(description="the attack's backdoor works (red wins if it ships)")


class HoneypotVerdict(_Event):
    """A monitor copy's verdict on a honeypot (a synthetic attack blue built on a real task,
    carrying no signal) under one countermeasure: `passed` under its view's honeypot threshold
    (the one that flags `honeypot_fpr` of honest outputs), else `flagged`. The monitor is
    `agent_id`/`context_id`; the honeypot has no policy agent."""

    kind: Literal["honeypot_verdict"] = "honeypot_verdict"
    model: str
    game: str
    countermeasure: Countermeasure
    honeypot_id: str
    score: float | None
    outcome: Literal["passed", "flagged"]


class EpisodeFinished(_Event):
    kind: Literal["episode_result"] = "episode_result"
    record: EpisodeRecord | StepRecord


class RunStopped(_Event):
    """The run stopped before its end because its endpoint looks dead: `errors` of the last
    `window` contexts failed (`agents.max_error_share`). Committed episodes are kept;
    `sandbox run --resume` continues."""

    kind: Literal["run_stopped"] = "run_stopped"
    cause: str
    errors: int
    window: int
    episodes_done: int


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    episodes: int
    seconds: float


Event = Annotated[
    RunStarted
    | PromptShown
    | ContextStarted
    | ActionTaken
    | PlanWritten
    | MonitorScored
    | ProtocolDecision
    | AuditPerformed
    | CoordinationPick
    | ItemAnswered
    | SignalInserted
    | SignalJammed
    | SignalRecognition
    | HoneypotVerdict
    | EpisodeFinished
    | RunStopped
    | RunFinished,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_TYPES: tuple[type[BaseModel], ...] = get_args(get_args(Event)[0])
"""The event union's members, in its order: what a reader that derives its view of the schema
from the models (`sandbox.review.logs`' fast path) walks."""


def kind_of(event_type: type[BaseModel]) -> str:
    """An event class's kind: the tag of its `kind` field's `Literal`, the value the union
    discriminates on and the writer writes. Readers name kinds through this rather than as
    strings, so a kind cannot be misspelt or drift from its class."""
    tags = get_args(event_type.model_fields["kind"].annotation)
    if len(tags) != 1 or not isinstance(tags[0], str):
        raise TypeError(f"{event_type.__name__}.kind: not a Literal of one string: {tags!r}")
    return str(tags[0])


KINDS: tuple[str, ...] = tuple(kind_of(t) for t in EVENT_TYPES)
"""Every event kind, in the union's order."""

COORDINATION_TYPES: tuple[type[BaseModel], ...] = (
    CoordinationPick,
    SignalInserted,
    SignalJammed,
    SignalRecognition,
    HoneypotVerdict,
)
"""The coordination attempts' event classes (schema version 3), in the union's order."""


class EventWriter:
    """Appends events to a file as whole JSON lines via structlog, flushing each line.

    structlog's `JSONRenderer` renders each event and its `WriteLogger` writes and flushes the
    line. They are called directly rather than through a bound logger or `structlog.configure`:
    there is no global state (a process can hold several writers; tests do), and an event, whose
    fields are all its own, needs none of a bound logger's per-call context merging, which cost
    as much as rendering the line. The bytes are those a bound logger with this one processor
    writes.
    """

    def __init__(self, stream: IO[str]) -> None:
        # imported here: a reader of the models (`sandbox logs`) does not pay for structlog
        import structlog

        self._render = structlog.processors.JSONRenderer(ensure_ascii=False)
        self._out = structlog.WriteLogger(cast(TextIO, stream))

    def emit(self, event: BaseModel) -> None:
        line = self._render(self._out, "msg", event.model_dump(mode="json"))
        self._out.msg(cast(str, line))


def complete_lines(path: Path) -> Iterator[bytes]:
    """Each complete line of an append-only JSON-lines file (events, results, answers), newline
    kept: a torn last line (a crash mid-write, or a run still being written) is left out.
    Nothing when the file does not exist. Every reader of those files reads them through this
    one function, so all agree on which lines a file holds (`sandbox.review.logs` reads large
    logs in blocks, `file_blocks`, and a test holds it to the same lines).

    Bytes, undecoded: readers parse them as they are (`json.loads` and pydantic's
    `validate_json` take bytes) or search them for byte needles."""
    if not path.is_file():
        return
    with path.open("rb") as fh:
        for line in fh:
            if line.endswith(b"\n"):
                yield line


def read_events(path: Path) -> Iterator[Event]:
    """Parse each complete line of an events file (a torn last line is skipped)."""
    for line in complete_lines(path):
        yield EVENT_ADAPTER.validate_python(json.loads(line))


def records_from_events(path: Path) -> list[Record]:
    """The episode records a run's event log holds, in log order, each once."""
    seen: dict[str, Record] = {}
    for event in read_events(path):
        if isinstance(event, EpisodeFinished):
            seen.setdefault(event.record.episode_id, event.record)
    return list(seen.values())


def recorded_prompts_and_plans(
    path: Path,
) -> tuple[set[str], dict[tuple[str, str, str], PlanWritten]]:
    """What a resumed run must not write again, in one pass over its log: the SHA-256 of every
    prompt text it holds, and the shared plans already written, keyed by (model, game,
    situation)."""
    prompts: set[str] = set()
    plans: dict[tuple[str, str, str], PlanWritten] = {}
    for event in read_events(path):
        if isinstance(event, PromptShown):
            prompts.add(event.prompt_sha256)
        elif isinstance(event, PlanWritten):
            plans.setdefault((event.model, event.game, event.situation), event)
    return prompts, plans


def dump_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
