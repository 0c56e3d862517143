"""Name -> factory registries with a pydantic params model per entry.

Every pluggable kind (environment, organism, backend, engine, and later monitors and protocols)
has one `Registry`. An entry is registered explicitly by a decorator in the module that defines
it; the package's `__init__` imports those modules, so the set of entries is visible in one place
rather than scattered across import side effects. YAML names an entry as `{name, params}`; the
params are validated against the entry's model, so a typo in a parameter fails before a run starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T")


class NoParams(BaseModel):
    """Params model for entries that take none; rejects any key."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """ "did you mean 'x'?" for the closest known name, or the list of known names."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known: {', '.join(names) or 'none'}"


class RegistryError(LookupError):
    """An unknown name or invalid params for a registered entry. `param` is the dotted path of
    the first bad parameter inside params, when there is one."""

    def __init__(self, message: str, param: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.reason = reason or message


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    params_model: type[BaseModel]
    factory: Callable[..., T]
    doc: str


class Registry(Generic[T]):
    """A named collection of factories of one kind (for example, every environment)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, params: type[BaseModel] = NoParams
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register `factory(params, **deps) -> T` under `name`."""

        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            doc = (factory.__doc__ or "").strip().splitlines()
            self._entries[name] = Entry(name, params, factory, doc[0] if doc else "")
            return factory

        return add

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; {did_you_mean(name, self._entries)}"
            ) from None

    def validate_params(self, name: str, params: Mapping[str, Any] | BaseModel | None) -> BaseModel:
        """Check `params` against the entry's model; raises RegistryError naming the bad key."""
        model = self.entry(name).params_model
        if isinstance(params, model):
            return params
        raw = params.model_dump() if isinstance(params, BaseModel) else dict(params or {})
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            # unknown keys first: a typo'd key is usually why a required one is missing
            errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
            messages = [
                f"unknown key; {did_you_mean(str(e['loc'][-1]), model.model_fields)}"
                if e["type"] == "extra_forbidden" and len(e["loc"]) == 1
                else e["msg"]
                for e in errors
            ]
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<params>'}: {msg}"
                for err, msg in zip(errors, messages, strict=True)
            )
            first = ".".join(str(p) for p in errors[0]["loc"])  # "" for the params as a whole
            raise RegistryError(
                f"{self.kind} {name!r} params: {problems}",
                param=first,
                reason=f"{self.kind} {name!r}: {messages[0]}",
            ) from None

    def build(
        self, name: str, params: Mapping[str, Any] | BaseModel | None = None, **deps: Any
    ) -> T:
        """Validate params and call `factory(params, **deps)`."""
        return self.entry(name).factory(self.validate_params(name, params), **deps)
