"""Platform records from files: JSON Lines (a flat record or a whole platform message per line) or CSV
(a header row of the platform's field names), imported in transactions of ``batch`` lines.

A file that is not UTF-8 is refused whole before any record (as settlement files are); every other
problem is the error of its line, and the good lines are kept.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from correlate.claims_import import ClaimError, ClaimImporter, ClaimResult, RecordInvalid, flatten
from correlate.rowfiles import FileInvalid, check_utf8, csv_rows, is_json_lines, json_lines
from storage.db import session_scope

__all__ = ["FileInvalid", "read_records", "import_claims_file"]


def _header_once(header: list[str]) -> str | None:
    return "a column name appears twice in the header" if len(set(header)) != len(header) else None


def read_records(path: Path, *, infno: str | None = None, org: str | None = None
                 ) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, flat record or None, error) for every record of the file. ``infno`` and ``org``
    fill a record's infno / fixmedins_code when the file does not carry them."""
    path = Path(path)
    check_utf8(path)

    def filled(rec: dict) -> dict:
        if infno and not rec.get("infno"):
            rec["infno"] = infno
        if org and not rec.get("fixmedins_code"):
            rec["fixmedins_code"] = org
        return rec

    if not is_json_lines(path):
        for n, row, err in csv_rows(path, _header_once):
            yield n, None if row is None else filled({h: v for h, v in row.items() if v.strip()}), err
        return
    for n, obj, err in json_lines(path):
        if obj is None:
            yield n, None, err
        elif "input" in obj:  # a whole platform message: its records share the line number
            try:
                recs = flatten(filled(obj))
            except RecordInvalid as e:
                yield n, None, str(e)
                continue
            for r in recs:
                yield n, r if isinstance(r, dict) else None, None if isinstance(r, dict) else \
                    "a record must be an object"
        else:
            yield n, filled(obj), None


def import_claims_file(sessions, settings, path: Path, *, actor: str, infno: str | None = None,
                       org: str | None = None, batch: int = 2000, progress=None) -> ClaimResult:
    total = ClaimResult()
    pending: list[tuple[int, dict | None, str | None]] = []

    def flush():
        with session_scope(sessions) as db:
            imp = ClaimImporter(db, settings, actor=actor)
            for n, rec, err in pending:
                if err is not None:
                    imp.result.errors.append(ClaimError(n, None, None, err))
                else:
                    imp.add(n, rec)
            imp.flush()
        total.merge(imp.result)
        if progress:
            progress(pending[-1][0])
        pending.clear()

    for item in read_records(path, infno=infno, org=org):
        pending.append(item)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return total
