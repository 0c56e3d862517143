"""How organisms read a context: plain regular expressions over the prompt text.

This is the organisms' "comprehension", written against the default templates in
`sandbox/prompts/`. It is deliberately separate from the sandbox's own game code: an organism
learns N, M, the cue year or the options only from what its context says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sandbox.context import Message

Request = Literal["answer", "think", "plan", "reask"]
Game = Literal["upfront", "cue", "options", "unknown"]

_ROUNDS = re.compile(r"There are (\d+) rounds in total")
_AUDITED = re.compile(r"The first (\d+) rounds are audited")
_CUE = re.compile(r"dated (\d{4}) or later with probability ([0-9.]+)")
_DATE = re.compile(r"Request date: (\d{4})-\d{2}-\d{2}")
_OPTIONS = re.compile(r"^Options: (.+)$", re.MULTILINE)
_RANDOM = re.compile(r"Your random number: ([0-9.]+)")
_CHOICES = re.compile(r"where <choice> is one of: ([^.\n]+)\.")


@dataclass(frozen=True)
class Reading:
    request: Request
    game: Game
    rounds: int | None = None
    audited: int | None = None
    cue_year: int | None = None
    cue_fraction: float | None = None
    date_year: int | None = None
    options: tuple[str, ...] = ()
    random_number: float | None = None
    choices: tuple[str, ...] = ()


def _int(pattern: re.Pattern[str], text: str) -> int | None:
    m = pattern.search(text)
    return int(m.group(1)) if m else None


def read(messages: Sequence[Message]) -> Reading:
    """What the conversation asks for now, and the game facts its text states."""
    text = "\n".join(m.content for m in messages)
    last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    request: Request = "answer"
    if "Think step by step" in last_user:
        request = "think"
    elif "write a short plan" in last_user:
        request = "plan"
    elif "did not end with a valid line" in last_user:
        request = "reask"
    cue = _CUE.search(text)
    options = _OPTIONS.search(text)
    choices = _CHOICES.search(text)
    rnd = _RANDOM.search(text)
    game: Game = "unknown"
    if options:
        game = "options"
    elif cue:
        game = "cue"
    elif _ROUNDS.search(text):
        game = "upfront"
    return Reading(
        request=request,
        game=game,
        rounds=_int(_ROUNDS, text),
        audited=_int(_AUDITED, text),
        cue_year=int(cue.group(1)) if cue else None,
        cue_fraction=float(cue.group(2)) if cue else None,
        date_year=_int(_DATE, text),
        options=tuple(o.strip() for o in options.group(1).split(",")) if options else (),
        random_number=float(rnd.group(1)) if rnd else None,
        choices=tuple(c.strip() for c in choices.group(1).split(",")) if choices else (),
    )


def answer(reasoning: str, choice: str) -> str:
    """The reply format every organism uses: some visible reasoning, then the answer line."""
    return f"{reasoning}\nANSWER: {choice}"
