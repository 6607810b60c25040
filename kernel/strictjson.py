"""JSON with one meaning: an object that names a key twice is refused, not read as its last value.

``json.loads`` keeps the last of repeated keys, while other parsers (and people reading the row) may
take the first: a settlement with two ``amount``s could be checked as one amount and paid as another.
"""
from __future__ import annotations

import json


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(f"the key {key[:40]!r} appears twice in one object")
        self.key = key


def unique_object(pairs: list[tuple[str, object]]) -> dict:
    """``object_pairs_hook`` for json.loads: a dict, or DuplicateKey."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(k)
        out[k] = v
    return out


def loads_unique(text: str | bytes):
    """json.loads that refuses repeated keys (DuplicateKey; other errors as json.loads raises them)."""
    return json.loads(text, object_pairs_hook=unique_object)
