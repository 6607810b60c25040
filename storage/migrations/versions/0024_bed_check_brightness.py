"""bed checks: the bed region's brightness (the per-check figures a flag's evidence shows)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 12:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bed_checks') as batch:
        batch.add_column(sa.Column('brightness', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('bed_checks') as batch:
        batch.drop_column('brightness')
