"""Engines. Importing this package registers `local` and `ray` in `ENGINES`."""

from sandbox.engines import local, ray_engine
from sandbox.engines.base import Engine
from sandbox.engines.registry import ENGINES, EngineDeps

__all__ = ["ENGINES", "Engine", "EngineDeps", "local", "ray_engine"]
