"""The warning list of a month per responsible unit, as Excel (xlsx, openpyxl) and CSV, in Chinese: what
the town or the rural-revitalisation office works from. One sheet per unit in the workbook; the CSV has
the unit as its first column (UTF-8 with a BOM, so Excel opens it as such)."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate.watch_review import STATE_WORDS
from correlate.watch_rules import BY_ID, CATEGORIES
from storage.models import User, WatchWarning

NO_UNIT = "未登记责任单位"
HEADERS = ("责任单位", "统计月份", "人员编号", "户编号", "人群类别", "预警规则", "指标值", "阈值", "警示级别", "处置方式",
           "首次预警月份", "规则版本", "核查状态", "核查人", "核查说明")
UNITS = {"watch_admissions_month": "次", "watch_inpatient_days_year": "天"}


def disposition(level: int) -> str:
    """Hanbin's five levels: 1-2 a reminder only, 3-4 checked before deciding, 5 a definite violation."""
    return "警示提醒（无需质询）" if level <= 2 else "待核查" if level <= 4 else "确定违规"


def assignee_names(db: Session, warnings: list[WatchWarning]) -> dict[str, str]:
    """The people the warnings are assigned to, as the town reads them: 李稽核（insp-south）, not the login."""
    logins = {w.assignee for w in warnings if w.assignee}
    if not logins:
        return {}
    rows = db.execute(select(User.username, User.display_name).where(User.username.in_(logins))).all()
    return {u: f"{name}（{u}）" if name and name != u else u for u, name in rows}


def row(w: WatchWarning, names: Mapping[str, str] | None = None) -> list:
    unit = UNITS.get(w.rule_id, "元")
    who = (names or {}).get(w.assignee, w.assignee) if w.assignee else ""
    return [w.unit or NO_UNIT, w.month, w.psn_no or "（全户）", w.household_id or "", CATEGORIES[w.category][0]
            if w.category in CATEGORIES else "", BY_ID[w.rule_id].name_zh, f"{w.figure} {unit}",
            f"超过 {w.threshold} {unit}", f"{w.level}级", disposition(w.level), w.first_month, w.rule_version,
            STATE_WORDS.get(w.state or "open", (w.state,))[0], who, w.state_note or ""]


def by_unit(warnings: list[WatchWarning]) -> dict[str, list[WatchWarning]]:
    out: dict[str, list[WatchWarning]] = {}
    for w in warnings:
        out.setdefault(w.unit or NO_UNIT, []).append(w)
    return dict(sorted(out.items()))


def _sheet_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:28] or "_"
    out, n = base, 1
    while out in taken:
        n += 1
        out = f"{base[:25]}({n})"
    taken.add(out)
    return out


def to_xlsx(month: str, warnings: list[WatchWarning], names: Mapping[str, str] | None = None) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    taken: set[str] = set()
    groups = by_unit(warnings) or {NO_UNIT: []}
    for unit, items in groups.items():
        ws = wb.create_sheet(_sheet_name(unit, taken))
        ws.append([f"{month} 监测预警名单 — {unit}（{len(items)} 条）"])
        ws["A1"].font = Font(bold=True)
        ws.append(list(HEADERS))
        for c in ws[2]:
            c.font = Font(bold=True)
        for w in items:
            ws.append(row(w, names))
        for col, width in zip("ABCDEFGHIJKLMNO", (16, 10, 18, 16, 10, 26, 14, 16, 9, 18, 12, 28, 10, 22, 30)):
            ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_csv(warnings: list[WatchWarning], names: Mapping[str, str] | None = None) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADERS)
    for x in warnings:
        w.writerow(row(x, names))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
