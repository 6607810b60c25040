"""ward beds mapped to cameras and the bed checks of inpatient days (issue 13, bed-hanging)

Revision ID: 0021
Revises: 0020
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ward_beds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("dept_codg", sa.String(length=64), nullable=False),
        sa.Column("bed_no", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("region", sa.JSON(), nullable=False),
        sa.Column("ref_day", sa.JSON(), nullable=True),
        sa.Column("ref_night", sa.JSON(), nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"]),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "dept_codg", "bed_no", name="uq_ward_beds_bed"),
    )
    op.create_index("ix_ward_beds_org_id", "ward_beds", ["org_id"])
    op.create_index("ix_ward_beds_camera_id", "ward_beds", ["camera_id"])
    op.create_table(
        "bed_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("mdtrt_id", sa.String(length=64), nullable=False),
        sa.Column("psn_no", sa.String(length=64), nullable=False),
        sa.Column("bed_id", sa.Integer(), nullable=True),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("slot", sa.String(length=5), nullable=False),
        sa.Column("at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("why", sa.String(length=32), nullable=False),
        sa.Column("light", sa.String(length=8), nullable=True),
        sa.Column("changed", sa.Float(), nullable=True),
        sa.Column("face", sa.String(length=8), nullable=False),
        sa.Column("face_score", sa.Float(), nullable=True),
        sa.Column("frame_key", sa.String(length=300), nullable=True),
        sa.Column("checked_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "mdtrt_id", "at", name="uq_bed_checks_moment"),
    )
    op.create_index("ix_bed_checks_org_id", "bed_checks", ["org_id"])
    op.create_index("ix_bed_checks_mdtrt_id", "bed_checks", ["mdtrt_id"])
    op.create_index("ix_bed_checks_at", "bed_checks", ["at"])


def downgrade() -> None:
    op.drop_table("bed_checks")
    op.drop_table("ward_beds")
