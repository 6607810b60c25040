"""The cross-check's match decision per face-size band: a score in the uncertain band refers the person to
the inspector ("cannot tell") instead of clearing (verified_present) or accusing (impersonation)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.db import session_scope
from storage.models import Settlement, SettlementCheck
from tests.correlate import scenarios as sc
from tests.correlate.conftest import SETTINGS, make_world
from tests.web.conftest import add_users
from tests.web.test_auth import login

BANDS = ("terminal", "counter", "far")


@pytest.fixture
def unsure_world(make_settings, shared_pipeline, testdata, tmp_path):
    """Every band's uncertain range covers every possible score: nobody is a match, nobody a mismatch."""
    table = {"yunet_sface": {b: (-1.0, 1.0) for b in BANDS}}
    w = make_world(make_settings(f"sqlite:///{tmp_path / 'w.db'}", match_thresholds=table, **SETTINGS),
                   shared_pipeline, testdata, tmp_path)
    yield w
    w.client.__exit__(None, None, None)
    w.rt.close()


@pytest.mark.slow
def test_uncertain_scores_go_to_the_inspector_not_to_an_outcome(unsure_world, testdata):
    w = unsure_world
    blocks = {name: w.add_block(name, testdata) for name in ("impostor", "present")}
    rows = [sc.settlement(f"S-{name}", "P-OBAMA", "CLINIC-A", b.settled_at, terminal="CLINIC-A-T1",
                          counter="counter-1") for name, b in blocks.items()]
    assert w.post(rows).status_code == 200
    w.run_jobs()
    with session_scope(w.rt.sessions) as db:
        got = {s.id: s.outcome for s in db.scalars(select(Settlement))}
        checks = {c.settlement_id: c for c in db.scalars(select(SettlementCheck))}
        # neither the stranger (normally impersonation) nor the insured person (normally verified_present)
        assert got == {"S-impostor": "inconclusive", "S-present": "inconclusive"}, got
        for sid in got:
            c = checks[sid]
            assert c.summary["reason_parts"][0]["code"] == "cannot_tell", c.summary["reason_parts"]
            d = c.summary["match_decision"]  # the band and thresholds the decision used
            assert d["decision"] == "uncertain" and d["band"] in ("counter", "far") and (d["lower"], d["upper"]) == (-1.0, 1.0)
            assert "cannot tell" in c.reason
    # the inspector gets it, as an inconclusive flag (level 1)
    flags = {f["settlement_id"]: f for f in w.flags() if f["rule"] in ("inconclusive", "impersonation")}
    assert flags["S-impostor"]["type"] == "inconclusive" and flags["S-impostor"]["level"] == 1
    assert flags["S-present"]["type"] == "inconclusive"
    # and reads why in Chinese on the flag's page
    add_users(w.rt)
    assert login(w.client, "insp-north").status_code == 303
    page = w.client.get(f"/flags/{flags['S-impostor']['id']}")
    assert page.status_code == 200 and "无法判断付款人是否为参保人本人" in page.text, page.text[:2000]
    assert "cannot_tell" not in page.text  # no raw code (the history's event note keeps the stored English)


@pytest.mark.slow
def test_default_bands_keep_the_clear_cases(world_sqlite, testdata):
    """With the shipped thresholds the clear cases stay as they were, and the band used is recorded."""
    w = world_sqlite
    blocks = {name: w.add_block(name, testdata) for name in ("impostor", "present")}
    rows = [sc.settlement(f"S-{name}", "P-OBAMA", "CLINIC-A", b.settled_at, terminal="CLINIC-A-T1",
                          counter="counter-1") for name, b in blocks.items()]
    assert w.post(rows).status_code == 200
    w.run_jobs()
    with session_scope(w.rt.sessions) as db:
        checks = {c.settlement_id: c for c in db.scalars(select(SettlementCheck))}
    imp, ok = checks["S-impostor"], checks["S-present"]
    assert imp.outcome == "impersonation" and ok.outcome == "verified_present"
    d_imp, d_ok = imp.summary["match_decision"], ok.summary["match_decision"]
    assert d_imp["decision"] == "mismatch" and d_imp["score"] < d_imp["lower"] == 0.30
    assert d_ok["decision"] == "match" and d_ok["score"] >= d_ok["upper"] and d_ok["band"] in BANDS
