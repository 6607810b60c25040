"""The rule library's pages (规则库): the rules by class with level, switch, thresholds, version and
precision; a rule's page with its history and reference data, and for admins the form that makes its
next version (a note required) and the CSV upload of reference data. Inspectors and auditors read;
institutions and operators are refused. The same changes as ``PATCH /v1/rules/{id}`` and
``dualcheck rules set`` (correlate/rulebook.py)."""
from __future__ import annotations

import re
from datetime import datetime, time, timezone

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from api.scope import visible_orgs
from api.web.claim_lines import ROOM_OUTCOMES
from api.web.common import Ctx, WebError, form_checked, form_day, need_role, render, web_ctx
from api.web.words_rules import COLUMNS, DESCRIPTIONS_ZH, REFUSALS, ROW_REASONS
from correlate import rule_reference, rulebook
from correlate.rule_defs import CLASSES
from correlate.rule_precision import precision
from correlate.rulebook import Effective, RuleChangeInvalid
from correlate.watch_rules import CATEGORIES
from storage.db import session_scope

router = APIRouter(include_in_schema=False)
READERS = ("admin", "inspector", "auditor")
CLASS_ORDER = ("management", "clinical", "drug")
# the counter check's outcomes a data rule may be raised by (claims_no_visit's raise_level_if)
OUTCOMES = ("ghost_visit", "impersonation", "inconclusive", "footage_missing")
# thresholds whose list items are codes with words of their own
LIST_WORDS = {"categories": CATEGORIES, "consulting_raise_if": ROOM_OUTCOMES}
REFERENCE_SHOWN = 200
MAX_UPLOAD = 20 * 1024 * 1024


class FormInvalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _pick(t, pair: tuple[str, str]) -> str:
    return pair[0] if t.lang == "zh" else pair[1]


def refusal_text(t, e: RuleChangeInvalid) -> str:
    pair = REFUSALS.get(e.code)
    return _pick(t, pair) if pair else e.reason


def row_reason(t, err: dict) -> str:
    pair = ROW_REASONS.get(err.get("code"))
    if pair is None:
        return err["reason"] if t.lang == "en" else t("bad_request")
    args = dict(err.get("args") or {})
    if "column" in args:
        args["column"] = _pick(t, COLUMNS.get(args["column"], (args["column"], args["column"])))
    return _pick(t, pair).format(**args)


def value_text(t, key: str, v) -> str:
    """A threshold's value as a person reads it."""
    if v is None:
        return t("rule_none")
    if isinstance(v, bool):
        return t("rule_yes") if v else t("rule_no")
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, list):
        words = LIST_WORDS.get(key, {})
        items = [(words[x][0] if t.lang == "zh" else words[x][1]) if x in words
                 else t.flag_type(x) if x in OUTCOMES else str(x) for x in v]
        return "、".join(items) if t.lang == "zh" else ", ".join(items)
    return str(v)


def version_text(t, n: int) -> str:
    return t("rule_version_n", n=n) if n else t("rule_version_0")


def pct(p: float | None) -> str:
    return "—" if p is None else f"{p * 100:.2f}%"


def _day(t, iso: str | None) -> str | None:
    return t.date(datetime.fromisoformat(iso)) if iso else None


def effective_text(t, r: dict) -> str:
    a, b = _day(t, r.get("effective_from")), _day(t, r.get("effective_to"))
    if not a and not b:
        return t("rule_effective_always")
    return t("rule_effective_range", a=a or t("rule_open_start"), b=b or t("rule_open_start"))


def description(t, r: Effective) -> str:
    return DESCRIPTIONS_ZH.get(r.id, r.description) if t.lang == "zh" else r.description


def changes_text(t, before: dict | None, after: dict) -> list[str]:
    """What a version changed, one line per value: label: before → after."""
    if before is None:
        return [t("rule_first_version")]
    out = []
    if before.get("level") != after.get("level"):
        out.append(f"{t('level')}：{t.level(before.get('level'))} → {t.level(after.get('level'))}")
    if before.get("enabled") != after.get("enabled"):
        word = {True: t("rule_on"), False: t("rule_off")}
        out.append(f"{t('rule_switch')}：{word.get(before.get('enabled'))} → {word.get(after.get('enabled'))}")
    tb, ta = before.get("thresholds") or {}, after.get("thresholds") or {}
    for k in ta:
        if tb.get(k) != ta.get(k):
            out.append(f"{t.threshold(k)}：{value_text(t, k, tb.get(k))} → {value_text(t, k, ta.get(k))}")
    for k, label in (("effective_from", "rule_effective_from"), ("effective_to", "rule_effective_to")):
        if before.get(k) != after.get(k):
            out.append(f"{t(label)}：{_day(t, before.get(k)) or t('rule_open_start')} → "
                       f"{_day(t, after.get(k)) or t('rule_open_start')}")
    rb, ra = before.get("reference") or {}, after.get("reference") or {}
    for k in sorted(set(rb) | set(ra)):
        if rb.get(k) != ra.get(k) or (after.get("import") or {}).get("kind") == k:
            out.append(f"{t.ref_kind(k)}：{t('rule_reference_rows', n=rb.get(k, 0))} → "
                       f"{t('rule_reference_rows', n=ra.get(k, 0))}")
    imp = after.get("import")
    if imp:
        rows = imp["imported"] + imp["changed"] + imp["unchanged"] + imp["refused"]
        out.append(t("rule_reference_result", rows=rows, **{k: imp[k] for k in ("imported", "changed", "unchanged",
                                                                                  "refused")}))
    return out


