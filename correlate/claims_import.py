"""Records in the national medical-insurance platform's field names (定点医药机构接口规范): validation
and idempotent import of visits, prescriptions, fee details, pharmacy stock records and settlements.

A record arrives either as the platform's message (``{"infno": "2204", "fixmedins_code": ..., "input":
{"feedetail": [...]}}``, flattened here by :func:`flatten`) or as one flat line of a file (the block's
fields plus ``infno`` and ``fixmedins_code``). Which interface each record follows and which of its
fields are kept: docs/claims.md.

Policy, as for settlements (correlate/settlements.py): every record is validated alone; good records
are kept and every bad one is reported with its line (or message and record index) and the reason.
Idempotent by a natural key per kind (``NATURAL_KEYS``): the same record again is ``unchanged``; the
same key with other content is refused as a ``conflict`` and the stored record stays as it was.
Settlements (2207/2304) become rows of the existing settlement model through its own importer, so
they are checked against the counter footage as any settlement is, and they are linked to their visit
(``claim_settlements``).

Fields of the platform this service does not use (names, certificate numbers, fund splits) are ignored,
not stored: the supervisor needs who (``psn_no``), where, when, what and how much, no more.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from correlate.settlements import Importer as SettlementImporter
from kernel.timefmt import TimeInvalid, iso_z, parse_instant
from storage.audit import audit
from storage.models import (
    Camera,
    ClaimAdmission,
    ClaimDischarge,
    ClaimFeeDetail,
    ClaimPrescription,
    ClaimSettlement,
    ClaimStockMove,
    ClaimVisit,
    Organisation,
    utcnow,
)

# infno -> (kind, the input block(s) that hold its records)
INTERFACES: dict[str, tuple[str, tuple[str, ...]]] = {
    "2201": ("visit", ("data", "mdtrtinfo")),  # 门诊挂号 (mdtrt_id from its output)
    "2203": ("visit", ("mdtrtinfo",)),  # 门诊就诊信息上传, with diseinfo
    "2204": ("fee", ("feedetail",)),  # 门诊费用明细信息上传
    "2301": ("fee", ("feedetail",)),  # 住院费用明细信息上传
    "2207": ("settlement", ("setlinfo", "data")),  # 门诊结算 (med_type 41: 定点药店购药)
    "2304": ("settlement", ("setlinfo", "data")),  # 住院结算
    "7101": ("rx", ("rxdrugdetail",)),  # 电子处方上传: rxdrugdetail lines, header in data / mdtrtinfo
    "3501": ("stock", ("invinfo",)),  # 商品盘存上传
    "3502": ("stock", ("invinfo",)),  # 商品信息变更 (库存变更)
    "3503": ("stock", ("purcinfo",)),  # 商品采购
    "3504": ("stock", ("purcinfo",)),  # 商品采购退货
    "3505": ("stock", ("selinfo",)),  # 商品销售
    "3506": ("stock", ("selinfo",)),  # 商品销售退货
    "2401": ("admission", ("mdtrtinfo", "adminfo")),  # 入院办理 (2403 入院信息变更 sends adminfo), with diseinfo
    "2402": ("discharge", ("dscginfo",)),  # 出院办理
}
STOCK_KIND = {"3501": "count", "3502": "change", "3503": "purchase", "3504": "purchase_return", "3505": "sale",
              "3506": "sale_return"}
PHARMACY_MED_TYPE = "41"  # 医疗类别 定点药店购药
MAX_TEXT = 64
MAX_NUMBER = Decimal("1000000000")
MAX_FUTURE = timedelta(minutes=5)
ENVELOPE_FIELDS = ("infno", "fixmedins_code")
# dualcheck's own fields beside the platform's: which counter or terminal a settlement was paid at
SETTLEMENT_EXTRAS = ("counter", "terminal_id")
CONFLICT = "conflict: a record with this key was imported before with different content"


class RecordInvalid(ValueError):
    pass


@dataclass
class ClaimError:
    line: int | str
    infno: str | None
    key: str | None
    reason: str

    def to_dict(self, name: str = "line") -> dict:
        return {name: self.line, "infno": self.infno, "key": self.key, "reason": self.reason}


@dataclass
class ClaimResult:
    imported: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    errors: list[ClaimError] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    settlements_created: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.imported.values()) + self.unchanged + len(self.errors)

    def summary(self) -> dict:
        return {"records": self.total, "imported": sum(self.imported.values()), "unchanged": self.unchanged,
                "refused": len(self.errors), "by_kind": dict(sorted(self.imported.items()))}

    def merge(self, other: "ClaimResult") -> None:
        for k, v in other.imported.items():
            self.imported[k] = self.imported.get(k, 0) + v
        self.unchanged += other.unchanged
        self.errors += other.errors
        self.warnings += other.warnings
        self.settlements_created += other.settlements_created


# --- the platform's message -> flat records ---------------------------------------------------------


def flatten(message) -> list[dict]:
    """One platform message -> its records as flat dicts (the block's fields, infno, fixmedins_code).
    Raises RecordInvalid for a message whose shape is wrong (the whole message is refused)."""
    if not isinstance(message, dict):
        raise RecordInvalid("a message must be an object with infno, fixmedins_code and input")
    infno = message.get("infno")
    if not isinstance(infno, str) or infno not in INTERFACES:
        raise RecordInvalid(f"infno must be one of {', '.join(INTERFACES)}, not {str(infno)[:20]!r}")
    org = message.get("fixmedins_code")
    inp = message.get("input")
    if not isinstance(inp, dict):
        raise RecordInvalid("input must be an object holding the interface's block(s)")
    kind, blocks = INTERFACES[infno]
    name = next((b for b in blocks if b in inp), None)
    if name is None:
        raise RecordInvalid(f"input of {infno} needs the block {' or '.join(blocks)}")
    block = inp[name]
    rows = block if isinstance(block, list) else [block]
    head: dict = {}
    if infno in ("2203", "2401"):
        dise = inp.get("diseinfo") or []
        if not isinstance(dise, list):
            raise RecordInvalid("diseinfo must be a list")
        head["diseinfo"] = dise
    if infno == "7101":
        for extra in ("data", "mdtrtinfo"):
            part = inp.get(extra)
            if part is not None:
                if not isinstance(part, dict):
                    raise RecordInvalid(f"{extra} must be an object")
                head.update(part)
    out = []
    for r in rows:
        if not isinstance(r, dict):
            out.append(r)  # refused as that record's error
            continue
        out.append({**head, **r, "infno": infno, "fixmedins_code": r.get("fixmedins_code", org)})
    return out


# --- field parsers ---------------------------------------------------------------------------------


def _text(row: dict, name: str, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    v = row.get(name)
    if isinstance(v, str):
        v = v.strip()
    elif isinstance(v, bool) or isinstance(v, (dict, list)):
        raise RecordInvalid(f"{name} must be a string")
    elif v is not None:
        v = str(v)
    if not v:
        if required:
            raise RecordInvalid(f"missing {name}")
        return None
    if len(v) > limit:
        raise RecordInvalid(f"{name} is longer than {limit} characters")
    if not v.isprintable():
        raise RecordInvalid(f"{name} contains control characters")
    return v


def _number(row: dict, name: str, required: bool = False, negative: bool = False) -> float | None:
    v = row.get(name)
    if v is None or v == "":
        if required:
            raise RecordInvalid(f"missing {name}")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise RecordInvalid(f"{name} must be a number")
    s = str(v).strip() if isinstance(v, str) else None
    if s is not None:
        body = s[1:] if s.startswith("-") else s
        digits = body.replace(".", "", 1)
        if not (body.isascii() and digits.isdigit() and body[0] != "." and body[-1] != "." and len(digits) <= 20):
            raise RecordInvalid(f"{name} is not a number written as ASCII digits with an optional '-' and '.': "
                                f"{s[:30]!r}")
    try:
        d = Decimal(s if s is not None else repr(v))
    except InvalidOperation:
        raise RecordInvalid(f"{name} is not a number: {str(v)[:30]!r}") from None
    if not d.is_finite() or abs(d) > MAX_NUMBER:
        raise RecordInvalid(f"{name} must be a finite number within ±{MAX_NUMBER}")
    if d < 0 and not negative:
        raise RecordInvalid(f"{name} must not be negative")
    return float(d)


def _money(row: dict, name: str) -> str:
    x = _number(row, name, required=True, negative=True)
    return f"{Decimal(str(x)):.2f}"


def _money_or_none(row: dict, name: str) -> str | None:
    """An optional amount of the settlement's output (the person's burden: the watch rules add it up)."""
    x = _number(row, name, negative=True)
    return None if x is None else f"{Decimal(str(x)):.2f}"


def platform_time(value, name: str, tz: ZoneInfo) -> datetime:
    """The platform writes 'yyyy-MM-dd HH:mm:ss' (or a day) in local time without a zone: read in
    ``claims_timezone``; a time with a zone keeps it. Within the supported range (kernel/timefmt.py)."""
    if not isinstance(value, str) or not value.strip():
        raise RecordInvalid(f"missing {name}")
    v = value.strip()
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise RecordInvalid(f"{name} is not a time (yyyy-MM-dd HH:mm:ss): {v[:40]!r}") from None
    if t.tzinfo is None:
        if not 1970 <= t.year <= 9998:
            raise RecordInvalid(f"{name} is outside the supported range: {v[:40]!r}")
        t = t.replace(tzinfo=tz)
    try:
        return parse_instant(t.isoformat(), name)
    except TimeInvalid as e:
        raise RecordInvalid(e.reason) from None


def _sha(rec: dict) -> str:
    canon = {k: (iso_z(v) if isinstance(v, datetime) else v) for k, v in rec.items()
             if k not in ("imported_by", "imported_at")}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# --- one record of each kind -> a row of its table -------------------------------------------------


def _visit(row: dict, org: str, tz: ZoneInfo) -> dict:
    diags = []
    dise = row.get("diseinfo")
    for d in dise if isinstance(dise, list) else []:
        code = _text(d, "diag_code") if isinstance(d, dict) else None
        if code:
            diags.append(code)
    if not diags and row.get("diag_code"):  # a flat line: codes separated by ';'
        diags = [c.strip() for c in str(row["diag_code"]).split(";") if c.strip()][:20]
    mdtrt = _text(row, "mdtrt_id", True)
    return {"natural_key": f"visit|{org}|{row['infno']}|{mdtrt}", "org_id": org, "infno": row["infno"],
            "mdtrt_id": mdtrt, "psn_no": _text(row, "psn_no", True), "med_type": _text(row, "med_type"),
            "begntime": platform_time(row.get("begntime"), "begntime", tz),
            "dept_code": _text(row, "dept_code"), "dept_name": _text(row, "dept_name", limit=100),
            "atddr_no": _text(row, "atddr_no") or _text(row, "dr_codg"), "dr_name": _text(row, "dr_name", limit=100),
            "diag_codes": diags[:20]}


def _rx(row: dict, org: str, tz: ZoneInfo) -> dict:
    rxno = _text(row, "rxno") or _text(row, "hi_rxno")
    if rxno is None:
        raise RecordInvalid("missing rxno (or hi_rxno)")
    code = _text(row, "med_list_codg", True)
    t = row.get("prsc_time") or row.get("medc_starttime") or row.get("mdtrt_time")
    return {"natural_key": f"rx|{org}|{rxno}|{code}", "org_id": org, "rxno": rxno, "mdtrt_id": _text(row, "mdtrt_id"),
            "psn_no": _text(row, "psn_no", True), "prsc_time": platform_time(t, "prsc_time", tz),
            "med_list_codg": code, "drug_genname": _text(row, "drug_genname", limit=200),
            "drug_cnt": _number(row, "drug_cnt", True), "drug_pric": _number(row, "drug_pric"),
            "medc_days": _number(row, "medc_days"), "prsc_dr_name": _text(row, "prsc_dr_name", limit=100)}


def _fee(row: dict, org: str, tz: ZoneInfo) -> dict:
    mdtrt, sn = _text(row, "mdtrt_id", True), _text(row, "feedetl_sn", True)
    init = _text(row, "init_feedetl_sn")
    cnt = _number(row, "cnt", True, negative=True)
    if cnt < 0 and init is None:
        raise RecordInvalid("a negative cnt is a refund and needs init_feedetl_sn (the refunded line)")
    return {"natural_key": f"fee|{org}|{mdtrt}|{sn}", "org_id": org, "infno": row["infno"], "mdtrt_id": mdtrt,
            "feedetl_sn": sn, "init_feedetl_sn": init, "psn_no": _text(row, "psn_no", True),
            "rxno": _text(row, "rxno") or _text(row, "drord_no"), "rx_circ_flag": _text(row, "rx_circ_flag", limit=3),
            "fee_ocur_time": platform_time(row.get("fee_ocur_time"), "fee_ocur_time", tz),
            "med_list_codg": _text(row, "med_list_codg", True), "medins_list_codg": _text(row, "medins_list_codg"),
            "cnt": cnt, "pric": _number(row, "pric", True), "det_item_fee_sumamt": _money(row, "det_item_fee_sumamt"),
            "prd_days": _number(row, "prd_days"), "bilg_dr_codg": _text(row, "bilg_dr_codg")}


def _stock(row: dict, org: str, tz: ZoneInfo) -> dict:
    infno = row["infno"]
    kind = STOCK_KIND[infno]
    bch = _text(row, "fixmedins_bchno", True)
    code = _text(row, "med_list_codg", True)
    rec = {"org_id": org, "infno": infno, "kind": kind, "med_list_codg": code,
           "fixmedins_hilist_id": _text(row, "fixmedins_hilist_id"), "fixmedins_bchno": bch, "inv_chg_type": None,
           "rtal_docno": None, "rxno": None, "setl_id": None, "psn_no": None, "drug_trac_codg": [],
           "pric": _number(row, "pric") if infno in ("3502",) else _number(row, "finl_trns_pric")}
    if kind == "count":
        rec["at"] = platform_time(row.get("invdate"), "invdate", tz)
        rec["cnt"] = _number(row, "inv_cnt", True)
        key = f"stock|{org}|{infno}|{bch}|{iso_z(rec['at'])}"
    elif kind == "change":
        rec["at"] = platform_time(row.get("inv_chg_time"), "inv_chg_time", tz)
        rec["cnt"] = _number(row, "cnt", True)
        rec["inv_chg_type"] = _text(row, "inv_chg_type", True, limit=8)
        key = f"stock|{org}|{infno}|{bch}|{rec['inv_chg_type']}|{iso_z(rec['at'])}"
    elif kind in ("purchase", "purchase_return"):
        rec["at"] = platform_time(row.get("purc_retn_stoin_time"), "purc_retn_stoin_time", tz)
        rec["cnt"] = _number(row, "purc_retn_cnt", True)
        key = f"stock|{org}|{infno}|{bch}|{iso_z(rec['at'])}"
    else:
        rec["at"] = platform_time(row.get("sel_retn_time"), "sel_retn_time", tz)
        rec["cnt"] = _number(row, "sel_retn_cnt", True)
        rec["rtal_docno"] = _text(row, "rtal_docno", True)
        rec.update(rxno=_text(row, "rxno"), setl_id=_text(row, "setl_id", limit=100), psn_no=_text(row, "psn_no"))
        trac = row.get("drugtracinfo")
        codes = [c.get("drug_trac_codg") for c in (trac if isinstance(trac, list) else []) if isinstance(c, dict)]
        if row.get("drug_trac_codg"):
            codes.append(row["drug_trac_codg"])
        codes = [str(c).strip()[:MAX_TEXT] for c in codes if isinstance(c, (str, int)) and str(c).strip()]
        rec["drug_trac_codg"] = sorted(set(codes))[:100]
        key = f"stock|{org}|{infno}|{rec['rtal_docno']}|{bch}|{','.join(rec['drug_trac_codg'])[:120]}"
    rec["natural_key"] = key[:300]
    return rec


def _admission(row: dict, org: str, tz: ZoneInfo) -> dict:
    mdtrt = _text(row, "mdtrt_id", True)
    diags = [c for c in (_text(d, "diag_code") if isinstance(d, dict) else None
                         for d in (row.get("diseinfo") if isinstance(row.get("diseinfo"), list) else [])) if c]
    return {"natural_key": f"admission|{org}|{mdtrt}", "org_id": org, "mdtrt_id": mdtrt,
            "psn_no": _text(row, "psn_no", True), "med_type": _text(row, "med_type", limit=8),
            "begntime": platform_time(row.get("begntime"), "begntime", tz),
            "ipt_no": _text(row, "ipt_no") or _text(row, "ipt_otp_no"), "adm_dept_codg": _text(row, "adm_dept_codg"),
            "adm_dept_name": _text(row, "adm_dept_name", limit=100), "adm_bed": _text(row, "adm_bed"),
            "wardarea_bed": _text(row, "wardarea_bed"), "atddr_no": _text(row, "atddr_no"),
            "adm_diag_codes": diags[:20]}


def _discharge(row: dict, org: str, tz: ZoneInfo) -> dict:
    mdtrt = _text(row, "mdtrt_id", True)
    return {"natural_key": f"discharge|{org}|{mdtrt}", "org_id": org, "mdtrt_id": mdtrt,
            "psn_no": _text(row, "psn_no", True), "endtime": platform_time(row.get("endtime"), "endtime", tz),
            "dscg_way": _text(row, "dscg_way", limit=8), "dscg_dept_codg": _text(row, "dscg_dept_codg")}


PARSERS = {"visit": (_visit, ClaimVisit), "rx": (_rx, ClaimPrescription), "fee": (_fee, ClaimFeeDetail),
           "stock": (_stock, ClaimStockMove), "admission": (_admission, ClaimAdmission),
           "discharge": (_discharge, ClaimDischarge)}
TIME_FIELD = {"visit": "begntime", "rx": "prsc_time", "fee": "fee_ocur_time", "stock": "at", "admission": "begntime",
              "discharge": "endtime"}


class ClaimImporter:
    """Validates records into per-table batches; :meth:`flush` stores a batch in a few statements (one
    look-up of the natural keys, one insert), which is what makes thousands of lines a second."""

    def __init__(self, db: Session, settings, *, actor: str, allowed_orgs: set[str] | None = None):
        self.db, self.settings, self.actor, self.allowed = db, settings, actor, allowed_orgs
        self.tz = ZoneInfo(settings.claims_timezone)
        self.now = utcnow()
        self._orgs: dict[str, bool] = {}
        self._counters: dict[tuple[str, str], str | None] = {}
        self.pending: dict[str, list[tuple[int | str, dict]]] = {k: [] for k in PARSERS}
        self.pending_settlements: list[tuple[int | str, dict, dict]] = []
        self.result = ClaimResult()
        self.settlements = SettlementImporter(db, actor=actor, allowed_orgs=allowed_orgs)

    def _org(self, row: dict) -> str:
        org = _text(row, "fixmedins_code", True)
        if org not in self._orgs:
            self._orgs[org] = self.db.get(Organisation, org) is not None
        if not self._orgs[org]:
            raise RecordInvalid(f"unknown organisation (fixmedins_code) {org!r}")
        if self.allowed is not None and org not in self.allowed:
            raise RecordInvalid(f"this key may not import records of organisation {org!r}")
        return org

    def add(self, line: int | str, row) -> None:
        infno = row.get("infno") if isinstance(row, dict) else None
        infno = infno if isinstance(infno, str) else None
        try:
            if not isinstance(row, dict):
                raise RecordInvalid("a record must be an object")
            if infno not in INTERFACES:
                raise RecordInvalid(f"infno must be one of {', '.join(INTERFACES)}, not {str(infno)[:20]!r}")
            org = self._org(row)
            kind = INTERFACES[infno][0]
            if kind == "settlement":
                self._settlement(line, row, org)
                return
            parse, _ = PARSERS[kind]
            rec = parse(row, org, self.tz)
            if rec[TIME_FIELD[kind]] > self.now + MAX_FUTURE:
                raise RecordInvalid(f"{TIME_FIELD[kind]} is in the future")
            rec["content_sha256"] = _sha(rec)
            self.pending[kind].append((line, rec))
        except RecordInvalid as e:
            self.result.errors.append(ClaimError(line, infno, None, str(e)))

    # settlements: mapped onto the settlement model and imported by its own importer
    def _default_counter(self, org: str, stype: str) -> str | None:
        role = "pharmacy_counter" if stype == "pharmacy" else "settlement_counter"
        if (org, role) not in self._counters:
            cams = self.db.scalars(select(Camera).where(Camera.org_id == org, Camera.role == role,
                                                        Camera.removed_at.is_(None), Camera.enabled.is_(True))
                                   .order_by(Camera.id))
            covers = [c for cam in cams for c in (cam.covers or [])]
            self._counters[(org, role)] = covers[0] if covers else None
        return self._counters[(org, role)]

    def _settlement(self, line, row: dict, org: str) -> None:
        """Validated now; stored at :meth:`flush` (the batch's settlements looked up in one query)."""
        setl_id = _text(row, "setl_id", True, limit=100)
        med_type = _text(row, "med_type", limit=8)
        stype = "inpatient" if row["infno"] == "2304" else ("pharmacy" if med_type == PHARMACY_MED_TYPE
                                                           else "outpatient")
        t = platform_time(row.get("setl_time"), "setl_time", self.tz)
        counter, terminal = _text(row, "counter"), _text(row, "terminal_id")
        if counter is None and terminal is None:
            counter = self._default_counter(org, stype)
            if counter is None:
                role = "pharmacy_counter" if stype == "pharmacy" else "settlement_counter"
                raise RecordInvalid(f"no counter or terminal_id given and no camera of {org} has the role {role} "
                                    "with covers: add counter to the record or a camera to the organisation")
        amount = _money(row, "medfee_sumamt")
        legacy = {"settlement_id": setl_id, "insured_id": _text(row, "psn_no", True), "org_id": org,
                  "counter": counter, "terminal_id": terminal, "settled_at": t.isoformat(), "amount": amount,
                  "type": stype}
        link = {"setl_id": setl_id, "org_id": org, "infno": row["infno"], "mdtrt_id": _text(row, "mdtrt_id"),
                "psn_no": legacy["insured_id"], "med_type": med_type, "setl_time": t, "medfee_sumamt": amount,
                "psn_part_amt": _money_or_none(row, "psn_part_amt"), "psn_cash_pay": _money_or_none(row, "psn_cash_pay")}
        self.pending_settlements.append((line, legacy, link))

    def _store_settlements(self) -> None:
        items, self.pending_settlements = self.pending_settlements, []
        if not items:
            return
        ids = list({legacy["settlement_id"] for _, legacy, _ in items})
        linked: set[str] = set()
        for i in range(0, len(ids), 500):
            linked.update(self.db.scalars(select(ClaimSettlement.setl_id)
                                          .where(ClaimSettlement.setl_id.in_(ids[i:i + 500]))))
        sr = self.settlements.result
        n_errors, n_warnings = len(sr.errors), len(sr.warnings)
        outcomes = self.settlements.add_many([(line, legacy) for line, legacy, _ in items])
        del sr.errors[n_errors:]  # reported here, with the record's interface and key
        self.result.warnings += [w.to_dict() for w in sr.warnings[n_warnings:]]
        stored_links, fill = set(linked), []
        links = []
        for (line, legacy, link), (status, reason) in zip(items, outcomes):
            if status == "refused":
                self.result.errors.append(ClaimError(line, link["infno"], legacy["settlement_id"], reason))
                continue
            if status == "created":
                self.result.imported["settlement"] = self.result.imported.get("settlement", 0) + 1
                self.result.settlements_created.append(legacy["settlement_id"])
            else:
                self.result.unchanged += 1
            if link["setl_id"] not in linked:
                linked.add(link["setl_id"])
                links.append(link)
            elif link["setl_id"] in stored_links and link["psn_part_amt"] is not None:
                fill.append(link)  # sent again with the person's burden, stored before without it (issue 13)
        if links:
            self.db.execute(ClaimSettlement.__table__.insert(), links)
        if fill:
            t = ClaimSettlement.__table__
            self.db.execute(t.update().where(t.c.setl_id == bindparam("k"), t.c.psn_part_amt.is_(None))
                            .values(psn_part_amt=bindparam("part"), psn_cash_pay=bindparam("cash")),
                            [{"k": x["setl_id"], "part": x["psn_part_amt"], "cash": x["psn_cash_pay"]} for x in fill])

    def flush(self) -> None:
        """Store what is pending: new keys inserted, known keys compared by content."""
        self._store_settlements()
        for kind, items in self.pending.items():
            if not items:
                continue
            model = PARSERS[kind][1]
            keys = list({rec["natural_key"] for _, rec in items})
            known: dict[str, str] = {}
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                known.update(self.db.execute(select(model.natural_key, model.content_sha256)
                                             .where(model.natural_key.in_(chunk))).all())
            new = []
            for line, rec in items:
                key = rec["natural_key"]
                if key in known:
                    if known[key] == rec["content_sha256"]:
                        self.result.unchanged += 1
                    else:
                        self.result.errors.append(ClaimError(line, rec.get("infno"), key.split("|", 1)[1], CONFLICT))
                    continue
                known[key] = rec["content_sha256"]
                new.append({**rec, "imported_by": self.actor, "imported_at": self.now})
            if new:
                self.db.execute(model.__table__.insert(), new)  # Core executemany: no ORM work per row
                self.result.imported[kind] = self.result.imported.get(kind, 0) + len(new)
            items.clear()


def audit_claims(db: Session, result: ClaimResult, *, actor: str, source: str, request_id: str | None = None) -> None:
    audit(db, actor=actor, action="claims.import", outcome="ok" if not result.errors else "partial",
          request_id=request_id, detail={"source": source, **result.summary(), "warnings": len(result.warnings),
                                         "errors": [e.to_dict() for e in result.errors[:20]]})
