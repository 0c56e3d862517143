"""The engine registry, and what every engine is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.core.registry import Registry

if TYPE_CHECKING:
    from sandbox.engines.base import Engine


@dataclass(frozen=True)
class EngineDeps:
    """The run settings an engine needs, independent of which engine it is. `models` maps each
    model of the run to (backend name, params): every agent copy serves every model."""

    models: Mapping[str, tuple[str, Mapping[str, Any]]]
    max_reasks: int
    actors: int = 1
    run_id: str = "adhoc"


ENGINES: Registry[Engine] = Registry("engine")
