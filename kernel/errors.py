"""What a stage says when it refuses a request: an HTTP status, a stable code and a reason for people.

Stages raise subclasses (``FlagError``, ``HoldError``...) without knowing HTTP; the API answers each
one in a single place (api/errors.py as JSON, api/web/common.py as a page)."""
from __future__ import annotations


class Refusal(ValueError):
    def __init__(self, status: int, code: str, reason: str):
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason
