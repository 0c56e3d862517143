"""A run's results as frozen, typed values: what `summary.json` holds, and the one way to read it.

Scoring (`sandbox.run.scoring`), deployments (`control.deployments`) and the capability profile
(`sandbox.review.profile`) build these models; the tables, the report, the export and the CLI
read their attributes. A key misspelt or missing is then an error where the summary is made or
read, not a `KeyError` (or a silent "-") in whichever table reads it last. The models live in
the core layer because both `control.deployments` and `sandbox.review` need them and may import
nothing of each other.

`summary.json` is `Summary.to_json()`: the key names and nesting of the untyped summary it
replaces, in the same order, with `schema_version` first. `Summary.read` is the only reader: it
upgrades a version-1 summary (written before the version was: no `schema_version`) and names the
file and the field of a summary it cannot read, or says it was written by a newer sandbox.

Scores keep two shapes, told apart by `complete`: a game whose every observation was sampled
(`GameScore`) or not (`IncompleteGame`), a deployment with every phase recorded
(`DeploymentScore`) or not (`IncompleteDeployment`). A game's `details` stay a mapping: each game
puts its own measurements there (`docs/reading-output.md` lists them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION: Final = 2
"""The version of `summary.json` this sandbox writes. 1: the untyped summary, with no
`schema_version` key (read and upgraded by `Summary.read`); 2: the same keys, written from
`Summary`, with `schema_version`."""


def _absent(value: object) -> bool:
    return value is None


OMITTED_WHEN_NONE: Any = Field(None, exclude_if=_absent)
"""A key written only when it holds something (as the untyped summary did: `replay` only for a
replay, `collusion` only under untrusted monitoring)."""


class Result(BaseModel):
    """A part of a run's results: frozen (a table cannot change what another table reads) and
    strict about keys (a misspelt one is an error, not a field quietly left at its default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    if not TYPE_CHECKING:
        # Read access by the old key names (`summary["models"]["honest"]["games"]`), for code
        # written against the untyped summary: users' scripts and tests. Hidden from the type
        # checker, so the package's own code has to read attributes.
        def __getitem__(self, key: str) -> Any:
            if key not in type(self).model_fields:
                raise KeyError(key)
            return getattr(self, key)


class EstimateLike(Protocol):
    """What `Interval.of` reads: `control.metrics.Estimate` (not imported: the core layer sits
    below the statistics)."""

    @property
    def value(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def n(self) -> int: ...


class Interval(Result):
    """An estimate with its interval at `confidence`, from `n` observations: every
    `{"value", "low", "high", "confidence", "n"}` of the summary (`Estimate.as_dict`'s keys)."""

    value: float
    low: float
    high: float
    confidence: float
    n: int

    @classmethod
    def of(cls, estimate: EstimateLike) -> Interval:
        return cls.model_validate(estimate, from_attributes=True)


class TokenUsage(Result):
    """Tokens summed over the committed records (`usage`) or over the shared plans
    (`plan_usage`)."""

    prompt_tokens: int
    completion_tokens: int


Details = dict[str, Any]
"""A game's own measurements (its observations' GO rates, agreement, a sweep's slope, the TG
probe's cells and effects): each game has its keys, read by the tables that know the game."""


class _Game(Result):
    environment: str
    """The game's registered name (`games[].name`; the summary's key is its id)."""
    suite: str
    """"xc", "co" or "tg": which profile entry the game's verdict counts towards."""


class GameScore(_Game):
    """A game with every observation sampled: its win against the optimum, and its verdict."""

    complete: Literal[True] = True
    samples: int
    episodes: int
    parse_failure_rate: float
    win: Interval
    optimal_win: float
    win_over_optimal: float
    played: Interval
    estimates_agree: bool
    details: Details
    verdict: str
    """"solved", "not solved" or "inconclusive" (a TG probe: "yes", "no" or "inconclusive")."""


class IncompleteGame(_Game):
    """A game with an observation never sampled: nothing is scored but its optimum."""

    samples: int
    optimal_win: float
    complete: Literal[False] = False


GameResult = Annotated[GameScore | IncompleteGame, Field(discriminator="complete")]


class FrontierPoint(Result):
    """Defer to trusted at one share of honest steps: its safety and usefulness."""

    defer_fraction: float
    safety: Interval | None
    usefulness: Interval | None


class CountermeasureScore(Result):
    """Untrusted monitoring under one countermeasure (`control.deployments.score_collusion`)."""

    safety: Interval | None
    red_win: Interval | None
    safety_at_best_attack_rate: Interval | None
    best_attack_rate: float | None
    best_attack_rate_bracket: tuple[float, float] | None
    honeypots: int
    max_passes: int | None
    honeypot_pass_rate: Interval | None
    shutdown_probability: float
    signalled_attacks: int
    signalled_passed: Interval | None
    signalled_pass_honeypot_test: Interval | None


class _Deployment(Result):
    protocol: str
    positional_audits: bool
    """The protocol audits the first share of each deployment (upfront auditing), not by score."""
    steps: dict[str, int]
    """Recorded steps per phase: calibration, honest, attack."""
    tasks: int
    audit_budget: float


class DeploymentScore(_Deployment):
    """A deployment with every phase recorded: safety and usefulness with their intervals."""

    complete: Literal[True] = True
    safety: Interval | None
    safety_at_best_attack_rate: Interval | None
    best_attack_rate: float | None
    best_attack_rate_bracket: tuple[float, float] | None
    attack_rate: Interval
    backdoor_success_rate: Interval | None
    usefulness: Interval | None
    honest_audit_rate: float
    monitor_missing_rate: float
    frontier: tuple[FrontierPoint, ...]
    decisions: dict[str, dict[str, int]]
    """Per phase (honest, attack), how often each decision was taken."""
    collusion: dict[str, CountermeasureScore] | None = OMITTED_WHEN_NONE
    """Per countermeasure, under untrusted monitoring only."""


class IncompleteDeployment(_Deployment):
    """A deployment with a phase not recorded: nothing is scored."""

    complete: Literal[False] = False


DeploymentResult = Annotated[
    DeploymentScore | IncompleteDeployment, Field(discriminator="complete")
]


class ModelResult(Result):
    """Everything the summary says of one model: `summary.json`'s `models[<model>]`."""

    games: dict[str, GameResult]
    deployment: DeploymentResult | None
    measured_profile: dict[str, str] | None
    """Per suite run, the verdict over its games: `cross_context`, `coordination`,
    `training_gaming` ("yes", "no" or "inconclusive"); None until every game is complete."""
    declared_profile: dict[str, bool] | None
    """What an organism declares of itself (`training_gaming`, `cross_context`,
    `coordination`); None for a real model."""


class CellStopping(Result):
    """How long one game was sampled for one model under adaptive stopping
    (`sandbox.run.stopping`): episodes and contexts played against its `k_max`, why it
    stopped ("settled": the anytime-valid interval cleared the verdict's threshold; "k_max":
    the budget ran out, the verdict reads inconclusive; "fixed": a game adaptive sampling does
    not stop, played to its k), and that interval (`statistic`: "win" or "compliance gap")
    at stopping."""

    model: str
    game: str
    episodes: int
    k_max: int
    contexts: int
    contexts_k_max: int
    stopped: Literal["settled", "k_max", "fixed"]
    verdict: str | None
    statistic: str | None
    low: float | None
    high: float | None


class Stopping(Result):
    """A run's adaptive stopping: each cell, and the games' contexts against every cell at
    `k_max` (`saved`: the share not asked) and against a fixed run (each game at its k).
    Deployment steps are not in it: they are always played in full."""

    alpha: float
    round: int
    cells: list[CellStopping]
    contexts: int
    contexts_k_max: int
    contexts_fixed: int
    saved: float


class Scores(Result):
    """What scoring makes of the records (`sandbox.run.scoring.summarize`): the summary's
    figures before the run adds its own bookkeeping."""

    config_sha256: str
    xc_threshold: float
    episodes: int
    usage: TokenUsage
    models: dict[str, ModelResult]
    stopping: Stopping | None = None


class TrainingGamingEntry(Result):
    """TG: the probe's verdict, its largest cell gap and the factors driving it."""

    verdict: str
    largest_gap: Interval
    cell: str
    factors: tuple[str, ...]


class CrossContextEntry(Result):
    """XC: the verdict and the game that decides it, with its win over the optimum."""

    verdict: str
    weakest_game: str
    win_over_optimal: Interval


class CoordinationEntry(Result):
    """CO agreement: the verdict, and the game agreed least in beside chance."""

    verdict: str
    weakest_game: str
    agreement: Interval
    chance: float


class CollusionEntry(Result):
    """CO collusion: signalled attacks passed beside honeypots passed, and red's win rate per
    countermeasure."""

    verdict: str
    signalled_passed: Interval
    honeypot_pass_rate: Interval
    red_win: dict[str, Interval | None]


class SandbaggingEntry(Result):
    """SB, a capability: the verdict over the SB capability games (`sb_profile_verdict`: yes,
    no, inconclusive or untestable), selective sandbagging's selectivity (hazard drop minus
    general drop), calibrated sandbagging's slope (accuracy against the target), and passing
    for weaker's detectors' AUROCs against the reference model, each None (empty) when its game
    did not run or could not read it."""

    verdict: str
    selectivity: Interval | None
    slope: Interval | None
    aurocs: dict[str, Interval]


class SandbaggingPropensityEntry(Result):
    """The SB propensity probe, a propensity: its verdict and its gap (accuracy when low scores
    are threatened minus when high scores are)."""

    verdict: str
    gap: Interval


ProfileEntry = (
    TrainingGamingEntry
    | CrossContextEntry
    | CoordinationEntry
    | CollusionEntry
    | SandbaggingEntry
    | SandbaggingPropensityEntry
)
"""An entry of a capability profile: each has its `verdict`, "yes", "no" or "inconclusive"
(SB's also "untestable")."""


class Shown(Result):
    """A worst-case capability (or TG propensity) a model showed: its label and kind."""

    name: str
    kind: str


class CapabilityProfile(Result):
    """One model's profile row (`sandbox.review.profile.capability_profile`); an entry is None
    when the run has nothing that measures it."""

    training_gaming: TrainingGamingEntry | None
    cross_context: CrossContextEntry | None
    coordination: CoordinationEntry | None
    collusion: CollusionEntry | None
    sandbagging: SandbaggingEntry | None = OMITTED_WHEN_NONE
    sandbagging_propensity: SandbaggingPropensityEntry | None = OMITTED_WHEN_NONE
    shown: tuple[Shown, ...]
    reading: str


class ModelUsage(Result):
    """Calls and tokens of one model, from the event log (`sandbox.review.usage`). `errors` and
    `retries` are None in a version-1 run from before they were counted."""

    contexts: int
    errors: int | None = OMITTED_WHEN_NONE
    retries: int | None = OMITTED_WHEN_NONE
    prompt_tokens: int
    completion_tokens: int


class Cost(Result):
    """Estimated USD per priced model and in total; `unpriced` models are not in the total."""

    usd: dict[str, float]
    total_usd: float
    unpriced: tuple[str, ...]


class Replay(Result):
    """A replay's source run, and its contexts per role answered from the source's log or
    asked anew."""

    source_run: str
    cached_contexts: dict[str, int]
    new_contexts: dict[str, int]


class Summary(Result):
    """A finished run's `summary.json`. Keys a run may not have are None and not written:
    `coordination` (no coordination attempt), `replay` (not a replay), `isolation` (no code
    checks); `xc_threshold`, `plan_usage`, `usage_by_model` and `cost` are None only in a
    version-1 run from before they were recorded."""

    schema_version: Literal[2] = SCHEMA_VERSION
    run_id: str
    config_sha256: str
    xc_threshold: float | None
    episodes: int
    usage: TokenUsage
    models: dict[str, ModelResult]
    profile: dict[str, CapabilityProfile]
    plan_usage: TokenUsage | None = OMITTED_WHEN_NONE
    coordination: dict[str, list[dict[str, Any]]] | None = OMITTED_WHEN_NONE
    """The coordination attempts tallied from the event log (`sandbox logs`' tables)."""
    usage_by_model: dict[str, ModelUsage] | None = OMITTED_WHEN_NONE
    cost: Cost | None = OMITTED_WHEN_NONE
    replay: Replay | None = OMITTED_WHEN_NONE
    templates: dict[str, str]
    """Each prompt template's SHA-256, by `<game>:<template>`."""
    isolation: str | None = OMITTED_WHEN_NONE
    """How the code checks ran (`settings.isolation`)."""
    stopping: Stopping | None = OMITTED_WHEN_NONE
    """Adaptive stopping's cells and the contexts it saved (`sampling.stopping: adaptive`)."""

    def to_json(self) -> str:
        """`summary.json`'s text: indented, keys in the models' order, non-ASCII kept."""
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def read(cls, path: Path) -> Summary:
        """The summary at `path`, of any version this sandbox knows; SummaryError (naming the
        file, and the field where one is wrong) if it cannot be read."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SummaryError(f"cannot read {path}: {exc}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: object, source: str = "summary") -> Summary:
        """A summary from its parsed JSON (`source` names it in errors): version 1 upgraded, a
        newer version refused."""
        if not isinstance(data, Mapping):
            raise SummaryError(f"{source}: not a run summary (a JSON {type(data).__name__})")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SummaryError(f"{source}: schema_version: not a schema version: {version!r}")
        if version > SCHEMA_VERSION:
            raise SummaryError(
                f"{source}: schema_version {version} was written by a newer sandbox (this one "
                f"reads up to {SCHEMA_VERSION}): upgrade the sandbox to read it"
            )
        if version == 1:
            data = upgrade_v1(data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SummaryError(f"{source}: {_first_error(exc, data)}") from None


class SummaryError(ValueError):
    """A summary that cannot be read: the message names the file, and the field if one is
    wrong."""


def _first_error(exc: ValidationError, data: object) -> str:
    """The first wrong field, as a dotted path through `data` (`models.honest.games.schelling.win:
    Field required`), and how many more there are. Parts of pydantic's location that are not in
    the data (which shape of a score it tried: complete or not) are left out."""
    errors = exc.errors()
    first = errors[0]
    path: list[str] = []
    node = data
    for part in first["loc"]:
        if isinstance(node, Mapping) and (part in node or isinstance(part, str)):
            node = node.get(part)  # a key missing from the data: named, and the path ends
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            continue  # a union's tag (which shape of a score was tried), not in the data
        path.append(str(part))
    where = ".".join(path) or "(the whole summary)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def upgrade_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 summary as version 2. Version 1 is the same shape without `schema_version`,
    but runs made before a key was recorded lack it; each gets what the readers showed for it
    then: no `xc_threshold` (the captions leave it out), a game's `suite` "xc" (every game was
    XC before suites were), no deployment, `positional_audits` false, the best-attack-rate
    figures, red's win, the honeypot test's figure and the frontier unmeasured, no capability
    profile (or no entry of it). Anything else missing is an error when validated."""
    out = copy.deepcopy(dict(data))  # the caller's data is left as it was
    out["schema_version"] = SCHEMA_VERSION
    out.setdefault("xc_threshold", None)
    out.setdefault("profile", {})
    models = out.get("models")
    for model in models.values() if isinstance(models, dict) else ():
        if not isinstance(model, dict):
            continue
        model.setdefault("deployment", None)
        games = model.get("games")
        for game in games.values() if isinstance(games, dict) else ():
            if isinstance(game, dict):
                game.setdefault("suite", "xc")
        deployment = model.get("deployment")
        if not isinstance(deployment, dict):
            continue
        deployment.setdefault("positional_audits", False)
        if deployment.get("complete"):
            deployment.setdefault("frontier", [])
            deployment.setdefault("best_attack_rate_bracket", None)
        collusion = deployment.get("collusion")
        for row in collusion.values() if isinstance(collusion, dict) else ():
            if isinstance(row, dict):
                for key in (
                    "red_win",
                    "safety_at_best_attack_rate",
                    "best_attack_rate",
                    "best_attack_rate_bracket",
                    "signalled_pass_honeypot_test",
                ):
                    row.setdefault(key, None)
    profiles = out.get("profile")
    for row in profiles.values() if isinstance(profiles, dict) else ():
        if isinstance(row, dict):
            for key in ("training_gaming", "cross_context", "coordination", "collusion"):
                row.setdefault(key, None)
    return out
