"""Every registered entry builds with its default params, so no entry rots unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from agents.backends import BACKENDS
from agents.organisms import ORGANISMS, Profile
from sandbox.core.prompts import PromptLibrary
from sandbox.core.registry import Registry, RegistryError
from sandbox.engines import ENGINES, EngineDeps
from sandbox.environments import ENVIRONMENTS, Environment


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_every_environment_builds_and_renders(name: str) -> None:
    env = ENVIRONMENTS.build(name, {}, prompts=PromptLibrary())
    assert isinstance(env, Environment)
    assert env.observations() and 0.0 < env.optimal_win() <= 1.0
    assert len(env.load_templates()) == len(env.template_names())


@pytest.mark.parametrize("name", list(ORGANISMS))
def test_every_organism_builds_with_a_profile(name: str) -> None:
    assert isinstance(ORGANISMS.build(name).profile, Profile)


def test_every_backend_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_TEST_KEY", "not-a-real-key")
    params = {"scripted": {}, "openai": {"api_key_env": "SANDBOX_TEST_KEY"}}
    assert set(BACKENDS) == set(params)
    for name in BACKENDS:
        backend = BACKENDS.build(name, params[name], model="honest")
        assert backend.model == "honest"


LAZY_SDK = """
import os, sys
from agents.backends import BACKENDS
import control.protocols, sandbox.cli, sandbox.engines, sandbox.run.checks, sandbox.run.runner
BACKENDS.validate_params("openai", {"base_url": "http://127.0.0.1:9/v1"})
BACKENDS.build("scripted", {}, model="honest")
assert "openai" not in sys.modules, "the scripted path imported the openai SDK"
os.environ["SANDBOX_TEST_KEY"] = "not-a-real-key"
backend = BACKENDS.build("openai", {"api_key_env": "SANDBOX_TEST_KEY"}, model="m")
assert "openai" in sys.modules and type(backend).__name__ == "OpenAIBackend"
"""


def test_openai_sdk_is_imported_only_when_its_backend_is_built() -> None:
    """A run on scripted backends never pays for the SDK's import (about 0.4 s a process): the
    registry, the runner and a config check of the openai entry's params leave it unimported,
    and building the openai backend imports it. In a fresh interpreter, where nothing else of
    the test session has imported it."""
    subprocess.run(
        [sys.executable, "-c", LAZY_SDK], check=True, cwd=Path(__file__).resolve().parents[1]
    )


def test_every_engine_builds() -> None:
    deps = EngineDeps(models={"honest": ("scripted", {})}, max_reasks=1)
    for name in ENGINES:
        assert hasattr(ENGINES.build(name, None, deps=deps), "run")


def test_registry_rejects_duplicates_unknowns_and_bad_params() -> None:
    class Params(BaseModel):
        x: int = 1

    reg: Registry[int] = Registry("thing")
    reg.register("a", Params)(lambda p: p.x)
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("a", Params)(lambda p: p.x)
    with pytest.raises(RegistryError, match="unknown thing 'b'; known: a"):
        reg.build("b")
    with pytest.raises(RegistryError, match="x: Input should be a valid integer"):
        reg.build("a", {"x": "many"})
    assert reg.build("a", {"x": 3}) == 3


def test_openai_backend_names_missing_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.backends import BackendError

    monkeypatch.delenv("SANDBOX_MISSING_KEY", raising=False)
    with pytest.raises(BackendError, match="'SANDBOX_MISSING_KEY' is not set"):
        BACKENDS.build("openai", {"api_key_env": "SANDBOX_MISSING_KEY"}, model="m")
