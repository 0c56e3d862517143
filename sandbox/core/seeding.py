"""Deterministic seeds derived from names, so results do not depend on scheduling order."""

from __future__ import annotations

import hashlib

SEED_BITS = 31  # fits the `seed` field of any OpenAI-compatible API


def derive_seed(*parts: object) -> int:
    """A stable seed from any parts (run seed, model, game, episode index, ...).

    Python's `hash()` is salted per process; this is not, so a Ray worker, a resumed run and a
    served organism all derive the same seed from the same names.
    """
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - SEED_BITS)
