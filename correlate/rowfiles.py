"""Reading import files, shared by the settlement import (correlate/settlements.py) and the platform
records import (correlate/claims_files.py): JSON Lines (one object a line) or CSV (a header row).

A file that is not UTF-8 is refused whole before the first row (:class:`FileInvalid`): a half-imported
file would be worse than none. Every other problem is the error of its line, with the line number, and
the lines after it are still read (a bad line, a field over ``csv.field_size_limit()``, a duplicated key,
a number of thousands of digits or deep nesting in JSON).
"""
from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path
from typing import Callable, Iterator

from kernel.strictjson import DuplicateKey, loads_unique

Item = tuple[int, "dict | None", "str | None"]  # (line number, row or None, error)


class FileInvalid(ValueError):
    """The file as a whole cannot be read (e.g. not UTF-8): nothing of it is imported."""


def check_utf8(path: Path) -> None:
    """FileInvalid naming the first line that is not UTF-8 (a Latin-1 or GBK export, say), before
    any row is imported."""
    dec = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with Path(path).open("rb") as fh:
        for buf in iter(lambda: fh.read(1 << 20), b""):
            try:
                dec.decode(buf)
            except UnicodeDecodeError as e:
                bad = line + buf.count(b"\n", 0, e.start)
                raise FileInvalid(f"the file is not UTF-8 (line {bad}): "
                                  "export it as UTF-8 and import it again; nothing was imported") from None
            line += buf.count(b"\n")
        try:
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileInvalid("the file is not UTF-8 (it ends inside a character): export it as UTF-8 "
                              "and import it again; nothing was imported") from None


def is_json_lines(path: Path) -> bool:
    """JSON Lines by its name, or by its first character (an export named .txt, say)."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    return path.suffix.lower() in (".jsonl", ".ndjson", ".json") or head[:1] == b"{"


def json_lines(path: Path) -> Iterator[Item]:
    """(line, object, None) per non-blank line, or (line, None, reason)."""
    with Path(path).open("r", encoding="utf-8-sig", newline="") as fh:
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
            except (ValueError, RecursionError) as e:  # a number of thousands of digits, deep nesting
                yield n, None, f"not valid here: {str(e)[:120] or type(e).__name__}"
                continue
            if not isinstance(obj, dict):
                yield n, None, "a line must be one JSON object"
                continue
            yield n, obj, None


def csv_rows(path: Path, check_header: Callable[[list[str]], str | None] | None = None) -> Iterator[Item]:
    """(line, {column: text as written}, None) per non-blank data line, or (line, None, reason).
    ``check_header(header)`` returns a reason to refuse the header (reported as line 1; nothing else
    of the file is read)."""
    with Path(path).open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        bad = check_header(header) if check_header else None
        if bad:
            yield 1, None, bad
            return
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:  # e.g. a field over csv.field_size_limit(): this row only
                yield reader.line_num, None, f"not valid CSV: {e}"
                continue
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                yield n, None, f"{len(row)} fields where the header has {len(header)}"
                continue
            yield n, dict(zip(header, row)), None


def count_lines(path: Path) -> int:
    with Path(path).open("rb") as fh:
        return sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 20), b""))
