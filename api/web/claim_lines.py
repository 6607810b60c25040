"""The data lines of a data-check flag (correlate/claim_checks.py), laid out for the flag page side by side:
prescribed | billed | stock movement, with the settlement and the visit above them. Labels in the page's
language; times in ``web_timezone`` as the rest of the page; codes (drug list codes, prescription
numbers) are the records' own values and shown as they are."""
from __future__ import annotations

from datetime import datetime

from api.web.i18n import Translator

COLUMNS = (("prescribed", ("处方", "Prescribed")), ("billed", ("收费明细", "Billed")),
           ("stock", ("进销存", "Stock movements")))
HEADS = (("settlement", ("结算", "Settlement")), ("visit", ("就诊记录", "Visit record")))
LABELS = {
    "med_list_codg": ("医保目录编码", "List code"), "drug_genname": ("药品通用名", "Drug"),
    "drug_cnt": ("处方数量", "Prescribed quantity"), "drug_pric": ("单价", "Unit price"),
    "medc_days": ("用药天数", "Days"), "prsc_time": ("开方时间", "Prescribed at"), "rxno": ("处方号", "Prescription"),
    "feedetl_sn": ("费用明细流水号", "Fee line"), "init_feedetl_sn": ("原费用流水号（退费）", "Refunds line"),
    "cnt": ("数量", "Quantity"), "net_cnt": ("退费后数量", "Net of refunds"), "pric": ("单价", "Unit price"),
    "det_item_fee_sumamt": ("金额", "Amount"), "prd_days": ("周期天数", "Days"),
    "fee_ocur_time": ("费用发生时间", "Charged at"), "kind": ("类型", "Kind"), "at": ("时间", "At"),
    "balance": ("结存", "Stock after"), "rtal_docno": ("零售单据号", "Receipt"), "psn_no": ("人员编号", "Person"),
    "drug_trac_codg": ("追溯码", "Traceability codes"), "inv_chg_type": ("库存变更类型", "Change type"),
    "setl_id": ("结算ID", "Settlement"), "mdtrt_id": ("就诊ID", "Visit"), "setl_time": ("结算时间", "Settled at"),
    "medfee_sumamt": ("医疗费总额", "Total"), "footage_outcome": ("柜台录像核验", "Counter footage check"),
    "consulting_outcome": ("诊室录像核验", "Consulting-room footage"),
}
STOCK_KINDS = {"count": ("盘存", "stock count"), "change": ("库存变更", "stock change"), "purchase": ("采购入库", "purchase"),
               "purchase_return": ("采购退货", "purchase return"), "sale": ("销售出库", "sale"),
               "sale_return": ("销售退货", "sale return")}
OUTCOMES = {"ghost_visit": ("柜台无人", "nobody at the counter"), "impersonation": ("非参保人本人", "someone else"),
            "verified_present": ("见到参保人本人", "the insured person seen"),
            "inconclusive": ("无法判定", "inconclusive"), "footage_missing": ("录像缺失", "footage missing")}
# what the consulting room showed at the claimed visit time (correlate/consulting.py)
ROOM_OUTCOMES = {"patient_seen_insured": ("见到参保人本人就诊", "the insured person seen with the doctor"),
                 "nobody_but_staff": ("诊室内仅有医务人员，未见患者", "only staff in the room, no patient"),
                 "someone_else": ("就诊者不是参保人本人", "the patient seen is not the insured person"),
                 "cannot_tell": ("诊室录像无法判定", "cannot tell from the consulting-room footage"),
                 "footage_missing": ("诊室录像缺失", "no consulting-room footage")}
TIMES = ("prsc_time", "fee_ocur_time", "at", "setl_time")
SKIP = ("mdtrt_id", "medins_list_codg", "bilg_dr_codg", "prsc_dr_name", "med_type", "infno", "fixmedins_bchno")


def _pick(t: Translator, pair: tuple[str, str]) -> str:
    return pair[0] if t.lang == "zh" else pair[1]


def _value(t: Translator, key: str, v) -> str:
    if key in TIMES:
        try:
            return t.dt(datetime.fromisoformat(str(v).replace("Z", "+00:00")), seconds=True)
        except ValueError:
            return str(v)
    if key == "kind":
        return _pick(t, STOCK_KINDS.get(v, (v, v)))
    if key == "footage_outcome":
        return _pick(t, OUTCOMES.get(v, (v, v)))
    if key == "consulting_outcome":
        return _pick(t, ROOM_OUTCOMES.get(v, (v, v)))
    if key in ("det_item_fee_sumamt", "medfee_sumamt"):
        return t.amount(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "、".join(str(x) for x in v)
    return str(v)


def _rows(t: Translator, items: list[dict]) -> list[list[tuple[str, str]]]:
    out = []
    for item in items or []:
        out.append([(_pick(t, LABELS.get(k, (k, k))), _value(t, k, v)) for k, v in item.items()
                    if v not in (None, "", []) and k not in SKIP])
    return out


def claim_columns(evidence: dict, t: Translator) -> dict | None:
    """{"heads": [(title, rows)], "columns": [(key, title, rows)]} for the page, or None (not a data flag)."""
    lines = (evidence or {}).get("lines")
    if not isinstance(lines, dict):
        return None
    return {"heads": [(_pick(t, title), _rows(t, lines.get(key))) for key, title in HEADS if key in lines],
            "columns": [(key, _pick(t, title), _rows(t, lines.get(key))) for key, title in COLUMNS],
            "rule": (evidence.get("rule") or {}).get("name_zh") if t.lang == "zh" else None}
