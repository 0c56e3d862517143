"""When to try a failed endpoint call again, and how long to wait first.

A backend owns its retries (the SDK's are off) so that a run can count them, per call and per
model, and so that the wait is ours to state: a server's `Retry-After` (or `retry-after-ms`) is
honoured as given, `0` included (the SDK treats `0` as absent and backs off anyway: `0` here is
at once), a longer wait spread by up to `RetryPolicy.after_jitter` of itself so that calls told
the same thing do not return together;
without one, the wait backs off exponentially with jitter. A server asking for more than
`max_after_s` is not waited for: the call fails at once (a quota reset hours away is a dead
endpoint for this run, better reported than slept through).

Pure: the caller passes the random draw, so the delays are testable exactly.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
"""HTTP statuses worth another try: a timeout, a conflict, a rate limit, a server fault."""


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` tries after the first; backoff `initial_s * 2**n`, capped at `max_s`, times
    a jitter factor in `[1 - backoff_jitter, 1]`."""

    max_retries: int = 8
    initial_s: float = 0.5
    max_s: float = 8.0
    backoff_jitter: float = 0.25
    after_jitter: float = 0.25
    max_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.initial_s < 0 or self.max_s < 0 or self.max_after_s < 0:
            raise ValueError(f"retry policy values must be >= 0: {self}")
        if not (0 <= self.backoff_jitter <= 1 and self.after_jitter >= 0):
            raise ValueError(f"retry jitter out of range: {self}")

    def delay(self, retry: int, retry_after: float | None, draw: float) -> float | None:
        """Seconds to wait before retry number `retry` (0 for the first), given the server's
        `retry_after` (None: it named none) and a uniform `draw` in [0, 1); None when the
        server asks for longer than `max_after_s` (do not retry)."""
        if retry_after is not None:
            if retry_after > self.max_after_s:
                return None
            return max(0.0, retry_after) * (1 + self.after_jitter * draw)
        backoff = min(self.initial_s * 2.0 ** min(retry, 60), self.max_s)
        return backoff * (1 - self.backoff_jitter * draw)


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: float | None = None
) -> float | None:
    """The wait a response asks for: `retry-after-ms`, else `retry-after` as seconds or as an
    HTTP date; None when it names none (or names it unreadably). Header names are matched
    case-insensitively; `now` (epoch seconds) is for tests."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = lower.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) else math.inf
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        when = email.utils.mktime_tz(parsed)
    except (TypeError, ValueError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
