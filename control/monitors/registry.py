"""The monitor registry; entries live in the modules beside this one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.core.registry import Registry

if TYPE_CHECKING:
    from control.monitors.base import Monitor

MONITORS: Registry[Monitor] = Registry("monitor")
