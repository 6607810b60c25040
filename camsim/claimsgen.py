"""Realistic platform records with known truth: a clinic with its own dispensary, as it reports to the
national platform (2201/2203 visits, 7101 prescriptions, 2204 fee details, 2207 settlements, 3501-3506
stock), with injected cases of each data check's abnormality and decoys that look like them but are
legitimate (refunds, split prescriptions, sale returns, stock-count corrections, a visit recorded only
at registration).

``generate(...)`` returns the platform messages, the same records as flat lines (for files), and the
truth: the (rule id, flag key) pairs the checks must raise; every other flag is a false positive.
Times are local ('yyyy-MM-dd HH:mm:ss', Asia/Shanghai as the platform writes them). A test and bench
tool (tests/correlate/test_claim_checks.py, bench/claims.py), as the camera simulator.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from correlate.claims_import import flatten

TZ = ZoneInfo("Asia/Shanghai")
SERVICE_CODE = "001102000010000"  # 诊查费: a service line, not a drug
CASES = ("claims_no_visit", "claims_not_prescribed", "claims_substitution", "claims_over_quantity",
         "claims_billed_not_dispensed", "claims_sold_beyond_stock", "claims_duplicate_charge")
DECOYS = ("refund", "split_rx", "partial_dispensing", "sale_return", "stock_correction", "registration_only")


def drug_code(rng: random.Random, i: int) -> str:
    """A national medical-list code shaped like the real ones (X + ATC + dosage form + serials)."""
    atc = rng.choice(["J01CA", "J01DC", "A02BC", "C09AA", "C08CA", "R05CB", "M01AE", "N02BE", "A10BA", "R06AX"])
    return f"X{atc}{rng.choice('ABCDEFG')}{i:03d}A{rng.randint(1, 9):03d}010{rng.randint(100000, 999999)}"


@dataclass
class Drug:
    code: str
    name: str
    price: float


@dataclass
class Dataset:
    org_id: str
    start: datetime  # UTC, first day 00:00 local
    end: datetime
    messages: list[dict] = field(default_factory=list)
    truth: set[tuple[str, str]] = field(default_factory=set)
    decoys: dict[str, list[str]] = field(default_factory=dict)  # kind -> visit ids (mdtrt_id) or drug codes
    fee_lines: int = 0

    def flat(self) -> list[dict]:
        """Every record as one flat line (the block's fields, infno, fixmedins_code), flattened as the
        API flattens a message."""
        return [r for m in self.messages for r in flatten(m)]


def _t(t: datetime) -> str:
    return t.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S")


class _Gen:
    def __init__(self, org: str, day0: datetime, seed: int, n_drugs: int = 40):
        self.rng = random.Random(seed)
        self.org, self.day0 = org, day0
        names = ["阿莫西林胶囊", "头孢克洛缓释片", "奥美拉唑肠溶胶囊", "卡托普利片", "硝苯地平控释片", "氨溴索口服液",
                 "布洛芬缓释胶囊", "对乙酰氨基酚片", "二甲双胍片", "氯雷他定片"]
        self.drugs = [Drug(drug_code(self.rng, i), names[i % len(names)], round(self.rng.uniform(5, 120), 2))
                      for i in range(n_drugs)]
        self.stock_drugs = self.drugs  # counted at the start with ample stock
        self.n = 0
        self.msgs: list[dict] = []
        self.fee_lines = 0

    def msg(self, infno: str, inp: dict) -> None:
        self.msgs.append({"infno": infno, "fixmedins_code": self.org, "input": inp})

    def ids(self) -> tuple[str, str, str, str]:
        self.n += 1
        d = self.day0.astimezone(TZ).strftime("%Y%m%d")
        return (f"MD{d}{self.n:07d}", f"PSN{self.rng.randint(10**9, 10**10 - 1)}", f"RX{d}{self.n:07d}",
                f"SETL{d}{self.n:07d}")

    def visit(self, mdtrt: str, psn: str, t: datetime, *, only_registration: bool = False) -> None:
        dept = self.rng.choice([("A03", "内科"), ("A04", "外科"), ("A07", "儿科")])
        dr = f"D{self.rng.randint(1000, 1099)}"
        self.msg("2201", {"data": {"mdtrt_id": mdtrt, "psn_no": psn, "insutype": "310", "begntime": _t(t),
                                   "ipt_otp_no": mdtrt[-8:], "dept_code": dept[0], "dept_name": dept[1],
                                   "atddr_no": dr, "dr_name": "医师" + dr[-2:], "caty": dept[0]}})
        if only_registration:
            return
        self.msg("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt, "psn_no": psn, "med_type": "11", "begntime": _t(t),
                                        "main_cond_dscr": "咳嗽"},
                          "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900",
                                        "diag_name": "急性上呼吸道感染", "diag_dept": dept[1], "dise_dor_no": dr,
                                        "dise_dor_name": "医师" + dr[-2:], "diag_time": _t(t)}]})

    def rx(self, rxno: str, mdtrt: str, psn: str, t: datetime, lines: list[tuple[Drug, float, float]]) -> None:
        self.msg("7101", {"data": {"rxno": rxno, "prsc_time": _t(t)}, "mdtrtinfo": {"mdtrt_id": mdtrt, "psn_no": psn,
                                                                                    "prsc_dr_name": "医师"},
                          "rxdrugdetail": [{"med_list_codg": d.code, "drug_genname": d.name, "drug_cnt": cnt,
                                            "drug_pric": d.price, "medc_days": days, "drug_cnt_unit": "盒"}
                                           for d, cnt, days in lines]})

    def fees(self, mdtrt: str, psn: str, rows: list[dict]) -> None:
        out = []
        for i, r in enumerate(rows, 1):
            cnt, pric = r["cnt"], r["pric"]
            out.append({"feedetl_sn": r.get("sn") or f"{mdtrt}-{i:03d}", "init_feedetl_sn": r.get("init"),
                        "mdtrt_id": mdtrt, "psn_no": psn, "chrg_bchno": "1", "rxno": r.get("rxno"),
                        "rx_circ_flag": "0", "fee_ocur_time": _t(r["t"]), "med_list_codg": r["code"],
                        "medins_list_codg": "H" + r["code"][-8:], "det_item_fee_sumamt": round(cnt * pric, 2),
                        "cnt": cnt, "pric": pric, "prd_days": r.get("days"), "bilg_dr_codg": "D1001",
                        "bilg_dept_codg": "A03"})
        self.fee_lines += len(out)
        self.msg("2204", {"feedetail": out})

    def sale(self, psn: str, rxno: str | None, setl: str, d: Drug, cnt: float, t: datetime, *, back: bool = False,
             doc: str | None = None) -> None:
        self.msg("3506" if back else "3505", {"selinfo": {
            "med_list_codg": d.code, "fixmedins_hilist_id": "H" + d.code[-8:], "fixmedins_hilist_name": d.name,
            "fixmedins_bchno": f"B{d.code[-6:]}", "psn_no": psn, "setl_id": setl, "mdtrt_setl_type": "1",
            "rx_flag": "1", "trdn_flag": "0", "rxno": rxno, "rx_circ_flag": "0",
            "rtal_docno": doc or f"R{setl}{d.code[-4:]}{'B' if back else ''}", "sel_retn_cnt": cnt,
            "sel_retn_time": _t(t), "sel_retn_opter_name": "药师", "finl_trns_pric": d.price,
            "drugtracinfo": [{"drug_trac_codg": f"8{self.rng.randint(10**18, 10**19 - 1)}"}]}})

    def settle(self, setl: str, mdtrt: str, psn: str, t: datetime, amount: float) -> None:
        self.msg("2207", {"setlinfo": {"setl_id": setl, "mdtrt_id": mdtrt, "psn_no": psn, "med_type": "11",
                                       "setl_time": _t(t), "medfee_sumamt": round(amount, 2), "insutype": "310"}})

    # one ordinary visit: registration, diagnosis, prescription, fees, dispensing (sale), settlement
    def ordinary(self, t: datetime, *, drugs: list[Drug] | None = None, tweak=None) -> dict:
        mdtrt, psn, rxno, setl = self.ids()
        chosen = drugs or self.rng.sample(self.drugs, self.rng.randint(1, 3))
        lines = [(d, float(self.rng.randint(1, 3)), float(self.rng.choice([3, 5, 7, 14]))) for d in chosen]
        v = {"mdtrt": mdtrt, "psn": psn, "rxno": rxno, "setl": setl, "t": t, "lines": lines, "visit": True,
             "billed": None, "sales": None, "extra_fees": [], "extra_stock": []}
        if tweak:
            tweak(v)
        lines = v["lines"]
        if v["visit"]:
            self.visit(mdtrt, psn, t, only_registration=v.get("registration_only", False))
        self.rx(rxno, mdtrt, psn, t + timedelta(minutes=8), lines)
        tf = t + timedelta(minutes=self.rng.randint(12, 25))
        billed = v["billed"] or [{"code": d.code, "cnt": cnt, "pric": d.price, "days": days, "rxno": rxno, "t": tf}
                                 for d, cnt, days in lines]
        rows = [{"code": SERVICE_CODE, "cnt": 1.0, "pric": 10.0, "t": t + timedelta(minutes=5)}] + billed + v["extra_fees"]
        self.fees(mdtrt, psn, rows)
        by_code = {d.code: d for d in self.drugs}
        sales = v["sales"] if v["sales"] is not None else [(by_code[b["code"]], b["cnt"], b["t"]) for b in billed
                                                           if b["code"] in by_code and b["cnt"] > 0]
        for i, (d, cnt, ts) in enumerate(sales):
            self.sale(psn, rxno, setl, d, cnt, ts + timedelta(minutes=2), doc=f"R{setl}-{i}")
        for f in v["extra_stock"]:
            f(psn, rxno, setl)
        self.settle(setl, mdtrt, psn, tf + timedelta(minutes=4), sum(r["cnt"] * r["pric"] for r in rows))
        return v


def generate(org_id: str = "CLINIC-A", *, day: str = "2026-11-02", days: int = 1, visits_per_day: int = 200,
             cases: int = 3, decoys: int = 3, seed: int = 12) -> Dataset:
    """``visits_per_day`` ordinary visits a day (about 3.5 fee lines each), plus ``cases`` injected cases
    of every check and ``decoys`` decoys of every kind, spread over the days."""
    day0 = datetime.fromisoformat(day).replace(tzinfo=TZ)
    g = _Gen(org_id, day0, seed)
    ds = Dataset(org_id, day0.astimezone(ZoneInfo("UTC")), (day0 + timedelta(days=days)).astimezone(ZoneInfo("UTC")))
    special = g.drugs[-8:]  # rare drugs of the stock cases, kept out of ordinary visits
    g.drugs = g.drugs[:-8]
    for d in g.drugs:
        g.msg("3501", {"invinfo": {"med_list_codg": d.code, "fixmedins_hilist_id": "H" + d.code[-8:],
                                   "fixmedins_hilist_name": d.name, "rx_flag": "1", "invdate": _t(day0 - timedelta(hours=1)),
                                   "inv_cnt": 100000, "manu_lotnum": "L1", "fixmedins_bchno": f"B{d.code[-6:]}"}})
    slots = [day0 + timedelta(days=k, hours=8, seconds=s) for k in range(days)
             for s in sorted(g.rng.sample(range(0, 9 * 3600), visits_per_day + 10 * (cases + decoys)))]
    slot = iter(slots)
    for k in range(days):
        for _ in range(visits_per_day):
            g.ordinary(next(slot))

    def truth(rule: str, key: str) -> None:
        ds.truth.add((rule, key))

    for _ in range(cases):
        # 无就诊记录结算: no visit record at all
        v = g.ordinary(next(slot), tweak=lambda v: v.update(visit=False))
        truth("claims_no_visit", v["setl"])

        # 处方外药品: an extra drug billed (and sold) that the prescription does not list; no prescribed drug
        # is left unbilled, so it cannot be a substitution
        def extra(v):
            d = g.rng.choice([x for x in g.drugs if x.code not in {d.code for d, _, _ in v["lines"]}])
            v["extra_fees"].append({"code": d.code, "cnt": 1.0, "pric": d.price, "rxno": v["rxno"],
                                    "t": v["t"] + timedelta(minutes=20)})
            v["extra_sale"] = d
            v["extra_stock"].append(lambda psn, rxno, setl: g.sale(psn, rxno, setl, d, 1.0, v["t"] + timedelta(minutes=21),
                                                                   doc=f"X{setl}"))
            v["extra_code"] = d.code
        v = g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=extra)
        truth("claims_not_prescribed", f"{v['rxno']}:{v['extra_code']}")

        # 串换药品: prescribed A, billed (and sold) B at nearly the same price
        a = g.rng.choice(g.drugs)
        b = Drug(drug_code(g.rng, 900 + g.n), "某保健品", round(a.price * 1.03, 2))
        g.drugs.append(b)

        def swap(v, a=a, b=b):
            tf = v["t"] + timedelta(minutes=18)
            v["billed"] = [{"code": b.code, "cnt": v["lines"][0][1], "pric": b.price, "days": v["lines"][0][2],
                            "rxno": v["rxno"], "t": tf}]
            v["sales"] = [(b, v["lines"][0][1], tf)]
        v = g.ordinary(next(slot), drugs=[a], tweak=swap)
        g.drugs.remove(b)
        truth("claims_substitution", f"{v['rxno']}:{b.code}")

        # 超量开药: two boxes more than prescribed, billed and sold
        def more(v):
            d, cnt, days = v["lines"][0]
            tf = v["t"] + timedelta(minutes=18)
            v["billed"] = [{"code": d.code, "cnt": cnt + 2, "pric": d.price, "days": days, "rxno": v["rxno"], "t": tf}]
            v["sales"] = [(d, cnt + 2, tf)]
        v = g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=more)
        truth("claims_over_quantity", f"{v['rxno']}:{v['lines'][0][0].code}")

        # 虚记费用: billed, never sold
        def unsold(v):
            v["sales"] = []
        v = g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=unsold)
        truth("claims_billed_not_dispensed", f"{v['mdtrt']}:{v['lines'][0][0].code}")

        # 重复收费: the same line twice, two minutes apart, dispensed once
        def twice(v):
            d, cnt, days = v["lines"][0]
            tf = v["t"] + timedelta(minutes=18)
            v["billed"] = [{"code": d.code, "cnt": cnt, "pric": d.price, "days": days, "rxno": v["rxno"], "t": tf},
                           {"code": d.code, "cnt": cnt, "pric": d.price, "days": days, "rxno": v["rxno"],
                            "t": tf + timedelta(minutes=2)}]
            v["sales"] = [(d, cnt, tf)]
        v = g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=twice)
        truth("claims_duplicate_charge", f"{v['mdtrt']}:{v['rxno']}:{v['lines'][0][0].code}")

    # 销售超库存: a rare drug counted at 2, then sold 1 + 2 (each sale billed and dispensed as usual)
    for i in range(min(cases, 4)):
        d = special[i]
        g.drugs.append(d)
        g.msg("3501", {"invinfo": {"med_list_codg": d.code, "fixmedins_hilist_id": "H" + d.code[-8:],
                                   "fixmedins_hilist_name": d.name, "rx_flag": "1", "invdate": _t(day0 - timedelta(hours=1)),
                                   "inv_cnt": 2, "manu_lotnum": "L1", "fixmedins_bchno": f"B{d.code[-6:]}"}})
        v1 = g.ordinary(next(slot), drugs=[d], tweak=lambda v: v.update(lines=[(v["lines"][0][0], 1.0, 3.0)]))
        v2 = g.ordinary(next(slot), drugs=[d], tweak=lambda v: v.update(lines=[(v["lines"][0][0], 2.0, 3.0)]))
        g.drugs.remove(d)
        assert v1["t"] < v2["t"]  # the second sale takes the stock below zero, the same UTC day (clinic hours)
        truth("claims_sold_beyond_stock", f"{d.code}:{v2['t'].astimezone(ZoneInfo('UTC')).date().isoformat()}")

    seen: dict[str, list[str]] = {k: [] for k in DECOYS}
    for _ in range(decoys):
        # a refund: billed 2, refunded (init_feedetl_sn), rebilled 1; the sale of 2 returned, 1 sold again
        def refund(v):
            d, cnt, days = v["lines"][0]
            v["lines"] = [(d, 1.0, days)]
            tf = v["t"] + timedelta(minutes=15)
            sn = f"{v['mdtrt']}-R1"
            v["billed"] = [{"code": d.code, "cnt": 2.0, "pric": d.price, "days": days, "rxno": v["rxno"], "t": tf, "sn": sn},
                           {"code": d.code, "cnt": -2.0, "pric": d.price, "rxno": v["rxno"], "init": sn,
                            "t": tf + timedelta(minutes=5), "sn": f"{v['mdtrt']}-R2"},
                           {"code": d.code, "cnt": 1.0, "pric": d.price, "days": days, "rxno": v["rxno"],
                            "t": tf + timedelta(minutes=6), "sn": f"{v['mdtrt']}-R3"}]
            v["sales"] = [(d, 2.0, tf), (d, 1.0, tf + timedelta(minutes=6))]
            v["extra_stock"].append(lambda psn, rxno, setl: g.sale(psn, rxno, setl, d, 2.0, tf + timedelta(minutes=5),
                                                                   back=True))
        seen["refund"].append(g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=refund)["mdtrt"])

        # a split prescription: one drug for a chronic patient on two prescriptions of 30 days each
        def split(v):
            d, _, _ = v["lines"][0]
            v["lines"] = [(d, 3.0, 30.0)]
            rx2 = v["rxno"] + "B"
            tf = v["t"] + timedelta(minutes=15)
            g.rx(rx2, v["mdtrt"], v["psn"], v["t"] + timedelta(minutes=9), [(d, 3.0, 30.0)])
            v["billed"] = [{"code": d.code, "cnt": 3.0, "pric": d.price, "days": 30.0, "rxno": v["rxno"], "t": tf},
                           {"code": d.code, "cnt": 3.0, "pric": d.price, "days": 30.0, "rxno": rx2, "t": tf}]
            v["sales"] = [(d, 3.0, tf), (d, 3.0, tf)]
        seen["split_rx"].append(g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=split)["mdtrt"])

        # partial dispensing: one prescription of 4 billed as 2 + 2, 45 minutes apart
        def partial(v):
            d, _, days = v["lines"][0]
            v["lines"] = [(d, 4.0, days)]
            tf = v["t"] + timedelta(minutes=12)
            v["billed"] = [{"code": d.code, "cnt": 2.0, "pric": d.price, "days": days, "rxno": v["rxno"], "t": tf},
                           {"code": d.code, "cnt": 2.0, "pric": d.price, "days": days, "rxno": v["rxno"],
                            "t": tf + timedelta(minutes=45)}]
            v["sales"] = [(d, 2.0, tf), (d, 2.0, tf + timedelta(minutes=45))]
        seen["partial_dispensing"].append(g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=partial)["mdtrt"])

        # a sale returned: bought and billed 2, then refunded and returned to the shelf
        def returned(v):
            d, cnt, days = v["lines"][0]
            tf = v["t"] + timedelta(minutes=15)
            sn = f"{v['mdtrt']}-S1"
            v["billed"] = [{"code": d.code, "cnt": cnt, "pric": d.price, "days": days, "rxno": v["rxno"], "t": tf, "sn": sn},
                           {"code": d.code, "cnt": -cnt, "pric": d.price, "rxno": v["rxno"], "init": sn,
                            "t": tf + timedelta(minutes=30), "sn": f"{v['mdtrt']}-S2"}]
            v["extra_stock"].append(lambda psn, rxno, setl: g.sale(psn, rxno, setl, d, cnt, tf + timedelta(minutes=30),
                                                                   back=True))
        seen["sale_return"].append(g.ordinary(next(slot), drugs=g.rng.sample(g.drugs, 1), tweak=returned)["mdtrt"])

        # registration only (2201, no 2203): still a visit record
        seen["registration_only"].append(g.ordinary(next(slot), tweak=lambda v: v.update(registration_only=True))["mdtrt"])

    # stock-count corrections: counted at 1, a 盘盈 change (103) of +5 before two sales of 2
    for i in range(min(decoys, 4)):
        d = special[4 + i]
        g.drugs.append(d)
        g.msg("3501", {"invinfo": {"med_list_codg": d.code, "fixmedins_hilist_id": "H" + d.code[-8:],
                                   "fixmedins_hilist_name": d.name, "rx_flag": "1", "invdate": _t(day0 - timedelta(hours=1)),
                                   "inv_cnt": 1, "manu_lotnum": "L1", "fixmedins_bchno": f"B{d.code[-6:]}"}})
        g.msg("3502", {"invinfo": {"med_list_codg": d.code, "inv_chg_type": "103", "fixmedins_hilist_id": "H" + d.code[-8:],
                                   "fixmedins_hilist_name": d.name, "fixmedins_bchno": f"B{d.code[-6:]}", "pric": d.price,
                                   "cnt": 5, "rx_flag": "1", "inv_chg_time": _t(day0 + timedelta(hours=7)),
                                   "inv_chg_opter_name": "药师", "trdn_flag": "0"}})
        for _ in range(2):
            g.ordinary(next(slot), drugs=[d], tweak=lambda v: v.update(lines=[(v["lines"][0][0], 2.0, 3.0)]))
        g.drugs.remove(d)
        seen["stock_correction"].append(d.code)
    ds.decoys = seen
    ds.messages = g.msgs
    ds.fee_lines = g.fee_lines
    return ds

