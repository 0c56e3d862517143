"""The environment registry; entries live in the modules beside this one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.core.registry import Registry

if TYPE_CHECKING:
    from sandbox.environments.base import Environment

ENVIRONMENTS: Registry[Environment] = Registry("environment")
