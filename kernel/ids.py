"""Identifiers that arrive from outside (terminals, HIS exports) and their one pattern each.

They end up in object keys, log lines and URLs, so they are kept to plain characters."""
from __future__ import annotations

import re

INSURED_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SETTLEMENT_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
INSURED_ID_RULE = "1-64 characters: letters, digits, '_' or '-', starting with a letter or digit"
SETTLEMENT_REF_RULE = "1-100 characters: letters, digits and . _ : / -, starting with a letter or digit"


class InvalidInsuredId(ValueError):
    pass


def check_insured_id(insured_id: str) -> str:
    if not INSURED_ID_RE.match(insured_id or ""):
        raise InvalidInsuredId(f"insured id must be {INSURED_ID_RULE}")
    return insured_id


def is_settlement_ref(ref: str | None) -> bool:
    return bool(SETTLEMENT_REF_RE.match(ref or ""))
