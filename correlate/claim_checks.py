"""The data checks: visits, prescriptions, fee details and pharmacy stock checked against each other.

Each check is a rule of the rule library (declared in correlate/claim_rules.py, kept and edited in
correlate/rulebook.py): a run reads every rule once, as it stands (level, switch, effective dates,
thresholds) with its reference data (correlate/rule_reference.py: days of supply per drug, substitution
groups, price bands), and each flag records the rule's version (``<rule>@<n>``). A rule switched off,
or whose effective dates leave out the moment of the data, raises nothing. Flags go through
correlate/flags.py, idempotently (one flag per dedup key), each with

* ``evidence.lines``: the data lines that disagree, by column (``prescribed`` | ``billed`` | ``stock``,
  and ``settlement`` / ``visit`` where they matter), as the inspector's flag page shows them;
* ``evidence.cameras``: the footage of the moment the data describes (the pharmacy counter at
  ``fee_ocur_time``; the consulting room at the visit or the settlement time), held as evidence;
* ``evidence.moment``: that instant, where the player starts.

What never flags (the decoys of bench/claims.py and tests/correlate/test_claim_checks.py): a refunded
line (``init_feedetl_sn``) nets out the line it refunds; a prescription split into two prescriptions
or two fee lines is compared as a whole; a sale return nets out its sale; a stock count (3501) sets the
running stock and a stock change (3502) moves it, so corrections recorded before a sale count.

The no-visit check takes its level from the data, raised when the settlement's own footage check (the
counter camera, correlate/check.py) found nobody or someone else, or when the consulting room at the
claimed visit time (correlate/consulting.py) shows the doctor seeing nobody or someone who is not the
insured person; that footage is linked on the flag and its outcome recorded (``consulting_room``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from correlate import rulebook
from correlate.check import Checker
from correlate.consulting import RoomResult, analyse_room
from correlate.flags import raise_flag
from correlate.reasons import Reason
from correlate.rule_reference import Reference, load_reference
from correlate.rulebook import Effective as Rule
from kernel.timefmt import iso_z
from storage.holds import LegalHolds
from storage.models import (
    Camera,
    ClaimFeeDetail,
    ClaimPrescription,
    ClaimSettlement,
    ClaimStockMove,
    ClaimVisit,
    Flag,
    Settlement,
)

STOCK_SIGN = {"purchase": 1, "purchase_return": -1, "sale": -1, "sale_return": 1}
STOCK_HISTORY = timedelta(days=60)  # how far back a running stock looks for its last stock count


def is_drug(code: str, r: Rule) -> bool:
    return any(code.startswith(p) for p in r.thresholds.get("drug_code_prefixes", ()))


def fee_view(f: ClaimFeeDetail, net: float | None = None) -> dict:
    return {"feedetl_sn": f.feedetl_sn, "init_feedetl_sn": f.init_feedetl_sn, "mdtrt_id": f.mdtrt_id,
            "rxno": f.rxno, "med_list_codg": f.med_list_codg, "medins_list_codg": f.medins_list_codg,
            "cnt": f.cnt, "net_cnt": net, "pric": f.pric, "det_item_fee_sumamt": f.det_item_fee_sumamt,
            "prd_days": f.prd_days, "fee_ocur_time": iso_z(f.fee_ocur_time), "bilg_dr_codg": f.bilg_dr_codg}


def rx_view(p: ClaimPrescription) -> dict:
    return {"rxno": p.rxno, "med_list_codg": p.med_list_codg, "drug_genname": p.drug_genname,
            "drug_cnt": p.drug_cnt, "drug_pric": p.drug_pric, "medc_days": p.medc_days,
            "prsc_time": iso_z(p.prsc_time), "prsc_dr_name": p.prsc_dr_name}


def stock_view(m: ClaimStockMove, balance: float | None = None) -> dict:
    return {"infno": m.infno, "kind": m.kind, "med_list_codg": m.med_list_codg, "fixmedins_bchno": m.fixmedins_bchno,
            "cnt": m.cnt, "at": iso_z(m.at), "rtal_docno": m.rtal_docno, "psn_no": m.psn_no,
            "inv_chg_type": m.inv_chg_type, "drug_trac_codg": m.drug_trac_codg, "balance": balance}


@dataclass
class Data:
    """One organisation's records around one period, loaded once for every check."""

    fees: list[ClaimFeeDetail]
    net: dict[int, float]  # fee line id -> its quantity after refunds (originals only)
    rx: dict[str, list[ClaimPrescription]]
    settlements: list[ClaimSettlement]
    visits: list[ClaimVisit]
    stock: list[ClaimStockMove]
    setl_by_mdtrt: dict[str, list[str]]


