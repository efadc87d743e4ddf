"""staff: office phone and unit, shown to applicants as who holds their case (谁在办)

Revision ID: 9d2c7a4e1f08
Revises: 7a1c3e9d2b40
Create Date: 2026-11-30 09:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9d2c7a4e1f08'
down_revision: str | None = '7a1c3e9d2b40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('office_phone', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('unit', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('unit')
        batch_op.drop_column('office_phone')
