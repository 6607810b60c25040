"""Settlements in: validation and idempotent import, with a reason for every refused row.

Policy (docs/correlation.md): rows are validated one by one; good rows are kept and every bad row is
reported with its line number (file) or index (API list) and the reason, so nothing is dropped
silently and a corrected file can simply be imported again. Import is idempotent by
``settlement_id``: the same row again is ``unchanged``; the same id with different content is
refused (``conflict``) and the stored row stays as it was.

A ``settlement_id`` is unique in the whole deployment, not per organisation: it is the national
platform's ``setl_id``, which that platform assigns once across all institutions, and checks, flags,
jobs and face evidence refer to a settlement by it alone. So an id stored for another organisation is
a ``conflict`` too: answered exactly as any conflict (never naming that organisation or its content),
and audited (``settlement.id_taken``, under the owner's organisation) so that a key importing ids
that are not its organisations' is seen.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate.rowfiles import check_utf8, csv_rows, is_json_lines, json_lines
from kernel.ids import is_counter, is_insured_id, is_settlement_ref
from kernel.timefmt import TimeInvalid, parse_instant
from storage.audit import audit
from storage.db import session_scope
from storage.models import SETTLEMENT_TYPES, Camera, Organisation, Settlement, Terminal, Verification, utcnow

FIELDS = ("settlement_id", "insured_id", "org_id", "counter", "terminal_id", "settled_at", "amount", "type",
          "verification_id")
REQUIRED = ("settlement_id", "insured_id", "org_id", "settled_at", "amount", "type")
MAX_FUTURE = timedelta(minutes=5)  # clock skew between the exchange and us
MAX_AMOUNT = Decimal("100000000")


CONFLICT = "conflict: this settlement_id was imported before with different content"


class RowInvalid(ValueError):
    pass


@dataclass
class RowError:
    line: int
    settlement_id: str | None
    reason: str

    def to_dict(self, key: str = "line") -> dict:
        return {key: self.line, "settlement_id": self.settlement_id, "reason": self.reason}


@dataclass
class RowWarning:
    """An accepted row that will probably not check as meant (e.g. no camera covers its counter)."""

    line: int
    settlement_id: str
    warning: str
    reason: str

    def to_dict(self, key: str = "line") -> dict:
        return {key: self.line, "settlement_id": self.settlement_id, "warning": self.warning, "reason": self.reason}


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.unchanged) + len(self.errors)

    def summary(self) -> dict:
        return {"rows": self.total, "imported": len(self.created), "unchanged": len(self.unchanged),
                "refused": len(self.errors)}


def _text(raw: dict, name: str) -> str | None:
    v = raw.get(name)
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        raise RowInvalid(f"{name} must be a string")
    v = str(v).strip()
    return v or None


def parse_time(value: str) -> datetime:
    """settled_at -> UTC, within the supported range (kernel/timefmt.py): a date at datetime's edges
    is this row's error, never an overflow that fails its batch."""
    try:
        return parse_instant(value.strip().replace(" ", "T", 1) if "T" not in value else value.strip(), "settled_at")
    except TimeInvalid as e:
        raise RowInvalid(e.reason) from None


