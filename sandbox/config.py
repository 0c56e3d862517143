"""Run configuration: YAML into pydantic models, `a.b=c` overrides, strict validation.

Every section rejects unknown keys, so a typo fails at once with the key path that holds it
(`ConfigError`), never halfway through a run; registered names and their params are checked
against the registries by `sandbox.run.checks`, before a run starts. This module is the schema
alone: it imports no registry, engine or model stack, so reading a config (scoring, `sandbox show`,
benchmarks) loads neither Ray nor LangGraph. The resolved config is saved with each run and hashed
into its id.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sandbox.core.context import Affordances
from sandbox.core.prompts import DEFAULT_DIR as PROMPTS_DIR
from sandbox.core.registry import did_you_mean


class ConfigError(ValueError):
    """A config or override is invalid. `path` is the dotted key path, `reason` says why.

    A config can be wrong in several places at once; `problems` holds every (path, reason),
    unknown keys first (a typo'd key is usually the cause of the other errors: a required key it
    was meant to be is then "missing"). `path` and `reason` are the first problem's.
    """

    def __init__(self, path: str, reason: str, more: Sequence[tuple[str, str]] = ()) -> None:
        self.path = path
        self.reason = reason
        self.problems: tuple[tuple[str, str], ...] = ((path, reason), *more)
        lines = [f"{p}: {r}" if p else r for p, r in self.problems]
        if len(lines) == 1:
            super().__init__(lines[0])
        else:
            super().__init__(f"{len(lines)} problems:\n" + "\n".join(f"  {x}" for x in lines))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MAX_CONTEXTS = 1_000_000
"""The default bound on a run's planned contexts (`run.max_contexts`): sized for a real budget, a
million contexts of about 1,000 tokens is a billion tokens, hundreds to thousands of dollars
against a hosted model; the shipped configs plan at most a few tens of thousands."""


class RunSection(_Section):
    name: str = Field("sandbox", pattern=r"^[A-Za-z0-9_.-]+$", description="prefix of the run id")
    seed: int = Field(0, description="same config and seed, same results")
    output_dir: Path = Field(Path("runs"), description="runs are written to <output_dir>/<run_id>/")
    max_contexts: int = Field(
        MAX_CONTEXTS,
        ge=1,
        description="a run planning more contexts than this is refused before it starts",
    )


class Named(_Section):
    """A registered entry chosen by name, with that entry's params."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class AgentsSection(_Section):
    copies: int = Field(4, ge=1, description="logical agent copies (agent ids in the events)")
    actors: int = Field(2, ge=1, description="processes serving them (Ray engine)")
    max_reasks: int = Field(
        2, ge=0, description="re-asks after malformed output, then a parse failure"
    )
    error_window: int = Field(
        20, ge=1, description="recent contexts watched for endpoint errors (a dead endpoint)"
    )
    max_error_share: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="the run stops when this share of the last `error_window` contexts failed",
    )


class SamplingSection(_Section):
    k: int = Field(
        100, ge=1, description="samples of each distinct observation (= episodes per game)"
    )
    played_games: int = Field(
        1000, ge=1, description="whole games played from the recorded samples"
    )
    bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for intervals")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="two-sided interval level")
    stopping: Literal["fixed", "adaptive"] = Field(
        "fixed",
        description="fixed: every game gets its k episodes; adaptive: a game is sampled in rounds "
        "and stops once an anytime-valid interval settles its verdict, or at k_max "
        "(docs/adaptive-stopping.md)",
    )
    k_max: int | None = Field(
        None,
        ge=1,
        description="adaptive: the most episodes of one game for one model (default: the "
        "game's k); a game still unsettled there reads inconclusive",
    )
    round: int = Field(
        5, ge=1, description="adaptive: episodes of one game for one model between two looks"
    )
    batch_episodes: int = Field(50, ge=1, description="episodes dispatched to the engine together")
    in_flight_batches: int = Field(2, ge=1, description="batches running at once")


class GameSection(_Section):
    name: str = Field(description="a registered environment")
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="defaults to name")
    params: dict[str, Any] = Field(default_factory=dict)
    affordances: Affordances | None = Field(
        None, description="switches set here override the top-level ones"
    )
    templates: dict[str, Path] = Field(
        default_factory=dict,
        description="template name -> file replacing the packaged one (relative to the config's "
        "directory, and inside it or the package's prompts)",
    )
    k: int | None = Field(
        None, ge=1, description="samples of each observation for this game (default sampling.k)"
    )
    k_max: int | None = Field(
        None,
        ge=1,
        description="adaptive stopping: the most episodes of this game per model (default "
        "sampling.k_max, else this game's k)",
    )

    @property
    def game_id(self) -> str:
        return self.id or self.name