def load(db: Session, org_id: str, start: datetime, end: datetime, slack: timedelta) -> Data:
    fees = list(db.scalars(select(ClaimFeeDetail).where(
        ClaimFeeDetail.org_id == org_id, ClaimFeeDetail.fee_ocur_time >= start - slack,
        ClaimFeeDetail.fee_ocur_time < end + slack)))
    refunds: dict[tuple[str, str], float] = defaultdict(float)
    for f in fees:
        if f.init_feedetl_sn:
            refunds[(f.mdtrt_id, f.init_feedetl_sn)] += f.cnt
    net = {f.id: f.cnt + refunds.get((f.mdtrt_id, f.feedetl_sn), 0.0) for f in fees if not f.init_feedetl_sn}
    rxnos = sorted({f.rxno for f in fees if f.rxno})
    rx: dict[str, list[ClaimPrescription]] = defaultdict(list)
    for i in range(0, len(rxnos), 500):
        for p in db.scalars(select(ClaimPrescription).where(ClaimPrescription.org_id == org_id,
                                                            ClaimPrescription.rxno.in_(rxnos[i:i + 500]))):
            rx[p.rxno].append(p)
    setls = list(db.scalars(select(ClaimSettlement).where(
        ClaimSettlement.org_id == org_id, ClaimSettlement.setl_time >= start - slack,
        ClaimSettlement.setl_time < end + slack)))
    by_mdtrt: dict[str, list[str]] = defaultdict(list)
    for s in setls:
        if s.mdtrt_id:
            by_mdtrt[s.mdtrt_id].append(s.setl_id)
    visits = list(db.scalars(select(ClaimVisit).where(
        ClaimVisit.org_id == org_id, ClaimVisit.begntime >= start - slack - timedelta(days=2),
        ClaimVisit.begntime < end + slack)))
    stock = list(db.scalars(select(ClaimStockMove).where(
        ClaimStockMove.org_id == org_id, ClaimStockMove.at >= start - STOCK_HISTORY, ClaimStockMove.at < end + slack)
        .order_by(ClaimStockMove.at, ClaimStockMove.id)))
    return Data(fees, net, rx, setls, visits, stock, by_mdtrt)


