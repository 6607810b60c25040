"""A rule's reference data (Guangxi's knowledge base, 知识库), imported from CSV and read by the checks.

Three kinds, each belonging to one rule of the library:

* ``days_supply`` (超量开药 ``claims_over_quantity``): ``med_list_codg,max_days[,drug_genname]`` -- a
  drug's own allowed days of supply, used instead of the rule's global ``max_days_supply``;
* ``substitution_group`` (串换药品 ``claims_substitution``): ``group,med_list_codg[,drug_genname]`` --
  drugs of one group are legitimate alternatives: billing one for another prescribed is not 串换;
* ``price_band`` (串换药品): ``med_list_codg`` or ``group``, and ``price_band`` (relative, 0.1 = ±10 %)
  -- the band within which a billed drug counts as the same price as a prescribed one, per drug code or
  per substitution group, instead of the rule's global ``price_band``.

An import is idempotent by each row's natural key (rule, kind, drug or group): a row already there with
the same value is unchanged; every refused row is reported with its line number and reason and the good
rows are kept. An import that changes anything is a new version of the rule (correlate/rulebook.py) with
the required note, so a flag raised with the new data records the new version.
"""
from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correlate import rulebook
from correlate.rulebook import RuleChangeInvalid
from storage.audit import audit
from storage.models import RuleEntry, RuleReference, utcnow

# kind -> (the rule it belongs to, required columns, optional columns)
KINDS = {
    "days_supply": ("claims_over_quantity", ("med_list_codg", "max_days"), ("drug_genname",)),
    "substitution_group": ("claims_substitution", ("group", "med_list_codg"), ("drug_genname",)),
    "price_band": ("claims_substitution", ("price_band",), ("med_list_codg", "group", "drug_genname")),
}
# a file to fill in: the header row and one example row
TEMPLATES = {
    "days_supply": "med_list_codg,max_days,drug_genname\nXJ01CRA027E001010104464,7,头孢克肟片\n",
    "substitution_group": "group,med_list_codg,drug_genname\n阿莫西林口服常释剂型,XJ01CAA040A001010101479,阿莫西林胶囊\n",
    "price_band": "med_list_codg,group,price_band\nXJ01CRA027E001010104464,,0.05\n,阿莫西林口服常释剂型,0.2\n",
}
MAX_ROWS = 200_000
MAX_DAYS = 3650
CODE_MAX = 64


@dataclass
class RowError:
    line: int
    key: str | None
    reason: str
    code: str = "invalid"  # what the web page says in Chinese (api/web/words_rules.py ROW_REASONS)
    args: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"line": self.line, "key": self.key, "reason": self.reason, "code": self.code, "args": self.args}


class RowInvalid(ValueError):
    def __init__(self, reason: str, code: str, **args):
        super().__init__(reason)
        self.code, self.params = code, args


@dataclass
class ImportResult:
    rule_id: str
    kind: str
    imported: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    version: int | None = None  # the rule's new version, when anything changed
    sha256: str = ""

    def summary(self) -> dict:
        return {"rule_id": self.rule_id, "kind": self.kind, "rows": self.imported + self.changed + self.unchanged
                + len(self.errors), "imported": self.imported, "changed": self.changed, "unchanged": self.unchanged,
                "refused": len(self.errors), "version": self.version, "sha256": self.sha256,
                "errors": [e.to_dict() for e in self.errors]}


def check_kind(rule_id: str, kind: str) -> None:
    if kind not in KINDS:
        raise RuleChangeInvalid(f"kind must be one of {', '.join(KINDS)}", code="reference_kind")
    if KINDS[kind][0] != rule_id:
        owners = ", ".join(k for k, v in KINDS.items() if v[0] == rule_id) or "none"
        raise RuleChangeInvalid(f"{kind} is reference data of rule {KINDS[kind][0]}, not of {rule_id} "
                                f"(its kinds: {owners})", code="reference_kind")


