"""Control protocols. Importing this package registers every protocol in `PROTOCOLS`.

A protocol is a module here and a registry entry: its params model declares its interface
(`ProtocolParams`), through which everything outside this package reads it (never by name).
"""

from control.protocols import builtin, untrusted
from control.protocols.interface import ProtocolParams
from control.protocols.registry import PROTOCOLS
from control.protocols.step import StepGraph, StepInput, Threshold

__all__ = [
    "PROTOCOLS",
    "ProtocolParams",
    "StepGraph",
    "StepInput",
    "Threshold",
    "builtin",
    "untrusted",
]
