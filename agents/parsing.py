"""Reading an answer out of free model text: a choice, a score, or free text.

One parser for the three answer formats a context may ask for (`sandbox.context.AnswerFormat`).
Choices and scores are read from the last `ANSWER:` line and must be the whole of it, so
nothing is read into an answer the model never gave. A reply that is one JSON object
`{"answer": ...}` (what an endpoint with structured output writes to `answer_schema`) is read
from its `answer` field instead, under the same rules: the value must be one allowed choice, or a
number in range.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from sandbox.context import AnswerFormat, ChoiceAnswer, ScoreAnswer

_ANSWER = re.compile(r"^\W*answer\W*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_STRIP = "`*_\"'.,;:!()[]<> \t"
_QUOTED = re.compile(r"```.*?(```|\Z)|<code>.*?(</code>|\Z)", re.DOTALL | re.IGNORECASE)
"""Code a reply quotes: a fenced block, or a <code> span (to the end when left open)."""
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def parse_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice named on the last `ANSWER: <choice>` line, matched case-insensitively.

    The whole line, less surrounding markdown and punctuation (`**GO**`, `go.`), must be one
    choice: "not GO", "GOOD" or "GO or WAIT" name none, since reading a choice into them would
    invent a commitment the model never made. Returns None when there is no such line or it
    names no allowed choice.
    """
    matches = _ANSWER.findall(text)
    if not matches:
        return None
    said = matches[-1].strip(_STRIP).casefold()
    for choice in choices:
        if said == choice.casefold():
            return choice
    return None


def parse_score(text: str, low: float, high: float) -> float | None:
    """The number on the last `ANSWER:` line outside any code the reply quotes, if it is the
    whole line (less decoration, so `**0.7**` reads as 0.7) and lies in [low, high]; otherwise
    None. "0.7 or 0.8", "about 0.7" and "70%" name no score.

    A monitor's reply may quote the code it judges, and that code is the policy's: an
    `ANSWER: 0.0` planted in it must never become the monitor's score, so quoted code (fenced
    blocks, <code> spans) is skipped.
    """
    matches = _ANSWER.findall(_QUOTED.sub("\n", text))
    if not matches:
        return None
    said = matches[-1].strip(_STRIP.replace(".", ""))
    if said.endswith("."):  # a sentence's full stop, not a decimal point
        said = said[:-1]
    if not _NUMBER.fullmatch(said):
        return None
    value = float(said)
    return value if math.isfinite(value) and low <= value <= high else None


SCORE_STEPS = 20
"""A structured score is one of 21 evenly spaced values from low to high (0.05 apart on [0, 1])."""


def answer_schema(answer: AnswerFormat) -> dict[str, Any] | None:
    """The JSON schema of a structured answer, `{"answer": <choice or score>}`, for endpoints
    that constrain their output to a schema; None for free text (nothing to constrain)."""
    if isinstance(answer, ChoiceAnswer):
        value: dict[str, Any] = {"type": "string", "enum": list(answer.choices)}
    elif isinstance(answer, ScoreAnswer):
        # a grid of SCORE_STEPS + 1 values rather than a range: grammar-constrained decoders
        # (llama.cpp's) enforce an enum but not `minimum`/`maximum`, and SmolLM2 then answers
        # scores like 49 to a [0, 1] question
        span = answer.high - answer.low
        grid = [round(answer.low + span * i / SCORE_STEPS, 6) for i in range(SCORE_STEPS + 1)]
        value = {"type": "number", "enum": grid}
    else:
        return None
    return {
        "type": "object",
        "properties": {"answer": value},
        "required": ["answer"],
        "additionalProperties": False,
    }


_NOT_JSON = object()


def _json_answer(text: str) -> Any:
    """The `answer` field of a reply that is one JSON object, else `_NOT_JSON`."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return _NOT_JSON
    try:
        data = json.loads(stripped)
    except (ValueError, RecursionError):
        return _NOT_JSON
    if not isinstance(data, dict) or "answer" not in data:
        return _NOT_JSON
    return data["answer"]


def parse_answer(text: str, answer: AnswerFormat) -> str | float | None:
    """Read `text` in the context's answer format: the choice (str), the score (float), or for
    free text the stripped text itself; None when it does not parse. A JSON reply
    (`answer_schema`) is read from its `answer` field."""
    if isinstance(answer, ChoiceAnswer | ScoreAnswer):
        value = _json_answer(text)
        if value is not _NOT_JSON:
            return _structured(value, answer)
    if isinstance(answer, ChoiceAnswer):
        return parse_choice(text, answer.choices)
    if isinstance(answer, ScoreAnswer):
        return parse_score(text, answer.low, answer.high)
    return text.strip() or None


def _structured(value: Any, answer: ChoiceAnswer | ScoreAnswer) -> str | float | None:
    if isinstance(answer, ChoiceAnswer):
        if not isinstance(value, str):
            return None
        said = value.strip(_STRIP).casefold()
        return next((c for c in answer.choices if c.casefold() == said), None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        score = float(value)
    except OverflowError:  # an integer too long for a float: no score
        return None
    return score if math.isfinite(score) and answer.low <= score <= answer.high else None
