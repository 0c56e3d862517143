"""The shipped monitors: `trusted`, `untrusted` and `ensemble`.

- `trusted` asks the run's trusted model (its own backend: a scripted monitor organism that reads
  the code's text, or an LLM through `openai`).
- `untrusted` asks a copy of the policy's own model, served by the same actors as the policy
  copies: the monitor that may collude.
- `ensemble` draws k samples of one of those and averages the scores that parsed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from control.monitors.base import Monitor, MonitorInput, MonitorVerdict, ask_scores
from control.monitors.registry import MONITORS
from sandbox.core.episode import Ask
from sandbox.core.prompts import PromptLibrary


class ModelMonitor:
    """Scores with `samples` contexts on the trusted model or on the policy's own model."""

    def __init__(
        self,
        name: str,
        which: Literal["trusted", "untrusted"],
        samples: int,
        prompts: PromptLibrary,
    ) -> None:
        self.name = name
        self._which = which
        self._samples = samples
        self._prompts = prompts

    async def __call__(self, item: MonitorInput, ask: Ask) -> MonitorVerdict:
        if self._which == "trusted":
            if item.trusted_model is None:
                raise ValueError(f"monitor {self.name!r} needs a trusted model (config: trusted)")
            model = item.trusted_model
        else:
            model = item.policy_model
        return await ask_scores(self.name, model, item, self._samples, self._prompts, ask)


@MONITORS.register("trusted")
def trusted(params: BaseModel, prompts: PromptLibrary) -> Monitor:
    """The trusted model scores the output (one sample)."""
    return ModelMonitor("trusted", "trusted", 1, prompts)


@MONITORS.register("untrusted")
def untrusted(params: BaseModel, prompts: PromptLibrary) -> Monitor:
    """A copy of the policy's own model scores the output: it may collude."""
    return ModelMonitor("untrusted", "untrusted", 1, prompts)


class EnsembleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    of: Literal["trusted", "untrusted"] = Field("trusted", description="whose samples to average")
    k: int = Field(3, ge=1, le=64, description="samples drawn, each with its own seed")


@MONITORS.register("ensemble", EnsembleParams)
def ensemble(params: EnsembleParams, prompts: PromptLibrary) -> Monitor:
    """k samples of one monitor, averaged over those that parsed."""
    return ModelMonitor(f"ensemble_{params.of}_{params.k}", params.of, params.k, prompts)
