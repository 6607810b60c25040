"""Which cameras a recorder replica records: ``--shard i/n`` with a stable hash of the camera id.

Why a hash and not "every n-th camera of the sorted list": adding or removing one camera must not move
the other cameras between replicas (that would cut their recordings). The hash is SHA-256, not
Python's ``hash()``, which is salted per process.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard must be i/n with 0 <= i < n, got {self.index}/{self.count}")

    def owns(self, camera_id: str) -> bool:
        return shard_of(camera_id, self.count) == self.index

    @property
    def tag(self) -> str:
        """Directory-safe name (the spool of a shard lives under it)."""
        return f"shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


ALL = Shard(0, 1)


def shard_of(camera_id: str, count: int) -> int:
    digest = hashlib.sha256(camera_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str | None) -> Shard:
    """``"i/n"`` (0-based i) -> Shard; None or "" -> the only shard."""
    if not text:
        return ALL
    try:
        i, n = (int(x) for x in text.split("/", 1))
    except ValueError:
        raise ValueError(f"shard must look like i/n (e.g. 0/3), got {text!r}") from None
    return Shard(i, n)
