"""Backends. Importing this package registers every backend in `BACKENDS`.

A backend whose implementation needs a heavy SDK registers its name and params model from a
light module and imports the implementation on first build (`openai_params`), so a run that
builds only the scripted backend never imports `openai`.
"""

from agents.backends import openai_params, scripted
from agents.backends.base import Backend, BackendError, Completion, CompletionParams
from agents.backends.registry import BACKENDS

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "Completion",
    "CompletionParams",
    "openai_params",
    "scripted",
]
