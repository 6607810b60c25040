"""Platform records from files: JSON Lines (a flat record or a whole platform message per line) or CSV
(a header row of the platform's field names), imported in transactions of ``batch`` lines.

A file that is not UTF-8 is refused whole before any record (as settlement files are); every other
problem is the error of its line, and the good lines are kept.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from correlate.claims_import import ClaimError, ClaimImporter, ClaimResult, RecordInvalid, flatten
from correlate.settlements import FileInvalid, check_utf8
from kernel.strictjson import DuplicateKey, loads_unique
from storage.db import session_scope

__all__ = ["FileInvalid", "read_records", "import_claims_file"]


def read_records(path: Path, *, infno: str | None = None, org: str | None = None
                 ) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, flat record or None, error) for every record of the file. ``infno`` and ``org``
    fill a record's infno / fixmedins_code when the file does not carry them."""
    path = Path(path)
    check_utf8(path)
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    as_json = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or head[:1] == b"{"

    def filled(rec: dict) -> dict:
        if infno and not rec.get("infno"):
            rec["infno"] = infno
        if org and not rec.get("fixmedins_code"):
            rec["fixmedins_code"] = org
        return rec

    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        if as_json:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = loads_unique(line)
                except json.JSONDecodeError as e:
                    yield n, None, f"not valid JSON: {e.msg} at column {e.colno}"
                    continue
                except DuplicateKey as e:
                    yield n, None, f"not valid here: {e}"
                    continue
                except (ValueError, RecursionError) as e:
                    yield n, None, f"not valid here: {str(e)[:120] or type(e).__name__}"
                    continue
                if not isinstance(obj, dict):
                    yield n, None, "a line must be one JSON object"
                    continue
                if "input" in obj:  # a whole platform message: its records share the line number
                    try:
                        recs = flatten(filled(obj))
                    except RecordInvalid as e:
                        yield n, None, str(e)
                        continue
                    for r in recs:
                        yield n, r if isinstance(r, dict) else None, None if isinstance(r, dict) else \
                            "a record must be an object"
                    continue
                yield n, filled(obj), None
            return
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        if len(set(header)) != len(header):
            yield 1, None, "a column name appears twice in the header"
            return
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                yield reader.line_num, None, f"not valid CSV: {e}"
                continue
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                yield n, None, f"{len(row)} fields where the header has {len(header)}"
                continue
            yield n, filled({h: v for h, v in zip(header, row) if v.strip()}), None


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
