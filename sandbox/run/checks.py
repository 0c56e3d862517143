"""Checking a config against the registries: every named entry exists, its params validate, and
what it needs from outside (an API key's variable, template files) is there.

Apart from the config schema (`sandbox.config`) so that reading a config loads no registry. It runs
before a run starts (the CLI, `Runner`), so a typo fails at once with its key path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from sandbox.config import Config, ConfigError, ControlSection, Named
from sandbox.core.registry import Registry, RegistryError, did_you_mean


def check_config(config: Config) -> Config:
    """Raise `ConfigError`, naming the key path, for the first registered name, params or
    outside resource that does not check out; return `config` unchanged otherwise."""
    from sandbox.engines import ENGINES

    _check_named("engine", config.engine.name, config.engine.params, ENGINES)
    _check_backend(
        "backend", config.backend, [(f"models.{i}", m) for i, m in enumerate(config.models)]
    )
    if config.trusted is not None:
        _check_backend(
            "trusted.backend", config.trusted.backend, [("trusted.model", config.trusted.model)]
        )
    _check_games(config)
    if config.control is not None:
        _check_control(config)
        _check_isolation(config)
    _check_budget(config)
    return config


def planned_contexts(config: Config) -> int:
    """The contexts the run plans, counted without listing them: per model, each game's `k`
    episodes (under adaptive stopping, its `k_max`: the most it may play) times its
    observations, and each deployment step's policy and monitor contexts. A lower bound of what
    it asks (shared plans, judges, resamples and re-asks come on top), so a refusal is never a
    false alarm."""
    from sandbox.core.prompts import PromptLibrary
    from sandbox.environments import ENVIRONMENTS
    from sandbox.run.stopping import cell_k_max

    per_model = 0
    for game in config.games:
        env = ENVIRONMENTS.build(game.name, game.params, prompts=PromptLibrary())
        per_model += cell_k_max(config, game.game_id, env) * len(env.observations())
    if config.control is not None:
        per_model += 3 * config.control.steps * 2  # three phases; a policy and a monitor each
    return per_model * len(config.models)


def _check_budget(config: Config) -> None:
    """Refuse a run planning more than `run.max_contexts` contexts, naming what drives it."""
    planned = planned_contexts(config)
    if planned > config.run.max_contexts:
        keys = ["models", "sampling.k", "games.N.k"]
        if config.sampling.stopping == "adaptive":
            keys += ["sampling.k_max", "games.N.k_max"]
        keys += ["control.steps"] if config.control else []
        raise ConfigError(
            "run.max_contexts",
            f"the run plans at least {planned:,} contexts, more than run.max_contexts "
            f"({config.run.max_contexts:,}); they grow with {', '.join(keys)} (raise "
            "run.max_contexts if the budget is meant)",
        )


def _check_isolation(config: Config) -> None:
    """A deployment runs the policies' code: its sandbox must start on this machine, unless the
    config opts out with `settings.isolation: none`."""
    from sandbox.settings.isolation import isolation_problem

    problem = isolation_problem(config.settings.isolation)
    if problem is not None:
        raise ConfigError(
            "settings.isolation",
            f"{problem}. A deployment runs model-written code; to run it unsandboxed on this "
            "machine, set settings.isolation: none (recorded in the run and its report)",
        )


def _check_named(
    path: str, name: str, params: Mapping[str, Any], registry: Registry[Any]
) -> BaseModel:
    """The entry's validated params; errors at `path` (unknown name) or `path.params.<key>`."""
    try:
        return registry.validate_params(name, params)
    except RegistryError as exc:
        if exc.param is None:
            raise ConfigError(path, str(exc)) from None
        raise ConfigError(
            ".".join(p for p in (path, "params", exc.param) if p), exc.reason
        ) from None


def _check_backend(path: str, backend: Named, models: Sequence[tuple[str, str]]) -> None:
    """The backend and its params; its API key's variable is set; a scripted backend's models
    are organisms."""
    from agents.backends import BACKENDS
    from agents.organisms import ORGANISMS

    params = _check_named(path, backend.name, backend.params, BACKENDS)
    key_env = getattr(params, "api_key_env", None)
    if isinstance(key_env, str) and key_env not in os.environ:
        raise ConfigError(
            f"{path}.params.api_key_env",
            f"environment variable {key_env!r} is not set (it must hold the API key; "
            f"name another variable with {path}.params.api_key_env)",
        )
    if backend.name == "scripted":
        for where, model in models:
            if model not in ORGANISMS:
                raise ConfigError(where, f"no organism {model!r}; {did_you_mean(model, ORGANISMS)}")


def _check_games(config: Config) -> None:
    """Each game is registered with valid params, and its template overrides name templates
    it has and files that exist."""
    from sandbox.core.prompts import PromptLibrary
    from sandbox.environments import ENVIRONMENTS

    for i, game in enumerate(config.games):
        _check_named(f"games.{i}", game.name, game.params, ENVIRONMENTS)
        env = ENVIRONMENTS.build(game.name, game.params, prompts=PromptLibrary())
        judged = getattr(getattr(env, "params", None), "reasoning", None) == "judge"
        if judged and config.trusted is None:
            raise ConfigError(
                f"games.{i}.params.reasoning",
                "a judge is the run's trusted model: set trusted.model (and its backend)",
            )
        for name, file in game.templates.items():
            where = f"games.{i}.templates.{name}"
            if name not in env.template_names():
                raise ConfigError(
                    where, f"no such template; known: {', '.join(env.template_names())}"
                )
            if not file.is_file():
                raise ConfigError(where, f"no such file: {file}")


def control_monitor(control: ControlSection) -> Named:
    """The deployment's monitor: `control.monitor`, or when unset the one the protocol declares
    as its default (`ProtocolParams.default_monitor`), so a protocol whose monitor must be a copy
    of the policy needs no monitor named. The config keeps it unset (its digest is the config's
    as written); the runner asks here."""
    from control.protocols import PROTOCOLS

    if control.monitor is not None:
        return control.monitor
    return Named(name=PROTOCOLS.declared(control.protocol.name).default_monitor)


def _check_control(config: Config) -> None:
    """The protocol and monitor (`control_monitor`) are registered with valid params, the
    protocol accepts the monitor (`ProtocolParams.monitor_problem`), and a trusted model is
    configured."""
    from control.monitors import MONITORS
    from control.protocols import PROTOCOLS

    control = config.control
    assert control is not None
    _check_named("control.protocol", control.protocol.name, control.protocol.params, PROTOCOLS)
    protocol = PROTOCOLS.interface(control.protocol.name, control.protocol.params)
    monitor = control_monitor(control)
    _check_named("control.monitor", monitor.name, monitor.params, MONITORS)
    problem = protocol.monitor_problem(monitor.name, monitor.params)
    if problem is not None:
        raise ConfigError("control.monitor", problem)
    if config.trusted is None:
        # the trusted model monitors, edits or replaces, and sets the usefulness scale's zero
        raise ConfigError(
            "trusted", "a control deployment needs a trusted model: set trusted.model"
        )
