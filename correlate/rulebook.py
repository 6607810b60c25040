"""The rule library (规则库): every check's rule with its class, level, thresholds, switch and dates,
edited with a required note and kept with its whole history.

Rules are declared in code (``DECLARED``: the footage and face-pay rules, the data rules, and any module
of checks added later); :func:`seed` stores each as version 1. An edit (:func:`change`) writes the next
version and a ``rule_changes`` row holding who, when, why and the values before and after, so an
inspector can always see which thresholds raised a flag: every flag stores its rule's ``tag``
(``<rule id>@<version>``) in ``Flag.rule_version``.

Checks read rules through :func:`load` (all at once, one query) or :func:`current` (one rule).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from correlate import claim_rules, footage_rules, ward_rules, watch_rules
from correlate.levels import levels
from correlate.rule_defs import CLASSES, Rule
from kernel.errors import Refusal
from storage.audit import audit
from storage.models import RuleChange, RuleEntry, utcnow

# every module of checks that declares rules adds its tuple here
DECLARED: list[tuple[Rule, ...]] = [footage_rules.RULES, claim_rules.RULES]
DECLARED += [watch_rules.RULES, ward_rules.RULES]  # issue 13: the watch rules (correlate/watch.py), bed-hanging (ward.py)
NOTE_MAX = 2000


class RuleChangeInvalid(Refusal):
    def __init__(self, reason: str, status: int = 400, code: str = "rule_change_invalid"):
        super().__init__(status, code, reason)


def declared() -> dict[str, Rule]:
    return {r.id: r for group in DECLARED for r in group}


@dataclass(frozen=True)
class Effective:
    """A rule as it stands: what a check applies and what a flag records."""

    id: str
    version: int
    rule_class: str
    name_zh: str
    name_en: str
    description: str
    level: int
    enabled: bool
    thresholds: dict
    effective_from: datetime | None
    effective_to: datetime | None

    @property
    def tag(self) -> str:
        return f"{self.id}@{self.version}"

    def applies(self, at: datetime) -> bool:
        """Switched on, and ``at`` (the moment the data describes) within the effective dates."""
        if not self.enabled:
            return False
        if self.effective_from is not None and at < self.effective_from:
            return False
        return self.effective_to is None or at < self.effective_to

    def view(self) -> dict:
        return {"id": self.id, "version": self.version, "tag": self.tag, "class": self.rule_class,
                "class_zh": CLASSES[self.rule_class][0], "name_zh": self.name_zh, "name_en": self.name_en,
                "description": self.description, "level": self.level, "enabled": self.enabled,
                "thresholds": self.thresholds,
                "effective_from": self.effective_from.isoformat() if self.effective_from else None,
                "effective_to": self.effective_to.isoformat() if self.effective_to else None}


def _stored_thresholds(row: RuleEntry) -> dict:
    """The stored thresholds, plus any threshold a later release added to the rule's declaration (its code
    value, until an admin edits it): a library stored by an older release keeps working."""
    th = dict(row.thresholds or {})
    rule = declared().get(row.id)
    for key, value in (rule.thresholds.items() if rule is not None else ()):
        th.setdefault(key, value)
    return th


def _effective(row: RuleEntry) -> Effective:
    return Effective(id=row.id, version=row.version, rule_class=row.rule_class, name_zh=row.name_zh,
                     name_en=row.name_en, description=row.description, level=row.level, enabled=row.enabled,
                     thresholds=_stored_thresholds(row), effective_from=row.effective_from,
                     effective_to=row.effective_to)


def _first_values(rule: Rule, settings) -> tuple[int, dict]:
    """Version 1: the code's values, with the deployment's settings where they already existed."""
    th = dict(rule.thresholds)
    for (rid, key), setting in footage_rules.FROM_SETTINGS.items():
        if rid == rule.id:
            th[key] = getattr(settings, setting) if settings is not None else th[key]
    level = rule.level
    if settings is None:
        return level, th
    table = levels(settings)  # the correlate_levels setting, checked (unknown keys, levels outside 1-5)
    if rule.id in (settings.correlate_levels or {}):
        level = table[rule.id]
    for name, (rid, key) in footage_rules.LEVELS_AS_THRESHOLDS.items():  # e.g. the raised impersonation level
        if rid == rule.id and name in (settings.correlate_levels or {}):
            th[key] = table[name]
    return level, th


def seed(db: Session, settings=None) -> int:
    """Store every declared rule that is not stored yet as its version 1. Returns how many were added."""
    known = set(db.scalars(select(RuleEntry.id)))
    added = 0
    for rule in declared().values():
        if rule.id in known:
            continue
        level, th = _first_values(rule, settings)
        try:
            with db.begin_nested():  # another process seeding at the same moment: its row wins, ours is skipped
                db.add(RuleEntry(id=rule.id, rule_class=rule.rule_class, name_zh=rule.name_zh, name_en=rule.name_en,
                                 description=rule.description, level=level, enabled=rule.enabled, thresholds=th,
                                 version=1, updated_by="system"))
                db.flush()
                db.add(RuleChange(rule_id=rule.id, version=1, actor="system", note="初始版本（系统内置）",
                                  before=None, after=_snapshot_values(level, rule.enabled, th, None, None)))
        except IntegrityError:
            continue
        added += 1
    return added


class RuleBook:
    """All rules as they stand, read in one query (a check run reads them once)."""

    def __init__(self, rules: dict[str, Effective]):
        self.rules = rules

    def __getitem__(self, rule_id: str) -> Effective:
        return self.rules[rule_id]

    def get(self, rule_id: str) -> Effective | None:
        return self.rules.get(rule_id)

    def __iter__(self):
        return iter(self.rules.values())


def load(db: Session, settings=None) -> RuleBook:
    rows = {r.id: r for r in db.scalars(select(RuleEntry))}
    if set(declared()) - set(rows):
        seed(db, settings)
        rows = {r.id: r for r in db.scalars(select(RuleEntry))}
    return RuleBook({rid: _effective(r) for rid, r in rows.items() if rid in declared()})


def current(db: Session, rule_id: str, settings=None) -> Effective:
    row = db.get(RuleEntry, rule_id)
    if row is None:
        if rule_id not in declared():
            raise RuleChangeInvalid(f"unknown rule {rule_id!r}", status=404, code="rule_not_found")
        seed(db, settings)
        row = db.get(RuleEntry, rule_id)
    return _effective(row)


def _snapshot_values(level, enabled, thresholds, effective_from, effective_to) -> dict:
    return {"level": level, "enabled": enabled, "thresholds": thresholds,
            "effective_from": effective_from.isoformat() if effective_from else None,
            "effective_to": effective_to.isoformat() if effective_to else None}


def _snapshot(row: RuleEntry) -> dict:
    return _snapshot_values(row.level, row.enabled, _stored_thresholds(row), row.effective_from, row.effective_to)


def _check_thresholds(rule_id: str, old: dict, new: dict) -> dict:
    """Only the rule's own keys, each keeping its kind (a number stays a number, a list a list)."""
    if not isinstance(new, dict):
        raise RuleChangeInvalid("thresholds must be an object of the rule's own keys", code="bad_threshold")
    out = dict(old)
    for key, value in new.items():
        if key not in old:
            raise RuleChangeInvalid(f"rule {rule_id} has no threshold {key!r}; its thresholds: {', '.join(old)}",
                                    code="unknown_threshold")
        was = old[key]
        if isinstance(was, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(was, bool)
        elif isinstance(was, (int, float)) or was is None:
            ok = isinstance(value, (int, float)) and value >= 0
        elif isinstance(was, list):
            ok = isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value) and len(value) <= 200
        else:
            ok = isinstance(value, str) and len(value) <= 200
        if not ok:
            raise RuleChangeInvalid(f"threshold {key!r} of rule {rule_id} must be "
                                    f"{'a number ≥ 0' if isinstance(was, (int, float)) else type(was).__name__}",
                                    code="bad_threshold")
        out[key] = value
    return out


