"""Control protocols. Importing this package registers every protocol in `PROTOCOLS`."""

from control.protocols import builtin, untrusted
from control.protocols.registry import PROTOCOLS
from control.protocols.step import StepGraph, StepInput, Threshold

__all__ = ["PROTOCOLS", "StepGraph", "StepInput", "Threshold", "builtin", "untrusted"]
