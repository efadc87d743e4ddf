"""catalog items: the acceptance step's limit in working days (受理时限)

Revision ID: 5b8e3f1a9c27
Revises: 1d219e969440
Create Date: 2026-11-30 09:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5b8e3f1a9c27'
down_revision: str | None = '1d219e969440'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('catalog_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acceptance_days', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('catalog_item', schema=None) as batch_op:
        batch_op.drop_column('acceptance_days')
