"""Identifiers that arrive from outside (terminals, HIS exports, operators) and their one pattern each.

They end up in object keys, log lines, URLs and database keys, so they are kept to plain characters.
Every pattern is anchored with ``\\A`` and ``\\Z``: ``$`` also matches before a trailing newline, so
``"SECNL\\n"`` would pass as an id that differs from ``"SECNL"`` (enrolled under one, never erased by the
other). Check with ``fullmatch`` (the ``is_*``/``check_*`` helpers here) or the patterns' ``match``.
"""
from __future__ import annotations

import re

INSURED_ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
STAFF_ID_RE = INSURED_ID_RE  # the same plain characters: staff ids end up in object keys and URLs too
SETTLEMENT_REF_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}\Z")
# organisations, terminals and cameras
ENTITY_ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
CAMERA_ID_RE = ENTITY_ID_RE
# a counter of a settlement row, and what a camera covers (the two are matched against each other)
COUNTER_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}\Z")
USERNAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")  # web logins
REQUEST_ID_RE = re.compile(r"\A[A-Za-z0-9._:-]{1,64}\Z")  # a caller's X-Request-ID is echoed and logged

INSURED_ID_RULE = "1-64 characters: letters, digits, '_' or '-', starting with a letter or digit"
SETTLEMENT_REF_RULE = "1-100 characters: letters, digits and . _ : / -, starting with a letter or digit"


class InvalidInsuredId(ValueError):
    pass


def _full(pattern: re.Pattern, value) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def check_insured_id(insured_id: str) -> str:
    if not _full(INSURED_ID_RE, insured_id):
        raise InvalidInsuredId(f"insured id must be {INSURED_ID_RULE}")
    return insured_id


def is_insured_id(value) -> bool:
    return _full(INSURED_ID_RE, value)


def is_staff_id(value) -> bool:
    return _full(STAFF_ID_RE, value)


def is_settlement_ref(ref: str | None) -> bool:
    return _full(SETTLEMENT_REF_RE, ref)


def is_entity_id(value) -> bool:
    return _full(ENTITY_ID_RE, value)


def is_camera_id(value) -> bool:
    return _full(CAMERA_ID_RE, value)


def is_counter(value) -> bool:
    return _full(COUNTER_RE, value)


def is_username(value) -> bool:
    return _full(USERNAME_RE, value)


def is_request_id(value) -> bool:
    return _full(REQUEST_ID_RE, value)