def decode(data: bytes) -> str:
    """The file's text; a file that is not UTF-8 is refused whole (nothing imported)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RuleChangeInvalid(f"the file is not UTF-8 (line {line}): export it as UTF-8 and import it again; "
                                "nothing was imported", code="not_utf8") from None


def _parse(kind: str, text: str) -> tuple[list[tuple[int, str, dict]], list[RowError]]:
    """(line, natural key, values) of every good row, and the errors of the others."""
    _, required, optional = KINDS[kind]
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise RuleChangeInvalid("the file is empty: a header row is needed "
                                f"({', '.join(required + optional)})", code="empty_file") from None
    except csv.Error as e:
        raise RuleChangeInvalid(f"the header row is not valid CSV: {e}", code="bad_header") from None
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required + optional]
    if missing or unknown or len(set(header)) != len(header):
        why = (f"missing column(s) {', '.join(missing)}" if missing else
               f"unknown column(s) {', '.join(unknown)}" if unknown else "a column name appears twice")
        raise RuleChangeInvalid(f"header of a {kind} file: {why}; the columns are {', '.join(required)}"
                                + (f" and optionally {', '.join(optional)}" if optional else ""), code="bad_header")
    rows: list[tuple[int, str, dict]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            errors.append(RowError(reader.line_num, None, f"not valid CSV: {e}", "csv"))
            continue
        n = reader.line_num
        if not any(c.strip() for c in raw):
            continue
        if len(rows) + len(errors) >= MAX_ROWS:
            raise RuleChangeInvalid(f"more than {MAX_ROWS} rows: split the file", code="too_many_rows")
        if len(raw) != len(header):
            errors.append(RowError(n, None, f"{len(raw)} fields where the header has {len(header)}", "fields"))
            continue
        rec = {h: v.strip() for h, v in zip(header, raw)}
        try:
            key, values = _row(kind, rec)
        except RowInvalid as e:
            errors.append(RowError(n, rec.get("med_list_codg") or rec.get("group") or None, str(e), e.code, e.params))
            continue
        if key in seen:
            errors.append(RowError(n, key, f"the same {'drug' if kind == 'days_supply' else 'entry'} as line "
                                            f"{seen[key]}: one row each", "duplicate", {"line": seen[key]}))
            continue
        seen[key] = n
        rows.append((n, key, values))
    return rows, errors


def _code(rec: dict, name: str) -> str:
    v = rec.get(name, "")
    if not v:
        raise RowInvalid(f"{name} is empty", "empty", column=name)
    if len(v) > CODE_MAX:
        raise RowInvalid(f"{name} is longer than {CODE_MAX} characters", "too_long", column=name)
    return v


def _row(kind: str, rec: dict) -> tuple[str, dict]:
    label = (rec.get("drug_genname") or "")[:200] or None
    if kind == "days_supply":
        code = _code(rec, "med_list_codg")
        text = rec.get("max_days", "")
        if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
            raise RowInvalid(f"max_days must be a whole number of days from 1 to {MAX_DAYS}, not {text!r}",
                             "max_days", max=MAX_DAYS)
        return code, {"med_list_codg": code, "group_name": None, "value": float(int(text)), "label": label}
    if kind == "substitution_group":
        group, code = _code(rec, "group"), _code(rec, "med_list_codg")
        return f"{group}|{code}", {"med_list_codg": code, "group_name": group, "value": None, "label": label}
    code, group = rec.get("med_list_codg") or None, rec.get("group") or None
    if bool(code) == bool(group):
        raise RowInvalid("a price band is for one drug (med_list_codg) or one group (group): give exactly one",
                         "target")
    if (code and len(code) > CODE_MAX) or (group and len(group) > CODE_MAX):
        raise RowInvalid(f"med_list_codg and group are at most {CODE_MAX} characters", "too_long",
                         column="med_list_codg" if code else "group")
    text = rec.get("price_band", "")
    try:
        band = float(text)
    except ValueError:
        band = -1.0
    if not 0 <= band <= 1 or band != band:
        raise RowInvalid(f"price_band must be a fraction of the price from 0 to 1 (0.1 = ±10 %), not {text!r}",
                         "band")
    return (f"codg:{code}" if code else f"group:{group}"), {"med_list_codg": code, "group_name": group,
                                                          "value": band, "label": label}


def counts(db: Session, rule_id: str) -> dict[str, int]:
    return {k: n for k, n in db.execute(select(RuleReference.kind, func.count()).where(
        RuleReference.rule_id == rule_id).group_by(RuleReference.kind)).all()}


def import_csv(db: Session, rule_id: str, kind: str, data: bytes, *, actor: str, note: str, source: str,
               request_id: str | None = None) -> ImportResult:
    """Import one CSV file of ``kind`` for ``rule_id`` (see the module's docstring)."""
    note = rulebook.check_note(note)
    rulebook.current(db, rule_id)  # 404 for a rule nobody declared; seeds a declared one
    check_kind(rule_id, kind)
    rows, errors = _parse(kind, decode(data))
    res = ImportResult(rule_id, kind, errors=errors, sha256=hashlib.sha256(data).hexdigest())
    have = {r.key: r for r in db.scalars(select(RuleReference).where(RuleReference.rule_id == rule_id,
                                                                      RuleReference.kind == kind))}
    new, upd = [], []
    for _, key, v in rows:
        old = have.get(key)
        if old is None:
            new.append((key, v))
        elif (old.value, old.med_list_codg, old.group_name, old.label) != (v["value"], v["med_list_codg"],
                                                                          v["group_name"], v["label"]):
            upd.append((old, v))
        else:
            res.unchanged += 1
    res.imported, res.changed = len(new), len(upd)
    if new or upd:
        entry = db.get(RuleEntry, rule_id)
        before = {**rulebook.snapshot(entry), "reference": counts(db, rule_id)}
        version = entry.version + 1
        now = utcnow()
        for key, v in new:
            db.add(RuleReference(rule_id=rule_id, kind=kind, key=key, version=version, imported_at=now,
                                 imported_by=actor, **v))
        for old, v in upd:
            for k, x in v.items():
                setattr(old, k, x)
            old.version, old.imported_at, old.imported_by = version, now, actor
        db.flush()
        after = {**rulebook.snapshot(entry), "reference": counts(db, rule_id),
                 "import": {"kind": kind, "source": source, "imported": res.imported, "changed": res.changed,
                            "unchanged": res.unchanged, "refused": len(errors), "sha256": res.sha256}}
        res.version = rulebook.record_version(db, rule_id, actor=actor, note=note, before=before, after=after,
                                              request_id=request_id, action="rule.reference")
    else:
        audit(db, actor=actor, action="rule.reference", outcome="unchanged" if not errors else "refused",
              subject=f"rule:{rule_id}", request_id=request_id, note=note,
              detail={"kind": kind, "source": source, "unchanged": res.unchanged, "refused": len(errors),
                      "errors": [e.to_dict() for e in errors[:20]]})
    return res


def rows_of(db: Session, rule_id: str, limit: int = 500) -> list[RuleReference]:
    return list(db.scalars(select(RuleReference).where(RuleReference.rule_id == rule_id)
                           .order_by(RuleReference.kind, RuleReference.key).limit(limit)))


class Reference:
    """The reference data the checks read, loaded once per run."""

    def __init__(self, rows):  # RuleReference rows, or (kind, med_list_codg, group_name, value) tuples
        self.days: dict[str, int] = {}
        self.groups: dict[str, set[str]] = defaultdict(set)
        self.band_code: dict[str, float] = {}
        self.band_group: dict[str, float] = {}
        for r in rows:
            if r.kind == "days_supply":
                self.days[r.med_list_codg] = int(r.value)
            elif r.kind == "substitution_group":
                self.groups[r.med_list_codg].add(r.group_name)
            elif r.kind == "price_band":
                if r.med_list_codg:
                    self.band_code[r.med_list_codg] = r.value
                else:
                    self.band_group[r.group_name] = r.value

    def max_days(self, code: str, default: float) -> float:
        return self.days.get(code, default)

    def alternatives(self, a: str, b: str) -> bool:
        """Two drugs of one declared substitution group."""
        return bool(self.groups.get(a, set()) & self.groups.get(b, set()))

    def price_band(self, code: str, default: float) -> float:
        """The drug's own band, else the narrowest of its groups' bands, else the rule's."""
        if code in self.band_code:
            return self.band_code[code]
        bands = [self.band_group[g] for g in self.groups.get(code, ()) if g in self.band_group]
        return min(bands) if bands else default


def load_reference(db: Session) -> Reference:
    """Every rule's reference data, as plain rows (a province's drug list is tens of thousands of rows)."""
    kinds_rules = {v[0] for v in KINDS.values()}
    return Reference(db.execute(select(RuleReference.kind, RuleReference.med_list_codg, RuleReference.group_name,
                                       RuleReference.value).where(RuleReference.rule_id.in_(sorted(kinds_rules)))
                                .execution_options(yield_per=5000)).all())
