"""The rule library drives the data checks: an edited threshold (with its note) is what the next check
applies and the flag it raises records the new version while an earlier flag keeps its own; a switched
off rule, or one outside its effective dates, raises nothing; a rule's reference data imported from CSV
(a drug's own days of supply, substitution groups, price bands) changes what is flagged, with per-row
errors by line number, idempotently, each import a new version; precision per rule and per version is
confirmed ÷ decided. Real SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from correlate import cases, rule_reference, rulebook
from correlate.claim_checks import run_checks
from correlate.claims_import import ClaimImporter
from correlate.rule_precision import precision
from kernel.settings import Settings
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import Case, Flag, Organisation, RuleChange

DAY = datetime(2026, 11, 2, tzinfo=timezone.utc)
START, END = DAY - timedelta(hours=8), DAY + timedelta(hours=16)  # 2 November, Beijing time


@pytest.fixture
def sessions(db_url):
    migrate(db_url)
    s = make_sessionmaker(make_engine(db_url))
    with session_scope(s) as db:
        db.add(Organisation(id="CLINIC-A", name="Clinic A", region="north"))
    return s


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data")


def visit_records(n: int, drugs: list[tuple[str, float, float, float]], billed: list[tuple[str, float, float, float]],
                  minute: int = 0) -> list[dict]:
    """One visit with a prescription of ``drugs`` and fee lines ``billed``: (code, count, days, price)."""
    org, mdtrt, psn, rx = "CLINIC-A", f"MD{n:04d}", f"PSN{n:04d}", f"RX{n:04d}"
    t = (datetime(2026, 11, 2, 9, 0) + timedelta(minutes=10 * n + minute)).strftime("%Y-%m-%d %H:%M:%S")
    out = [{"infno": "2201", "fixmedins_code": org, "mdtrt_id": mdtrt, "psn_no": psn, "begntime": t,
            "dept_code": "A03", "atddr_no": "D1"}]
    for code, cnt, days, pric in drugs:
        out.append({"infno": "7101", "fixmedins_code": org, "rxno": rx, "mdtrt_id": mdtrt, "psn_no": psn,
                    "prsc_time": t, "med_list_codg": code, "drug_genname": "药", "drug_cnt": cnt, "drug_pric": pric,
                    "medc_days": days})
    for i, (code, cnt, days, pric) in enumerate(billed, 1):
        out.append({"infno": "2204", "fixmedins_code": org, "feedetl_sn": f"{mdtrt}-{i:03d}", "mdtrt_id": mdtrt,
                    "psn_no": psn, "rxno": rx, "fee_ocur_time": t, "med_list_codg": code, "medins_list_codg": "H1",
                    "cnt": cnt, "pric": pric, "det_item_fee_sumamt": round(cnt * pric, 2), "prd_days": days,
                    "bilg_dr_codg": "D1"})
    out.append({"infno": "2207", "fixmedins_code": org, "setl_id": f"SETL{n:04d}", "mdtrt_id": mdtrt, "psn_no": psn,
                "med_type": "11", "setl_time": t, "medfee_sumamt": 100.0, "counter": "counter-1"})
    return out


def load(sessions, settings, records) -> None:
    with session_scope(sessions) as db:
        imp = ClaimImporter(db, settings, actor="test")
        for i, r in enumerate(records):
            imp.add(i, r)
        imp.flush()
        assert imp.result.errors == []


def check(sessions, settings) -> tuple[dict, dict[str, Flag]]:
    """The counts and every flag raised so far, by its prescription number."""
    with session_scope(sessions) as db:
        counts, _ = run_checks(db, settings, org_id="CLINIC-A", start=START, end=END)
        flags = {f.dedup_key.split(":")[2]: f for f in db.scalars(select(Flag))}
        db.expunge_all()
    return counts, flags


def test_an_edited_threshold_is_what_the_next_check_applies(sessions, settings):
    # 40 days of supply: beyond the first version's 30
    load(sessions, settings, visit_records(1, [("XA01", 1, 40, 10.0)], [("XA01", 1, 40, 10.0)]))
    _, flags = check(sessions, settings)
    assert flags["RX0001"].rule == "claims_over_quantity" and flags["RX0001"].rule_version == "claims_over_quantity@1"
    assert flags["RX0001"].evidence["rule"]["version"] == "claims_over_quantity@1"
    # 10 days: within 30, not flagged
    load(sessions, settings, visit_records(2, [("XA01", 1, 10, 10.0)], [("XA01", 1, 10, 10.0)]))
    _, flags = check(sessions, settings)
    assert "RX0002" not in flags
    with session_scope(sessions) as db:
        rulebook.change(db, "claims_over_quantity", actor="user:admin", note="第2批：最长8天",
                        thresholds={"max_days_supply": 8})
    _, flags = check(sessions, settings)
    new = flags["RX0002"]
    assert new.rule_version == "claims_over_quantity@2" and new.evidence["rule"]["thresholds"]["max_days_supply"] == 8
    assert new.evidence["reason_parts"][0]["args"]["max_days"] == 8
    assert flags["RX0001"].rule_version == "claims_over_quantity@1"  # the earlier flag keeps its version
    # switched off: a case of it raises nothing
    with session_scope(sessions) as db:
        rulebook.change(db, "claims_over_quantity", actor="user:admin", note="暂停", enabled=False)
    load(sessions, settings, visit_records(3, [("XA01", 1, 50, 10.0)], [("XA01", 1, 50, 10.0)]))
    counts, flags = check(sessions, settings)
    assert "RX0003" not in flags and counts["claims_over_quantity:not_applied"] >= 1
    # on again but effective only from the next day: the moment of the data is outside it
    with session_scope(sessions) as db:
        rulebook.change(db, "claims_over_quantity", actor="user:admin", note="次日起生效", enabled=True,
                        effective_from=END)
    assert "RX0003" not in check(sessions, settings)[1]
    with session_scope(sessions) as db:
        rulebook.change(db, "claims_over_quantity", actor="user:admin", note="即日生效", effective_from=START)
    _, flags = check(sessions, settings)
    assert flags["RX0003"].rule_version == "claims_over_quantity@5" and flags["RX0003"].level == 3
    # a changed level is the level of the next flag
    with session_scope(sessions) as db:
        rulebook.change(db, "claims_over_quantity", actor="user:admin", note="升级", level=5)
    load(sessions, settings, visit_records(4, [("XA01", 1, 50, 10.0)], [("XA01", 1, 50, 10.0)]))
    assert check(sessions, settings)[1]["RX0004"].level == 5


def _import(sessions, rule, kind, text, note="知识库第1批"):
    with session_scope(sessions) as db:
        return rule_reference.import_csv(db, rule, kind, text.encode(), actor="user:admin", note=note, source="test")


def test_a_drugs_own_days_of_supply_from_csv(sessions, settings):
    load(sessions, settings, visit_records(1, [("XB01", 1, 10, 10.0)], [("XB01", 1, 10, 10.0)]))
    load(sessions, settings, visit_records(2, [("XB02", 1, 10, 10.0)], [("XB02", 1, 10, 10.0)]))
    assert not check(sessions, settings)[1]  # 10 days: within the global 30
    csv = "med_list_codg,max_days,drug_genname\nXB01,7,头孢克肟片\nXB09,0,\n,5,\nXB03,seven,\nXB04,14\n"
    res = _import(sessions, "claims_over_quantity", "days_supply", csv)
    assert (res.imported, res.unchanged, res.version) == (1, 0, 2)
    assert [(e.line, e.reason.split(" ")[0]) for e in res.errors] == [(3, "max_days"), (4, "med_list_codg"),
                                                                       (5, "max_days"), (6, "2")]
    _, flags = check(sessions, settings)
    assert set(flags) == {"RX0001"}  # XB01 limited to 7 days; XB02 keeps the global 30
    f = flags["RX0001"]
    assert f.rule_version == "claims_over_quantity@2" and f.evidence["reason_parts"][0]["args"]["max_days"] == 7
    # the same file again: nothing changes, no new version; a changed row: the next version
    again = _import(sessions, "claims_over_quantity", "days_supply", csv)
    assert (again.imported, again.changed, again.unchanged, again.version) == (0, 0, 1, None)
    changed = _import(sessions, "claims_over_quantity", "days_supply", "med_list_codg,max_days\nXB01,10\n", "放宽")
    assert (changed.changed, changed.version) == (1, 3)
    with session_scope(sessions) as db:
        hist = rulebook.history(db, "claims_over_quantity")
        assert [(h.version, h.note) for h in hist] == [(3, "放宽"), (2, "知识库第1批"), (1, "初始版本（系统内置）")]
        assert hist[1].before["reference"] == {} and hist[1].after["reference"] == {"days_supply": 1}
        assert hist[1].after["import"]["refused"] == 4
    # refused whole: no note, the wrong rule for the kind, a header without the kind's columns, not UTF-8
    for rule, kind, text, note, code in (
            ("claims_over_quantity", "days_supply", csv, " ", "note_required"),
            ("claims_substitution", "days_supply", csv, "x", "reference_kind"),
            ("claims_over_quantity", "days_supply", "code,days\nXB01,7\n", "x", "bad_header")):
        with pytest.raises(rulebook.RuleChangeInvalid) as e:
            _import(sessions, rule, kind, text, note)
        assert e.value.code == code
    with session_scope(sessions) as db, pytest.raises(rulebook.RuleChangeInvalid) as e:
        rule_reference.import_csv(db, "claims_over_quantity", "days_supply", "med_list_codg,max_days\nXB01,7\n"
                                  .encode("gbk") + "阿莫西林".encode("gbk"), actor="t", note="x", source="t")
    assert e.value.code == "not_utf8"


def test_substitution_groups_and_price_bands_from_csv(sessions, settings):
    # prescribed XC01 at 50.00, billed XC02 at 52.00 (within the global 10 %): a substitution ...
    load(sessions, settings, visit_records(1, [("XC01", 1, 7, 50.0)], [("XC02", 1, 7, 52.0)]))
    # ... and XD01 prescribed at 100, XD02 billed at 108
    load(sessions, settings, visit_records(2, [("XD01", 1, 7, 100.0)], [("XD02", 1, 7, 108.0)]))
    with session_scope(sessions) as db:  # the library at version 1, before any reference data
        rulebook.load(db, settings)
    res = _import(sessions, "claims_substitution", "substitution_group",
                  "group,med_list_codg,drug_genname\n阿莫西林,XC01,阿莫西林胶囊\n阿莫西林,XC02,阿莫西林片\n阿莫西林,\n")
    assert (res.imported, [e.line for e in res.errors]) == (2, [4])
    bands = _import(sessions, "claims_substitution", "price_band",
                    "med_list_codg,group,price_band\nXD01,,0.05\n,阿莫西林,0.2\nXD01,阿莫西林,0.1\n,,0.1\nXE01,,2\n",
                    note="价格区间")
    assert bands.imported == 2 and [e.line for e in bands.errors] == [4, 5, 6]
    counts, flags = check(sessions, settings)
    # XC02 for XC01: declared alternatives, not 串换 (nor a drug off the prescription)
    assert "RX0001" not in flags and counts["alternatives_allowed"] == 1
    # XD02 at 108 is outside XD01's own 5 % band: not the same price, so a drug off the prescription
    assert flags["RX0002"].rule == "claims_not_prescribed"
    with session_scope(sessions) as db:
        assert rule_reference.counts(db, "claims_substitution") == {"substitution_group": 2, "price_band": 2}
        assert rulebook.current(db, "claims_substitution").version == 3


def test_without_reference_data_the_same_records_are_substitutions(sessions, settings):
    load(sessions, settings, visit_records(1, [("XC01", 1, 7, 50.0)], [("XC02", 1, 7, 52.0)]))
    load(sessions, settings, visit_records(2, [("XD01", 1, 7, 100.0)], [("XD02", 1, 7, 108.0)]))
    _, flags = check(sessions, settings)
    assert {k: f.rule for k, f in flags.items()} == {"RX0001": "claims_substitution", "RX0002": "claims_substitution"}


def _decide(sessions, flag_id: str, decision: str) -> None:
    with session_scope(sessions) as db:
        case = db.get(Case, db.get(Flag, flag_id).case_id)
        cases.decide(db, case, decision, actor="user:insp", role="inspector", note="核实", legal=None)


def test_precision_per_rule_and_per_version(sessions, settings):
    for n in (1, 2, 3):  # version 1: three over-days flags
        load(sessions, settings, visit_records(n, [("XA01", 1, 40, 10.0)], [("XA01", 1, 40, 10.0)]))
    _, v1 = check(sessions, settings)
    with session_scope(sessions) as db:
        rulebook.change(db, "claims_over_quantity", actor="user:admin", note="第2批", level=4)
    for n in (4, 5):  # version 2: two more
        load(sessions, settings, visit_records(n, [("XA01", 1, 40, 10.0)], [("XA01", 1, 40, 10.0)]))
    _, flags = check(sessions, settings)
    assert [flags[f"RX000{n}"].rule_version[-2:] for n in range(1, 6)] == ["@1", "@1", "@1", "@2", "@2"]
    _decide(sessions, flags["RX0001"].id, "confirm")
    _decide(sessions, flags["RX0002"].id, "dismiss")  # RX0003 stays open: not decided
    _decide(sessions, flags["RX0004"].id, "confirm")
    _decide(sessions, flags["RX0005"].id, "confirm")
    with session_scope(sessions) as db:
        stats = {s["rule"]: s for s in precision(db)}
        # every other rule's flags are the settlements' (none here)
        assert db.scalar(select(RuleChange.version).where(RuleChange.rule_id == "claims_over_quantity")
                         .order_by(RuleChange.version.desc())) == 2
    s = stats["claims_over_quantity"]
    assert (s["confirmed"], s["dismissed"], s["decided"], s["flags"], s["precision"]) == (3, 1, 4, 5, 0.75)
    assert [(v["version"], v["confirmed"], v["decided"], v["precision"]) for v in s["versions"]] == [
        (2, 2, 2, 1.0), (1, 1, 2, 0.5)]
    with session_scope(sessions) as db:  # an inspector of another region counts none of them
        assert precision(db, org_ids=["PHARM-B"]) == []
