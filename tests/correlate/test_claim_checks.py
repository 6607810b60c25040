"""The data checks on generated records (camsim/claimsgen.py): each rule raises on its injected cases and
on nothing else, its decoys included; without what makes a decoy legitimate (the refund line, the stock
correction) the same records do flag. Flags carry the conflicting lines and the footage of the moment.
Real SQLite and PostgreSQL."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from camsim.claimsgen import CASES, generate
from correlate.claim_checks import run_checks
from correlate.claim_rules import RULES, rule
from correlate.claims_import import ClaimImporter
from ingest.cameras import add_camera
from kernel.settings import Settings
from storage.db import make_engine, make_sessionmaker, migrate, session_scope
from storage.models import Flag, Organisation, Settlement


@pytest.fixture
def sessions(db_url, tmp_path):
    migrate(db_url)
    s = make_sessionmaker(make_engine(db_url))
    with session_scope(s) as db:
        db.add(Organisation(id="CLINIC-A", name="Clinic A", region="north"))
        db.flush()
        add_camera(db, camera_id="CAM-P", org_id="CLINIC-A", name="发药窗口", role="pharmacy_counter",
                   url="rtsp://10.0.0.9/s", covers=["pharmacy-1"])
        add_camera(db, camera_id="CAM-S", org_id="CLINIC-A", name="收费处", role="settlement_counter",
                   url="rtsp://10.0.0.8/s", covers=["counter-1"])
        add_camera(db, camera_id="CAM-R", org_id="CLINIC-A", name="内科诊室", role="consulting_room",
                   url="rtsp://10.0.0.7/s", covers=["A03"])
    return s


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data")


def load(sessions, settings, records) -> None:
    with session_scope(sessions) as db:
        imp = ClaimImporter(db, settings, actor="test")
        for i, r in enumerate(records):
            imp.add(i, r)
        imp.flush()
        assert imp.result.errors == []


def check(sessions, settings, ds) -> list[Flag]:
    with session_scope(sessions) as db:
        _, flags = run_checks(db, settings, org_id=ds.org_id, start=ds.start, end=ds.end)
        db.expunge_all()
    return flags


def found(flags) -> set[tuple[str, str]]:
    return {(f.rule, f.dedup_key.split(":", 2)[2]) for f in flags}


def test_each_rule_raises_on_its_cases_and_ignores_the_decoys(sessions, settings):
    ds = generate(visits_per_day=60, cases=2, decoys=2, seed=5)
    load(sessions, settings, ds.flat())
    flags = check(sessions, settings, ds)
    got = found(flags)
    for r in CASES:  # per rule: exactly its injected cases
        assert {k for x, k in got if x == r} == {k for x, k in ds.truth if x == r}, r
    assert len(ds.truth) == 2 * len(CASES)
    # no flag concerns a decoy
    text = [json.dumps([f.dedup_key, f.evidence], ensure_ascii=False) for f in flags]
    for kind, ids in ds.decoys.items():
        assert ids, kind
        for i in ids:
            assert not [t for t in text if i in t], (kind, i)
    # a second run finds the same flags known, raises none
    again = check(sessions, settings, ds)
    assert sorted(f.id for f in again) == sorted(f.id for f in flags)
    with session_scope(sessions) as db:
        assert len(db.scalars(select(Flag)).all()) == len(flags)


def test_flags_carry_the_lines_and_the_footage_of_the_moment(sessions, settings):
    ds = generate(visits_per_day=10, cases=1, decoys=0, seed=7)
    load(sessions, settings, ds.flat())
    by_rule = {f.rule: f for f in check(sessions, settings, ds)}
    sub = by_rule["claims_substitution"]
    lines = sub.evidence["lines"]
    billed_code = sub.dedup_key.rsplit(":", 1)[1]
    assert [b["med_list_codg"] for b in lines["billed"]] == [billed_code]
    assert lines["prescribed"] and billed_code not in {p["med_list_codg"] for p in lines["prescribed"]}
    assert [(m["kind"], m["med_list_codg"]) for m in lines["stock"]] == [("sale", billed_code)]  # what was dispensed
    # the pharmacy counter at the moment the fee was charged, a window around it, held as evidence
    cam = sub.evidence["cameras"][0]
    assert cam["camera_id"] == "CAM-P" and cam["start"] < lines["billed"][0]["fee_ocur_time"] < cam["end"]
    assert sub.evidence["moment"] == lines["billed"][0]["fee_ocur_time"]
    assert sub.level == rule("claims_substitution").level and sub.rule_version == "claims_substitution@1"
    assert sub.settlement_id and sub.evidence["reason_parts"][0]["code"] == "claims_substitution"
    short = by_rule["claims_sold_beyond_stock"]
    assert short.evidence["lines"]["stock"][0]["kind"] == "count"
    assert short.evidence["lines"]["stock"][-1]["balance"] < 0
    nv = by_rule["claims_no_visit"]
    assert nv.evidence["cameras"][0]["camera_id"] == "CAM-R" and nv.evidence["lines"]["visit"] == []
    assert nv.evidence["lines"]["billed"]


def test_no_visit_is_raised_when_the_counter_footage_found_nobody(sessions, settings):
    """The level of a settlement without a visit rises when its own footage check (correlate/check.py)
    came out ghost_visit: the outcome that check writes on the settlement."""
    ds = generate(visits_per_day=5, cases=1, decoys=0, seed=9)
    load(sessions, settings, ds.flat())
    setl = next(k for r, k in ds.truth if r == "claims_no_visit")
    with session_scope(sessions) as db:
        db.get(Settlement, setl).outcome = "ghost_visit"
    nv = next(f for f in check(sessions, settings, ds) if f.rule == "claims_no_visit")
    assert nv.level == rule("claims_no_visit").thresholds["raised_level"] > rule("claims_no_visit").level
    assert nv.evidence["lines"]["settlement"][0]["footage_outcome"] == "ghost_visit"


def test_without_what_makes_them_legitimate_the_decoys_flag(sessions, settings):
    """The decoys are near misses: drop the refund lines and the stock corrections and the same records
    are duplicates, over quantities and sales beyond stock."""
    ds = generate(visits_per_day=5, cases=0, decoys=2, seed=11)
    records = [r for r in ds.flat() if not r.get("init_feedetl_sn") and r["infno"] != "3502"]
    load(sessions, settings, records)
    got = found(check(sessions, settings, ds))
    short = {k.split(":")[0] for r, k in got if r == "claims_sold_beyond_stock"}
    assert short == set(ds.decoys["stock_correction"])
    # the refunded line and its rebilling: a duplicate; the sale returned but not refunded: never dispensed
    dup = {k.split(":")[0] for r, k in got if r == "claims_duplicate_charge"}
    assert set(ds.decoys["refund"]) <= dup
    undispensed = {k.split(":")[0] for r, k in got if r == "claims_billed_not_dispensed"}
    assert set(ds.decoys["sale_return"]) <= undispensed


def test_rules_are_data():
    """Every threshold a check reads is in its rule: the library can take them over."""
    assert {r.id for r in RULES} == set(CASES)
    for r in RULES:
        assert r.name_zh and r.rule_class in ("management", "clinical", "drug") and 1 <= r.level <= 5
        json.dumps(r.thresholds)
