"""The protocol registry; entries live in the modules beside this one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.registry import Registry

if TYPE_CHECKING:
    from control.protocols.step import StepGraph

PROTOCOLS: Registry[StepGraph] = Registry("protocol")