def _view(t, r: Effective, stats: dict | None) -> dict:
    v = r.view()
    return {"r": r, "id": r.id, "name": r.name_zh if t.lang == "zh" else r.name_en, "level": t.level(r.level),
            "enabled": r.enabled, "version": version_text(t, r.version), "effective": effective_text(t, v),
            "thresholds": [(t.threshold(k), value_text(t, k, x)) for k, x in r.thresholds.items()],
            "precision": pct(stats["precision"]) if stats else "—",
            "counts": (stats["confirmed"], stats["decided"]) if stats else (0, 0)}


def _stats_orgs(ctx: Ctx) -> list[str] | None:
    """Inspectors count their regions' flags; admins and auditors every flag (counts only)."""
    return None if ctx.who.role in ("admin", "auditor") else sorted(visible_orgs(ctx.who) or ())


@router.get("/rules")
def rules_page(ctx: Ctx = Depends(web_ctx)):
    need_role(ctx, *READERS)
    t = ctx.t
    with session_scope(ctx.rt.sessions) as db:
        book = rulebook.load(db, ctx.rt.settings)
        stats = {s["rule"]: s for s in precision(db, org_ids=_stats_orgs(ctx))}
    groups = []
    for c in CLASS_ORDER:
        rows = [_view(t, r, stats.get(r.id)) for r in sorted(book, key=lambda r: r.id) if r.rule_class == c]
        if rows:
            groups.append({"key": c, "name": _pick(t, CLASSES[c]), "rules": rows})
    return render(ctx, "rules.html", groups=groups)


