"""Reading a choice out of free model text."""

from __future__ import annotations

import re
from collections.abc import Sequence

_ANSWER = re.compile(r"^\W*answer\W*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_STRIP = "`*_\"'.,;:!()[]<> \t"


def parse_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice named on the last `ANSWER: <choice>` line, matched case-insensitively.

    The whole line, less surrounding markdown and punctuation (`**GO**`, `go.`), must be one
    choice: "not GO", "GOOD" or "GO or WAIT" name none, since reading a choice into them would
    invent a commitment the model never made. Returns None when there is no such line or it
    names no allowed choice. With no `choices` (free text, such as a shared plan), any non-blank
    text is the answer and the result is "".
    """
    if not choices:
        return "" if text.strip() else None
    matches = _ANSWER.findall(text)
    if not matches:
        return None
    said = matches[-1].strip(_STRIP).casefold()
    for choice in choices:
        if said == choice.casefold():
            return choice
    return None