class Price(_Section):
    """What a model's tokens cost, in US dollars per million."""

    prompt_per_mtok: float = Field(ge=0.0, description="USD per million prompt tokens")
    completion_per_mtok: float = Field(ge=0.0, description="USD per million completion tokens")


class ReportSection(_Section):
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="model name -> its token prices, for the run's estimated cost in summary.json",
    )
    xc_threshold: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="a game is solved when its whole win interval is at or above this share of "
        "the optimum, not solved when wholly below, otherwise inconclusive",
    )


class TrustedSection(_Section):
    """The trusted model: weaker, assumed never to scheme; protocols use it to monitor, edit or
    replace the untrusted model's output. It has its own backend."""

    model: str = Field(description="an organism name (scripted) or an API model")
    backend: Named = Field(default_factory=lambda: Named(name="scripted"))


class ControlSection(_Section):
    """A deployment of the code setting under a control protocol (see `control/protocols`)."""

    id: str = Field("deployment", pattern=r"^[A-Za-z0-9_.-]+$", description="its game id")
    protocol: Named = Field(description="a registered protocol; `control.protocol=NAME` works")
    monitor: Named | None = Field(
        None,
        description="a registered monitor; unset, the protocol's own default (trusted, or "
        "untrusted for untrusted_monitoring), filled in by `sandbox.run.checks.check_config`",
    )
    steps: int = Field(
        200, ge=2, description="task steps sampled per phase (calibration, honest, attack)"
    )
    tasks: int = Field(1000, ge=1, description="T: tasks in one simulated deployment")
    audit_budget: float = Field(0.02, ge=0.0, le=1.0, description="audits, a fraction of T")
    deployments: int = Field(10_000, ge=100, description="deployments simulated from the steps")

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("protocol", "monitor"):
                if isinstance(data.get(key), str):
                    data[key] = {"name": data[key]}
        return data


class SettingsSection(_Section):
    """How the task settings of a deployment run the policy's work."""

    isolation: Literal["bwrap", "none"] = Field(
        "bwrap",
        description="code checks run in a bubblewrap sandbox (`bwrap`), or unsandboxed (`none`: "
        "only where bwrap cannot start, e.g. macOS or no user namespaces; recorded in the run)",
    )