def _page(ctx: Ctx, rule_id: str, *, status: int = 200, error: str | None = None, posted: dict | None = None,
          saved: int | None = None, result: dict | None = None, result_error: str | None = None):
    t = ctx.t
    with session_scope(ctx.rt.sessions) as db:
        try:
            r = rulebook.current(db, rule_id[:60], ctx.rt.settings)
        except RuleChangeInvalid:
            raise WebError(404, "not_found") from None
        hist = rulebook.history(db, r.id)
        stats = next((s for s in precision(db, org_ids=_stats_orgs(ctx)) if s["rule"] == r.id), None)
        counts = rule_reference.counts(db, r.id)
        ref_rows = rule_reference.rows_of(db, r.id, REFERENCE_SHOWN)
        db.expunge_all()
    kinds = [(k, t.ref_kind(k)) for k, v in rule_reference.KINDS.items() if v[0] == r.id]
    history = [{"version": version_text(t, h.version), "at": t.dt(h.at), "who": h.actor, "note": h.note,
                "changes": changes_text(t, h.before, h.after)} for h in hist]
    versions = [{"version": version_text(t, v["version"]), **v, "pct": pct(v["precision"])}
                for v in (stats or {}).get("versions", [])]
    fields = []
    for k, v in r.thresholds.items():
        kind = ("bool" if isinstance(v, bool) else "outcomes" if k == "raise_level_if" else
                "list" if isinstance(v, list) else "number" if v is None or isinstance(v, (int, float)) else "text")
        shown = (", ".join(str(x) for x in v) if kind == "list" else "" if v is None else
                 str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
        if posted is not None and kind not in ("bool", "outcomes"):
            shown = posted.get(f"th_{k}", shown)
        fields.append({"key": k, "label": t.threshold(k), "kind": kind, "value": v, "shown": shown})
    view = _view(t, r, stats)
    day = {k: (t.local(getattr(r, k)).date().isoformat() if getattr(r, k) else "") for k in ("effective_from",
                                                                                           "effective_to")}
    if posted is not None:
        day = {k: posted.get(k, day[k]) for k in day}
    return render(ctx, "rule.html", status=status, rule=view, description=description(t, r),
                  class_name=_pick(t, CLASSES[r.rule_class]), history=history, versions=versions, fields=fields,
                  outcomes=[(o, t.flag_type(o)) for o in OUTCOMES], day=day, error=error,
                  note=(posted or {}).get("note", ""), saved=saved, kinds=kinds, counts=counts,
                  ref_rows=ref_rows, shown=REFERENCE_SHOWN, result=result, result_error=result_error,
                  row_reason=lambda e: row_reason(t, e), stats=stats, pct=pct(stats["precision"]) if stats else "—",
                  can_edit=ctx.who.role == "admin")


@router.get("/rules/{rule_id}")
def rule_page(rule_id: str, ctx: Ctx = Depends(web_ctx), saved: str = ""):
    need_role(ctx, *READERS)
    return _page(ctx, rule_id, saved=int(saved) if saved.isdigit() else None)


def _number(t, label: str, text: str, was):
    try:
        x = float(text)
    except ValueError:
        x = -1.0
    if not x >= 0 or x == float("inf"):
        raise FormInvalid(t("rule_bad_number", label=label))
    return int(x) if isinstance(was, int) and not isinstance(was, bool) and x.is_integer() else x


def parse_form(ctx: Ctx, r: Effective, form: dict) -> dict:
    """The change the form asks for, as rulebook.change's arguments (Chinese messages for bad values)."""
    t = ctx.t
    level_text = str(form.get("level") or "")
    if not level_text.isdigit() or not 1 <= int(level_text) <= 5:
        raise FormInvalid(_pick(t, REFUSALS["bad_level"]))
    th = {}
    for k, was in r.thresholds.items():
        label = t.threshold(k)
        if isinstance(was, bool):
            new = form.get(f"th_{k}") == "1"
        elif k == "raise_level_if":
            new = [o for o in OUTCOMES if form.get(f"th_{k}__{o}") == "1"]
        elif isinstance(was, list):
            new = [x for x in re.split(r"[,，、\s]+", str(form.get(f"th_{k}") or "")) if x]
        elif was is None or isinstance(was, (int, float)):
            text = str(form.get(f"th_{k}") or "").strip()
            new = None if (was is None and not text) else _number(t, label, text, was)
        else:
            new = str(form.get(f"th_{k}") or "").strip()
        if new != was:
            th[k] = new
    dates = {}
    for k in ("effective_from", "effective_to"):
        try:
            d = form_day(str(form.get(k) or "").strip() or None, k)
        except WebError:
            raise FormInvalid(t("rule_bad_date", label=t(f"rule_{k}"))) from None
        dates[k] = (datetime.combine(d, time(0), tzinfo=t.tz).astimezone(timezone.utc) if d else None)
    return {"level": int(level_text), "enabled": form.get("enabled") == "1", "thresholds": th or None,
            "note": str(form.get("note") or ""), **dates}


@router.get("/rules/{rule_id}/reference/{kind}.csv")
def reference_template(rule_id: str, kind: str, ctx: Ctx = Depends(web_ctx)):
    """A CSV file with the kind's header row and one example row, to fill in and import."""
    need_role(ctx, *READERS)
    if rule_reference.KINDS.get(kind, ("",))[0] != rule_id:
        raise WebError(404, "not_found")
    return Response(rule_reference.TEMPLATES[kind].encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{rule_id}-{kind}.csv"'})


@router.post("/rules/{rule_id}")
async def rule_change(rule_id: str, ctx: Ctx = Depends(web_ctx)):
    need_role(ctx, "admin")
    form = await form_checked(ctx)

    def go() -> tuple[int | None, str | None]:
        with session_scope(ctx.rt.sessions) as db:
            try:
                r = rulebook.current(db, rule_id[:60], ctx.rt.settings)
            except RuleChangeInvalid:
                raise WebError(404, "not_found") from None
            try:
                args = parse_form(ctx, r, form)
                new = rulebook.change(db, r.id, actor=ctx.who.actor, request_id=ctx.request.state.request_id,
                                      **args)
            except FormInvalid as e:
                return None, e.message
            except RuleChangeInvalid as e:
                db.rollback()
                return None, refusal_text(ctx.t, e)
            return new.version, None

    version, error = await run_in_threadpool(go)
    if error:
        return _page(ctx, rule_id, status=400, error=error, posted={k: v for k, v in form.items()
                                                                    if isinstance(v, str)})
    return RedirectResponse(f"/rules/{rule_id}?saved={version}", status_code=303)


@router.post("/rules/{rule_id}/reference")
async def rule_reference_upload(rule_id: str, ctx: Ctx = Depends(web_ctx)):
    need_role(ctx, "admin")
    form = await form_checked(ctx)
    upload = form.get("file")
    data = await upload.read(MAX_UPLOAD + 1) if isinstance(upload, UploadFile) else b""
    kind, note = str(form.get("kind") or ""), str(form.get("note") or "")

    def go() -> tuple[dict | None, str | None]:
        if not data:
            return None, _pick(ctx.t, REFUSALS["no_file"])
        if len(data) > MAX_UPLOAD:
            return None, _pick(ctx.t, REFUSALS["too_many_rows"])
        with session_scope(ctx.rt.sessions) as db:
            try:
                res = rule_reference.import_csv(db, rule_id[:60], kind, data, actor=ctx.who.actor, note=note,
                                                source=f"web:{getattr(upload, 'filename', '')}"[:120],
                                                request_id=ctx.request.state.request_id)
            except RuleChangeInvalid as e:
                if e.code == "rule_not_found":
                    raise WebError(404, "not_found") from None
                db.rollback()
                return None, refusal_text(ctx.t, e)
            return res.summary(), None

    result, error = await run_in_threadpool(go)
    return _page(ctx, rule_id, status=400 if error else 200, result=result, result_error=error)