def validate(raw: dict, now: datetime | None = None) -> dict:
    """One row -> normalised fields, or RowInvalid with the first problem found."""
    if not isinstance(raw, dict):
        raise RowInvalid("a settlement must be an object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise RowInvalid(f"unknown field(s): {', '.join(unknown)[:100]}")
    row = {name: _text(raw, name) for name in FIELDS}
    missing = [n for n in REQUIRED if row[n] is None]
    if missing:
        raise RowInvalid(f"missing {', '.join(missing)}")
    if not is_settlement_ref(row["settlement_id"]):
        raise RowInvalid("settlement_id must be 1-100 letters, digits or . _ : / -")
    if not is_insured_id(row["insured_id"]):
        raise RowInvalid("insured_id must be 1-64 letters, digits, '_' or '-'")
    if row["counter"] is None and row["terminal_id"] is None:
        raise RowInvalid("counter or terminal_id is required (it says which cameras to look at)")
    if row["counter"] is not None and not is_counter(row["counter"]):
        raise RowInvalid("counter must be 1-64 letters, digits, spaces or . _ : -")
    t = parse_time(row["settled_at"])
    if t > (now or utcnow()) + MAX_FUTURE:
        raise RowInvalid(f"settled_at {row['settled_at']} is in the future")
    row["settled_at"] = t
    a = row["amount"]
    # money is written one way: ASCII digits and an optional '.'. Decimal() alone also takes 1_000,
    # Arabic-Indic digits (١٠٠) and 1E+2, each a likely slip or trick in a claim: refused (correlation.md)
    digits = a.replace(".", "", 1)
    if not (a.isascii() and digits.isdigit() and a[0] != "." and a[-1] != "." and len(digits) <= 20):
        raise RowInvalid(f"amount is not a number written as ASCII digits with an optional '.' (no sign, "
                         f"exponent, '_' or ',' separators, or other digits): {a[:30]!r}")
    try:
        amount = Decimal(a)
    except InvalidOperation:
        raise RowInvalid(f"amount is not a number: {a[:30]!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise RowInvalid(f"amount must be between 0 and {MAX_AMOUNT}")
    if amount.as_tuple().exponent < -2:
        raise RowInvalid("amount has more than 2 decimals")
    row["amount"] = f"{amount:.2f}"
    if row["type"] not in SETTLEMENT_TYPES:
        raise RowInvalid(f"type must be one of {', '.join(SETTLEMENT_TYPES)}, not {row['type'][:30]!r}")
    return row


def content_sha(row: dict) -> str:
    canon = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()


class Importer:
    """Validates and stores rows in one session; caches organisations and terminals it looked up."""

    def __init__(self, db: Session, *, actor: str, allowed_orgs: set[str] | None = None):
        self.db, self.actor, self.allowed = db, actor, allowed_orgs
        self._orgs: dict[str, bool] = {}
        self._terms: dict[str, str | None] = {}
        self._covers: dict[str, list[str]] = {}
        self.result = ImportResult()
        self.now = utcnow()

    def _org_ok(self, org_id: str) -> None:
        if org_id not in self._orgs:
            self._orgs[org_id] = self.db.get(Organisation, org_id) is not None
        if not self._orgs[org_id]:
            raise RowInvalid(f"unknown organisation {org_id!r}")
        if self.allowed is not None and org_id not in self.allowed:
            raise RowInvalid(f"this key may not import settlements of organisation {org_id!r}")

    def _terminal_ok(self, terminal_id: str, org_id: str) -> None:
        if terminal_id not in self._terms:
            t = self.db.get(Terminal, terminal_id)
            self._terms[terminal_id] = t.org_id if t else None
        owner = self._terms[terminal_id]
        if owner is None:
            raise RowInvalid(f"unknown terminal {terminal_id!r}")
        if owner != org_id:
            raise RowInvalid(f"terminal {terminal_id!r} belongs to another organisation")

    def _counter_known(self, line: int, row: dict) -> None:
        """Warn when no active camera of the organisation covers the row's counter or terminal: the
        check would find no camera (``footage_missing``, not flagged). ``covers`` must match exactly,
        as correlate/window.py matches it."""
        org = row["org_id"]
        if org not in self._covers:
            cams = self.db.scalars(select(Camera).where(Camera.org_id == org, Camera.removed_at.is_(None),
                                                        Camera.enabled.is_(True)))
            self._covers[org] = sorted({c for cam in cams for c in (cam.covers or [])})
        known = self._covers[org]
        names = [row[k] for k in ("counter", "terminal_id") if row[k]]
        if set(names) & set(known):
            return
        said = " / ".join(f"{k} {row[k]!r}" for k in ("counter", "terminal_id") if row[k])
        shown = ", ".join(repr(k) for k in known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        reason = (f"no camera of {org} covers {said}; the cameras cover {shown}" if known
                  else f"no camera of {org} covers {said}; it has no camera with covers")
        self.result.warnings.append(RowWarning(line, row["settlement_id"], "unknown_counter",
                                               reason + " (checked as footage_missing until a camera covers it)"))

    def _checked(self, raw) -> dict:
        """The row validated and its organisation, terminal and verification known (RowInvalid if not)."""
        row = validate(raw, self.now)
        self._org_ok(row["org_id"])
        if row["terminal_id"]:
            self._terminal_ok(row["terminal_id"], row["org_id"])
        if row["verification_id"]:
            v = self.db.get(Verification, row["verification_id"])
            if v is None or v.org_id != row["org_id"]:
                raise RowInvalid(f"unknown verification_id {row['verification_id']!r} for this organisation")
        return row

    def add(self, line: int, raw: dict) -> None:
        self.add_many([(line, raw)])

    def add_many(self, items: list[tuple[int, dict]]) -> list[tuple[str, str | None]]:
        """Import a batch of rows in a few statements: one look-up of the batch's ids, one multi-row
        insert (a round trip per row was the import's pace on PostgreSQL). Each row's outcome, in order:
        ``("created" | "unchanged" | "refused", reason of a refusal)``; the result lists keep row order.
        A settlement_id twice in one batch is its own ``unchanged`` or ``conflict``, as in two batches."""
        staged: list[tuple[int, str | None, dict | None, str | None]] = []  # line, id, row, error
        for line, raw in items:
            sid = raw.get("settlement_id") if isinstance(raw, dict) else None
            sid = str(sid)[:100] if sid is not None else None
            try:
                staged.append((line, sid, self._checked(raw), None))
            except RowInvalid as e:
                staged.append((line, sid, None, str(e)))
        ids = list({row["settlement_id"] for _, _, row, _ in staged if row is not None})
        known: dict[str, tuple[str, str]] = {}  # id -> (content sha, organisation)
        for i in range(0, len(ids), 500):
            known.update((r.id, (r.content_sha256, r.org_id)) for r in self.db.execute(
                select(Settlement.id, Settlement.content_sha256, Settlement.org_id)
                .where(Settlement.id.in_(ids[i:i + 500]))))
        new: list[dict] = []
        outcomes: list[tuple[str, str | None]] = []
        res = self.result
        for line, sid, row, err in staged:
            if row is not None:
                sha = content_sha(row)
                have = known.get(row["settlement_id"])
                if have is None:
                    known[row["settlement_id"]] = (sha, row["org_id"])
                    new.append({"id": row["settlement_id"], "insured_id": row["insured_id"], "org_id": row["org_id"],
                                "counter": row["counter"], "terminal_id": row["terminal_id"],
                                "settled_at": row["settled_at"], "amount": row["amount"], "type": row["type"],
                                "verification_id": row["verification_id"], "content_sha256": sha,
                                "imported_by": self.actor, "imported_at": self.now, "status": "pending",
                                "attempts": 0, "next_check_at": self.now})
                    res.created.append(row["settlement_id"])
                    outcomes.append(("created", None))
                    self._counter_known(line, row)
                    continue
                if have[0] == sha:
                    res.unchanged.append(row["settlement_id"])
                    outcomes.append(("unchanged", None))
                    self._counter_known(line, row)
                    continue
                if have[1] != row["org_id"]:  # the answer is the same; the owner's audit says more
                    audit(self.db, actor=self.actor, action="settlement.id_taken", outcome="refused:conflict",
                          org_id=have[1], subject=f"settlement:{row['settlement_id']}",
                          detail={"claimed_for": row["org_id"]})
                err = CONFLICT
            res.errors.append(RowError(line, sid, err))
            outcomes.append(("refused", err))
        if new:
            self.db.execute(Settlement.__table__.insert(), new)  # Core executemany: no ORM work per row
        return outcomes


# --- files: CSV (header row) or JSON Lines (correlate/rowfiles.py) -------------------------------


def _header_fields(header: list[str]) -> str | None:
    unknown = [h for h in header if h not in FIELDS]
    return f"unknown column(s) in the header: {', '.join(unknown)[:100]}" if unknown else None


def read_rows(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, row or None, error) for every data line of a CSV or JSON Lines file. Raises
    FileInvalid (before the first row) for a file that is not UTF-8."""
    path = Path(path)
    check_utf8(path)
    if is_json_lines(path):
        yield from json_lines(path)
        return
    for n, row, err in csv_rows(path, _header_fields):
        yield n, None if row is None else {h: (v if v.strip() else None) for h, v in row.items()}, err


def import_file(sessions, path: Path, *, actor: str, batch: int = 500, progress=None) -> ImportResult:
    """Import a file in transactions of ``batch`` rows; ``progress(n_lines_done)`` after each batch."""

    total = ImportResult()
    pending: list[tuple[int, dict | None, str | None]] = []

    def flush():
        with session_scope(sessions) as db:
            imp = Importer(db, actor=actor)
            run: list[tuple[int, dict]] = []  # good rows between two unreadable lines: one add_many each
            for n, raw, err in pending:
                if err is None:
                    run.append((n, raw))
                    continue
                imp.add_many(run)
                run = []
                imp.result.errors.append(RowError(n, None, err))
            imp.add_many(run)
        total.created += imp.result.created
        total.unchanged += imp.result.unchanged
        total.errors += imp.result.errors
        total.warnings += imp.result.warnings
        if progress:
            progress(pending[-1][0])
        pending.clear()

    for item in read_rows(path):
        pending.append(item)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return total


def audit_import(db: Session, result: ImportResult, *, actor: str, source: str, request_id: str | None = None):

    # the first refused rows themselves, so the trail says why without the report at hand
    audit(db, actor=actor, action="settlements.import", outcome="ok" if not result.errors else "partial",
          request_id=request_id, detail={"source": source, **result.summary(), "warnings": len(result.warnings),
                                         "errors": [e.to_dict() for e in result.errors[:20]]})


def rows_of(items: Iterable[dict]) -> Iterator[tuple[int, dict]]:
    for i, raw in enumerate(items):
        yield i, raw

