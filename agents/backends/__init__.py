"""Backends. Importing this package registers every backend in `BACKENDS`."""

from agents.backends import openai_backend, scripted
from agents.backends.base import Backend, BackendError, Completion, CompletionParams
from agents.backends.registry import BACKENDS

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "Completion",
    "CompletionParams",
    "openai_backend",
    "scripted",
]
