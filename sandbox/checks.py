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

from sandbox.config import Config, ConfigError, Named
from sandbox.registry import Registry, RegistryError, did_you_mean


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
    _check_budget(config)
    return config


def planned_contexts(config: Config) -> int:
    """The contexts the run plans, counted without listing them: per model, each game's `k`
    episodes times its observations, and each deployment step's policy and monitor contexts.
    A lower bound of what it asks (shared plans, judges, resamples and re-asks come on top), so
    a refusal is never a false alarm."""
    from sandbox.environments import ENVIRONMENTS
    from sandbox.prompts import PromptLibrary

    per_model = 0
    for game in config.games:
        env = ENVIRONMENTS.build(game.name, game.params, prompts=PromptLibrary())
        per_model += (game.k or config.sampling.k) * len(env.observations())
    if config.control is not None:
        per_model += 3 * config.control.steps * 2  # three phases; a policy and a monitor each
    return per_model * len(config.models)


def _check_budget(config: Config) -> None:
    """Refuse a run planning more than `run.max_contexts` contexts, naming what drives it."""
    planned = planned_contexts(config)
    if planned > config.run.max_contexts:
        keys = ["models", "sampling.k", "games.N.k"] + (["control.steps"] if config.control else [])
        raise ConfigError(
            "run.max_contexts",
            f"the run plans at least {planned:,} contexts, more than run.max_contexts "
            f"({config.run.max_contexts:,}); they grow with {', '.join(keys)} (raise "
            "run.max_contexts if the budget is meant)",
        )