class Config(_Section):
    run: RunSection = Field(default_factory=RunSection)
    models: list[str] = Field(
        min_length=1,
        description="the untrusted models under test: organism names (scripted) or API models",
    )
    backend: Named = Field(
        default_factory=lambda: Named(name="scripted"), description="the untrusted models' backend"
    )
    trusted: TrustedSection | None = Field(None, description="the trusted model, if any")
    engine: Named = Field(
        default_factory=lambda: Named(name="ray"), description="a registered engine: ray, local"
    )
    agents: AgentsSection = Field(default_factory=AgentsSection)
    sampling: SamplingSection = Field(default_factory=SamplingSection)
    affordances: Affordances = Field(default_factory=Affordances)
    games: list[GameSection] = Field(default_factory=list)
    control: ControlSection | None = Field(None, description="a deployment under a protocol")
    report: ReportSection = Field(default_factory=ReportSection)
    settings: SettingsSection = Field(default_factory=SettingsSection)

    @model_validator(mode="before")
    @classmethod
    def _engine_by_name(cls, data: Any) -> Any:
        """`engine: ray` with a `ray:` section (configs written before engines were registry
        entries) reads as `engine: {name: ray, params: <the ray section>}`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        engine = data.get("engine", "ray")
        if isinstance(engine, str):
            engine = {"name": engine}
        ray_section = data.pop("ray", None)
        if isinstance(engine, dict) and engine.get("name") == "ray" and ray_section is not None:
            own = engine.get("params") or {}
            params = {**own, **ray_section} if isinstance(ray_section, dict) else ray_section
            engine = {**engine, "params": params}
        data["engine"] = engine
        return data

    @model_validator(mode="after")
    def _unique(self) -> Config:
        if len(set(self.models)) != len(self.models):
            raise ValueError("models must be distinct")
        trusted = self.trusted
        if trusted is not None and trusted.model in self.models and trusted.backend != self.backend:
            raise ValueError(
                f"trusted.model {trusted.model!r} is also an untrusted model, on another backend: "
                "a model name must name one backend"
            )
        if not self.games and self.control is None:
            raise ValueError("nothing to run: give games, a control section, or both")
        if self.sampling.stopping == "fixed":
            adaptive_only = [f"sampling.{k}" for k in ("k_max",) if getattr(self.sampling, k)]
            adaptive_only += [f"games.{i}.k_max" for i, g in enumerate(self.games) if g.k_max]
            if adaptive_only:
                raise ValueError(
                    f"{', '.join(adaptive_only)}: read only with sampling.stopping: adaptive "
                    "(a fixed run plays each game's k)"
                )
        ids = [g.game_id for g in self.games] + ([self.control.id] if self.control else [])
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"game ids must be distinct (set `id`): {', '.join(dupes)}")
        # Resolve each game's affordances now: the top-level ones, with the switches a game sets
        # itself on top. The resolved config then reloads (on resume) to the same contexts.
        for index, game in enumerate(self.games):
            own = game.affordances
            update = {} if own is None else {k: getattr(own, k) for k in own.model_fields_set}
            merged = self.affordances.model_copy(update=update)
            self.games[index] = game.model_copy(update={"affordances": merged})
        return self

    def affordances_for(self, game: GameSection) -> Affordances:
        """The game's affordances: its own switches over the top-level defaults."""
        assert game.affordances is not None, "resolved in validation"
        return game.affordances

    def model_backends(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every model of the run -> (backend name, params): how copies route contexts."""
        routes = {m: (self.backend.name, self.backend.params) for m in self.models}
        if self.trusted is not None:
            routes[self.trusted.model] = (self.trusted.backend.name, self.trusted.backend.params)
        return routes

    def resolved(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        # unset: absent, so the digests of configs written before these keys still match
        for game in data["games"]:
            for key in ("k", "k_max"):
                if game.get(key) is None:
                    game.pop(key)
        if data["sampling"]["stopping"] == "fixed":
            for key in ("stopping", "k_max", "round"):
                data["sampling"].pop(key)
            for game in data["games"]:
                game.pop("k_max", None)
        if not data["report"].get("prices"):
            data["report"].pop("prices", None)
        defaults = AgentsSection()
        for key in ("error_window", "max_error_share"):
            if data["agents"].get(key) == getattr(defaults, key):
                data["agents"].pop(key, None)
        if data["run"].get("max_contexts") == MAX_CONTEXTS:
            data["run"].pop("max_contexts")
        if data["settings"] == SettingsSection().model_dump(mode="json"):
            data.pop("settings")
        return data

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the resolved config."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- loading ----------------------------------------------------------------------------------


def _loc(loc: Iterable[Any]) -> str:
    return ".".join(str(p) for p in loc)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.0.c=value` -> (["a", "b", "0", "c"], value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(text, "an override must look like key.path=value")
    parts = key.strip().split(".")
    if any(not p for p in parts):
        raise ConfigError(key, "empty segment in key path")
    try:
        value = _load_bounded(raw) if raw.strip() else ""
    except _AliasBomb as exc:
        raise ConfigError(key, f"value {raw[:40]!r}...: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(key, f"value {raw!r} is not valid YAML: {exc}") from None
    return parts, value


def apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set `value` at `parts`, creating mappings on the way; list items by index."""
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = node[_index(node, part, where)]
        elif isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(where, f"cannot descend into a {type(node).__name__}")
        if not isinstance(node, dict | list):
            raise ConfigError(where, f"is a {type(node).__name__}, not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, ".".join(parts))] = value
    else:
        node[last] = value


def _index(items: list[Any], part: str, where: str) -> int:
    if not part.isdigit():
        raise ConfigError(where, f"{part!r} is not a list index")
    if int(part) >= len(items):
        raise ConfigError(where, f"index {part} is out of range (the list has {len(items)} items)")
    return int(part)


def config_from_mapping(
    data: Mapping[str, Any], overrides: Iterable[str] = (), *, template_root: Path | None = None
) -> Config:
    """Validate `data` with `overrides` applied. With `template_root` (the directory of a config
    a user gave), every template path resolves against it and must lie inside it or the
    package's prompts (`confined_templates`); without, the paths are taken as recorded (a run's
    own config.yaml, already confined when the run started)."""
    raw: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(raw, parts, value)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    if template_root is not None:
        confined_templates(config, template_root)
    return config


def confined_templates(config: Config, root: Path) -> Config:
    """Resolve every game's template paths against `root` (symlinks and `..` included) into
    absolute paths, in place; raise `ConfigError` for one outside `root` and the package's
    prompts. A template is shown to the models and, with the openai backend, sent to an
    endpoint: a shared config must not be able to name `/etc/shadow` or `~/.ssh/id_rsa` as one."""
    root = root.resolve()
    prompts = Path(str(resources.files("sandbox").joinpath(PROMPTS_DIR))).resolve()
    for index, game in enumerate(config.games):
        resolved = {}
        for name, given in game.templates.items():
            path = (root / given.expanduser()).resolve()  # an absolute `given` replaces root
            if not (path.is_relative_to(root) or path.is_relative_to(prompts)):
                raise ConfigError(
                    f"games.{index}.templates.{name}",
                    f"{given} resolves to {path}, outside the config's directory {root} and the "
                    "package's prompts: a template must be a file in one of them",
                )
            resolved[name] = path
        config.games[index] = game.model_copy(update={"templates": resolved})
    return config


def validation_error(exc: ValidationError) -> ConfigError:
    """Every problem pydantic found, unknown keys first, each with its key path; an unknown key
    says which known key it is close to, or lists the known ones."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    problems = [
        (
            _loc(err["loc"]),
            _unknown_key(Config, tuple(err["loc"]))
            if err["type"] == "extra_forbidden"
            else err["msg"],
        )
        for err in errors
    ]
    return ConfigError(*problems[0], more=problems[1:])


def _unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    known = _keys_at(root, loc[:-1])
    return f"unknown key; {did_you_mean(str(loc[-1]), known)}" if known else "unknown key"


def _keys_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section at `loc` (list indices stepped over), or [] if `loc` is
    not a section of the config model (a free-form mapping such as a game's params)."""
    node: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(node, type) and issubclass(node, BaseModel)):
            return []
        field = node.model_fields.get(str(part))
        if field is None:
            return []
        node = _section_type(field.annotation)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _section_type(annotation: Any) -> Any:
    """`list[X]`, `X | None` -> X: the model a nested key path leads into."""
    while typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return None
        annotation = args[0]
    return annotation


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read YAML at `path`, apply overrides, validate; template paths resolve against the
    config's directory and must stay inside it (or the package's prompts). Raises ConfigError,
    never a traceback."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config {path}: {exc.strerror or exc}") from None
    data = read_yaml(text, path)
    if not isinstance(data, dict):
        raise ConfigError("", f"{path} must hold a mapping at the top level")
    return config_from_mapping(data, overrides, template_root=path.parent)