class Run:
    """One run of every data check over one organisation and period."""

    def __init__(self, db: Session, settings, *, org_id: str, start: datetime, end: datetime,
                 legal: LegalHolds | None = None, actor: str = "claims",
                 checker: Callable[[], Checker] | None = None):
        self.db, self.settings, self.org, self.start, self.end = db, settings, org_id, start, end
        self.legal, self.actor, self.checker = legal, actor, checker
        self.book = rulebook.load(db, settings)  # the rules as they stand, once per run
        self.ref: Reference = load_reference(db)
        self.counts: dict[str, int] = defaultdict(int)
        self.flags: list[Flag] = []
        cams = list(db.scalars(select(Camera).where(Camera.org_id == org_id, Camera.removed_at.is_(None),
                                                    Camera.enabled.is_(True)).order_by(Camera.id)))
        self.cams_by_role: dict[str, list[Camera]] = defaultdict(list)
        for c in cams:
            self.cams_by_role[c.role].append(c)

    def sales_near(self, d: Data, psn: str, codes: set[str], at: datetime) -> list[dict]:
        """The stock column of a fee flag: sales and sale returns of these drugs to this person around ``at``."""
        win = timedelta(hours=self.book["claims_billed_not_dispensed"].thresholds["sale_window_hours"])
        return [stock_view(m) for m in d.stock if m.kind in ("sale", "sale_return") and m.psn_no == psn
                and m.med_list_codg in codes and abs(m.at - at) <= win][:50]

    def in_period(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def cameras(self, role: str, at: datetime, r: Rule, prefer: tuple[str | None, ...] = ()) -> list[dict]:
        cams = self.cams_by_role.get(role, [])
        chosen = [c for c in cams if set(prefer) & set(c.covers or [])] or cams
        a = at - timedelta(seconds=r.thresholds.get("footage_before_s", 120))
        b = at + timedelta(seconds=r.thresholds.get("footage_after_s", 60))
        return [{"camera_id": c.id, "role": c.role, "start": iso_z(a), "end": iso_z(b)} for c in chosen]

    def flag(self, r: Rule, *, key: str, at: datetime, reason: Reason, lines: dict, cameras: list[dict],
             settlement_ids: list[str], level: int | None = None, extra: dict | None = None) -> None:
        if not r.applies(at):  # switched off, or the moment is outside the rule's effective dates
            self.counts[r.id + ":not_applied"] += 1
            return
        evidence = {"lines": lines, "cameras": cameras, "moment": iso_z(at), "rule": {
            "id": r.id, "name_zh": r.name_zh, "class": r.rule_class, "thresholds": r.thresholds,
            "version": r.tag}, **(extra or {})}
        holds = [(c["camera_id"], datetime.fromisoformat(c["start"].replace("Z", "+00:00")),
                  datetime.fromisoformat(c["end"].replace("Z", "+00:00"))) for c in cameras]
        f, created = raise_flag(self.db, type=r.id, rule=r.id, level=level or r.level, org_id=self.org,
                                settlement_ids=sorted(settlement_ids), occurred_at=at, reason=reason,
                                evidence=evidence, model={}, rule_version=r.tag,
                                dedup_key=f"{r.id}:{self.org}:{key}"[:200], holds=holds, actor=self.actor,
                                legal=self.legal)
        self.flags.append(f)
        self.counts[r.id + (":new" if created else ":known")] += 1

    # --- the checks ---------------------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        d = load(self.db, self.org, self.start, self.end, timedelta(hours=max(
            self.book["claims_no_visit"].thresholds["visit_window_hours"],
            self.book["claims_billed_not_dispensed"].thresholds["sale_window_hours"])))
        self.no_visit(d)
        dup = self.duplicates(d)
        self.prescriptions(d, dup)
        self.not_dispensed(d, dup)
        self.beyond_stock(d)
        return dict(self.counts)

    def no_visit(self, d: Data) -> None:
        r = self.book["claims_no_visit"]
        window = timedelta(hours=r.thresholds["visit_window_hours"])
        by_mdtrt = {v.mdtrt_id for v in d.visits}
        by_psn: dict[str, list[datetime]] = defaultdict(list)
        for v in d.visits:
            by_psn[v.psn_no].append(v.begntime)
        fees_by_mdtrt: dict[str, list[ClaimFeeDetail]] = defaultdict(list)
        for f in d.fees:
            fees_by_mdtrt[f.mdtrt_id].append(f)
        for s in d.settlements:
            if s.infno != "2207" or s.med_type == "41" or not self.in_period(s.setl_time):
                continue
            self.counts["settlements_checked"] += 1
            if s.mdtrt_id in by_mdtrt or any(abs(t - s.setl_time) <= window for t in by_psn.get(s.psn_no, ())):
                continue
            st = self.db.get(Settlement, s.setl_id)
            room = self.consulting_room(r, s)
            raise_it = (st is not None and st.outcome in r.thresholds["raise_level_if"]) or \
                (room is not None and room.outcome in r.thresholds["consulting_raise_if"])
            level = r.thresholds["raised_level"] if raise_it else r.level
            lines = {"settlement": [{"setl_id": s.setl_id, "mdtrt_id": s.mdtrt_id, "psn_no": s.psn_no,
                                     "setl_time": iso_z(s.setl_time), "medfee_sumamt": s.medfee_sumamt,
                                     "med_type": s.med_type, "footage_outcome": st.outcome if st else None,
                                     "consulting_outcome": room.outcome if room else None}],
                     "visit": [], "prescribed": [], "billed": [fee_view(f) for f in fees_by_mdtrt.get(s.mdtrt_id, [])][:50],
                     "stock": []}
            self.flag(r, key=s.setl_id, at=s.setl_time, lines=lines,
                      reason=Reason.of("claims_no_visit", setl_id=s.setl_id, psn_no=s.psn_no, start=iso_z(s.setl_time),
                                       org=self.org, hours=r.thresholds["visit_window_hours"]),
                      cameras=self.cameras("consulting_room", s.setl_time, r), settlement_ids=[s.setl_id], level=level,
                      extra={"consulting_room": room.to_dict()} if room else None)

    def consulting_room(self, r: Rule, s: ClaimSettlement) -> RoomResult | None:
        """What the consulting room showed at the claimed visit (correlate/consulting.py), or None when this
        run has no footage analysis (no checker given) or the flag is known already (raised once)."""
        if self.checker is None:
            return None
        if self.db.scalar(select(Flag.id).where(Flag.dedup_key == f"{r.id}:{self.org}:{s.setl_id}"[:200])):
            return None
        a = s.setl_time - timedelta(seconds=r.thresholds["footage_before_s"])
        b = s.setl_time + timedelta(seconds=r.thresholds["footage_after_s"])
        self.counts["consulting_rooms_analysed"] += 1
        return analyse_room(self.db, self.settings, self.checker, self.cams_by_role.get("consulting_room", []),
                            org_id=self.org,
                            insured_id=s.psn_no, at=s.setl_time, start=a, end=b,
                            sample_interval_s=r.thresholds["consulting_sample_interval_s"])

    def _live(self, d: Data) -> list[ClaimFeeDetail]:
        """Original (not refund) lines still charged after their refunds."""
        return [f for f in d.fees if not f.init_feedetl_sn and d.net.get(f.id, 0.0) > 1e-9]

    def duplicates(self, d: Data) -> set[tuple[str, str, str]]:
        r = self.book["claims_duplicate_charge"]
        win = timedelta(minutes=r.thresholds["duplicate_window_minutes"])
        groups: dict[tuple[str, str, str], list[ClaimFeeDetail]] = defaultdict(list)
        for f in self._live(d):
            groups[(f.mdtrt_id, f.rxno or "", f.med_list_codg)].append(f)
        found = set()
        for (mdtrt, rxno, code), lines in groups.items():
            lines.sort(key=lambda f: f.fee_ocur_time)
            twins = [(a, b) for a, b in zip(lines, lines[1:]) if b.fee_ocur_time - a.fee_ocur_time <= win]
            if not twins or not self.in_period(twins[0][1].fee_ocur_time):
                continue
            found.add((mdtrt, rxno, code))
            dupes = sorted({x.id: x for pair in twins for x in pair}.values(), key=lambda f: f.fee_ocur_time)
            at = dupes[1].fee_ocur_time
            self.flag(r, key=f"{mdtrt}:{rxno}:{code}", at=at,
                      reason=Reason.of("claims_duplicate_charge_rx", item=code, n=len(dupes), rxno=rxno,
                                       minutes=r.thresholds["duplicate_window_minutes"]) if rxno else
                      Reason.of("claims_duplicate_charge_visit", item=code, n=len(dupes), mdtrt_id=mdtrt,
                                minutes=r.thresholds["duplicate_window_minutes"]),
                      lines={"prescribed": [rx_view(p) for p in d.rx.get(rxno, []) if p.med_list_codg == code],
                             "billed": [fee_view(f, d.net.get(f.id)) for f in dupes],
                             "stock": self.sales_near(d, dupes[0].psn_no, {code}, at)},
                      cameras=self.cameras("pharmacy_counter", at, r), settlement_ids=d.setl_by_mdtrt.get(mdtrt, []))
        return found

    def prescriptions(self, d: Data, dup: set) -> None:
        r_np, r_sub = self.book["claims_not_prescribed"], self.book["claims_substitution"]
        r_over = self.book["claims_over_quantity"]
        band = r_sub.thresholds["price_band"]
        tol = r_over.thresholds["quantity_tolerance"]
        by_rx: dict[str, list[ClaimFeeDetail]] = defaultdict(list)
        for f in self._live(d):
            if f.rxno and is_drug(f.med_list_codg, r_np):
                by_rx[f.rxno].append(f)
        for rxno, lines in by_rx.items():
            pres = d.rx.get(rxno)
            if not pres:
                continue  # no prescription sent for it: nothing to compare with
            first = min(f.fee_ocur_time for f in lines)
            if not self.in_period(first):
                continue
            self.counts["prescriptions_checked"] += 1
            billed: dict[str, list[ClaimFeeDetail]] = defaultdict(list)
            for f in lines:
                billed[f.med_list_codg].append(f)
            prescribed = {p.med_list_codg: p for p in pres}
            missing = [p for code, p in prescribed.items() if code not in billed]
            mdtrt = lines[0].mdtrt_id
            setls = d.setl_by_mdtrt.get(mdtrt, [])
            for code, fl in billed.items():
                at = min(f.fee_ocur_time for f in fl)
                cams = self.cameras("pharmacy_counter", at, r_np)
                fviews = [fee_view(f, d.net.get(f.id)) for f in fl]
                if code not in prescribed:
                    pric = fl[0].pric
                    alt = next((p for p in missing if self.ref.alternatives(code, p.med_list_codg)), None)
                    if alt is not None:  # a declared alternative of a prescribed drug: legitimate, not 串换
                        missing.remove(alt)
                        self.counts["alternatives_allowed"] += 1
                        continue
                    twin = next((p for p in missing if p.drug_pric and abs(pric - p.drug_pric) <=
                                 self.ref.price_band(p.med_list_codg, band) * p.drug_pric), None)
                    if twin is not None:
                        missing.remove(twin)
                        self.flag(r_sub, key=f"{rxno}:{code}", at=at, cameras=cams, settlement_ids=setls,
                                  reason=Reason.of("claims_substitution", item=code, rxno=rxno,
                                                   prescribed=twin.med_list_codg, pric=pric,
                                                   prescribed_pric=twin.drug_pric,
                                                   band=self.ref.price_band(twin.med_list_codg, band)),
                                  lines={"prescribed": [rx_view(p) for p in pres], "billed": fviews,
                                         "stock": self.sales_near(d, fl[0].psn_no, {code, twin.med_list_codg}, at)})
                    else:
                        self.flag(r_np, key=f"{rxno}:{code}", at=at, cameras=cams, settlement_ids=setls,
                                  reason=Reason.of("claims_not_prescribed", item=code, rxno=rxno,
                                                   cnt=sum(d.net.get(f.id, 0) for f in fl), pric=pric),
                                  lines={"prescribed": [rx_view(p) for p in pres], "billed": fviews,
                                         "stock": self.sales_near(d, fl[0].psn_no, {code}, at)})
                    continue
                if (mdtrt, rxno, code) in dup:
                    continue  # the duplicate is the finding; its extra quantity is not a second one
                p = prescribed[code]
                net = sum(d.net.get(f.id, 0.0) for f in fl)
                days = max([f.prd_days or 0 for f in fl] + [p.medc_days or 0])
                max_days = self.ref.max_days(code, r_over.thresholds["max_days_supply"])  # the drug's own limit
                if net > p.drug_cnt * (1 + tol) + 1e-9:
                    reason = Reason.of("claims_over_quantity", item=code, rxno=rxno, billed=net, prescribed=p.drug_cnt)
                elif days > max_days:
                    reason = Reason.of("claims_over_days", item=code, rxno=rxno, days=days, max_days=max_days)
                else:
                    continue
                self.flag(r_over, key=f"{rxno}:{code}", at=at, cameras=self.cameras("pharmacy_counter", at, r_over),
                          settlement_ids=setls, reason=reason,
                          lines={"prescribed": [rx_view(p)], "billed": fviews,
                                 "stock": self.sales_near(d, fl[0].psn_no, {code}, at)})

    def not_dispensed(self, d: Data, dup: set) -> None:
        r = self.book["claims_billed_not_dispensed"]
        sales = [m for m in d.stock if m.kind in ("sale", "sale_return")]
        if not sales:
            return  # this institution reports no sales: nothing says what it dispensed
        win = timedelta(hours=r.thresholds["sale_window_hours"])
        tol = r.thresholds["quantity_tolerance"]
        by_psn_code: dict[tuple[str | None, str], list[ClaimStockMove]] = defaultdict(list)
        for m in sales:
            by_psn_code[(m.psn_no, m.med_list_codg)].append(m)
        billed: dict[tuple[str, str, str], list[ClaimFeeDetail]] = defaultdict(list)
        for f in self._live(d):
            if is_drug(f.med_list_codg, r):
                billed[(f.mdtrt_id, f.psn_no, f.med_list_codg)].append(f)
        dup_codes = {(mdtrt, code) for mdtrt, _, code in dup}
        for (mdtrt, psn, code), fl in billed.items():
            at = min(f.fee_ocur_time for f in fl)
            if not self.in_period(at) or (mdtrt, code) in dup_codes:
                continue  # a duplicate line is its own finding, not a second one
            self.counts["fee_groups_checked"] += 1
            qty = sum(d.net.get(f.id, 0.0) for f in fl)
            near = [m for m in by_psn_code.get((psn, code), []) if abs(m.at - at) <= win]
            sold = sum(m.cnt if m.kind == "sale" else -m.cnt for m in near)
            if qty <= sold + tol + 1e-9:
                continue
            self.flag(r, key=f"{mdtrt}:{code}", at=at, cameras=self.cameras("pharmacy_counter", at, r),
                      settlement_ids=d.setl_by_mdtrt.get(mdtrt, []),
                      reason=Reason.of("claims_billed_not_dispensed", item=code, billed=qty, mdtrt_id=mdtrt,
                                       sold=sold, psn_no=psn, hours=r.thresholds["sale_window_hours"]),
                      lines={"prescribed": [rx_view(p) for rxno in {f.rxno for f in fl if f.rxno}
                                            for p in d.rx.get(rxno, []) if p.med_list_codg == code],
                             "billed": [fee_view(f, d.net.get(f.id)) for f in fl],
                             "stock": [stock_view(m) for m in near]})

    def beyond_stock(self, d: Data) -> None:
        r = self.book["claims_sold_beyond_stock"]
        tol = r.thresholds["stock_tolerance"]
        inbound, outbound = set(r.thresholds["inbound_change_types"]), set(r.thresholds["outbound_change_types"])
        by_code: dict[str, list[ClaimStockMove]] = defaultdict(list)
        for m in d.stock:
            by_code[m.med_list_codg].append(m)
        for code, moves in by_code.items():
            balance: float | None = None
            since: list[tuple[ClaimStockMove, float | None]] = []
            for m in moves:  # ordered by time
                if m.at >= self.end:
                    break
                if m.kind == "count":
                    balance, since = m.cnt, []
                elif balance is None:
                    continue  # no stock count yet: the opening stock is unknown
                elif m.kind == "change":
                    balance += m.cnt if m.inv_chg_type in inbound else (-m.cnt if m.inv_chg_type in outbound else 0)
                else:
                    balance += STOCK_SIGN[m.kind] * m.cnt
                since.append((m, balance))
                if balance is not None and balance < -tol - 1e-9 and self.in_period(m.at):
                    self.counts["stock_items_short"] += 1
                    sold = sum(x.cnt for x, _ in since if x.kind == "sale")
                    held = sold + balance
                    self.flag(r, key=f"{code}:{m.at.date().isoformat()}", at=m.at,
                              cameras=self.cameras("pharmacy_counter", m.at, r), settlement_ids=[s for s in
                                                                                                 [m.setl_id] if s],
                              reason=Reason.of("claims_sold_beyond_stock", item=code, balance=round(balance, 4),
                                               start=iso_z(m.at), sold=sold, held=round(held, 4)),
                              lines={"prescribed": [], "billed": [], "stock": [stock_view(x, b) for x, b in since][-50:]})
                    break
            self.counts["stock_items_checked"] += 1


def run_checks(db: Session, settings, *, org_id: str, start: datetime, end: datetime,
               legal: LegalHolds | None = None, actor: str = "claims",
               checker: Callable[[], Checker] | None = None) -> tuple[dict[str, int], list[Flag]]:
    """Every data check over ``org_id``'s records of [start, end). Returns counts and the flags. With
    ``checker`` (gives the footage checker, its models loaded when first needed) the no-visit check also
    analyses the consulting room."""
    run = Run(db, settings, org_id=org_id, start=start, end=end, legal=legal, actor=actor, checker=checker)
    counts = run.run()
    return counts, run.flags
