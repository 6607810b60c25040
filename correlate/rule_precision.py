"""Precision of each rule and of each of its versions: confirmed ÷ decided (confirmed + dismissed), the
figure Guangxi reports as 违规确认率 (63.82 %, ../shared/seeds/002_*.txt).

A flag records the version of the rule that raised it (``Flag.rule_version``, ``<rule>@<n>``); flags from
before the rule library record an older label (``correlate-1``, ``claims-1``) and count as version 0
("before the library"). Open flags, inquiries and acknowledged reminders are not decided.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Flag


def version_of(tag: str | None, rule: str) -> int:
    prefix = f"{rule}@"
    if tag and tag.startswith(prefix) and tag[len(prefix):].isdigit():
        return int(tag[len(prefix):])
    return 0


def _row(confirmed: int, dismissed: int, total: int) -> dict:
    decided = confirmed + dismissed
    return {"confirmed": confirmed, "dismissed": dismissed, "decided": decided, "flags": total,
            "precision": round(confirmed / decided, 4) if decided else None}


def precision(db: Session, *, org_ids: list[str] | None = None, since: datetime | None = None) -> list[dict]:
    """Per rule (sorted by id): its totals and ``versions`` (newest first), each with confirmed,
    dismissed, decided, flags and precision (None when nothing is decided)."""
    conds = []
    if org_ids is not None:
        conds.append(Flag.org_id.in_(sorted(org_ids)))
    if since is not None:
        conds.append(Flag.occurred_at >= since)
    rows = db.execute(select(Flag.rule, Flag.rule_version, Flag.status, func.count()).where(*conds)
                      .group_by(Flag.rule, Flag.rule_version, Flag.status)).all()
    acc: dict[str, dict[int, list[int]]] = {}
    for rule, tag, status, n in rows:
        c = acc.setdefault(rule, {}).setdefault(version_of(tag, rule), [0, 0, 0])
        c[0] += n if status == "confirmed" else 0
        c[1] += n if status == "dismissed" else 0
        c[2] += n
    out = []
    for rule in sorted(acc):
        vs = acc[rule]
        total = [sum(v[i] for v in vs.values()) for i in range(3)]
        out.append({"rule": rule, **_row(*total),
                    "versions": [{"version": v, **_row(*vs[v])} for v in sorted(vs, reverse=True)]})
    return out
