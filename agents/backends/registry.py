"""The backend registry; entries live in the modules beside this one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.core.registry import Registry

if TYPE_CHECKING:
    from agents.backends.base import Backend

BACKENDS: Registry[Backend] = Registry("backend")
