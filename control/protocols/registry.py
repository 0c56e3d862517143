"""The protocol registry; entries live in the modules beside this one.

A protocol registry entry must declare its interface (`control.protocols.interface`): its params
model derives from `ProtocolParams`. Code outside `control/protocols` reads a protocol through
`PROTOCOLS.interface` (what a configured protocol declares) or `PROTOCOLS.declared` (the facts
that hold whatever its params), never by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from control.protocols.interface import ProtocolParams
from sandbox.core.registry import Registry

if TYPE_CHECKING:
    from control.protocols.step import StepGraph


class ProtocolRegistry(Registry["StepGraph"]):
    """The registry of protocols: a `Registry` whose entries declare a `ProtocolParams`."""

    def register(
        self, name: str, params: type[BaseModel] = ProtocolParams
    ) -> Callable[[Callable[..., StepGraph]], Callable[..., StepGraph]]:
        """Decorator: register `factory(params) -> StepGraph` under `name`; `params` must be a
        `ProtocolParams` (its declared interface)."""
        if not (isinstance(params, type) and issubclass(params, ProtocolParams)):
            raise TypeError(
                f"protocol {name!r}: its params model {params!r} must derive from "
                "control.protocols.interface.ProtocolParams (the protocol's declared interface)"
            )
        return super().register(name, params)

    def declared(self, name: str) -> type[ProtocolParams]:
        """The interface protocol `name` declares (its class attributes: facts that hold for
        any params); an unknown name raises `RegistryError`."""
        model = self.entry(name).params_model
        assert issubclass(model, ProtocolParams), "register admits no other"
        return model

    def interface(
        self, name: str, params: Mapping[str, Any] | BaseModel | None = None
    ) -> ProtocolParams:
        """Protocol `name`'s validated params: its interface as configured (thresholds, monitor
        check). Raises `RegistryError` naming an unknown name or a bad parameter."""
        validated = self.validate_params(name, params)
        assert isinstance(validated, ProtocolParams), "register admits no other"
        return validated


PROTOCOLS = ProtocolRegistry("protocol")