_UNSET = object()
UNSET = _UNSET  # "leave as it is" for change()'s effective dates (None clears them)


def change(db: Session, rule_id: str, *, actor: str, note: str, level: int | None = None,
           enabled: bool | None = None, thresholds: dict | None = None, effective_from=_UNSET,
           effective_to=_UNSET, request_id: str | None = None) -> Effective:
    """The next version of a rule. A note (why: the batch, the expert review) is required; a change that
    changes nothing is refused rather than adding an empty version."""
    note = check_note(note)
    row = db.get(RuleEntry, rule_id)
    if row is None:
        current(db, rule_id)  # seeds, or 404 for a rule nobody declared
        row = db.get(RuleEntry, rule_id)
    before = _snapshot(row)
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
            raise RuleChangeInvalid("level must be 1-5", code="bad_level")
        row.level = level
    if enabled is not None:
        row.enabled = bool(enabled)
    if thresholds is not None:
        row.thresholds = _check_thresholds(rule_id, _stored_thresholds(row), thresholds)
    if effective_from is not _UNSET:
        row.effective_from = effective_from
    if effective_to is not _UNSET:
        row.effective_to = effective_to
    if row.effective_from and row.effective_to and row.effective_to <= row.effective_from:
        db.refresh(row)
        raise RuleChangeInvalid("effective_to must be after effective_from", code="bad_dates")
    after = _snapshot(row)
    if after == before:
        db.refresh(row)
        raise RuleChangeInvalid("nothing changed: the values are the ones in force", code="no_change")
    row.version += 1
    row.updated_at, row.updated_by = utcnow(), actor
    db.add(RuleChange(rule_id=rule_id, version=row.version, actor=actor, note=note, before=before, after=after))
    audit(db, actor=actor, action="rule.change", outcome="ok", subject=f"rule:{rule_id}", request_id=request_id,
          detail={"version": row.version, "before": before, "after": after}, note=note)
    db.flush()
    return _effective(row)


def record_version(db: Session, rule_id: str, *, actor: str, note: str, before: dict, after: dict,
                   request_id: str | None = None, action: str = "rule.change") -> int:
    """A new version of a rule whose values stay but whose reference data changed (an import): the
    change carries its own before and after. Returns the new version."""
    row = db.get(RuleEntry, rule_id)
    row.version += 1
    row.updated_at, row.updated_by = utcnow(), actor
    db.add(RuleChange(rule_id=rule_id, version=row.version, actor=actor, note=note, before=before, after=after))
    audit(db, actor=actor, action=action, outcome="ok", subject=f"rule:{rule_id}", request_id=request_id,
          detail={"version": row.version, "before": before, "after": after}, note=note)
    db.flush()
    return row.version


def check_note(note: str | None) -> str:
    note = (note or "").strip()
    if not note:
        raise RuleChangeInvalid("a change of a rule needs a note saying why (变更说明)", code="note_required")
    if len(note) > NOTE_MAX:
        raise RuleChangeInvalid(f"the note is longer than {NOTE_MAX} characters", code="note_too_long")
    return note


def snapshot(row: RuleEntry) -> dict:
    return _snapshot(row)


def history(db: Session, rule_id: str) -> list[RuleChange]:
    return list(db.scalars(select(RuleChange).where(RuleChange.rule_id == rule_id)
                           .order_by(RuleChange.version.desc())))