MAX_YAML_NODES = 100_000
"""The most nodes a config may hold once its aliases are expanded. Aliases let a few lines stand
for exponentially many nodes (nine levels of nine aliases: 387 million), which validation would
then walk for hours; a real config has hundreds."""


class _AliasBomb(yaml.YAMLError):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.problem = message
        self.problem_mark = mark
        self.context = None


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that counts the nodes its aliases stand for, and stops at an alias that
    takes the expanded document past `MAX_YAML_NODES`, or that refers to a node still being
    composed (a recursive structure, which no config needs and JSON cannot hold). Sizes are
    memoised per node (sizes are Python ints, so 9^9 costs nothing to count)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0
        self._sizes: dict[int, int] = {}
        self._open_anchors: list[str] = []  # anchored nodes being composed, outermost first

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if not isinstance(event, yaml.AliasEvent):
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                self._open_anchors.append(anchor)
            try:
                node = super().compose_node(parent, index)
            finally:
                if anchor is not None:
                    self._open_anchors.pop()
            self._expanded += 1
            return node
        mark = event.start_mark
        if event.anchor in self._open_anchors:
            raise _AliasBomb(f"alias *{event.anchor} refers to a node that contains it", mark)
        node = super().compose_node(parent, index)
        assert node is not None, "an alias always names a composed node"
        self._expanded += self._size(node)
        if self._expanded > MAX_YAML_NODES:
            raise _AliasBomb(
                f"aliases expand past {MAX_YAML_NODES:,} nodes (a YAML alias bomb?)", mark
            )
        return node

    def _size(self, node: yaml.Node) -> int:
        """Nodes under `node` with its aliases expanded; memoised, so each node costs once (a
        composed node is complete and acyclic: `compose_node` refused recursive aliases)."""
        key = id(node)
        if key not in self._sizes:
            total = 1
            if isinstance(node, yaml.SequenceNode):
                total += sum(self._size(item) for item in node.value)
            elif isinstance(node, yaml.MappingNode):
                total += sum(self._size(k) + self._size(v) for k, v in node.value)
            self._sizes[key] = total
        return self._sizes[key]


def _load_bounded(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(text: str, path: Path) -> Any:
    """Parse YAML; a syntax error, or aliases expanding past `MAX_YAML_NODES`, is one line
    naming the file, line and column. PyYAML marks where it noticed the problem, which for an
    unclosed `{` or `[` is a later line; the line where the construct opened (its context
    mark) is named too."""
    try:
        return _load_bounded(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        opened = getattr(exc, "context_mark", None)
        if context and opened is not None and (mark is None or opened.line != mark.line):
            context += f" that starts at line {opened.line + 1}, column {opened.column + 1}"
            bracket = {"flow mapping": "{", "flow sequence": "["}
            unclosed = next((b for kind, b in bracket.items() if kind in context), None)
            if unclosed is not None:
                context += f": is its `{unclosed}` closed?"
        detail = f"{problem} ({context})" if context else problem
        raise ConfigError("", f"{where}: not valid YAML: {detail}") from None
