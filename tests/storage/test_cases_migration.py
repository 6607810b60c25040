"""Migration 0012 turns existing flags into cases: the findings of one settlement become one case (the
highest level, the most active status, their history); a group flag is a case of its own."""
from __future__ import annotations

from alembic import command
from sqlalchemy import text

from storage.db import alembic_config, make_engine

T = "2026-03-02 01:00:00"


def _flag(conn, fid, type_, level, status, settlement, dedup, inquiry=None):
    conn.execute(text(
        "INSERT INTO flags (id, type, rule, level, status, org_id, settlement_id, settlement_ids, occurred_at, reason, "
        "evidence, rule_version, model, dedup_key, inquiry_state, created_at, updated_at) VALUES (:id, :t, :t, :l, :s, "
        "'ORG1', :sid, :sids, :at, 'r', '{}', 'correlate-1', '{}', :d, :inq, :at, :at)"),
        {"id": fid, "t": type_, "l": level, "s": status, "sid": settlement, "sids": f'["{settlement}"]', "at": T,
         "d": dedup, "inq": inquiry})
    conn.execute(text("INSERT INTO flag_events (flag_id, at, actor, role, action, to_status, note) "
                      "VALUES (:f, :at, 'correlate', 'system', 'created', 'open', :n)"), {"f": fid, "at": T, "n": fid})


def test_existing_flags_become_cases(db_url):
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0010")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (id, name, region, uses_face_pay, created_at) "
                          "VALUES ('ORG1', 'Clinic', 'north', true, :at)"), {"at": T})
        conn.execute(text(
            "INSERT INTO settlements (id, insured_id, org_id, settled_at, amount, type, content_sha256, imported_at, "
            "imported_by, status, attempts) VALUES ('S1', 'P1', 'ORG1', :at, '120.50', 'pharmacy', 'x', :at, 't', "
            "'done', 0)"), {"at": T})
        _flag(conn, "F-GHOST", "ghost_visit", 4, "inquiry", "S1", "k1", inquiry="sent")
        _flag(conn, "F-NOPAY", "face_pay_absent", 2, "open", "S1", "k2")
        _flag(conn, "F-GROUP", "one_face_many_cards", 4, "confirmed", "S1", "k3")
        conn.execute(text("INSERT INTO flag_events (flag_id, at, actor, role, action, from_status, to_status, note) "
                          "VALUES ('F-GHOST', :at, 'user:insp', 'inspector', 'inquiry_sent', 'open', 'inquiry', "
                          "'why?')"), {"at": T})
    engine.dispose()
    command.upgrade(cfg, "head")
    engine = make_engine(db_url)
    with engine.connect() as conn:
        cases = conn.execute(text("SELECT id, key, level, status, inquiry_state, insured_id, amount, inquiry_sent_at "
                                  "FROM cases ORDER BY key")).mappings().all()
        assert [c["key"] for c in cases] == ["group:k3", "settlement:S1"]
        group, one = cases
        assert (one["level"], one["status"], one["inquiry_state"], one["insured_id"], one["amount"]) == \
            (4, "inquiry", "sent", "P1", 120.5)
        assert one["inquiry_sent_at"] is not None
        assert (group["level"], group["status"], group["insured_id"]) == (4, "confirmed", None)
        owners = dict(conn.execute(text("SELECT id, case_id FROM flags")).all())
        assert owners["F-GHOST"] == owners["F-NOPAY"] == one["id"] and owners["F-GROUP"] == group["id"]
        actions = [r[0] for r in conn.execute(text("SELECT action FROM case_events WHERE case_id = :c ORDER BY id"),
                                              {"c": one["id"]})]
        assert sorted(actions) == ["created", "created", "inquiry_sent"]
    engine.dispose()
    command.downgrade(cfg, "0010")
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM flags")).scalar() == 3  # the findings are kept
    engine.dispose()
