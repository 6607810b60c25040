"""cases: one case per settlement (or per group flag) over its findings, decided once; inquiry deadlines,
read marks and answer attachments; existing flags migrated into cases

Revision ID: 0012
Revises: 0011
"""
from datetime import datetime, timezone
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

GROUP_TYPES = ("one_face_many_cards", "repeated_footage_missing")
_RANK = {"inquiry": 0, "open": 1, "confirmed": 2, "dismissed": 3, "acknowledged": 4}


def _case_key(type_, settlement_id, dedup_key):
    # the same rule as correlate/case_link.py (kept here as it was at this revision)
    if type_ in GROUP_TYPES or not settlement_id:
        return "group:" + dedup_key
    return "settlement:" + settlement_id


def _dt(v):
    if v is None or isinstance(v, datetime):
        return v.replace(tzinfo=timezone.utc) if v is not None and v.tzinfo is None else v
    d = datetime.fromisoformat(str(v))
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def upgrade() -> None:
    op.create_table(
        'cases',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('key', sa.String(length=220), nullable=False, unique=True),
        sa.Column('org_id', sa.String(length=64), sa.ForeignKey('organisations.id'), nullable=False),
        sa.Column('settlement_id', sa.String(length=100), nullable=True),
        sa.Column('insured_id', sa.String(length=64), nullable=True),
        sa.Column('amount', sa.Float(), nullable=True),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('inquiry_state', sa.String(length=16), nullable=True),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('inquiry_sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ack_due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answer_due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answer_read_at', sa.DateTime(timezone=True), nullable=True),
    )
    for col in ('org_id', 'settlement_id', 'insured_id', 'level', 'status', 'occurred_at', 'created_at',
                'ack_due_at', 'answer_due_at'):
        op.create_index(f'ix_cases_{col}', 'cases', [col])
    op.create_table(
        'case_events',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('case_id', sa.String(length=32), sa.ForeignKey('cases.id'), nullable=False),
        sa.Column('flag_id', sa.String(length=32), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('from_status', sa.String(length=16), nullable=True),
        sa.Column('to_status', sa.String(length=16), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
    )
    op.create_index('ix_case_events_case_id', 'case_events', ['case_id'])
    op.create_table(
        'case_attachments',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('case_id', sa.String(length=32), sa.ForeignKey('cases.id'), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('uploaded_by', sa.String(length=200), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_case_attachments_case_id', 'case_attachments', ['case_id'])
    op.create_index('ix_case_attachments_org_id', 'case_attachments', ['org_id'])
    with op.batch_alter_table('flags') as batch:
        batch.add_column(sa.Column('case_id', sa.String(length=32), nullable=True))
    op.create_index('ix_flags_case_id', 'flags', ['case_id'])
    _migrate_flags()


def _migrate_flags() -> None:
    """Every existing flag joins the case of its settlement (or its own group case). The case takes the
    highest level, the most active status (an open finding keeps the case open) and its findings' history."""
    conn = op.get_bind()
    flags = conn.execute(sa.text(
        "SELECT f.id, f.type, f.level, f.status, f.org_id, f.settlement_id, f.dedup_key, f.inquiry_state, "
        "f.occurred_at, f.created_at, f.updated_at, f.closed_at, s.insured_id, s.amount FROM flags f "
        "LEFT JOIN settlements s ON s.id = f.settlement_id ORDER BY f.created_at, f.id")).mappings().all()
    cases: dict[str, dict] = {}
    for f in flags:
        key = _case_key(f["type"], f["settlement_id"], f["dedup_key"])
        c = cases.get(key)
        if c is None:
            try:
                amount = float(f["amount"]) if f["amount"] is not None else None
            except ValueError:
                amount = None
            c = cases[key] = {"id": uuid.uuid4().hex, "key": key, "org_id": f["org_id"], "flags": [],
                              "settlement_id": None if key.startswith("group:") else f["settlement_id"],
                              "insured_id": None if key.startswith("group:") else f["insured_id"],
                              "amount": amount, "level": 0, "status": "acknowledged", "inquiry_state": None,
                              "occurred_at": _dt(f["occurred_at"]), "created_at": _dt(f["created_at"]),
                              "updated_at": _dt(f["updated_at"]), "closed_at": _dt(f["closed_at"])}
        c["flags"].append(f["id"])
        c["level"] = max(c["level"], f["level"])
        if _RANK.get(f["status"], 9) < _RANK.get(c["status"], 9):
            c["status"] = f["status"]
        c["inquiry_state"] = c["inquiry_state"] or f["inquiry_state"]
        c["updated_at"] = max(c["updated_at"], _dt(f["updated_at"]))
        if f["closed_at"] is not None:
            c["closed_at"] = max(c["closed_at"] or _dt(f["closed_at"]), _dt(f["closed_at"]))
    for c in cases.values():
        if c["status"] in ("open", "inquiry"):
            c["closed_at"] = None
        conn.execute(sa.text(
            "INSERT INTO cases (id, key, org_id, settlement_id, insured_id, amount, level, status, inquiry_state, "
            "occurred_at, created_at, updated_at, closed_at) VALUES (:id, :key, :org_id, :settlement_id, "
            ":insured_id, :amount, :level, :status, :inquiry_state, :occurred_at, :created_at, :updated_at, "
            ":closed_at)"), {k: v for k, v in c.items() if k != "flags"})
        for fid in c["flags"]:
            conn.execute(sa.text("UPDATE flags SET case_id = :c WHERE id = :f"), {"c": c["id"], "f": fid})
            # the findings' history becomes the case's, each entry naming its finding
            conn.execute(sa.text(
                "INSERT INTO case_events (case_id, flag_id, at, actor, role, action, from_status, to_status, note) "
                "SELECT :c, flag_id, at, actor, role, action, from_status, to_status, note FROM flag_events "
                "WHERE flag_id = :f ORDER BY id"), {"c": c["id"], "f": fid})
        # inquiry times from the history: when it was sent and answered
        sent = conn.execute(sa.text("SELECT max(at) FROM case_events WHERE case_id = :c AND action = 'inquiry_sent'"),
                            {"c": c["id"]}).scalar()
        answered = conn.execute(sa.text("SELECT max(at) FROM case_events WHERE case_id = :c "
                                        "AND action = 'inquiry_answered'"), {"c": c["id"]}).scalar()
        conn.execute(sa.text("UPDATE cases SET inquiry_sent_at = :s, answered_at = :a, acknowledged_at = :a, "
                             "answer_read_at = :a WHERE id = :c"), {"s": sent, "a": answered, "c": c["id"]})


def downgrade() -> None:
    op.drop_index('ix_flags_case_id', table_name='flags')
    with op.batch_alter_table('flags') as batch:
        batch.drop_column('case_id')
    op.drop_table('case_attachments')
    op.drop_table('case_events')
    op.drop_table('cases')
