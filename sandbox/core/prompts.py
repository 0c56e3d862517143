"""Prompt templates as data.

Every text a context shows comes from a template file under `sandbox/prompts/` (or a file a
config names instead), rendered with `string.Template` (`$field`). Rendering is strict: a missing
field is an error naming the template, never a silently blank prompt. The library remembers the
SHA-256 of every template it rendered, so a run can record exactly which prompt text it used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from string import Template

DEFAULT_DIR = "prompts"


class PromptError(ValueError):
    """A template is missing, unreadable, or needs a field that was not given."""


class PromptLibrary:
    """Loads templates by name (`<name>.txt`), with per-name file overrides."""

    def __init__(self, overrides: Mapping[str, Path] | None = None) -> None:
        self._overrides = {k: Path(v) for k, v in (overrides or {}).items()}
        self._cache: dict[str, str] = {}
        self._hashes: dict[str, str] = {}

    def source(self, name: str) -> str:
        """The template text for `name`, from its override file or the packaged default."""
        if name not in self._cache:
            if name in self._overrides:
                path = self._overrides[name]
                try:
                    text = path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise PromptError(f"template {name!r}: cannot read {path}: {exc}") from None
            else:
                res = resources.files("sandbox").joinpath(DEFAULT_DIR, f"{name}.txt")
                if not res.is_file():
                    raise PromptError(f"no template named {name!r} in sandbox/prompts/")
                text = res.read_text(encoding="utf-8")
            self._cache[name] = text
            self._hashes[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self._cache[name]

    def render(self, name: str, **fields: object) -> str:
        try:
            return Template(self.source(name)).substitute(fields).strip()
        except KeyError as exc:
            raise PromptError(f"template {name!r} needs field {exc.args[0]!r}") from None
        except ValueError as exc:
            raise PromptError(f"template {name!r} is malformed: {exc}") from None

    def hashes(self) -> dict[str, str]:
        """SHA-256 of each template rendered so far, by name."""
        return dict(sorted(self._hashes.items()))
