"""The rule library: every declared rule stored as version 1, edits with a required note kept as history,
thresholds checked against the rule's own keys; admissions and discharges import in the platform's names."""
from __future__ import annotations

import pytest

from correlate import rulebook
from correlate.claims_import import ClaimImporter
from storage.db import make_engine, make_sessionmaker, migrate
from storage.models import ClaimAdmission, ClaimDischarge, Organisation, RuleEntry


@pytest.fixture
def settings(make_settings, db_url):
    return make_settings(db_url)


@pytest.fixture
def db_session(settings):
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    db = make_sessionmaker(engine)()
    yield db
    db.rollback()
    db.close()
    engine.dispose()


def test_every_declared_rule_is_version_1_and_an_edit_needs_a_note(db_session, settings):
    book = rulebook.load(db_session, settings)
    assert book["claims_over_quantity"].version == 1
    assert book["claims_over_quantity"].tag == "claims_over_quantity@1"
    assert book["one_face_many_cards"].thresholds["min_insured"] == settings.correlate_many_cards_min
    with pytest.raises(rulebook.RuleChangeInvalid) as e:
        rulebook.change(db_session, "claims_over_quantity", actor="admin", note="  ", thresholds={"max_days_supply": 7})
    assert e.value.code == "note_required"
    r = rulebook.change(db_session, "claims_over_quantity", actor="admin", note="第3批规则调整",
                        thresholds={"max_days_supply": 7}, level=4)
    assert (r.version, r.level, r.thresholds["max_days_supply"]) == (2, 4, 7)
    assert rulebook.current(db_session, "claims_over_quantity").tag == "claims_over_quantity@2"
    hist = rulebook.history(db_session, "claims_over_quantity")
    assert [h.version for h in hist] == [2, 1]
    assert hist[0].note == "第3批规则调整" and hist[0].before["thresholds"]["max_days_supply"] == 30
    for bad in ({"no_such_key": 1}, {"max_days_supply": "many"}, {"max_days_supply": -1}):
        with pytest.raises(rulebook.RuleChangeInvalid):
            rulebook.change(db_session, "claims_over_quantity", actor="admin", note="x", thresholds=bad)
    with pytest.raises(rulebook.RuleChangeInvalid) as e:
        rulebook.change(db_session, "claims_over_quantity", actor="admin", note="again", level=4)
    assert e.value.code == "no_change"
    assert rulebook.current(db_session, "claims_over_quantity").version == 2


def test_admissions_and_discharges_import_by_natural_key(db_session, settings):
    db_session.add(Organisation(id="H0001", name="县人民医院"))
    db_session.flush()
    imp = ClaimImporter(db_session, settings, actor="test")
    adm = {"infno": "2401", "fixmedins_code": "H0001", "mdtrt_id": "M1", "psn_no": "P1", "med_type": "21",
           "begntime": "2026-11-01 09:30:00", "ipt_no": "ZY001", "adm_bed": "12", "adm_dept_codg": "A03"}
    imp.add(1, adm)
    imp.add(2, {"infno": "2402", "fixmedins_code": "H0001", "mdtrt_id": "M1", "psn_no": "P1",
                "endtime": "2026-11-09 10:00:00", "dscg_way": "1"})
    imp.add(3, {**adm, "mdtrt_id": "M2", "begntime": "yesterday"})
    imp.flush()
    imp.add(4, adm)
    imp.flush()
    assert imp.result.imported == {"admission": 1, "discharge": 1}
    assert imp.result.unchanged == 1
    assert [(e.line, "begntime" in e.reason) for e in imp.result.errors] == [(3, True)]
    a = db_session.query(ClaimAdmission).one()
    assert (a.adm_bed, a.ipt_no, a.begntime.hour) == ("12", "ZY001", 1)  # 09:30 Beijing time is 01:30Z
    assert db_session.query(ClaimDischarge).one().endtime.day == 9


def test_the_correlate_levels_setting_seeds_the_first_version(make_settings, db_url, tmp_path):
    """A deployment that set levels keeps them as the library's version 1 (the raised impersonation
    level is the impersonation rule's threshold); a setting naming no flag type is refused."""
    settings = make_settings(db_url, correlate_levels={"face_pay_absent": 1, "impersonation_failed_face_check": 4})
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    db = make_sessionmaker(engine)()
    try:
        book = rulebook.load(db, settings)
        assert book["face_pay_absent"].level == 1 and book["face_pay_failed"].level == 3
        assert book["impersonation"].thresholds["raised_level_face_check_failed"] == 4
    finally:
        db.rollback()
        db.close()
        engine.dispose()
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(fresh)
    engine = make_engine(fresh)
    with make_sessionmaker(engine)() as db, pytest.raises(ValueError, match="no_such_type"):
        rulebook.load(db, make_settings(fresh, correlate_levels={"no_such_type": 2}))
    engine.dispose()


def test_a_threshold_added_by_a_later_release_is_read_from_its_declaration(db_session, settings):
    """A library stored by an older release lacks a threshold the code now declares: the check still
    finds it (the code's value), and an admin can edit it."""
    rulebook.load(db_session, settings)
    row = db_session.get(RuleEntry, "claims_no_visit")
    row.thresholds = {k: v for k, v in row.thresholds.items() if k != "visit_window_hours"}
    db_session.flush()
    assert rulebook.current(db_session, "claims_no_visit").thresholds["visit_window_hours"] == 24
    r = rulebook.change(db_session, "claims_no_visit", actor="admin", note="窗口改为12小时",
                        thresholds={"visit_window_hours": 12})
    assert (r.version, r.thresholds["visit_window_hours"]) == (2, 12)
