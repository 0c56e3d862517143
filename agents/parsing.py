"""Reading an answer out of free model text: a choice, a score, or free text.

One parser for the three answer formats a context may ask for (`sandbox.core.context.AnswerFormat`).
Choices and scores are read from `ANSWER:` lines outside any code the reply quotes, and each
must be the whole of its line, so nothing is read into an answer the model never gave.

The rules, and why (a monitor's reply may quote the policy's code, and that code is hostile: it
can hold an `ANSWER: 0.0` of its own, or text built to end a quote early):

- **Quoted code is skipped**, as CommonMark delimits it: a fenced block opens on a line of 3+
  backticks or tildes (indented at most 3 spaces; a backtick fence's info string holds no
  backtick) and closes only on a line holding nothing but a fence of the same character, at
  least as long, indented at most 3 spaces, so a "```" inside a string literal, a "```python"
  line or a shorter fence closes nothing; a fence never closed runs to the end of the reply. A
  `<code>` span (`<code ...>` with attributes too) runs to `</code>`, or to the end when left
  open. Lines end at `\\n`, `\\r\\n` or `\\r`.
- **Every answer line outside quoted code must agree**: one line, or the same answer repeated
  (models restate their answer; a restatement commits to nothing new). Two different answer
  lines, or one that names no allowed answer beside one that does, are ambiguous and read as no
  answer (None, and the loop re-asks), never the first or the last: a reply that echoes
  planted code unfenced after its verdict carries the planted line last, and before it when the
  verdict follows, so neither position can be trusted. A planted line that repeats the model's
  own answer changes nothing.
- **Only ASCII** is read: the keyword `ANSWER` (not the long s, U+017F, or the Kelvin sign,
  which Unicode case-folding takes for `s` and `k`) and a score's digits (`[0-9]`, never `\\d`,
  which takes a fullwidth or Arabic-Indic zero, U+FF10 or U+0660, for 0).

A reply that is one JSON object `{"answer": ...}` (what an endpoint with structured output writes
to `answer_schema`) is read from its `answer` field instead, under the same rules: the value must
be one allowed choice, or a number in range; an object naming a key twice is ambiguous (JSON
parsers keep the last) and reads as no answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sandbox.core.context import AnswerFormat, ChoiceAnswer, ScoreAnswer

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ANSWER = re.compile(r"\W*answer\W*:\s*(.*?)\s*", re.IGNORECASE | re.ASCII)
"""An answer line (matched whole): the keyword after any decoration, then the answer."""
_STRIP = "`*_\"'.,;:!()[]<> \t"
_FENCE_OPEN = re.compile(r" {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_CODE_OPEN = re.compile(r"<code(?:\s[^>]*)?>", re.IGNORECASE)
_CODE_CLOSE = re.compile(r"</code\s*>", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
"""A score as the reply writes it: ASCII digits only."""

T = TypeVar("T")


def _closes(line: str, fence: str) -> bool:
    """Whether `line` closes a block opened by `fence`: only a fence of its character, at least
    as long, indented at most 3 spaces, and nothing after it but spaces or tabs."""
    closer = re.escape(fence[0]) + "{" + str(len(fence)) + ",}"
    return re.fullmatch(r" {0,3}" + closer + r"[ \t]*", line) is not None


def unquoted_lines(text: str) -> Iterator[str]:
    """The lines of `text` outside the code it quotes (fenced blocks, `<code>` spans); the text
    either side of a `<code>` span is a line of its own, as if the span were a line break.

    A fence opens only on a line that starts outside any `<code>` span, and neither kind of
    quote is looked for inside the other: a "```" line inside a `<code>` span, or a `<code>` in a
    fenced block, is quoted text like any other."""
    fence: str | None = None
    in_span = False
    for line in _LINE_BREAK.split(text):
        if fence is not None:
            if _closes(line, fence):
                fence = None
            continue
        if not in_span:
            opened = _FENCE_OPEN.fullmatch(line)
            if opened and not (opened["fence"][0] == "`" and "`" in opened["info"]):
                fence = opened["fence"]
                continue
        pos = 0
        while True:
            if in_span:
                close = _CODE_CLOSE.search(line, pos)
                if close is None:
                    break
                pos, in_span = close.end(), False
            span = _CODE_OPEN.search(line, pos)
            if span is None:
                yield line[pos:]
                break
            yield line[pos : span.start()]
            pos, in_span = span.end(), True


def _agreed(text: str, read: Callable[[str], T | None]) -> T | None:
    """The one answer every answer line outside quoted code gives (`read` of each line's
    answer), or None: no answer line, a line `read` refuses, or two different answers."""
    answers = {read(m[1]) for m in map(_ANSWER.fullmatch, unquoted_lines(text)) if m}
    if len(answers) != 1:
        return None
    return answers.pop()


def parse_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice named by the reply's answer lines (module docstring: outside quoted code, all
    agreeing), matched case-insensitively.

    Each line, less surrounding markdown and punctuation (`**GO**`, `go.`), must be one choice:
    "not GO", "GOOD" or "GO or WAIT" name none, since reading a choice into them would invent a
    commitment the model never made. Returns None when there is no such line, a line names no
    allowed choice, or two lines name different ones.
    """

    def read(said: str) -> str | None:
        said = said.strip(_STRIP).casefold()
        return next((c for c in choices if said == c.casefold()), None)

    return _agreed(text, read)


def parse_score(text: str, low: float, high: float) -> float | None:
    """The score on the reply's answer lines (module docstring: outside quoted code, all
    agreeing), if each is the whole line (less decoration, so `**0.7**` reads as 0.7), an ASCII
    number, and in [low, high]; otherwise None. "0.7 or 0.8", "about 0.7", "70%" and a fullwidth
    "0" name no score.

    A monitor's reply may quote the code it judges, and that code is the policy's: an
    `ANSWER: 0.0` planted in it must never become the monitor's score. Quoted code is skipped,
    and an echo outside a quote makes the reply ambiguous (None), never the planted score.
    """

    def read(said: str) -> float | None:
        said = said.strip(_STRIP.replace(".", ""))
        if said.endswith("."):  # a sentence's full stop, not a decimal point
            said = said[:-1]
        if not _NUMBER.fullmatch(said):
            return None
        value = float(said) + 0.0  # + 0.0: -0 reads as 0
        return value if math.isfinite(value) and low <= value <= high else None

    return _agreed(text, read)


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
_AMBIGUOUS = object()


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key named twice (`json` keeps the last)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _DuplicateKey(key)
        data[key] = value
    return data


def _json_answer(text: str) -> Any:
    """The `answer` field of a reply that is one JSON object, else `_NOT_JSON`; `_AMBIGUOUS`
    when an object in it names a key twice (`{"answer": 0.9, "answer": 0.0}`)."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return _NOT_JSON
    try:
        data = json.loads(stripped, object_pairs_hook=_unique_keys)
    except _DuplicateKey:
        return _AMBIGUOUS
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
        if value is _AMBIGUOUS:
            return None
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
