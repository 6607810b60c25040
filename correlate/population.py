"""Who the watch rules watch: population categories (人员身份) with their validity, and households with
their responsible unit (责任单位), imported idempotently with per-record errors.

Two shapes, mixed freely in one request or file:
- the platform's 1101 人员信息获取 output, as the platform returns it: ``{"infno": "1101", "output":
  {"baseinfo": {"psn_no": ...}, "idetinfo": [{"psn_idet_type", "psn_type_lv", "memo", "begntime",
  "endtime"}]}}`` — one category per ``idetinfo`` entry;
- a flat line of a civil-affairs or rural-revitalisation list (CSV with a header row, or JSON Lines):
  ``psn_no`` and ``household_id`` + ``unit`` (+ ``region``) for the household, and/or ``psn_idet_type``
  (a code, or a category's name: 特困供养, 低保, 脱贫人口, 监测对象) + ``begntime`` (+ ``endtime``,
  ``psn_type_lv``) for a category.

Idempotent: a category is keyed by person, type and start; a household membership by person. The same
record again is ``unchanged``; the same key with other content (a category that ended, a person who
moved household or unit) is ``updated``: the lists are re-sent whole and their latest word counts.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate.claims_import import RecordInvalid, _text, platform_time
from correlate.rowfiles import FileInvalid, check_utf8, csv_rows, is_json_lines, json_lines
from kernel.timefmt import iso_z
from storage.audit import audit
from storage.db import session_scope
from storage.models import Household, PersonCategory, utcnow

__all__ = ["FileInvalid", "PopulationImporter", "PopulationResult", "flatten_1101", "import_population_file"]
CHUNK = 500


@dataclass
class PopulationResult:
    imported: dict[str, int] = field(default_factory=dict)
    updated: int = 0
    unchanged: int = 0
    errors: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.imported.values()) + self.updated + self.unchanged + len(self.errors)

    def summary(self) -> dict:
        return {"records": self.total, "imported": sum(self.imported.values()), "updated": self.updated,
                "unchanged": self.unchanged, "refused": len(self.errors), "by_kind": dict(sorted(self.imported.items()))}


def flatten_1101(message: dict) -> list[dict]:
    """A 1101 output -> flat category records (psn_no from baseinfo). RecordInvalid for a wrong shape."""
    out = message.get("output")
    if not isinstance(out, dict):
        raise RecordInvalid("a 1101 message needs output with baseinfo and idetinfo")
    base = out.get("baseinfo")
    if not isinstance(base, dict):
        raise RecordInvalid("output.baseinfo must be an object with psn_no")
    idet = out.get("idetinfo") or []
    if not isinstance(idet, list):
        raise RecordInvalid("output.idetinfo must be a list")
    return [{**r, "psn_no": base.get("psn_no"), "_source": "1101"} if isinstance(r, dict) else r for r in idet]


def _sha(rec: dict) -> str:
    canon = {k: (iso_z(v) if hasattr(v, "isoformat") else v) for k, v in rec.items()
             if k not in ("imported_by", "imported_at")}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class PopulationImporter:
    """Validates records into batches; :meth:`flush` stores them (a look-up of the keys per chunk)."""

    def __init__(self, db: Session, settings, *, actor: str):
        self.db, self.actor = db, actor
        self.tz = ZoneInfo(settings.claims_timezone)
        self.now = utcnow()
        self.cats: list[tuple[object, dict]] = []
        self.homes: list[tuple[object, dict]] = []
        self.result = PopulationResult()

    def error(self, line, reason: str, key: str | None = None) -> None:
        self.result.errors.append({"line": line, "key": key, "reason": reason})

    def add(self, line, row) -> None:
        try:
            if not isinstance(row, dict):
                raise RecordInvalid("a record must be an object")
            if row.get("infno") is not None:
                if row.get("infno") != "1101":
                    raise RecordInvalid(f"infno must be 1101 (人员信息获取), not {str(row.get('infno'))[:20]!r}")
                recs = flatten_1101(row)
                if not recs:
                    raise RecordInvalid("idetinfo is empty: no category to import")
                for j, r in enumerate(recs):
                    self.add(f"{line}.{j}" if len(recs) > 1 else line, r)
                return
            psn = _text(row, "psn_no", True)
            source = row.get("_source") or "list"
            has_home = any(row.get(k) not in (None, "") for k in ("household_id", "unit"))
            has_cat = row.get("psn_idet_type") not in (None, "")
            if not has_home and not has_cat:
                raise RecordInvalid("a record needs household_id and unit (the household) or psn_idet_type and "
                                    "begntime (a category), or both")
            recs = []
            if has_home:
                recs.append(("home", {"psn_no": psn, "household_id": _text(row, "household_id", True),
                                      "unit": _text(row, "unit", True, limit=100),
                                      "region": _text(row, "region") or "default"}))
            if has_cat:
                begn = platform_time(row.get("begntime"), "begntime", self.tz)
                end = None
                if row.get("endtime") not in (None, ""):
                    end = platform_time(row.get("endtime"), "endtime", self.tz)
                    if end <= begn:
                        raise RecordInvalid("endtime must be after begntime")
                if begn > self.now:
                    raise RecordInvalid("begntime is in the future")
                recs.append(("cat", {"psn_no": psn, "psn_idet_type": _text(row, "psn_idet_type", True, limit=32),
                                     "psn_type_lv": _text(row, "psn_type_lv", limit=8), "begntime": begn,
                                     "endtime": end, "source": source}))
        except RecordInvalid as e:
            self.error(line, str(e))
            return
        for kind, rec in recs:
            rec["content_sha256"] = _sha(rec)
            (self.homes if kind == "home" else self.cats).append((line, rec))

    def _count(self, kind: str) -> None:
        self.result.imported[kind] = self.result.imported.get(kind, 0) + 1

    def flush(self) -> None:
        homes, self.homes = self.homes, []
        self._upsert(homes, Household, "household", lambda r: r["psn_no"], lambda row: row.psn_no)
        cats, self.cats = self.cats, []
        self._upsert(cats, PersonCategory, "category", lambda r: (r["psn_no"], r["psn_idet_type"], r["begntime"]),
                     lambda row: (row.psn_no, row.psn_idet_type, row.begntime))
        self.db.flush()

    def take(self, items) -> None:
        """(line, record or None, error) as the readers give them: errors kept, records added."""
        for n, rec, err in items:
            if err:
                self.error(n, err)
            else:
                self.add(n, rec)

    def _upsert(self, pending, model, kind: str, key_of_record, key_of_row) -> None:
        """New keys inserted, the same content again unchanged, other content updated in place (a category
        that ended, a person who moved), looked up CHUNK records at a time by psn_no."""
        for i in range(0, len(pending), CHUNK):
            chunk = pending[i:i + CHUNK]
            known = {key_of_row(r): r for r in self.db.scalars(select(model).where(
                model.psn_no.in_({rec["psn_no"] for _, rec in chunk})))}
            for _, rec in chunk:
                key = key_of_record(rec)
                row = known.get(key)
                if row is None:
                    row = model(**rec, imported_by=self.actor, imported_at=self.now)
                    self.db.add(row)
                    known[key] = row
                    self._count(kind)
                elif row.content_sha256 == rec["content_sha256"]:
                    self.result.unchanged += 1
                else:
                    for k, v in rec.items():
                        setattr(row, k, v)
                    row.imported_by, row.imported_at = self.actor, self.now
                    self.result.updated += 1


POPULATION_HEADER = ("a CSV file needs a header row with psn_no (and household_id, unit, region, "
                     "psn_idet_type, psn_type_lv, begntime, endtime)")


def read_lines(path: Path):
    """(line number, record or None, error) of a CSV (header row) or JSON Lines file: the shared reader
    (correlate/rowfiles.py), empty CSV fields as absent."""
    path = Path(path)
    check_utf8(path)
    if is_json_lines(path):
        yield from json_lines(path)
        return
    for n, row, err in csv_rows(path, lambda header: None if "psn_no" in header else POPULATION_HEADER):
        if n == 1 and err == POPULATION_HEADER:
            raise FileInvalid(err)
        yield n, None if row is None else {k: (v if v != "" else None) for k, v in row.items()}, err


def csv_records(fh):
    """(line number, record or None, error) of CSV text with a header row of the fields' names."""
    reader = csv.DictReader(fh)
    if not reader.fieldnames or "psn_no" not in reader.fieldnames:
        raise FileInvalid(POPULATION_HEADER)
    for row in reader:
        n = reader.line_num
        if None in row:
            yield n, None, "more fields than the header names"
            continue
        yield n, {k: (v if v != "" else None) for k, v in row.items()}, None


def import_population_file(sessions, settings, path: Path, *, actor: str, batch: int = 5000) -> PopulationResult:
    result = PopulationResult()
    pending: list[tuple[int, dict | None, str | None]] = []

    def run(items) -> None:
        with session_scope(sessions) as db:
            imp = PopulationImporter(db, settings, actor=actor)
            imp.take(items)
            imp.flush()
        r = imp.result
        for k, v in r.imported.items():
            result.imported[k] = result.imported.get(k, 0) + v
        result.updated += r.updated
        result.unchanged += r.unchanged
        result.errors += r.errors

    for item in read_lines(path):
        pending.append(item)
        if len(pending) >= batch:
            run(pending)
            pending = []
    if pending:
        run(pending)
    return result


def audit_population(db: Session, result: PopulationResult, *, actor: str, source: str,
                     request_id: str | None = None) -> None:
    audit(db, actor=actor, action="watch.population_import", outcome="ok" if not result.errors else "partial",
          request_id=request_id, detail={"source": source, **result.summary(), "errors": result.errors[:20]})
