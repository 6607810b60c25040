"""A generated population for the watch rules with known truth (correlate/watch_rules.py): for every rule,
people or households whose figure is exactly at the threshold, one unit below and one unit above (only
the last is warned), plus traps: admissions across the month's boundary, a category that ended before
the month, a stay begun last year, overlapping stays, settlements after the month's end or before the
year. Then, optionally, a crowd of ordinary people (county-sized for the bench).

``generate(month)`` returns the population records (1101 outputs and flat list lines), the platform
messages (2401 admissions, 2402 discharges, 2304/2207 settlements with ``psn_part_amt``), and the truth:
{rule id: the subjects ("psn:<psn_no>" / "hh:<household_id>") that must be warned}. Times are local
('yyyy-MM-dd HH:mm:ss', Asia/Shanghai, as the platform writes them). A test and bench tool.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

UNITS = (("谭坝镇", "south"), ("关庙镇", "north"))
CODES = {"tekun": "7131", "dibao": "7019"}  # psn_idet_type codes of the default watch_idet_types


@dataclass
class WatchDataset:
    month: str
    org: str
    population: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    truth: dict[str, set[str]] = field(default_factory=dict)
    # the subjects at / below the thresholds: must not be warned
    near: dict[str, set[str]] = field(default_factory=dict)
    counter: int = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:06d}"


def _t(d: date | datetime, hh: int = 9, mm: int = 0) -> str:
    if isinstance(d, datetime):
        return d.strftime("%Y-%m-%d %H:%M:%S")
    return f"{d.isoformat()} {hh:02d}:{mm:02d}:00"


class Builder:
    def __init__(self, ds: WatchDataset, year: int, month: int):
        self.ds, self.year, self.month = ds, year, month
        self.first = date(year, month, 1)
        self.next_first = date(year + (month == 12), month % 12 + 1, 1)

    def person(self, unit: int = 0, household: str | None = None) -> str:
        psn = self.ds._id("P")
        hh = household or self.ds._id("H")
        name, region = UNITS[unit % len(UNITS)]
        self.ds.population.append({"psn_no": psn, "household_id": hh, "unit": name, "region": region})
        return psn

    def category(self, psn: str, cat: str, begin: date, end: date | None = None, via_1101: bool = False) -> None:
        if via_1101 and cat in CODES:
            self.ds.population.append({"infno": "1101", "output": {"baseinfo": {"psn_no": psn}, "idetinfo": [
                {"psn_idet_type": CODES[cat], "psn_type_lv": "", "memo": "", "begntime": _t(begin, 0),
                 "endtime": _t(end, 0) if end else ""}]}})
        else:
            name = {"tekun": "特困供养", "dibao": "低保", "tuopin": "脱贫人口", "jiance": "监测对象"}[cat]
            self.ds.population.append({"psn_no": psn, "psn_idet_type": name, "begntime": _t(begin, 0),
                                       "endtime": _t(end, 0) if end else None})

    def stay(self, psn: str, begin: datetime, end: datetime | None) -> None:
        mdtrt = self.ds._id("ZY")
        self.ds.messages.append({"infno": "2401", "fixmedins_code": self.ds.org, "input": {"mdtrtinfo": {
            "mdtrt_id": mdtrt, "psn_no": psn, "med_type": "21", "begntime": _t(begin), "ipt_no": mdtrt,
            "adm_dept_codg": "A03", "adm_dept_name": "内科", "adm_bed": "12"}, "diseinfo": []}})
        if end is not None:
            self.ds.messages.append({"infno": "2402", "fixmedins_code": self.ds.org, "input": {"dscginfo": {
                "mdtrt_id": mdtrt, "psn_no": psn, "endtime": _t(end), "dscg_way": "1"}}})

    def pay(self, psn: str, amount: Decimal, at: datetime, parts: int = 1) -> None:
        """Settlements adding up to ``amount`` of personal burden, split unevenly across ``parts``."""
        left = amount
        for i in range(parts):
            share = left if i == parts - 1 else (amount / parts).quantize(Decimal("0.01")) - Decimal("0.01") * i
            left -= share
            sid = self.ds._id("S")
            self.ds.messages.append({"infno": "2304", "fixmedins_code": self.ds.org, "input": {"setlinfo": {
                "setl_id": sid, "mdtrt_id": sid, "psn_no": psn, "med_type": "21",
                "setl_time": _t(at + timedelta(days=i)), "medfee_sumamt": f"{share * 3:.2f}",
                "psn_part_amt": f"{share:.2f}", "psn_cash_pay": f"{share:.2f}", "counter": "counter-1"}}})


def generate(month: str = "2026-11", org: str = "CLINIC-A", crowd: int = 0, seed: int = 13) -> WatchDataset:
    year, mon = int(month[:4]), int(month[5:])
    ds = WatchDataset(month=month, org=org)
    b = Builder(ds, year, mon)
    truth: dict[str, set[str]] = {r: set() for r in ("watch_admissions_month", "watch_inpatient_days_year",
                                                     "watch_oop_person", "watch_oop_household", "watch_oop_per_capita",
                                                     "watch_oop_resident")}
    near: dict[str, set[str]] = {r: set() for r in truth}
    jan1, first = date(year, 1, 1), b.first

    def mark(rule: str, subject: str, warned: bool) -> None:
        (truth if warned else near)[rule].add(subject)

    # --- more than 5 admissions in the month (特困 via 1101, 低保 via the list) ---
    for i, n in enumerate((5, 4, 6)):
        p = b.person(unit=i + 1)  # the one above in 关庙镇 (north), the others' above in 谭坝镇 (south)
        b.category(p, "tekun" if i != 1 else "dibao", jan1 - timedelta(days=400), via_1101=(i != 1))
        for k in range(n):
            t = datetime(year, mon, 2 + 3 * k, 8, 30)
            b.stay(p, t, t + timedelta(hours=30))
        mark("watch_admissions_month", f"psn:{p}", n > 5)
    # trap: 6 admissions but one is 23:30 on the last day of the month before
    p = b.person()
    b.category(p, "tekun", jan1, via_1101=True)
    prev_last = first - timedelta(days=1)
    b.stay(p, datetime(prev_last.year, prev_last.month, prev_last.day, 23, 30), datetime(first.year, first.month, 1, 10))
    for k in range(5):
        t = datetime(year, mon, 3 + 4 * k, 9)
        b.stay(p, t, t + timedelta(hours=20))
    mark("watch_admissions_month", f"psn:{p}", False)
    # trap: 7 admissions, but the category ended before the month
    p = b.person()
    b.category(p, "dibao", jan1, end=first - timedelta(days=10))
    for k in range(7):
        t = datetime(year, mon, 2 + 3 * k, 8)
        b.stay(p, t, t + timedelta(hours=20))
    mark("watch_admissions_month", f"psn:{p}", False)

    # --- more than 90 inpatient days in the year ---
    for i, n in enumerate((90, 89, 91)):
        p = b.person(unit=i + 1)
        b.category(p, "dibao" if i != 2 else "tekun", jan1 - timedelta(days=30), via_1101=True)
        if n == 89:  # begun last year: 28 of its days in this year (1-28 January)
            b.stay(p, datetime(year - 1, 12, 20, 10), datetime(year, 1, 29, 9))
        else:  # February: 28 days, and a stay inside it that adds none
            b.stay(p, datetime(year, 2, 1, 10), datetime(year, 3, 1, 9))
            b.stay(p, datetime(year, 2, 10, 10), datetime(year, 2, 20, 9))
        # still in hospital at the month's end: 61, 62 or 63 days up to it
        extra = {89: 61, 90: 62, 91: 63}[n]
        start = b.next_first - timedelta(days=extra)
        end = datetime(b.next_first.year, b.next_first.month, 1, 10) if n == 91 else None  # discharged after it
        b.stay(p, datetime(start.year, start.month, start.day, 15), end)
        mark("watch_inpatient_days_year", f"psn:{p}", n > 90)

    # --- 因病返贫: a person's burden over 10,000 (households of two, the other member paying nothing) ---
    at_month = datetime(year, mon, 5, 10)
    for i, cents in enumerate((1000000, 999999, 1000001)):
        hh = ds._id("H")
        p = b.person(unit=i, household=hh)
        b.person(unit=i, household=hh)
        b.category(p, "jiance" if i else "tuopin", jan1 - timedelta(days=100))
        b.pay(p, Decimal(cents) / 100, datetime(year, 3, 3, 10), parts=3)
        mark("watch_oop_person", f"psn:{p}", cents > 1000000)
        if i == 0:  # settled after the month's end, and the last day of the year before: neither counts
            b.pay(p, Decimal("500.00"), datetime(b.next_first.year, b.next_first.month, 1, 0, 5))
            b.pay(p, Decimal("700.00"), datetime(year - 1, 12, 31, 23, 50))

    # --- a household's burden over 20,000 (four members, 5,000 each or so: per member under 6,000) ---
    for i, cents in enumerate((2000000, 1999999, 2000001)):
        hh = ds._id("H")
        members = [b.person(unit=i, household=hh) for _ in range(4)]
        b.category(members[0], "tuopin", jan1 - timedelta(days=100))
        shares = [500000, 500000, 500000, cents - 1500000]
        for m, c in zip(members, shares):
            b.pay(m, Decimal(c) / 100, at_month - timedelta(days=30 * (i + 1)), parts=2)
        mark("watch_oop_household", f"hh:{hh}", cents > 2000000)

    # --- per household member over 6,000 (two members: 12,000 in all is exactly 6,000 each) ---
    for i, cents in enumerate((1200000, 1199998, 1200002)):
        hh = ds._id("H")
        members = [b.person(unit=i, household=hh) for _ in range(2)]
        b.category(members[1], "jiance", jan1)
        b.pay(members[0], Decimal(cents // 2) / 100, at_month)
        b.pay(members[1], Decimal(cents - cents // 2) / 100, at_month, parts=2)
        mark("watch_oop_per_capita", f"hh:{hh}", cents > 1200000)

    # --- any resident over 26,000 (no category) ---
    for i, cents in enumerate((2600000, 2599999, 2600001)):
        p = b.person(unit=i)
        b.pay(p, Decimal(cents) / 100, datetime(year, 6, 1, 9), parts=4)
        mark("watch_oop_resident", f"psn:{p}", cents > 2600000)

    # --- ordinary people: some admissions and small burdens, far from every threshold ---
    rng = random.Random(seed)
    for _ in range(crowd):
        p = b.person(unit=rng.randrange(2))
        if rng.random() < 0.3:
            b.category(p, rng.choice(("tekun", "dibao", "tuopin", "jiance")), jan1 - timedelta(days=rng.randint(1, 900)))
        if rng.random() < 0.2:
            t = datetime(year, rng.randint(1, mon), rng.randint(1, 20), 9)  # discharged within the month
            b.stay(p, t, t + timedelta(days=rng.randint(1, 8)))
        for _ in range(rng.randint(0, 3)):
            b.pay(p, Decimal(rng.randint(1000, 200000)) / 100, datetime(year, rng.randint(1, mon), rng.randint(1, 28), 11))
    ds.truth, ds.near = truth, near
    return ds
