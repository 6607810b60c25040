"""camera_status spool_bytes/spool_limit_bytes as BIGINT (a spool bound is often > 2 GiB)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('camera_status', schema=None) as batch_op:
        batch_op.alter_column('spool_bytes', existing_type=sa.Integer(), type_=sa.BigInteger(),
                              existing_nullable=False)
        batch_op.alter_column('spool_limit_bytes', existing_type=sa.Integer(), type_=sa.BigInteger(),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('camera_status', schema=None) as batch_op:
        batch_op.alter_column('spool_limit_bytes', existing_type=sa.BigInteger(), type_=sa.Integer(),
                              existing_nullable=False)
        batch_op.alter_column('spool_bytes', existing_type=sa.BigInteger(), type_=sa.Integer(),
                              existing_nullable=False)
